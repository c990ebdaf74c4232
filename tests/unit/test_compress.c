/* Unit tests for lib/compress.c: encoding names and negotiation, round
 * trips, interoperability with plain zlib, corrupt and truncated streams,
 * size limits and zip bombs (with the peak allocation measured). */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#define FAILMALLOC_WRAP_LIBC
#include "failmalloc.h"
#include "../../lib/mem.c"
#include "../../lib/compress.c"

#define MiB (1024u * 1024u)

/* Test-owned memory bypasses the wrapper: "(malloc)(n)" is not a macro
 * call, so only the library's own allocations are counted. */
static uint8_t *own_alloc(size_t n) {
  uint8_t *p = (malloc)(n ? n : 1);
  assert_non_null(p);
  return p;
}
static void own_free(void *p) { (free)(p); }

static int teardown(void **state) {
  (void)state;
  assert_int_equal(failmalloc_libc.blocks, 0);
  failmalloc_reset(&failmalloc_libc, 0);
  return 0;
}

/* Compresses with the library, returns a test-owned copy. */
static uint8_t *packed(crpc__encoding enc, const void *in, size_t len,
                       size_t *out_len) {
  uint8_t *z, *copy;
  assert_int_equal(crpc__compress(NULL, enc, in, len, &z, out_len), 0);
  copy = own_alloc(*out_len);
  memcpy(copy, z, *out_len);
  free(z);
  return copy;
}

static void fill_text(uint8_t *buf, size_t len) {
  static const char words[] = "the quick brown fox jumps over the lazy dog ";
  size_t i;
  for (i = 0; i < len; i++)
    buf[i] = (uint8_t)words[(i * 7 + i / 13) % (sizeof(words) - 1)];
}

static void fill_noise(uint8_t *buf, size_t len) {
  uint32_t x = 2463534242u;
  size_t i;
  for (i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buf[i] = (uint8_t)x;
  }
}

/* ---- names and negotiation ---- */

static void test_names(void **state) {
  (void)state;
  assert_int_equal(crpc__encoding_from_name("identity", 8), CRPC__ENC_IDENTITY);
  assert_int_equal(crpc__encoding_from_name("deflate", 7), CRPC__ENC_DEFLATE);
  assert_int_equal(crpc__encoding_from_name("gzip", 4), CRPC__ENC_GZIP);
  assert_int_equal(crpc__encoding_from_name("GZip", 4), CRPC__ENC_GZIP);
  assert_int_equal(crpc__encoding_from_name("gzip", 3), CRPC__ENC_UNKNOWN);
  assert_int_equal(crpc__encoding_from_name("gzipx", 5), CRPC__ENC_UNKNOWN);
  assert_int_equal(crpc__encoding_from_name("gzip ", 5), CRPC__ENC_UNKNOWN);
  assert_int_equal(crpc__encoding_from_name("snappy", 6), CRPC__ENC_UNKNOWN);
  assert_int_equal(crpc__encoding_from_name("", 0), CRPC__ENC_UNKNOWN);
  assert_int_equal(crpc__encoding_from_name(NULL, 0), CRPC__ENC_UNKNOWN);
  assert_string_equal(crpc__encoding_name(CRPC__ENC_IDENTITY), "identity");
  assert_string_equal(crpc__encoding_name(CRPC__ENC_DEFLATE), "deflate");
  assert_string_equal(crpc__encoding_name(CRPC__ENC_GZIP), "gzip");
  assert_null(crpc__encoding_name(CRPC__ENC_UNKNOWN));
  assert_null(crpc__encoding_name((crpc__encoding)3));
  assert_string_equal(crpc__accept_encoding(), "identity,deflate,gzip");
}

static bool has(const char *v, crpc__encoding enc) {
  return crpc__accept_encoding_has(v, strlen(v), enc);
}

