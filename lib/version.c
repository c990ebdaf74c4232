/*
 * version.c: the running library's version.
 */
#include "internal.h"

const char *crpc_version(void) { return CRPC_VERSION_STRING; }
