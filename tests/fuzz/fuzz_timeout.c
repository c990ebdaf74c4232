/* Fuzz target: grpc-timeout parsing and formatting (lib/timeout.c). */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

#define MAX_MS (INT64_C(99999999) * 3600000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *v = (const char *)data;
  char out[16];
  int64_t ms, back, in;
  size_t n, i;

  if (crpc__timeout_parse(v, size, &ms) == 0) {
    /* Only the grammar gets through: 1-8 digits and a unit. */
    FUZZ_CHECK(size >= 2 && size <= 9);
    for (i = 0; i + 1 < size; i++)
      FUZZ_CHECK(v[i] >= '0' && v[i] <= '9');
    FUZZ_CHECK(strchr("HMSmun", v[size - 1]) != NULL && v[size - 1] != 0);
    FUZZ_CHECK(ms >= 0 && ms <= MAX_MS);
    if (ms > 0) {
      n = crpc__timeout_format(ms, out);
      FUZZ_CHECK(crpc__timeout_parse(out, n, &back) == 0 && back >= ms);
    }
  }

  /* Any int64 formats into something that parses back, never shorter. */
  if (size >= sizeof(in)) {
    memcpy(&in, data, sizeof(in));
    memset(out, 0x7f, sizeof(out));
    n = crpc__timeout_format(in, out);
    FUZZ_CHECK(n >= 2 && n <= 9 && strlen(out) == n);
    FUZZ_CHECK(crpc__timeout_parse(out, n, &back) == 0);
    if (in > 0 && in <= MAX_MS)
      FUZZ_CHECK(back >= in);
  }
  return 0;
}
