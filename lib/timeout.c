/*
 * timeout.c: the grpc-timeout header (PROTOCOL-HTTP2.md):
 *   Timeout → "grpc-timeout" TimeoutValue TimeoutUnit
 *   TimeoutValue → positive integer as ASCII string of at most 8 digits
 *   TimeoutUnit → "H" / "M" / "S" / "m" / "u" / "n"
 */
#include <stdio.h>

#include "internal.h"

#define TIMEOUT_MAX_DIGITS 8
#define TIMEOUT_MAX_VALUE 99999999

/*
 * Sub-millisecond units round up, so a deadline never expires before the
 * peer asked. "0" is accepted and means an already expired deadline: the
 * grammar says positive, but Go and C++ gRPC accept it, and failing the
 * call with DEADLINE_EXCEEDED is the only sensible reading of it.
 */
int crpc__timeout_parse(const char *v, size_t len, int64_t *out_ms) {
  int64_t n = 0;
  size_t i;

  if (v == NULL || out_ms == NULL || len < 2 || len > TIMEOUT_MAX_DIGITS + 1)
    return -1;
  for (i = 0; i + 1 < len; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    n = n * 10 + (v[i] - '0');
  }
  /* At most 8 digits: the largest, 99999999H, is ~3.6e14 ms: no overflow. */
  switch (v[len - 1]) {
  case 'H':
    *out_ms = n * 3600000;
    break;
  case 'M':
    *out_ms = n * 60000;
    break;
  case 'S':
    *out_ms = n * 1000;
    break;
  case 'm':
    *out_ms = n;
    break;
  case 'u':
    *out_ms = (n + 999) / 1000;
    break;
  case 'n':
    *out_ms = (n + 999999) / 1000000;
    break;
  default:
    return -1;
  }
  return 0;
}

/*
 * Milliseconds are exact, so "m" is used while the value fits in 8 digits;
 * beyond that the coarser units round up (a slightly later deadline rather
 * than an early one). Longer than 99999999 hours (11,000 years) is clamped.
 */
size_t crpc__timeout_format(int64_t ms, char *out) {
  static const struct {
    int64_t div;
    char unit;
  } units[] = {{1, 'm'}, {1000, 'S'}, {60000, 'M'}, {3600000, 'H'}};
  size_t i;

  if (ms <= 0) /* the caller should not send it; the smallest we can */
    return (size_t)snprintf(out, 16, "1n");
  for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    int64_t v = ms / units[i].div + (ms % units[i].div != 0);
    if (v <= TIMEOUT_MAX_VALUE)
      return (size_t)snprintf(out, 16, "%lld%c", (long long)v, units[i].unit);
  }
  return (size_t)snprintf(out, 16, "%dH", TIMEOUT_MAX_VALUE);
}
