/* Unit tests for lib/status.c: code names, the status object, grpc-message
 * percent-encoding, grpc-status parsing and the HTTP status mapping. */
#include <limits.h>
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
#include "../../lib/status.c"

static void test_code_names(void **state) {
  static const char *const want[] = {
      "OK",           "CANCELLED",          "UNKNOWN",
      "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED",     "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",          "UNAVAILABLE",
      "DATA_LOSS",    "UNAUTHENTICATED"};
  int i;
  (void)state;
  for (i = 0; i <= 16; i++)
    assert_string_equal(crpc_code_name((crpc_code)i), want[i]);
  assert_string_equal(crpc_code_name(CRPC_UNAVAILABLE), "UNAVAILABLE");
  assert_string_equal(crpc_code_name((crpc_code)17), "UNKNOWN_CODE");
  assert_string_equal(crpc_code_name((crpc_code)-1), "UNKNOWN_CODE");
  assert_string_equal(crpc_code_name((crpc_code)INT_MAX), "UNKNOWN_CODE");
}

static void test_status_object(void **state) {
  crpc_status st = {0};
  (void)state;
  crpc_status_clear(NULL);
  assert_string_equal(crpc_status_message(NULL), "no status");
  assert_string_equal(crpc_status_message(&st), "OK");

  crpc__status_set(&st, CRPC_NOT_FOUND, "no user %d in %s", 42, "db");
  assert_int_equal(st.code, CRPC_NOT_FOUND);
  assert_string_equal(crpc_status_message(&st), "no user 42 in db");
  /* Replaces the message (the old one must not leak). */
  crpc__status_set(&st, CRPC_INTERNAL, "%s", "second");
  assert_int_equal(st.code, CRPC_INTERNAL);
  assert_string_equal(st.message, "second");
  /* No message: the code's name stands in. */
  crpc__status_set(&st, CRPC_ABORTED, NULL);
  assert_null(st.message);
  assert_string_equal(crpc_status_message(&st), "ABORTED");
  crpc__status_set(&st, CRPC_ABORTED, "%s", "");
  assert_string_equal(crpc_status_message(&st), "ABORTED");
  crpc__status_set(NULL, CRPC_ABORTED, "ignored");

  st.details = malloc(3);
  memcpy(st.details, "abc", 3);
  st.details_len = 3;
  crpc__status_set(&st, CRPC_DATA_LOSS, "with details");
  assert_int_equal(st.details_len, 3); /* details are left alone */
  crpc_status_clear(&st);
  assert_null(st.message);
  assert_null(st.details);
  assert_int_equal(st.details_len, 0);
  assert_int_equal(st.code, CRPC_OK);
  assert_int_equal(failmalloc_libc.blocks, 0);
}

static void test_status_set_oom_keeps_code(void **state) {
  crpc_status st = {0};
  (void)state;
  failmalloc_reset(&failmalloc_libc, 1);
  crpc__status_set(&st, CRPC_UNAVAILABLE, "lost %s", "connection");
  assert_int_equal(st.code, CRPC_UNAVAILABLE);
  assert_null(st.message);
  assert_string_equal(crpc_status_message(&st), "UNAVAILABLE");
  failmalloc_reset(&failmalloc_libc, 0);
  crpc_status_clear(&st);
}

static void test_status_move(void **state) {
  crpc_status a = {0}, b = {0};
  (void)state;
  crpc__status_set(&a, CRPC_CANCELLED, "a");
  crpc__status_set(&b, CRPC_INTERNAL, "b");
  crpc__status_move(&b, &a); /* b's old message is freed */
  assert_int_equal(b.code, CRPC_CANCELLED);
  assert_string_equal(b.message, "a");
  assert_int_equal(a.code, CRPC_OK);
  assert_null(a.message);
  crpc__status_move(&b, &b);
  assert_string_equal(b.message, "a");
  crpc__status_move(NULL, &b);
  crpc__status_move(&b, NULL);
  crpc_status_clear(&b);
  assert_int_equal(failmalloc_libc.blocks, 0);
}

static void check_encode(const char *in, size_t len, const char *want) {
  size_t n = 12345;
  char *e = crpc__percent_encode(in, len, &n);
  char *d;
  assert_non_null(e);
  assert_string_equal(e, want);
  assert_int_equal(n, strlen(want));
  d = crpc__percent_decode(e, n);
  assert_non_null(d);
  assert_memory_equal(d, in, len);
  assert_int_equal(d[len], '\0');
  free(e);
  free(d);
}

