/* Fuzz target: grpc-message percent-encoding (lib/status.c). */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

static bool upper_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  size_t n, i;
  char *e, *d;
  crpc_code code;

  /* Encoding yields the spec's alphabet and decodes back exactly. */
  e = crpc__percent_encode(in, size, &n);
  FUZZ_CHECK(e != NULL && strlen(e) == n);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)e[i];
    FUZZ_CHECK(c >= 0x20 && c <= 0x7e);
    if (c == '%')
      FUZZ_CHECK(i + 2 < n && upper_hex(e[i + 1]) && upper_hex(e[i + 2]));
  }
  d = crpc__percent_decode(e, n);
  FUZZ_CHECK(d != NULL && memcmp(d, in, size) == 0 && d[size] == '\0');
  free(d);
  free(e);

  /* Decoding anything succeeds; without a '%' it is the identity. */
  d = crpc__percent_decode(in, size);
  FUZZ_CHECK(d != NULL);
  if (memchr(in, '%', size) == NULL)
    FUZZ_CHECK(memcmp(d, in, size) == 0);
  free(d);

  /* The grpc-status parser shares the file: any input, no crash, and a
   * number always maps into the 17 codes. */
  if (crpc__parse_grpc_status(in, size, &code) == 0)
    FUZZ_CHECK((unsigned)code <= CRPC_UNAUTHENTICATED);
  return 0;
}
