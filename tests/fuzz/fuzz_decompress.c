/*
 * Fuzz target: message decompression (lib/compress.c).
 *
 * Byte 0 picks the encoding (bits 0-1) and the mode (bit 2), byte 1 the
 * output limit; the rest is the message.
 * - compressed mode: whatever the bytes, the result is 0, ETOOBIG or
 *   EPROTO, the output respects the limit, and a success re-compresses to
 *   something that decompresses to the same bytes;
 * - plain mode: the rest is compressed first, then must come back exactly
 *   when it fits the limit and fail with ETOOBIG exactly when it does not
 *   (the limit logic is ours; zlib's parser is not).
 */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  crpc__encoding enc;
  size_t max_out, out_len, z_len, back_len;
  uint8_t *out, *z, *back;
  int rv, plain;

  if (size < 2)
    return 0;
  enc = (crpc__encoding)((data[0] & 3) % 3);
  /* Mostly small limits, so the limit path is exercised; 0xff: 1 MiB. */
  max_out = data[1] == 0xff ? 1024 * 1024 : (size_t)data[1] * 37;
  plain = data[0] & 4;
  data += 2;
  size -= 2;

  if (plain) {
    FUZZ_CHECK(crpc__compress(NULL, enc, data, size, &z, &z_len) == 0);
    rv = crpc__decompress(NULL, enc, z, z_len, max_out, &out, &out_len);
    free(z);
    if (size > max_out) {
      FUZZ_CHECK(rv == CRPC_ETOOBIG);
    } else {
      FUZZ_CHECK(rv == 0 && out_len == size && memcmp(out, data, size) == 0);
      free(out);
    }
    return 0;
  }

  rv = crpc__decompress(NULL, enc, data, size, max_out, &out, &out_len);
  FUZZ_CHECK(rv == 0 || rv == CRPC_ETOOBIG || rv == CRPC_EPROTO ||
             rv == CRPC_ENOMEM);
  if (rv != 0)
    return 0;
  FUZZ_CHECK(out_len <= max_out);
  if (enc == CRPC__ENC_IDENTITY)
    FUZZ_CHECK(out_len == size && memcmp(out, data, size) == 0);

  FUZZ_CHECK(crpc__compress(NULL, enc, out, out_len, &z, &z_len) == 0);
  rv = crpc__decompress(NULL, enc, z, z_len, out_len, &back, &back_len);
  FUZZ_CHECK(rv == 0 && back_len == out_len &&
             memcmp(back, out, out_len) == 0);
  free(back);
  free(z);
  free(out);
  return 0;
}