static void test_accept_encoding(void **state) {
  const char *ours = crpc__accept_encoding();
  (void)state;
  assert_true(has(ours, CRPC__ENC_DEFLATE));
  assert_true(has(ours, CRPC__ENC_GZIP));
  assert_true(has("gzip", CRPC__ENC_GZIP));
  assert_false(has("gzip", CRPC__ENC_DEFLATE));
  assert_true(has("deflate , gzip", CRPC__ENC_GZIP));
  assert_true(has("deflate , gzip", CRPC__ENC_DEFLATE));
  assert_true(has(" \tgzip\t ", CRPC__ENC_GZIP));
  assert_true(has("snappy,br,gzip,zstd", CRPC__ENC_GZIP));
  assert_false(has("snappy,br,zstd", CRPC__ENC_GZIP));
  assert_true(has(",,gzip,", CRPC__ENC_GZIP));
  assert_true(has("GZIP", CRPC__ENC_GZIP));
  assert_false(has("gzipx", CRPC__ENC_GZIP));
  assert_false(has("gzi", CRPC__ENC_GZIP));
  assert_false(has("g zip", CRPC__ENC_GZIP));
  assert_false(has("x-gzip", CRPC__ENC_GZIP));
  assert_false(has("gzip;q=1", CRPC__ENC_GZIP)); /* not gRPC's grammar */
  assert_false(has("", CRPC__ENC_GZIP));
  assert_false(has(",", CRPC__ENC_DEFLATE));
  assert_false(crpc__accept_encoding_has("gzip", 3, CRPC__ENC_GZIP));
  assert_false(crpc__accept_encoding_has(NULL, 0, CRPC__ENC_GZIP));
  assert_false(has("gzip", CRPC__ENC_UNKNOWN));
  /* identity is always acceptable, listed or not. */
  assert_true(has("", CRPC__ENC_IDENTITY));
  assert_true(has("gzip", CRPC__ENC_IDENTITY));
  assert_true(crpc__accept_encoding_has(NULL, 0, CRPC__ENC_IDENTITY));
}

/* ---- round trips ---- */

static void round_trip(crpc__encoding enc, const uint8_t *in, size_t len) {
  uint8_t *z, *back;
  size_t zlen, blen;
  assert_int_equal(crpc__compress(NULL, enc, in, len, &z, &zlen), 0);
  assert_int_equal(crpc__decompress(NULL, enc, z, zlen, len, &back, &blen), 0);
  assert_int_equal(blen, len);
  if (len > 0)
    assert_memory_equal(back, in, len);
  free(z);
  free(back);
}

static void test_round_trips(void **state) {
  static const size_t sizes[] = {0, 1, 2, 100, 255, 256, 257, 4096, 65537,
                                 MiB + 3};
  crpc__encoding enc;
  size_t i;
  uint8_t *text = own_alloc(MiB + 3), *noise = own_alloc(MiB + 3);
  (void)state;
  fill_text(text, MiB + 3);
  fill_noise(noise, MiB + 3);
  for (enc = CRPC__ENC_IDENTITY; enc <= CRPC__ENC_GZIP; enc++) {
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
      round_trip(enc, text, sizes[i]);
      round_trip(enc, noise, sizes[i]);
    }
  }
  own_free(text);
  own_free(noise);
}

static void test_formats(void **state) {
  uint8_t in[1000], *z, *d = NULL;
  size_t zlen, dlen;
  (void)state;
  fill_text(in, sizeof(in));
  /* deflate is the zlib format (RFC 1950): CMF 0x78, FCHECK valid. */
  z = packed(CRPC__ENC_DEFLATE, in, sizeof(in), &zlen);
  assert_int_equal(z[0], 0x78);
  assert_int_equal((z[0] << 8 | z[1]) % 31, 0);
  assert_true(zlen < sizeof(in));
  own_free(z);
  /* gzip: magic 1f 8b, method 8. */
  z = packed(CRPC__ENC_GZIP, in, sizeof(in), &zlen);
  assert_int_equal(z[0], 0x1f);
  assert_int_equal(z[1], 0x8b);
  assert_int_equal(z[2], 8);
  own_free(z);
  /* identity is a copy. */
  assert_int_equal(crpc__compress(NULL, CRPC__ENC_IDENTITY, in, 10, &d, &dlen),
                   0);
  assert_int_equal(dlen, 10);
  assert_memory_equal(d, in, 10);
  free(d);
}

