/**
 * \file
 * crpc - gRPC in plain C.
 *
 * common.h: export macro, allocator hook and the library's error codes.
 *
 * Two error spaces never mix (STYLE.md): API and plumbing errors are negative
 * CRPC_E* ints returned by functions that set things up; RPC outcomes are
 * gRPC status codes (crpc_code, status.h).
 */
#ifndef CRPC_COMMON_H
#define CRPC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a function the shared library exports (the library is built with
 * -fvisibility=hidden: only CRPC_API functions are part of the ABI). */
#if defined(__GNUC__) || defined(__clang__)
#define CRPC_API __attribute__((visibility("default")))
#else
#define CRPC_API
#endif

/** Major version of the headers compiled against (project(VERSION)). */
#define CRPC_VERSION_MAJOR 0
/** Minor version of the headers; in 0.x a new minor may change the API. */
#define CRPC_VERSION_MINOR 1
/** Patch version of the headers. */
#define CRPC_VERSION_PATCH 0
/** "MAJOR.MINOR.PATCH" of the headers; compare with crpc_version() to see
 * the library that is actually loaded. */
#define CRPC_VERSION_STRING "0.1.0"

/**
 * The version of the library that is running, e.g. "0.1.0" (the shared
 * library loaded at run time, which may be newer than the headers'
 * CRPC_VERSION_STRING).
 *
 * Returns a static string, never NULL. Thread safety: any thread.
 */
CRPC_API const char *crpc_version(void);

/**
 * The API error codes, as XX(name, value, message) entries. One table
 * generates the enum #crpc_errno, crpc_strerror() and crpc_err_name()
 * (libuv's UV_ERRNO_MAP):
 *
 * | code | value | meaning |
 * |---|---|---|
 * | CRPC_EINVAL | -1 | invalid argument |
 * | CRPC_ENOMEM | -2 | out of memory |
 * | CRPC_ETARGET | -3 | cannot parse or resolve the target address |
 * | CRPC_EADDRINUSE | -4 | address already in use |
 * | CRPC_ESYS | -5 | a system call failed (see errno) |
 * | CRPC_ESTATE | -6 | operation not allowed in the object's current state |
 * | CRPC_ECLOSED | -7 | the object is shutting down or closed |
 * | CRPC_EEXIST | -8 | already registered |
 * | CRPC_ETLS | -9 | TLS configuration failed |
 * | CRPC_EMETADATA | -10 | invalid or reserved metadata key or value |
 * | CRPC_ETOOBIG | -11 | message larger than the configured limit |
 * | CRPC_EPROTO | -12 | protocol error from the peer |
 * | CRPC_EENCODING | -13 | unknown or unsupported compression encoding |
 */
#define CRPC_ERRNO_MAP(XX)                                                     \
  XX(EINVAL, -1, "invalid argument")                                           \
  XX(ENOMEM, -2, "out of memory")                                              \
  XX(ETARGET, -3, "cannot parse or resolve the target address")                \
  XX(EADDRINUSE, -4, "address already in use")                                 \
  XX(ESYS, -5, "a system call failed (see errno)")                             \
  XX(ESTATE, -6, "operation not allowed in the object's current state")        \
  XX(ECLOSED, -7, "the object is shutting down or closed")                     \
  XX(EEXIST, -8, "already registered")                                         \
  XX(ETLS, -9, "TLS configuration failed")                                     \
  XX(EMETADATA, -10, "invalid or reserved metadata key or value")              \
  XX(ETOOBIG, -11, "message larger than the configured limit")                 \
  XX(EPROTO, -12, "protocol error from the peer")                              \
  XX(EENCODING, -13, "unknown or unsupported compression encoding")

/**
 * The negative error codes API functions return (0 is success); see
 * CRPC_ERRNO_MAP for the list. Values are stable: they are part of the ABI.
 */
typedef enum crpc_errno {
/** \cond INTERNAL */
#define CRPC__ERR_ENUM(name, val, msg) CRPC_##name = (val),
  CRPC_ERRNO_MAP(CRPC__ERR_ENUM)
#undef CRPC__ERR_ENUM
  /** \endcond */
} crpc_errno;

/**
 * A message for an error code |rv| (a CRPC_E* value, e.g. "invalid
 * argument").
 *
 * Returns a static string, never NULL: 0 gives "success" and unknown codes
 * "unknown error". Thread safety: any thread.
 */
CRPC_API const char *crpc_strerror(int rv);

/**
 * The enum's name of an error code without the CRPC_ prefix, e.g. "EINVAL"
 * for CRPC_EINVAL.
 *
 * Returns a static string, never NULL: "OK" for 0, "UNKNOWN" for a code
 * that is not in the table. Thread safety: any thread.
 */
CRPC_API const char *crpc_err_name(int rv);