static void test_percent_encode(void **state) {
  /* The message of gRPC's "special_status_message" interop test. */
  static const char interop[] =
      "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP "
      "\xf0\x9f\x98\x88\t\n";
  (void)state;
  check_encode("", 0, "");
  check_encode("plain text, with: punctuation!~", 31,
               "plain text, with: punctuation!~");
  check_encode("100%", 4, "100%25");
  check_encode("%%", 2, "%25%25");
  check_encode("a\0b", 3, "a%00b");
  check_encode("\x7f\x80\xff\x1f ", 5, "%7F%80%FF%1F ");
  check_encode("\xe4\xbd\xa0\xe5\xa5\xbd", 6, "%E4%BD%A0%E5%A5%BD");
  check_encode(interop, sizeof(interop) - 1,
               "%09%0Atest with whitespace%0D%0Aand Unicode BMP %E2%98%BA "
               "and non-BMP %F0%9F%98%88%09%0A");
}

static void test_percent_all_bytes(void **state) {
  char in[256], *e, *d;
  size_t n, i, esc = 0;
  (void)state;
  for (i = 0; i < 256; i++)
    in[i] = (char)i;
  e = crpc__percent_encode(in, sizeof(in), &n);
  assert_non_null(e);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)e[i];
    assert_true(c >= 0x20 && c <= 0x7e);
    if (c == '%')
      esc++;
  }
  /* 0x00-0x1f, '%', 0x7f-0xff */
  assert_int_equal(esc, 32 + 1 + 129);
  assert_int_equal(n, 256 + 2 * esc);
  d = crpc__percent_decode(e, n);
  assert_memory_equal(d, in, sizeof(in));
  free(e);
  free(d);
}

static void test_percent_encode_edges(void **state) {
  char *e;
  (void)state;
  e = crpc__percent_encode(NULL, 5, NULL);
  assert_string_equal(e, "");
  free(e);
  e = crpc__percent_encode("abc%", 2, NULL); /* len is honoured */
  assert_string_equal(e, "ab");
  free(e);
}

static void check_decode(const char *in, const char *want, size_t want_len) {
  char *d = crpc__percent_decode(in, strlen(in));
  assert_non_null(d);
  assert_memory_equal(d, want, want_len);
  assert_int_equal(d[want_len], '\0');
  free(d);
}

static void test_percent_decode_lenient(void **state) {
  (void)state;
  check_decode("", "", 0);
  check_decode("no escapes", "no escapes", 10);
  check_decode("%41%42c", "ABc", 3);
  check_decode("%e2%98%ba", "\xe2\x98\xba", 3); /* lower-case hex too */
  check_decode("%00x", "\0x", 2);
  /* Invalid escapes pass through unchanged, never an error. */
  check_decode("%", "%", 1);
  check_decode("50%", "50%", 3);
  check_decode("%4", "%4", 2);
  check_decode("a%4", "a%4", 3);
  check_decode("%G1", "%G1", 3);
  check_decode("%1G", "%1G", 3);
  check_decode("%%41", "%A", 2);
  check_decode("%%%", "%%%", 3);
  check_decode("% 41", "% 41", 4);
  check_decode("%-1", "%-1", 3);
  check_decode("\xff raw", "\xff raw", 5); /* unescaped high bytes kept */
}

static void test_percent_decode_len(void **state) {
  char *d;
  (void)state;
  d = crpc__percent_decode("%41%42", 5); /* "%41%4": the tail is cut */
  assert_string_equal(d, "A%4");
  free(d);
  d = crpc__percent_decode("%41", 2);
  assert_string_equal(d, "%4");
  free(d);
  d = crpc__percent_decode(NULL, 3);
  assert_string_equal(d, "");
  free(d);
}

static int percent_scenario(void *arg) {
  char *e, *d;
  size_t n;
  (void)arg;
  if ((e = crpc__percent_encode("h\xc3\xa9llo %", 8, &n)) == NULL)
    return CRPC_ENOMEM;
  d = crpc__percent_decode(e, n);
  free(e);
  if (d == NULL)
    return CRPC_ENOMEM;
  free(d);
  return 0;
}

static void test_percent_failmalloc(void **state) {
  const char *why = NULL;
  (void)state;
  if (failmalloc_run(&failmalloc_libc, percent_scenario, NULL, &why) < 0)
    fail_msg("%s", why);
  failmalloc_reset(&failmalloc_libc, 0);
}