/* What other gRPC stacks send is plain zlib output: check both ways. */
static void test_zlib_interop(void **state) {
  uint8_t in[5000], *z, *d, *zz;
  size_t zlen, dlen;
  uLongf n;
  z_stream s;
  (void)state;
  fill_text(in, sizeof(in));

  n = compressBound(sizeof(in));
  zz = own_alloc(n);
  assert_int_equal(compress2(zz, &n, in, sizeof(in), 9), Z_OK);
  assert_int_equal(
      crpc__decompress(NULL, CRPC__ENC_DEFLATE, zz, n, sizeof(in), &d, &dlen),
      0);
  assert_int_equal(dlen, sizeof(in));
  assert_memory_equal(d, in, sizeof(in));
  free(d);
  own_free(zz);

  z = packed(CRPC__ENC_DEFLATE, in, sizeof(in), &zlen);
  d = own_alloc(sizeof(in));
  n = sizeof(in);
  assert_int_equal(uncompress(d, &n, z, zlen), Z_OK);
  assert_int_equal(n, sizeof(in));
  assert_memory_equal(d, in, sizeof(in));
  own_free(z);

  z = packed(CRPC__ENC_GZIP, in, sizeof(in), &zlen);
  memset(&s, 0, sizeof(s));
  assert_int_equal(inflateInit2(&s, 15 + 16), Z_OK);
  s.next_in = z;
  s.avail_in = (uInt)zlen;
  s.next_out = d;
  s.avail_out = sizeof(in);
  assert_int_equal(inflate(&s, Z_FINISH), Z_STREAM_END);
  assert_int_equal(s.total_out, sizeof(in));
  assert_memory_equal(d, in, sizeof(in));
  inflateEnd(&s);
  own_free(z);
  own_free(d);
}

/* ---- bad input ---- */

static int dec(crpc__encoding enc, const uint8_t *in, size_t len,
               size_t max_out) {
  uint8_t *out = (uint8_t *)"untouched";
  size_t out_len = 12345;
  int rv = crpc__decompress(NULL, enc, in, len, max_out, &out, &out_len);
  if (rv == 0) {
    free(out);
  } else {
    assert_string_equal((const char *)out, "untouched");
    assert_int_equal(out_len, 12345);
  }
  return rv;
}

static void test_truncated_every_prefix(void **state) {
  uint8_t in[3000], *z;
  size_t zlen, cut;
  crpc__encoding enc;
  (void)state;
  fill_text(in, sizeof(in));
  for (enc = CRPC__ENC_DEFLATE; enc <= CRPC__ENC_GZIP; enc++) {
    z = packed(enc, in, sizeof(in), &zlen);
    for (cut = 0; cut < zlen; cut++)
      if (dec(enc, z, cut, sizeof(in)) != CRPC_EPROTO)
        fail_msg("%s cut at %zu of %zu not EPROTO", crpc__encoding_name(enc),
                 cut, zlen);
    assert_int_equal(dec(enc, z, zlen, sizeof(in)), 0);
    own_free(z);
  }
}

