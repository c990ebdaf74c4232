/*
 * errors.c: crpc_strerror() and crpc_err_name(), both generated from the one
 * CRPC_ERRNO_MAP table in common.h so that a new code cannot be half-added.
 */
#include "internal.h"

const char *crpc_strerror(int rv) {
  switch (rv) {
  case 0:
    return "success";
#define CRPC__ERR_MSG(name, val, msg)                                          \
  case (val):                                                                  \
    return (msg);
    CRPC_ERRNO_MAP(CRPC__ERR_MSG)
#undef CRPC__ERR_MSG
  default:
    return "unknown error";
  }
}

const char *crpc_err_name(int rv) {
  switch (rv) {
  case 0:
    return "OK";
#define CRPC__ERR_NAME(name, val, msg)                                         \
  case (val):                                                                  \
    return #name;
    CRPC_ERRNO_MAP(CRPC__ERR_NAME)
#undef CRPC__ERR_NAME
  default:
    return "UNKNOWN";
  }
}
