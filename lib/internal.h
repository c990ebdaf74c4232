/*
 * internal.h: crpc__ declarations shared across lib/ files. Never installed.
 */
#ifndef CRPC_INTERNAL_H
#define CRPC_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <crpc/crpc.h>

#define CRPC__UNUSED(x) (void)(x)
#define CRPC__DEFAULT_MAX_RECV (4u * 1024u * 1024u)
/* Output budgets (budget.h) and the write-stall timeout. */
#define CRPC__DEFAULT_CONN_OUTPUT ((size_t)4 * 1024 * 1024)
#define CRPC__DEFAULT_SERVER_OUTPUT ((size_t)64 * 1024 * 1024)
#define CRPC__DEFAULT_WRITE_STALL_MS 30000

/* ---- mem.c ---- */
/* A copy of the user's allocator, or libc's when |user| is NULL. */
void crpc__mem_init(crpc_mem *dst, const crpc_mem *user);
void *crpc__malloc(const crpc_mem *m, size_t n);
void *crpc__calloc(const crpc_mem *m, size_t nmemb, size_t n);
void *crpc__realloc(const crpc_mem *m, void *p, size_t n);
void crpc__free(const crpc_mem *m, void *p);
char *crpc__strdup(const crpc_mem *m, const char *s);
/* At most |len| bytes of |s|, NUL-terminated. */
char *crpc__strndup(const crpc_mem *m, const char *s, size_t len);
/* The C library's allocator (what a NULL crpc_mem means). */
const crpc_mem *crpc__mem_libc(void);
/* A protobuf-c allocator over |m|, which must outlive every message
 * unpacked with it (it points at |m|, not a copy). */
void crpc__mem_pbc(ProtobufCAllocator *out, const crpc_mem *m);

