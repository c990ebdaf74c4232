/* Unit tests for lib/metadata.c: the crpc_metadata API, key rules,
 * reserved keys, wire input and base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define FAILMALLOC_WRAP_LIBC
#include "failmalloc.h"
#include "../../lib/mem.c"
#include "../../lib/metadata.c"

static int setup(void **state) {
  crpc_metadata *md = NULL;
  failmalloc_reset(&failmalloc_libc, 0);
  assert_int_equal(crpc_metadata_new(&md), 0);
  *state = md;
  return 0;
}

static int teardown(void **state) {
  crpc_metadata_free(*state);
  /* Every test must leave nothing allocated. */
  assert_int_equal(failmalloc_libc.blocks, 0);
  failmalloc_reset(&failmalloc_libc, 0);
  return 0;
}

static void expect_pair(crpc_metadata *md, size_t i, const char *key,
                        const void *val, size_t len) {
  const char *k = NULL;
  const uint8_t *v = NULL;
  size_t n = 99;
  assert_int_equal(crpc_metadata_at(md, i, &k, &v, &n), 0);
  assert_string_equal(k, key);
  assert_int_equal(n, len);
  if (len > 0)
    assert_memory_equal(v, val, len);
  assert_int_equal(v[len], '\0');
}

static void test_new_free(void **state) {
  (void)state;
  assert_int_equal(crpc_metadata_new(NULL), CRPC_EINVAL);
  crpc_metadata_free(NULL);
  crpc_metadata_clear(NULL);
  assert_int_equal(crpc_metadata_count(NULL), 0);
}

static void test_add_get_at(void **state) {
  crpc_metadata *md = *state;
  size_t n = 0;
  const uint8_t *v;
  assert_int_equal(crpc_metadata_count(md), 0);
  assert_int_equal(crpc_metadata_add_str(md, "x-user", "alice"), 0);
  assert_int_equal(crpc_metadata_add(md, "X-Trace.ID_2", "ab", 2), 0);
  assert_int_equal(crpc_metadata_add_str(md, "x-user", "bob"), 0);
  assert_int_equal(crpc_metadata_count(md), 3);
  expect_pair(md, 0, "x-user", "alice", 5);
  expect_pair(md, 1, "x-trace.id_2", "ab", 2); /* folded to lower case */
  expect_pair(md, 2, "x-user", "bob", 3);
  v = crpc_metadata_get(md, "x-user", &n); /* the first of duplicates */
  assert_string_equal((const char *)v, "alice");
  assert_int_equal(n, 5);
  assert_non_null(crpc_metadata_get(md, "x-trace.id_2", NULL));
  assert_null(crpc_metadata_get(md, "X-Trace.ID_2", NULL)); /* exact */
  assert_null(crpc_metadata_get(md, "x-use", NULL));
  assert_null(crpc_metadata_get(md, "x-user2", NULL));
  assert_null(crpc_metadata_get(md, NULL, NULL));
  assert_null(crpc_metadata_get(NULL, "x-user", NULL));
  /* Out of range; NULL out-pointers are allowed. */
  assert_int_equal(crpc_metadata_at(md, 3, NULL, NULL, NULL), CRPC_EINVAL);
  assert_int_equal(crpc_metadata_at(NULL, 0, NULL, NULL, NULL), CRPC_EINVAL);
  assert_int_equal(crpc_metadata_at(md, 2, NULL, NULL, NULL), 0);
}

static void test_many_pairs_grow(void **state) {
  crpc_metadata *md = *state;
  char key[32], val[32];
  int i;
  for (i = 0; i < 1000; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    snprintf(val, sizeof(val), "v%d", i * 7);
    assert_int_equal(crpc_metadata_add_str(md, key, val), 0);
  }
  assert_int_equal(crpc_metadata_count(md), 1000);
  for (i = 0; i < 1000; i += 97) {
    snprintf(key, sizeof(key), "k%d", i);
    snprintf(val, sizeof(val), "v%d", i * 7);
    assert_string_equal((const char *)crpc_metadata_get(md, key, NULL), val);
  }
  crpc_metadata_clear(md);
  assert_int_equal(crpc_metadata_count(md), 0);
  assert_int_equal(crpc_metadata_add_str(md, "again", "1"), 0);
  expect_pair(md, 0, "again", "1", 1);
}

