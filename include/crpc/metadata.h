/**
 * \file
 * metadata.h: gRPC custom metadata (request headers, response headers,
 * trailers).
 *
 * Keys are lower-case ASCII [0-9a-z_.-]. Keys ending in "-bin" carry binary
 * values (base64 on the wire, raw bytes here); other values are printable
 * ASCII (0x20-0x7E). Keys starting with "grpc-" and HTTP/2 reserved headers
 * (":path", "content-type", "te", ...) are rejected with CRPC_EMETADATA.
 */
#ifndef CRPC_METADATA_H
#define CRPC_METADATA_H

#include <crpc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An ordered list of key/value pairs; keys may repeat. Opaque. */
typedef struct crpc_metadata crpc_metadata;

/**
 * Creates an empty list, allocated (with everything added to it) from the
 * C library's allocator. Lists crpc makes for a call (e.g. the one
 * crpc_call_request_metadata() returns) use their server's or channel's
 * crpc_mem instead; crpc_metadata_free() frees either kind correctly.
 * Returns 0, CRPC_EINVAL (out NULL) or CRPC_ENOMEM.
 * Thread safety: a list is used by one thread at a time.
 */
CRPC_API int crpc_metadata_new(crpc_metadata **out);

/** Frees the list and everything in it. NULL-safe. */
CRPC_API void crpc_metadata_free(crpc_metadata *md);

/**
 * Appends a pair; key and value are copied. |key| is upper-cased letters
 * folded to lower case first.
 * Returns 0; CRPC_EMETADATA when the key is empty, has a character outside
 * [0-9a-z_.-], is reserved (grpc-*, HTTP/2 pseudo or connection headers,
 * content-type, te, user-agent), or a non-binary value has a byte outside
 * 0x20-0x7E; CRPC_EINVAL for NULL arguments; CRPC_ENOMEM.
 */
CRPC_API int crpc_metadata_add(crpc_metadata *md, const char *key,
                               const void *value, size_t value_len);

/** crpc_metadata_add() with a NUL-terminated string value. */
CRPC_API int crpc_metadata_add_str(crpc_metadata *md, const char *key,
                                   const char *value);

/** Number of pairs. */
CRPC_API size_t crpc_metadata_count(const crpc_metadata *md);

/**
 * The |i|th pair (0-based). Pointers stay valid until the list is changed or
 * freed. Values are NUL-terminated for convenience (binary values may also
 * contain NULs; use |value_len|). Returns 0 or CRPC_EINVAL (out of range).
 */
CRPC_API int crpc_metadata_at(const crpc_metadata *md, size_t i,
                              const char **key, const uint8_t **value,
                              size_t *value_len);

/**
 * The first value for |key| (exact, lower-case), or NULL. |value_len| may be
 * NULL.
 */
CRPC_API const uint8_t *crpc_metadata_get(const crpc_metadata *md,
                                          const char *key, size_t *value_len);

/** Removes every pair. */
CRPC_API void crpc_metadata_clear(crpc_metadata *md);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_METADATA_H */