/* ---- log.c ---- */
void crpc__log(crpc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define crpc__log_error(...) crpc__log(CRPC_LOG_ERROR, __VA_ARGS__)
#define crpc__log_warn(...) crpc__log(CRPC_LOG_WARN, __VA_ARGS__)
#define crpc__log_info(...) crpc__log(CRPC_LOG_INFO, __VA_ARGS__)
#define crpc__log_debug(...) crpc__log(CRPC_LOG_DEBUG, __VA_ARGS__)

/* ---- status.c ---- */
/* Sets code and a formatted message (replacing what was there). NULL-safe. */
void crpc__status_set(crpc_status *st, crpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Moves |src| into |dst| (dst cleared first; src left {0}). */
void crpc__status_move(crpc_status *dst, crpc_status *src);
/* grpc-message percent-encoding (PROTOCOL-HTTP2.md): bytes outside
 * 0x20-0x7E and '%' become %XX. Returns a NUL-terminated string from |m|
 * (crpc__percent_encode: libc). crpc_status contents stay libc's: the
 * user frees them with crpc_status_clear(). */
char *crpc__percent_encode(const char *msg, size_t len, size_t *out_len);
char *crpc__percent_encode_m(const crpc_mem *m, const char *msg, size_t len,
                             size_t *out_len);
/* Decodes %XX; invalid escapes are passed through as they are, as the spec
 * asks. Returns a malloc'd NUL-terminated string, NULL on OOM. */
char *crpc__percent_decode(const char *in, size_t len);
/* grpc-status value: ASCII decimal 0..16 (other numbers map to UNKNOWN).
 * Returns 0, or -1 when it is not a number at all. */
int crpc__parse_grpc_status(const char *v, size_t len, crpc_code *out);
/* The spec's HTTP status to gRPC code mapping for responses without
 * grpc-status (400->INTERNAL, 401->UNAUTHENTICATED, 403->PERMISSION_DENIED,
 * 404->UNIMPLEMENTED, 429/502/503/504->UNAVAILABLE, else UNKNOWN). */
crpc_code crpc__http_status_to_code(int http_status);

/* ---- timeout.c ---- */
/* grpc-timeout: 1-8 ASCII digits then one of H M S m u n. Returns 0 and the
 * timeout in milliseconds (rounded up, so 1n is 1 ms), or -1 if malformed. */
int crpc__timeout_parse(const char *v, size_t len, int64_t *out_ms);
/* Formats |ms| (> 0) in at most 8 digits with the finest unit that fits.
 * |out| has room for 16 bytes; returns the length. */
size_t crpc__timeout_format(int64_t ms, char *out);

/* ---- metadata.c ---- */
/* An empty list allocating with |m| (which must outlive it); freed with
 * crpc_metadata_free() as any list. crpc_metadata_new() uses libc. */
int crpc__metadata_new(crpc_metadata **out, const crpc_mem *m);
/* 1 if |key| (length |len|) is a syntactically valid lower-case key. */
bool crpc__metadata_key_valid(const char *key, size_t len);
/* 1 if the key is reserved for the transport (pseudo headers, grpc-*,
 * content-type, te, user-agent, connection headers, host). */
bool crpc__metadata_key_reserved(const char *key, size_t len);
/* 1 if key ends in "-bin". */
bool crpc__metadata_key_is_bin(const char *key, size_t len);
/* Adds a header received from the wire: reserved keys are skipped (returns
 * 0), -bin values are base64-decoded (padded or not). Returns 0,
 * CRPC_EMETADATA (bad key, bad base64) or CRPC_ENOMEM. */
int crpc__metadata_add_wire(crpc_metadata *md, const uint8_t *name,
                            size_t namelen, const uint8_t *value,
                            size_t valuelen);
/* Appends every pair of |src| to |dst|. */
int crpc__metadata_append(crpc_metadata *dst, const crpc_metadata *src);
/* base64 (RFC 4648, standard alphabet). Encoding emits no padding, as gRPC
 * asks; decoding accepts both. Returned buffers are malloc'd (decode output
 * gets a trailing NUL not counted in *out_len). Return 0 / -1. */
int crpc__base64_encode(const uint8_t *in, size_t len, char **out,
                        size_t *out_len);
int crpc__base64_decode(const char *in, size_t len, uint8_t **out,
                        size_t *out_len);
/* The same with the output from |m| (NULL: libc); decode returns -2 when
 * it is out of memory, -1 for bad input. */
int crpc__base64_encode_m(const crpc_mem *m, const uint8_t *in, size_t len,
                          char **out, size_t *out_len);
int crpc__base64_decode_m(const crpc_mem *m, const char *in, size_t len,
                          uint8_t **out, size_t *out_len);

/* ---- compress.c ---- */
typedef enum crpc__encoding {
  CRPC__ENC_UNKNOWN = -1,
  CRPC__ENC_IDENTITY = 0,
  CRPC__ENC_DEFLATE = 1,
  CRPC__ENC_GZIP = 2
} crpc__encoding;
/* "identity", "deflate", "gzip" -> the enum; anything else UNKNOWN. */
crpc__encoding crpc__encoding_from_name(const char *name, size_t len);
const char *crpc__encoding_name(crpc__encoding enc);
/* What we advertise in grpc-accept-encoding. */
const char *crpc__accept_encoding(void);
/* Whether a grpc-accept-encoding value (comma separated, spaces allowed,
 * unknown names ignored) lists |enc|. identity is always accepted. */
bool crpc__accept_encoding_has(const char *value, size_t len,
                               crpc__encoding enc);
/* Compress / decompress one message body. Output and zlib's own state come
 * from |m| (NULL: libc). decompress stops with CRPC_ETOOBIG as soon as the
 * output would exceed |max_out| (a zip bomb never allocates more than
 * that), CRPC_EPROTO for a corrupt stream, CRPC_ENOMEM. */
int crpc__compress(const crpc_mem *m, crpc__encoding enc, const uint8_t *in,
                   size_t len, uint8_t **out, size_t *out_len);
int crpc__decompress(const crpc_mem *m, crpc__encoding enc, const uint8_t *in,
                     size_t len, size_t max_out, uint8_t **out,
                     size_t *out_len);

#endif /* CRPC_INTERNAL_H */