static void test_corrupt(void **state) {
  uint8_t in[3000], *z;
  size_t zlen, i;
  crpc__encoding enc;
  (void)state;
  fill_text(in, sizeof(in));
  for (enc = CRPC__ENC_DEFLATE; enc <= CRPC__ENC_GZIP; enc++) {
    z = packed(enc, in, sizeof(in), &zlen);
    /* Flip each byte in turn: an error (EPROTO, or ETOOBIG when the
     * damage makes it expand past the limit before the checksum is
     * reached), or, for the gzip header fields zlib ignores (MTIME, XFL,
     * OS), the very same output. Never a different message. */
    for (i = 0; i < zlen; i++) {
      uint8_t *out;
      size_t out_len;
      int rv;
      z[i] ^= 0x55;
      rv = crpc__decompress(NULL, enc, z, zlen, sizeof(in), &out, &out_len);
      if (rv == 0) {
        assert_int_equal(out_len, sizeof(in));
        assert_memory_equal(out, in, sizeof(in));
        free(out);
        assert_true(enc == CRPC__ENC_GZIP && i >= 4 && i <= 9);
      } else if (rv != CRPC_ETOOBIG) {
        assert_int_equal(rv, CRPC_EPROTO);
      }
      z[i] ^= 0x55;
    }
    /* A bad checksum alone (the stream's last byte). */
    z[zlen - 1] ^= 1;
    assert_int_equal(dec(enc, z, zlen, sizeof(in)), CRPC_EPROTO);
    z[zlen - 1] ^= 1;
    own_free(z);
  }
  /* Plain garbage and the other format. */
  assert_int_equal(dec(CRPC__ENC_GZIP, (const uint8_t *)"hello world", 11,
                       100),
                   CRPC_EPROTO);
  assert_int_equal(dec(CRPC__ENC_DEFLATE, (const uint8_t *)"hello world", 11,
                       100),
                   CRPC_EPROTO);
  z = packed(CRPC__ENC_GZIP, in, 100, &zlen);
  assert_int_equal(dec(CRPC__ENC_DEFLATE, z, zlen, 100), CRPC_EPROTO);
  own_free(z);
  z = packed(CRPC__ENC_DEFLATE, in, 100, &zlen);
  assert_int_equal(dec(CRPC__ENC_GZIP, z, zlen, 100), CRPC_EPROTO);
  own_free(z);
}

static void test_preset_dictionary_refused(void **state) {
  /* A zlib stream that needs a preset dictionary (FDICT set). */
  uint8_t in[200], out[400];
  z_stream s;
  (void)state;
  fill_text(in, sizeof(in));
  memset(&s, 0, sizeof(s));
  assert_int_equal(deflateInit(&s, 6), Z_OK);
  assert_int_equal(deflateSetDictionary(&s, (const Bytef *)"the quick", 9),
                   Z_OK);
  s.next_in = in;
  s.avail_in = sizeof(in);
  s.next_out = out;
  s.avail_out = sizeof(out);
  assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
  assert_int_equal(dec(CRPC__ENC_DEFLATE, out, s.total_out, 1000),
                   CRPC_EPROTO);
  deflateEnd(&s);
}

static void test_trailing_garbage(void **state) {
  uint8_t in[500], *z, *two;
  size_t zlen;
  crpc__encoding enc;
  (void)state;
  fill_text(in, sizeof(in));
  for (enc = CRPC__ENC_DEFLATE; enc <= CRPC__ENC_GZIP; enc++) {
    z = packed(enc, in, sizeof(in), &zlen);
    two = own_alloc(2 * zlen);
    memcpy(two, z, zlen);
    two[zlen] = 0;
    assert_int_equal(dec(enc, two, zlen + 1, sizeof(in)), CRPC_EPROTO);
    /* Two whole streams back to back (a second gzip member) too. */
    memcpy(two + zlen, z, zlen);
    assert_int_equal(dec(enc, two, 2 * zlen, 2 * sizeof(in)), CRPC_EPROTO);
    own_free(two);
    own_free(z);
  }
}