static void check_status(const char *v, int want_rv, crpc_code want) {
  crpc_code c = (crpc_code)-99;
  assert_int_equal(crpc__parse_grpc_status(v, strlen(v), &c), want_rv);
  if (want_rv == 0)
    assert_int_equal(c, want);
  else
    assert_int_equal((int)c, -99); /* untouched on error */
}

static void test_parse_grpc_status(void **state) {
  char buf[8];
  int i;
  crpc_code c;
  (void)state;
  for (i = 0; i <= 16; i++) {
    snprintf(buf, sizeof(buf), "%d", i);
    check_status(buf, 0, (crpc_code)i);
  }
  check_status("17", 0, CRPC_UNKNOWN);
  check_status("255", 0, CRPC_UNKNOWN);
  check_status("-1", 0, CRPC_UNKNOWN);
  check_status("-0", 0, CRPC_UNKNOWN);
  check_status("007", 0, CRPC_PERMISSION_DENIED);
  check_status("99999999999999999999999999999", 0, CRPC_UNKNOWN);
  check_status("18446744073709551630", 0, CRPC_UNKNOWN); /* 2^64 + 14 */
  check_status("", -1, 0);
  check_status("-", -1, 0);
  check_status("+1", -1, 0);
  check_status(" 1", -1, 0);
  check_status("1 ", -1, 0);
  check_status("1a", -1, 0);
  check_status("abc", -1, 0);
  check_status("0x1", -1, 0);
  check_status("1.0", -1, 0);
  check_status("--1", -1, 0);
  check_status("9999999999999999999x", -1, 0);
  /* len is honoured: the value need not be NUL-terminated. */
  assert_int_equal(crpc__parse_grpc_status("14xyz", 2, &c), 0);
  assert_int_equal(c, CRPC_UNAVAILABLE);
  assert_int_equal(crpc__parse_grpc_status("1\0", 2, &c), -1);
  assert_int_equal(crpc__parse_grpc_status(NULL, 0, &c), -1);
  assert_int_equal(crpc__parse_grpc_status("1", 1, NULL), -1);
}

static void test_http_status_mapping(void **state) {
  (void)state;
  assert_int_equal(crpc__http_status_to_code(400), CRPC_INTERNAL);
  assert_int_equal(crpc__http_status_to_code(401), CRPC_UNAUTHENTICATED);
  assert_int_equal(crpc__http_status_to_code(403), CRPC_PERMISSION_DENIED);
  assert_int_equal(crpc__http_status_to_code(404), CRPC_UNIMPLEMENTED);
  assert_int_equal(crpc__http_status_to_code(429), CRPC_UNAVAILABLE);
  assert_int_equal(crpc__http_status_to_code(431), CRPC_INTERNAL);
  assert_int_equal(crpc__http_status_to_code(502), CRPC_UNAVAILABLE);
  assert_int_equal(crpc__http_status_to_code(503), CRPC_UNAVAILABLE);
  assert_int_equal(crpc__http_status_to_code(504), CRPC_UNAVAILABLE);
  /* Everything else, 200 included, is UNKNOWN. */
  assert_int_equal(crpc__http_status_to_code(200), CRPC_UNKNOWN);
  assert_int_equal(crpc__http_status_to_code(100), CRPC_UNKNOWN);
  assert_int_equal(crpc__http_status_to_code(402), CRPC_UNKNOWN);
  assert_int_equal(crpc__http_status_to_code(415), CRPC_UNKNOWN);
  assert_int_equal(crpc__http_status_to_code(500), CRPC_UNKNOWN);
  assert_int_equal(crpc__http_status_to_code(501), CRPC_UNKNOWN);
  assert_int_equal(crpc__http_status_to_code(0), CRPC_UNKNOWN);
  assert_int_equal(crpc__http_status_to_code(-404), CRPC_UNKNOWN);
  assert_int_equal(crpc__http_status_to_code(INT_MAX), CRPC_UNKNOWN);
}

static int teardown(void **state) {
  (void)state;
  failmalloc_reset(&failmalloc_libc, 0);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_code_names),
      cmocka_unit_test(test_status_object),
      cmocka_unit_test_teardown(test_status_set_oom_keeps_code, teardown),
      cmocka_unit_test(test_status_move),
      cmocka_unit_test(test_percent_encode),
      cmocka_unit_test(test_percent_all_bytes),
      cmocka_unit_test(test_percent_encode_edges),
      cmocka_unit_test(test_percent_decode_lenient),
      cmocka_unit_test(test_percent_decode_len),
      cmocka_unit_test_teardown(test_percent_failmalloc, teardown),
      cmocka_unit_test(test_parse_grpc_status),
      cmocka_unit_test(test_http_status_mapping),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