/** Allocates |size| bytes, as malloc(); NULL on failure. */
typedef void *(*crpc_malloc)(size_t size, void *mem_user_data);
/** Frees memory from the same allocator, as free(); NULL-safe. */
typedef void (*crpc_free)(void *ptr, void *mem_user_data);
/** Allocates zeroed memory, as calloc(); NULL on failure. */
typedef void *(*crpc_calloc)(size_t nmemb, size_t size, void *mem_user_data);
/** Resizes memory, as realloc(); NULL on failure (|ptr| stays valid). */
typedef void *(*crpc_realloc)(void *ptr, size_t size, void *mem_user_data);

/**
 * Allocator hooks, the same shape as nghttp2_mem, given to a server or a
 * channel (crpc_server_opts.mem, crpc_channel_opts.mem).
 *
 * - NULL means the C library's allocator. malloc, free and realloc are
 *   required (a struct without one of them is ignored as a whole, and libc
 *   is used); calloc may be NULL (crpc then uses malloc + memset). crpc
 *   never asks for 0 bytes and never calls realloc(ptr, 0).
 * - The struct is copied by crpc_server_new() / crpc_channel_new(); crpc
 *   does not keep the pointer. |mem_user_data| and the functions must stay
 *   usable until crpc_server_free() / crpc_channel_free() has returned.
 * - Everything the object makes allocates from it: the object itself, its
 *   reactor threads' loops and timers (servers), connections, their
 *   nghttp2 sessions (through an nghttp2_mem) and write buffers, calls
 *   with their metadata lists, arenas and message buffers, zlib's state
 *   for compression, crpc's part of TLS (contexts, per-connection state,
 *   peer identities), the worker pool and its jobs, and the messages crpc
 *   unpacks and frees itself (through a ProtobufCAllocator: requests
 *   handed to handlers, responses lent to async callbacks when the channel
 *   has no msg_allocator).
 * - What crpc hands to you keeps its own documented allocator: messages
 *   crpc_call_read()/crpc_unary() return (call.h, "Messages"), crpc_status
 *   contents (freed by crpc_status_clear(), libc) and lists you create
 *   with crpc_metadata_new() (libc). The shared client reactor threads
 *   belong to no channel and use libc, as do crpc_health objects and the
 *   nghttp2 callback and option tables, built once per process.
 * - Thread safety: the functions are called concurrently from every
 *   reactor thread, worker and client thread of the object, so they must
 *   be thread-safe.
 *
 * OpenSSL allocates with its own process-wide allocator, which crpc leaves
 * alone: it can only be replaced before OpenSSL's first allocation, for
 * the whole process. A program that wants OpenSSL's memory in its
 * allocator too calls CRYPTO_set_mem_functions() itself, first thing in
 * main(), before any crpc or OpenSSL call.
 */
typedef struct crpc_mem {
  void *mem_user_data;  /**< passed as the last argument of every function */
  crpc_malloc malloc;   /**< malloc() */
  crpc_free free;       /**< free() */
  crpc_calloc calloc;   /**< calloc() */
  crpc_realloc realloc; /**< realloc() */
} crpc_mem;

/** Log levels for crpc_set_log_callback(), most severe first. */
typedef enum crpc_log_level {
  CRPC_LOG_ERROR = 0, /**< something failed */
  CRPC_LOG_WARN = 1,  /**< something unexpected, handled */
  CRPC_LOG_INFO = 2,  /**< informational */
  CRPC_LOG_DEBUG = 3  /**< detail for debugging */
} crpc_log_level;

/**
 * Receives one log line |msg| (NUL-terminated, no newline; borrowed for the
 * call) at |level|. It runs on whichever crpc thread logs, reactor threads
 * included, possibly concurrently: it must be thread-safe and should not
 * block (a reactor waits for it).
 */
typedef void (*crpc_log_cb)(crpc_log_level level, const char *msg,
                            void *user_data);

/**
 * Route the library's log lines up to |max_level| to |cb|, with
 * |user_data|. NULL restores the default: one line per event,
 * "crpc LEVEL: message\n", written to stderr in one call (lines from
 * different threads stay whole), up to the level the CRPC_LOG environment
 * variable names (error, warn, info or debug; any other non-empty value
 * means warn); CRPC_LOG unset, empty, "off" or "none": nothing. A line the
 * level leaves out costs one atomic load, no formatting. Lines longer than
 * 1 KiB are cut, ending in "...". The server access log is separate
 * (crpc_server_set_access_log(), crpc/metrics.h).
 * Thread safety: call before creating channels or servers.
 */
CRPC_API void crpc_set_log_callback(crpc_log_cb cb, crpc_log_level max_level,
                                    void *user_data);

/** A metrics recorder (crpc/metrics.h), attached to servers and channels
 * through their options. Opaque. */
typedef struct crpc_metrics crpc_metrics;

#ifdef __cplusplus
}
#endif
#endif /* CRPC_COMMON_H */
