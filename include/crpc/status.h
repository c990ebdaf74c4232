/**
 * \file
 * status.h: the 17 gRPC status codes and the status object an RPC ends with.
 */
#ifndef CRPC_STATUS_H
#define CRPC_STATUS_H

#include <crpc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** gRPC status codes; the values are the wire values of grpc-status. */
typedef enum crpc_code {
  CRPC_OK = 0,        /**< not an error */
  CRPC_CANCELLED = 1, /**< cancelled, typically by the caller */
  CRPC_UNKNOWN =
      2, /**< unknown error (e.g. a status from another error space) */
  CRPC_INVALID_ARGUMENT = 3, /**< the client sent an invalid argument */
  CRPC_DEADLINE_EXCEEDED =
      4,                   /**< the deadline passed before the call completed */
  CRPC_NOT_FOUND = 5,      /**< a requested entity was not found */
  CRPC_ALREADY_EXISTS = 6, /**< the entity the client tried to create exists */
  CRPC_PERMISSION_DENIED = 7, /**< the caller may not do this */
  CRPC_RESOURCE_EXHAUSTED =
      8, /**< a resource or limit ran out (e.g. message size) */
  CRPC_FAILED_PRECONDITION =
      9,             /**< the system is not in a state the operation needs */
  CRPC_ABORTED = 10, /**< aborted, e.g. by a concurrency conflict */
  CRPC_OUT_OF_RANGE = 11, /**< past the valid range */
  CRPC_UNIMPLEMENTED =
      12, /**< the method is not implemented or not supported */
  CRPC_INTERNAL =
      13, /**< an internal invariant broke (e.g. a malformed message) */
  CRPC_UNAVAILABLE =
      14,              /**< the service is unavailable (retry with back-off) */
  CRPC_DATA_LOSS = 15, /**< unrecoverable data loss or corruption */
  CRPC_UNAUTHENTICATED = 16 /**< no valid authentication credentials */
} crpc_code;

/**
 * How an RPC ended. |message| is the decoded grpc-message (NUL-terminated,
 * owned by the status, may be NULL), |details| the raw bytes of
 * grpc-status-details-bin (owned, may be NULL). Initialise with {0}; release
 * with crpc_status_clear(). Both come from the C library's allocator
 * (never a crpc_mem), so that crpc_status_clear() needs no allocator.
 */
typedef struct crpc_status {
  crpc_code code;     /**< the gRPC status code */
  char *message;      /**< grpc-message, decoded; owned; may be NULL */
  uint8_t *details;   /**< grpc-status-details-bin bytes (a serialized
                           google.rpc.Status); owned; may be NULL */
  size_t details_len; /**< bytes in |details| */
} crpc_status;

/** Frees message and details and resets |st| to {0}. NULL-safe. */
CRPC_API void crpc_status_clear(crpc_status *st);

/** The status message, or the code's name when there is none. Never NULL. */
CRPC_API const char *crpc_status_message(const crpc_status *st);

/** "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN_CODE" otherwise. */
CRPC_API const char *crpc_code_name(crpc_code code);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_STATUS_H */
