/* Unit tests for lib/timeout.c: the grpc-timeout grammar and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/timeout.c"

static void ok(const char *v, int64_t want) {
  int64_t ms = -12345;
  if (crpc__timeout_parse(v, strlen(v), &ms) != 0)
    fail_msg("\"%s\" rejected", v);
  if (ms != want)
    fail_msg("\"%s\": %lld ms, want %lld", v, (long long)ms, (long long)want);
}

static void bad(const char *v, size_t len) {
  int64_t ms = -12345;
  if (crpc__timeout_parse(v, len, &ms) != -1)
    fail_msg("\"%.*s\" accepted", (int)len, v);
  assert_int_equal(ms, -12345); /* untouched */
}
#define BAD(s) bad((s), strlen(s))

static void test_units(void **state) {
  (void)state;
  ok("1H", 3600000);
  ok("2M", 120000);
  ok("3S", 3000);
  ok("4m", 4);
  ok("5000u", 5);
  ok("6000000n", 6);
  ok("1S", 1000); /* the spec's example */
}

static void test_sub_ms_rounds_up(void **state) {
  (void)state;
  ok("1u", 1);
  ok("999u", 1);
  ok("1000u", 1);
  ok("1001u", 2);
  ok("1n", 1);
  ok("999999n", 1);
  ok("1000000n", 1);
  ok("1000001n", 2);
  ok("99999999n", 100);
  ok("99999999u", 100000);
}

static void test_zero_and_leading_zeros(void **state) {
  (void)state;
  ok("0S", 0);
  ok("0n", 0);
  ok("00000000H", 0);
  ok("00000001m", 1);
}

static void test_eight_digits_no_overflow(void **state) {
  (void)state;
  ok("99999999H", INT64_C(99999999) * 3600000);
  ok("99999999M", INT64_C(99999999) * 60000);
  ok("99999999S", INT64_C(99999999) * 1000);
  ok("99999999m", 99999999);
  ok("12345678m", 12345678);
}

static void test_malformed(void **state) {
  int64_t ms;
  (void)state;
  BAD("");
  BAD("S");
  BAD("m");
  BAD("1");
  BAD("10");
  BAD("123456789S"); /* 9 digits */
  BAD("000000000S");
  BAD("99999999999999999999H");
  BAD("1s");
  BAD("1h");
  BAD("1U");
  BAD("1N");
  BAD("1x");
  BAD("1SS");
  BAD("-1S");
  BAD("+1S");
  BAD(" 1S");
  BAD("1S ");
  BAD("1 S");
  BAD("1.5S");
  BAD("0x1S");
  BAD("1e3m");
  BAD("\xff\x31S");
  bad("1\0S", 3);
  bad("1S", 1);       /* len honoured: "1" */
  bad("10S", 2);      /* "10" */
  bad(NULL, 0);
  assert_int_equal(crpc__timeout_parse("1S", 2, NULL), -1);
  assert_int_equal(crpc__timeout_parse("1Sxyz", 2, &ms), 0); /* not NUL-ended */
  assert_int_equal(ms, 1000);
}

static void fmt(int64_t ms, const char *want) {
  char out[16];
  size_t n;
  memset(out, 'x', sizeof(out));
  n = crpc__timeout_format(ms, out);
  assert_string_equal(out, want);
  assert_int_equal(n, strlen(want));
}

static void test_format(void **state) {
  (void)state;
  fmt(1, "1m");
  fmt(1000, "1000m");
  fmt(99999999, "99999999m");
  fmt(100000000, "100000S");
  fmt(100000001, "100001S"); /* rounded up, never down */
  fmt(INT64_C(99999999) * 1000, "99999999S");
  fmt(INT64_C(99999999) * 1000 + 1, "1666667M");
  fmt(INT64_C(99999999) * 3600000, "99999999H");
  fmt(INT64_MAX, "99999999H"); /* clamped */
  fmt(0, "1n");
  fmt(-5, "1n");
  fmt(INT64_MIN, "1n");
}

/* format -> parse never shortens a timeout, and lengthens it by less than
 * the unit chosen; the text always fits the grammar. */
static void test_format_parse_round_trip(void **state) {
  static const int64_t units[] = {1, 1000, 60000, 3600000};
  int64_t ms, step;
  (void)state;
  for (ms = 1, step = 1; ms <= INT64_C(99999999) * 3600000; ms += step) {
    char out[16];
    size_t n = crpc__timeout_format(ms, out);
    int64_t back, unit = 0;
    size_t i;
    assert_true(n >= 2 && n <= 9);
    assert_int_equal(crpc__timeout_parse(out, n, &back), 0);
    for (i = 0; i < 4; i++)
      if ("mSMH"[i] == out[n - 1])
        unit = units[i];
    assert_true(unit > 0);
    assert_true(back >= ms);
    assert_true(back - ms < unit);
    step += step / 8 + 1; /* a few hundred values over the whole range */
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_units),
      cmocka_unit_test(test_sub_ms_rounds_up),
      cmocka_unit_test(test_zero_and_leading_zeros),
      cmocka_unit_test(test_eight_digits_no_overflow),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_format_parse_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