static void test_args(void **state) {
  uint8_t *out;
  size_t n;
  (void)state;
  assert_int_equal(crpc__compress(NULL, CRPC__ENC_UNKNOWN, (const uint8_t *)"a",
                                  1, &out, &n),
                   CRPC_EENCODING);
  assert_int_equal(crpc__compress(NULL, (crpc__encoding)7, (const uint8_t *)"a",
                                  1, &out, &n),
                   CRPC_EENCODING);
  assert_int_equal(crpc__decompress(NULL, CRPC__ENC_UNKNOWN,
                                    (const uint8_t *)"a", 1, 10, &out, &n),
                   CRPC_EENCODING);
  assert_int_equal(crpc__compress(NULL, CRPC__ENC_GZIP, NULL, 1, &out, &n),
                   CRPC_EINVAL);
  assert_int_equal(crpc__compress(NULL, CRPC__ENC_GZIP, (const uint8_t *)"a", 1,
                                  NULL, &n),
                   CRPC_EINVAL);
  assert_int_equal(
      crpc__decompress(NULL, CRPC__ENC_GZIP, NULL, 1, 10, &out, &n),
      CRPC_EINVAL);
  assert_int_equal(crpc__decompress(NULL, CRPC__ENC_GZIP, (const uint8_t *)"a",
                                    1, 10, &out, NULL),
                   CRPC_EINVAL);
  /* Empty input is not a stream. */
  assert_int_equal(dec(CRPC__ENC_GZIP, NULL, 0, 10), CRPC_EPROTO);
  assert_int_equal(dec(CRPC__ENC_DEFLATE, NULL, 0, 10), CRPC_EPROTO);
  /* ...but an empty identity message is fine. */
  assert_int_equal(
      crpc__decompress(NULL, CRPC__ENC_IDENTITY, NULL, 0, 0, &out, &n), 0);
  assert_int_equal(n, 0);
  assert_non_null(out);
  free(out);
}

/* ---- size limits ---- */

static void test_limits_exact(void **state) {
  uint8_t in[10000], *z;
  size_t zlen;
  crpc__encoding enc;
  (void)state;
  fill_text(in, sizeof(in));
  for (enc = CRPC__ENC_IDENTITY; enc <= CRPC__ENC_GZIP; enc++) {
    z = packed(enc, in, sizeof(in), &zlen);
    assert_int_equal(dec(enc, z, zlen, sizeof(in)), 0);
    assert_int_equal(dec(enc, z, zlen, sizeof(in) + 1), 0);
    assert_int_equal(dec(enc, z, zlen, sizeof(in) - 1), CRPC_ETOOBIG);
    assert_int_equal(dec(enc, z, zlen, 0), CRPC_ETOOBIG);
    assert_int_equal(dec(enc, z, zlen, 1), CRPC_ETOOBIG);
    own_free(z);
    /* An empty message fits in a zero limit. */
    z = packed(enc, in, 0, &zlen);
    assert_int_equal(dec(enc, z, zlen, 0), 0);
    own_free(z);
  }
}

/* |total| zeros as one stream, made with zlib in 64 KiB steps so the test
 * itself never holds the expanded data. */
static uint8_t *zeros_bomb(int wbits, size_t total, size_t *len) {
  static const uint8_t zero[64 * 1024];
  size_t cap = total / 500 + 4096, left = total;
  uint8_t *out = own_alloc(cap);
  z_stream s;
  memset(&s, 0, sizeof(s));
  assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, wbits, 9,
                                Z_DEFAULT_STRATEGY),
                   Z_OK);
  s.next_out = out;
  s.avail_out = (uInt)cap;
  for (;;) {
    int flush, zr;
    if (s.avail_in == 0) {
      size_t n = left < sizeof(zero) ? left : sizeof(zero);
      s.next_in = (Bytef *)(uintptr_t)zero;
      s.avail_in = (uInt)n;
      left -= n;
    }
    flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
    zr = deflate(&s, flush);
    if (zr == Z_STREAM_END)
      break;
    assert_int_equal(zr, Z_OK);
    assert_true(s.avail_out > 0);
  }
  *len = s.total_out;
  deflateEnd(&s);
  return out;
}

static void test_zip_bomb(void **state) {
  static const int wbits[] = {15, 15 + 16};
  static const crpc__encoding encs[] = {CRPC__ENC_DEFLATE, CRPC__ENC_GZIP};
  int k;
  (void)state;
  for (k = 0; k < 2; k++) {
    size_t blen, base;
    uint8_t *bomb = zeros_bomb(wbits[k], 100 * MiB, &blen);
    assert_true(blen < MiB / 4); /* ~1000:1 */
    failmalloc_reset(&failmalloc_libc, 0);
    base = failmalloc_libc.live;
    assert_int_equal(dec(encs[k], bomb, blen, 4 * MiB), CRPC_ETOOBIG);
    /* The output buffer never outgrew the limit: zlib's own state and
     * window are the only extra. */
    assert_true(failmalloc_libc.peak - base <= 4 * MiB + 64 * 1024);
    assert_true(failmalloc_libc.peak - base >= 4 * MiB);
    assert_int_equal(failmalloc_libc.live, base);
    own_free(bomb);
  }
}

