/*
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
  CRPC_OK = 0,
  CRPC_CANCELLED = 1,
  CRPC_UNKNOWN = 2,
  CRPC_INVALID_ARGUMENT = 3,
  CRPC_DEADLINE_EXCEEDED = 4,
  CRPC_NOT_FOUND = 5,
  CRPC_ALREADY_EXISTS = 6,
  CRPC_PERMISSION_DENIED = 7,
  CRPC_RESOURCE_EXHAUSTED = 8,
  CRPC_FAILED_PRECONDITION = 9,
  CRPC_ABORTED = 10,
  CRPC_OUT_OF_RANGE = 11,
  CRPC_UNIMPLEMENTED = 12,
  CRPC_INTERNAL = 13,
  CRPC_UNAVAILABLE = 14,
  CRPC_DATA_LOSS = 15,
  CRPC_UNAUTHENTICATED = 16
} crpc_code;

/**
 * How an RPC ended. |message| is the decoded grpc-message (NUL-terminated,
 * owned by the status, may be NULL), |details| the raw bytes of
 * grpc-status-details-bin (owned, may be NULL). Initialise with {0}; release
 * with crpc_status_clear(). Both come from the C library's allocator
 * (never a crpc_mem), so that crpc_status_clear() needs no allocator.
 */
typedef struct crpc_status {
  crpc_code code;
  char *message;
  uint8_t *details;
  size_t details_len;
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
