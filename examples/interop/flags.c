/*
 * flags.c: --name=value parsing for the interop programs.
 */
#include "flags.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static interop_flag *find(const interop_flag *flags, const char *name,
                          size_t len) {
  for (const interop_flag *f = flags; f->name != NULL; f++)
    if (strlen(f->name) == len && memcmp(f->name, name, len) == 0)
      return (interop_flag *)f;
  return NULL;
}

static void usage(const interop_flag *flags, const char *prog) {
  fprintf(stderr, "usage: %s [--flag=value ...]\n", prog);
  for (const interop_flag *f = flags; f->name != NULL; f++)
    fprintf(stderr, "  --%-46s %s (default \"%s\")\n", f->name, f->help,
            f->value);
}

bool interop_flags_parse(interop_flag *flags, const char *prog, int argc,
                         char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || strcmp(a, "--help") == 0) {
      usage(flags, prog);
      return false;
    }
    a += 2;
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    interop_flag *f = find(flags, a, len);
    if (f == NULL) {
      fprintf(stderr, "%s: unknown flag %s\n", prog, argv[i]);
      usage(flags, prog);
      return false;
    }
    /* A bare --flag is a boolean set to true. */
    f->value = eq ? eq + 1 : "true";
  }
  return true;
}

const char *interop_flag_str(const interop_flag *flags, const char *name) {
  const interop_flag *f = find(flags, name, strlen(name));
  if (f == NULL) {
    fprintf(stderr, "interop: no flag --%s\n", name);
    abort();
  }
  return f->value;
}

bool interop_flag_bool(const interop_flag *flags, const char *name) {
  const char *v = interop_flag_str(flags, name);
  return *v == '\0' || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
         strcasecmp(v, "yes") == 0;
}

long interop_flag_long(const interop_flag *flags, const char *name) {
  const char *v = interop_flag_str(flags, name);
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0') {
    fprintf(stderr, "--%s=%s: not a number\n", name, v);
    exit(2);
  }
  return n;
}
