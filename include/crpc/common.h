/*
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

#if defined(__GNUC__) || defined(__clang__)
#define CRPC_API __attribute__((visibility("default")))
#else
#define CRPC_API
#endif

#define CRPC_VERSION_MAJOR 0
#define CRPC_VERSION_MINOR 1
#define CRPC_VERSION_PATCH 0
#define CRPC_VERSION_STRING "0.1.0"

/** The version of the library that is running, e.g. "0.1.0". */
CRPC_API const char *crpc_version(void);

/*
 * The API error codes. One table generates the enum, crpc_strerror() and
 * crpc_err_name() (libuv's UV_ERRNO_MAP).
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

typedef enum crpc_errno {
#define CRPC__ERR_ENUM(name, val, msg) CRPC_##name = (val),
  CRPC_ERRNO_MAP(CRPC__ERR_ENUM)
#undef CRPC__ERR_ENUM
} crpc_errno;

/**
 * A message for an error code. Never NULL: unknown codes get "unknown error".
 * Thread safety: any thread.
 */
CRPC_API const char *crpc_strerror(int rv);

/** The enum's name of an error code without the prefix, e.g. "EINVAL". */
CRPC_API const char *crpc_err_name(int rv);

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
typedef void *(*crpc_malloc)(size_t size, void *mem_user_data);
typedef void (*crpc_free)(void *ptr, void *mem_user_data);
typedef void *(*crpc_calloc)(size_t nmemb, size_t size, void *mem_user_data);
typedef void *(*crpc_realloc)(void *ptr, size_t size, void *mem_user_data);

typedef struct crpc_mem {
  void *mem_user_data;
  crpc_malloc malloc;
  crpc_free free;
  crpc_calloc calloc;
  crpc_realloc realloc;
} crpc_mem;

/* Log levels for crpc_set_log_callback. */
typedef enum crpc_log_level {
  CRPC_LOG_ERROR = 0,
  CRPC_LOG_WARN = 1,
  CRPC_LOG_INFO = 2,
  CRPC_LOG_DEBUG = 3
} crpc_log_level;

typedef void (*crpc_log_cb)(crpc_log_level level, const char *msg,
                            void *user_data);

/**
 * Route the library's log lines to |cb| (NULL restores the default, which
 * writes warnings and errors to stderr when CRPC_LOG is set in the
 * environment, e.g. CRPC_LOG=debug). Thread safety: call before creating
 * channels or servers.
 */
CRPC_API void crpc_set_log_callback(crpc_log_cb cb, crpc_log_level max_level,
                                    void *user_data);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_COMMON_H */
