/*
 * flags.h: the command line of the interop programs, as gRPC's interop
 * clients and servers take it: --name=value, and bare --name for booleans.
 */
#ifndef CRPC_INTEROP_FLAGS_H
#define CRPC_INTEROP_FLAGS_H

#include <stdbool.h>

typedef struct interop_flag {
  const char *name;
  const char *value; /* the default, then what the command line says */
  const char *help;
} interop_flag;

/* Parses argv into |flags| (an array ending with a {NULL} entry). Unknown
 * flags and --help print usage to stderr and return false. */
bool interop_flags_parse(interop_flag *flags, const char *prog, int argc,
                         char **argv);

/* The value of flag |name|; the name must be in the table. */
const char *interop_flag_str(const interop_flag *flags, const char *name);

/* "true", "1", "yes" (any case) and "" are true; anything else false. */
bool interop_flag_bool(const interop_flag *flags, const char *name);

/* The decimal value of a flag; exits with a message if it is not one. */
long interop_flag_long(const interop_flag *flags, const char *name);

#endif /* CRPC_INTEROP_FLAGS_H */