static void test_large_message_memory(void **state) {
  size_t zlen;
  uint8_t *in = own_alloc(3 * MiB), *z, *out;
  size_t out_len;
  (void)state;
  fill_text(in, 3 * MiB);
  z = packed(CRPC__ENC_GZIP, in, 3 * MiB, &zlen);
  failmalloc_reset(&failmalloc_libc, 0);
  assert_int_equal(
      crpc__decompress(NULL, CRPC__ENC_GZIP, z, zlen, 4 * MiB, &out, &out_len),
      0);
  assert_int_equal(out_len, 3 * MiB);
  assert_memory_equal(out, in, 3 * MiB);
  assert_true(failmalloc_libc.peak <= 4 * MiB + 64 * 1024);
  free(out);
  own_free(z);
  own_free(in);
}

/* ---- allocation failures ---- */

typedef struct codec_case {
  crpc__encoding enc;
  const uint8_t *in, *z;
  size_t len, zlen;
} codec_case;

static int compress_scenario(void *arg) {
  codec_case *c = arg;
  uint8_t *out;
  size_t n;
  int rv = crpc__compress(NULL, c->enc, c->in, c->len, &out, &n);
  if (rv == 0)
    free(out);
  return rv;
}

static int decompress_scenario(void *arg) {
  codec_case *c = arg;
  uint8_t *out;
  size_t n;
  int rv = crpc__decompress(NULL, c->enc, c->z, c->zlen, c->len, &out, &n);
  if (rv == 0) {
    assert_int_equal(n, c->len);
    assert_memory_equal(out, c->in, n);
    free(out);
  } else {
    assert_int_equal(rv, CRPC_ENOMEM); /* never a made-up EPROTO */
  }
  return rv;
}

static void test_failmalloc(void **state) {
  uint8_t *in = own_alloc(300000);
  crpc__encoding enc;
  (void)state;
  fill_text(in, 300000); /* big enough for the output buffer to grow */
  for (enc = CRPC__ENC_IDENTITY; enc <= CRPC__ENC_GZIP; enc++) {
    codec_case c = {enc, in, NULL, 300000, 0};
    const char *why = NULL;
    uint8_t *z = packed(enc, in, c.len, &c.zlen);
    long runs;
    c.z = z;
    if (failmalloc_run(&failmalloc_libc, compress_scenario, &c, &why) < 0)
      fail_msg("compress %s: %s", crpc__encoding_name(enc), why);
    runs = failmalloc_run(&failmalloc_libc, decompress_scenario, &c, &why);
    if (runs < 0)
      fail_msg("decompress %s: %s", crpc__encoding_name(enc), why);
    if (enc != CRPC__ENC_IDENTITY)
      assert_true(runs > 4); /* state, window, buffer and its growth */
    own_free(z);
  }
  own_free(in);
  failmalloc_reset(&failmalloc_libc, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_accept_encoding),
      cmocka_unit_test_teardown(test_round_trips, teardown),
      cmocka_unit_test_teardown(test_formats, teardown),
      cmocka_unit_test_teardown(test_zlib_interop, teardown),
      cmocka_unit_test_teardown(test_truncated_every_prefix, teardown),
      cmocka_unit_test_teardown(test_corrupt, teardown),
      cmocka_unit_test_teardown(test_preset_dictionary_refused, teardown),
      cmocka_unit_test_teardown(test_trailing_garbage, teardown),
      cmocka_unit_test_teardown(test_args, teardown),
      cmocka_unit_test_teardown(test_limits_exact, teardown),
      cmocka_unit_test_teardown(test_zip_bomb, teardown),
      cmocka_unit_test_teardown(test_large_message_memory, teardown),
      cmocka_unit_test_teardown(test_failmalloc, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
