/* Fuzz target: base64 for -bin metadata (lib/metadata.c). */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *d, *d2;
  char *e;
  size_t dlen, elen, d2len;

  /* Decoding arbitrary text: if accepted, re-encoding and decoding is
   * stable (the canonical form decodes to the same bytes). */
  if (crpc__base64_decode((const char *)data, size, &d, &dlen) == 0) {
    FUZZ_CHECK(dlen <= size * 3 / 4 + 2 && d[dlen] == '\0');
    FUZZ_CHECK(crpc__base64_encode(d, dlen, &e, &elen) == 0);
    FUZZ_CHECK(elen <= size);
    FUZZ_CHECK(crpc__base64_decode(e, elen, &d2, &d2len) == 0);
    FUZZ_CHECK(d2len == dlen && memcmp(d, d2, dlen) == 0);
    free(d2);
    free(e);
    free(d);
  }

  /* Encoding arbitrary bytes: unpadded, and decodes back exactly, with or
   * without padding added. */
  FUZZ_CHECK(crpc__base64_encode(data, size, &e, &elen) == 0);
  FUZZ_CHECK(strlen(e) == elen && memchr(e, '=', elen) == NULL);
  FUZZ_CHECK(crpc__base64_decode(e, elen, &d, &dlen) == 0);
  FUZZ_CHECK(dlen == size && memcmp(d, data, size) == 0);
  free(d);
  if (elen % 4 != 0) {
    char *padded = malloc(elen + 3);
    size_t plen = elen;
    FUZZ_CHECK(padded != NULL);
    memcpy(padded, e, elen);
    while (plen % 4 != 0)
      padded[plen++] = '=';
    FUZZ_CHECK(crpc__base64_decode(padded, plen, &d, &dlen) == 0);
    FUZZ_CHECK(dlen == size && memcmp(d, data, size) == 0);
    free(d);
    free(padded);
  }
  free(e);
  return 0;
}