static void test_invalid_args(void **state) {
  crpc_metadata *md = *state;
  assert_int_equal(crpc_metadata_add(NULL, "k", "v", 1), CRPC_EINVAL);
  assert_int_equal(crpc_metadata_add(md, NULL, "v", 1), CRPC_EINVAL);
  assert_int_equal(crpc_metadata_add(md, "k", NULL, 1), CRPC_EINVAL);
  assert_int_equal(crpc_metadata_add_str(md, "k", NULL), CRPC_EINVAL);
  assert_int_equal(crpc_metadata_add(md, "k", NULL, 0), 0); /* empty value */
  expect_pair(md, 0, "k", "", 0);
  assert_int_equal(crpc_metadata_add_str(md, "k", ""), 0);
  assert_int_equal(crpc_metadata_count(md), 2);
}

static void test_key_syntax(void **state) {
  crpc_metadata *md = *state;
  static const char *const bad[] = {
      "", "a b", "a:b", ":path", "key\x01", "k\xc3\xa9y", "a/b", "a,b",
      "a=b", "tab\t", "a\"b", "k!", "k~", "{x}",
  };
  static const char *const good[] = {
      "a", "0", "_", "-", ".", "a-b_c.d", "0123456789",
      "abcdefghijklmnopqrstuvwxyz", "ABC", "grpc", "grpcx-foo",
      "x-grpc-foo", "authorization", "tes", "content-types", "hosts",
      "te-bin", "-bin",
  };
  size_t i;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (crpc_metadata_add_str(md, bad[i], "v") != CRPC_EMETADATA)
      fail_msg("key \"%s\" accepted", bad[i]);
  assert_int_equal(crpc_metadata_count(md), 0);
  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    if (crpc_metadata_add_str(md, good[i], "v") != 0)
      fail_msg("key \"%s\" rejected", good[i]);
  assert_int_equal(crpc_metadata_count(md), sizeof(good) / sizeof(good[0]));
  /* A long key (past any small buffer) is fine too. */
  {
    char key[300];
    memset(key, 'K', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_int_equal(crpc_metadata_add_str(md, key, "v"), 0);
    memcpy(key, "GRPC-", 5);
    assert_int_equal(crpc_metadata_add_str(md, key, "v"), CRPC_EMETADATA);
  }
}

static void test_reserved_keys(void **state) {
  crpc_metadata *md = *state;
  static const char *const reserved[] = {
      "grpc-", "grpc-status", "grpc-message", "grpc-timeout", "GRPC-Foo",
      "grpc-x-bin", "content-type", "Content-Type", "te", "TE",
      "user-agent", "host", "connection", "keep-alive", "proxy-connection",
      "transfer-encoding", "upgrade", "content-length",
  };
  size_t i;
  for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
    if (crpc_metadata_add_str(md, reserved[i], "v") != CRPC_EMETADATA)
      fail_msg("reserved key \"%s\" accepted", reserved[i]);
  assert_int_equal(crpc_metadata_count(md), 0);
  assert_true(crpc__metadata_key_reserved(":authority", 10));
  assert_true(crpc__metadata_key_reserved("te", 2));
  assert_false(crpc__metadata_key_reserved("tea", 3));
  assert_false(crpc__metadata_key_reserved("t", 1));
  assert_false(crpc__metadata_key_reserved("grpc", 4));
  assert_false(crpc__metadata_key_reserved("", 0));
  assert_false(crpc__metadata_key_reserved(NULL, 0));
  /* len is honoured */
  assert_true(crpc__metadata_key_reserved("host-name", 4));
}

static void test_key_helpers(void **state) {
  (void)state;
  assert_true(crpc__metadata_key_valid("a-b", 3));
  assert_false(crpc__metadata_key_valid("A-b", 3)); /* wire keys: exact */
  assert_false(crpc__metadata_key_valid("", 0));
  assert_false(crpc__metadata_key_valid(NULL, 0));
  assert_true(crpc__metadata_key_valid("ab!", 2));
  assert_true(crpc__metadata_key_is_bin("x-bin", 5));
  assert_true(crpc__metadata_key_is_bin("-bin", 4));
  assert_false(crpc__metadata_key_is_bin("bin", 3));
  assert_false(crpc__metadata_key_is_bin("x-bin2", 6));
  assert_false(crpc__metadata_key_is_bin("xbin", 4));
  assert_false(crpc__metadata_key_is_bin("x-bin", 4));
  assert_false(crpc__metadata_key_is_bin(NULL, 0));
}

static void test_ascii_values(void **state) {
  crpc_metadata *md = *state;
  static const char *const bad[] = {"a\nb", "\r", "\x7f", "\x80", "\x1f",
                                    "tab\t", "\xc3\xa9"};
  size_t i;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (crpc_metadata_add_str(md, "k", bad[i]) != CRPC_EMETADATA)
      fail_msg("value %zu accepted", i);
  assert_int_equal(crpc_metadata_add(md, "k", "a\0b", 3), CRPC_EMETADATA);
  assert_int_equal(crpc_metadata_add_str(md, "k", " ~!\"#$%&'()*+,-./09:;<=>?"
                                                  "@AZ[\\]^_`az{|}"),
                   0);
  assert_int_equal(crpc_metadata_count(md), 1);
}

static void test_binary_values(void **state) {
  crpc_metadata *md = *state;
  uint8_t all[256];
  size_t i, n;
  const uint8_t *v;
  for (i = 0; i < 256; i++)
    all[i] = (uint8_t)(255 - i);
  assert_int_equal(crpc_metadata_add(md, "blob-bin", all, sizeof(all)), 0);
  assert_int_equal(crpc_metadata_add(md, "Z-BIN", "\0\0\0", 3), 0);
  assert_int_equal(crpc_metadata_add(md, "z-bin", "\n", 1), 0);
  v = crpc_metadata_get(md, "blob-bin", &n);
  assert_int_equal(n, 256);
  assert_memory_equal(v, all, 256);
  assert_int_equal(v[256], '\0');
  expect_pair(md, 1, "z-bin", "\0\0\0", 3);
  /* A value with a NUL in the middle keeps its full length. */
  assert_int_equal(crpc_metadata_add(md, "n-bin", "a\0b", 3), 0);
  expect_pair(md, 3, "n-bin", "a\0b", 3);
}

static int wire(crpc_metadata *md, const char *name, const char *value) {
  return crpc__metadata_add_wire(md, (const uint8_t *)name, strlen(name),
                                 (const uint8_t *)value, strlen(value));
}

static void test_wire(void **state) {
  crpc_metadata *md = *state;
  /* Reserved and pseudo headers are the transport's: skipped, not errors. */
  assert_int_equal(wire(md, ":status", "200"), 0);
  assert_int_equal(wire(md, ":path", "/a/b"), 0);
  assert_int_equal(wire(md, "grpc-status", "0"), 0);
  assert_int_equal(wire(md, "grpc-status-details-bin", "AAAA"), 0);
  assert_int_equal(wire(md, "content-type", "application/grpc"), 0);
  assert_int_equal(wire(md, "te", "trailers"), 0);
  assert_int_equal(wire(md, "user-agent", "grpc-go/1.0"), 0);
  assert_int_equal(crpc_metadata_count(md), 0);
  /* Keys come lower-case on HTTP/2; anything else is refused. */
  assert_int_equal(wire(md, "X-Up", "v"), CRPC_EMETADATA);
  assert_int_equal(wire(md, "", "v"), CRPC_EMETADATA);
  assert_int_equal(wire(md, "a b", "v"), CRPC_EMETADATA);
  /* ASCII values: surrounding whitespace stripped. */
  assert_int_equal(wire(md, "x-a", "  padded value\t "), 0);
  expect_pair(md, 0, "x-a", "padded value", 12);
  assert_int_equal(wire(md, "x-empty", ""), 0);
  expect_pair(md, 1, "x-empty", "", 0);
  assert_int_equal(wire(md, "x-spaces", "   "), 0);
  expect_pair(md, 2, "x-spaces", "", 0);
  /* Legal in HTTP, not in gRPC: dropped, so it can never be echoed. */
  assert_int_equal(wire(md, "x-latin", "caf\xe9"), 0);
  assert_int_equal(crpc_metadata_count(md), 3);
  assert_int_equal(crpc__metadata_add_wire(md, (const uint8_t *)"x", 1, NULL,
                                           1),
                   CRPC_EINVAL);
  assert_int_equal(crpc__metadata_add_wire(NULL, (const uint8_t *)"x", 1,
                                           (const uint8_t *)"v", 1),
                   CRPC_EINVAL);
}

static void test_wire_bin(void **state) {
  crpc_metadata *md = *state;
  assert_int_equal(wire(md, "x-bin", "AAEC/w"), 0); /* unpadded */
  expect_pair(md, 0, "x-bin", "\x00\x01\x02\xff", 4);
  assert_int_equal(wire(md, "x-bin", "AAEC/w=="), 0); /* padded */
  expect_pair(md, 1, "x-bin", "\x00\x01\x02\xff", 4);
  assert_int_equal(wire(md, "x-bin", ""), 0);
  expect_pair(md, 2, "x-bin", "", 0);
  /* Joined duplicates are split on ',' before decoding. */
  assert_int_equal(wire(md, "y-bin", "Zm9v,YmFy, YQ==,"), 0);
  assert_int_equal(crpc_metadata_count(md), 7);
  expect_pair(md, 3, "y-bin", "foo", 3);
  expect_pair(md, 4, "y-bin", "bar", 3);
  expect_pair(md, 5, "y-bin", "a", 1);
  expect_pair(md, 6, "y-bin", "", 0);
  /* One bad piece rejects the whole header and adds nothing. */
  assert_int_equal(wire(md, "z-bin", "Zm9v,Y!Fy"), CRPC_EMETADATA);
  assert_int_equal(wire(md, "z-bin", "Zm9v,Y"), CRPC_EMETADATA);
  assert_int_equal(wire(md, "z-bin", "Zm9v\n"), CRPC_EMETADATA);
  assert_int_equal(crpc_metadata_count(md), 7);
  /* The spec's example value has 17 characters: no valid base64 (Go's
   * decoder refuses it too). */
  assert_int_equal(wire(md, "trace-proto-bin", "jher831yy13JHy3hc"),
                   CRPC_EMETADATA);
}

static void test_append(void **state) {
  crpc_metadata *md = *state, *other = NULL;
  assert_int_equal(crpc_metadata_new(&other), 0);
  assert_int_equal(crpc_metadata_add_str(md, "a", "1"), 0);
  assert_int_equal(crpc_metadata_add(md, "b-bin", "\0", 1), 0);
  assert_int_equal(crpc_metadata_add_str(other, "c", "3"), 0);
  assert_int_equal(crpc__metadata_append(other, md), 0);
  assert_int_equal(crpc_metadata_count(other), 3);
  expect_pair(other, 0, "c", "3", 1);
  expect_pair(other, 1, "a", "1", 1);
  expect_pair(other, 2, "b-bin", "\0", 1);
  /* Appending a list to itself doubles it. */
  assert_int_equal(crpc__metadata_append(md, md), 0);
  assert_int_equal(crpc_metadata_count(md), 4);
  expect_pair(md, 3, "b-bin", "\0", 1);
  assert_int_equal(crpc__metadata_append(md, NULL), CRPC_EINVAL);
  crpc_metadata_free(other);
}

/* ---- base64 ---- */

static void b64_ok(const char *plain, size_t plen, const char *enc) {
  char *e = NULL;
  uint8_t *d = NULL;
  size_t n = 999;
  assert_int_equal(crpc__base64_encode((const uint8_t *)plain, plen, &e, &n),
                   0);
  assert_string_equal(e, enc);
  assert_int_equal(n, strlen(enc));
  assert_int_equal(crpc__base64_decode(e, n, &d, &n), 0);
  assert_int_equal(n, plen);
  assert_memory_equal(d, plain, plen);
  assert_int_equal(d[plen], '\0');
  free(e);
  free(d);
}

static void test_base64_rfc4648_vectors(void **state) {
  (void)state;
  b64_ok("", 0, "");
  b64_ok("f", 1, "Zg");
  b64_ok("fo", 2, "Zm8");
  b64_ok("foo", 3, "Zm9v");
  b64_ok("foob", 4, "Zm9vYg");
  b64_ok("fooba", 5, "Zm9vYmE");
  b64_ok("foobar", 6, "Zm9vYmFy");
  b64_ok("\xfb\xff", 2, "+/8"); /* the two non-alphanumeric characters */
}

static void dec_ok(const char *in, const char *want, size_t want_len) {
  uint8_t *d = NULL;
  size_t n = 999;
  if (crpc__base64_decode(in, strlen(in), &d, &n) != 0)
    fail_msg("\"%s\" rejected", in);
  assert_int_equal(n, want_len);
  assert_memory_equal(d, want, want_len);
  free(d);
}

static void dec_bad(const char *in) {
  uint8_t *d = (uint8_t *)"untouched";
  size_t n = 999;
  if (crpc__base64_decode(in, strlen(in), &d, &n) != -1)
    fail_msg("\"%s\" accepted", in);
  assert_string_equal((const char *)d, "untouched");
  assert_int_equal(n, 999);
}

static void test_base64_decode_padding(void **state) {
  (void)state;
  dec_ok("Zg==", "f", 1);
  dec_ok("Zm8=", "fo", 2);
  dec_ok("Zm9vYg==", "foob", 4);
  dec_ok("Zm9vYmE=", "fooba", 5);
  dec_ok("Zm9vYmFy", "foobar", 6);
  dec_ok("Zh", "f", 1); /* non-zero leftover bits are tolerated */
}

static void test_base64_decode_invalid(void **state) {
  (void)state;
  dec_bad("Z");        /* a lone character encodes no byte */
  dec_bad("Zm9vY");    /* ... nor after whole quanta */
  dec_bad("Zg=");      /* padded but not a whole quantum */
  dec_bad("Zg===");
  dec_bad("Z===");
  dec_bad("Zm9v=");
  dec_bad("Zm9=v");
  dec_bad("Zg=a");
  dec_bad("=");
  dec_bad("==");
  dec_bad("====");
  dec_bad("Zm8==");    /* "Zm8" needs one '=', not two */
  dec_bad("Zg=\n");
  dec_bad("Zm 9v");
  dec_bad("Zm9v\n");
  dec_bad(" Zm9v");
  dec_bad("Zm9v-_");   /* the URL-safe alphabet is not gRPC's */
  dec_bad("Zm\x80v");
  {
    uint8_t *d;
    size_t n;
    /* An embedded NUL inside len is just another bad character. */
    assert_int_equal(crpc__base64_decode("Zm\0v", 4, &d, &n), -1);
    assert_int_equal(crpc__base64_decode(NULL, 4, &d, &n), -1);
    assert_int_equal(crpc__base64_decode("Zg", 2, NULL, &n), -1);
    assert_int_equal(crpc__base64_decode(NULL, 0, &d, NULL), 0);
    assert_int_equal(d[0], '\0');
    free(d);
  }
}

static void test_base64_round_trip_lengths(void **state) {
  uint8_t buf[300];
  size_t len, i;
  (void)state;
  for (i = 0; i < sizeof(buf); i++)
    buf[i] = (uint8_t)(i * 131 + 7);
  for (len = 0; len <= sizeof(buf); len++) {
    char *e;
    uint8_t *d;
    size_t n, m;
    assert_int_equal(crpc__base64_encode(buf, len, &e, &n), 0);
    assert_int_equal(n, (len * 4 + 2) / 3); /* unpadded length */
    assert_null(memchr(e, '=', n));
    assert_int_equal(crpc__base64_decode(e, n, &d, &m), 0);
    assert_int_equal(m, len);
    assert_memory_equal(d, buf, len);
    free(e);
    free(d);
  }
  {
    char *e;
    assert_int_equal(crpc__base64_encode(NULL, 1, &e, NULL), -1);
    assert_int_equal(crpc__base64_encode(buf, 1, NULL, NULL), -1);
  }
}

/* ---- allocation failures: every path fails cleanly and atomically ---- */

static int md_scenario(void *arg) {
  crpc_metadata *md = NULL, *copy = NULL;
  int rv;
  (void)arg;
  if ((rv = crpc_metadata_new(&md)) != 0)
    return rv;
  if ((rv = crpc_metadata_add_str(md, "a", "1")) != 0)
    goto done;
  if ((rv = crpc_metadata_add(md, "b-bin", "\x01\x02", 2)) != 0)
    goto done;
  rv = crpc__metadata_add_wire(md, (const uint8_t *)"c-bin", 5,
                               (const uint8_t *)"AQ,Ag,Aw", 8);
  if (rv != 0) {
    /* Atomic: nothing of the header was kept. */
    assert_int_equal(crpc_metadata_count(md), 2);
    goto done;
  }
  if ((rv = crpc_metadata_new(&copy)) != 0)
    goto done;
  if ((rv = crpc__metadata_append(copy, md)) != 0) {
    assert_int_equal(crpc_metadata_count(copy), 0);
    goto done;
  }
  assert_int_equal(crpc_metadata_count(copy), 5);
  {
    char *e;
    uint8_t *d;
    size_t n;
    if (crpc__base64_encode((const uint8_t *)"xyz", 3, &e, &n) != 0) {
      rv = CRPC_ENOMEM;
      goto done;
    }
    rv = crpc__base64_decode(e, n, &d, &n);
    free(e);
    if (rv != 0) {
      rv = CRPC_ENOMEM;
      goto done;
    }
    free(d);
  }
done:
  crpc_metadata_free(copy);
  crpc_metadata_free(md);
  return rv;
}

static void test_failmalloc(void **state) {
  const char *why = NULL;
  long runs;
  (void)state;
  runs = failmalloc_run(&failmalloc_libc, md_scenario, NULL, &why);
  if (runs < 0)
    fail_msg("%s", why);
  assert_true(runs > 10);
  failmalloc_reset(&failmalloc_libc, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_free),
      cmocka_unit_test_setup_teardown(test_add_get_at, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_pairs_grow, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_args, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_syntax, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reserved_keys, setup, teardown),
      cmocka_unit_test(test_key_helpers),
      cmocka_unit_test_setup_teardown(test_ascii_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_binary_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wire, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wire_bin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_append, setup, teardown),
      cmocka_unit_test(test_base64_rfc4648_vectors),
      cmocka_unit_test(test_base64_decode_padding),
      cmocka_unit_test(test_base64_decode_invalid),
      cmocka_unit_test(test_base64_round_trip_lengths),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
