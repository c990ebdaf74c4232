/* Unit tests for lib/errors.c: the CRPC_ERRNO_MAP table and its lookups. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/errors.c"

static void test_every_code_has_name_and_message(void **state) {
  (void)state;
#define CHECK(name, val, msg)                                                  \
  assert_int_equal(CRPC_##name, (val));                                        \
  assert_string_equal(crpc_err_name(val), #name);                              \
  assert_string_equal(crpc_strerror(val), (msg));                              \
  assert_string_not_equal(crpc_strerror(val), "unknown error");
  CRPC_ERRNO_MAP(CHECK)
#undef CHECK
}

static void test_codes_are_negative_and_distinct(void **state) {
  static const int codes[] = {
#define CODE(name, val, msg) (val),
      CRPC_ERRNO_MAP(CODE)
#undef CODE
  };
  size_t i, j, n = sizeof(codes) / sizeof(codes[0]);
  (void)state;
  assert_true(n >= 13);
  for (i = 0; i < n; i++) {
    assert_true(codes[i] < 0);
    for (j = i + 1; j < n; j++)
      assert_int_not_equal(codes[i], codes[j]);
  }
}

static void test_zero_and_unknown(void **state) {
  (void)state;
  assert_string_equal(crpc_strerror(0), "success");
  assert_string_equal(crpc_err_name(0), "OK");
  assert_string_equal(crpc_strerror(1), "unknown error");
  assert_string_equal(crpc_strerror(-1000), "unknown error");
  assert_string_equal(crpc_strerror(INT_MIN), "unknown error");
  assert_string_equal(crpc_strerror(INT_MAX), "unknown error");
  assert_string_equal(crpc_err_name(-1000), "UNKNOWN");
  assert_string_equal(crpc_err_name(INT_MIN), "UNKNOWN");
  assert_non_null(crpc_strerror(CRPC_EENCODING - 1));
}

static void test_spot_values(void **state) {
  (void)state;
  assert_string_equal(crpc_err_name(CRPC_ENOMEM), "ENOMEM");
  assert_string_equal(crpc_strerror(CRPC_ENOMEM), "out of memory");
  assert_string_equal(crpc_err_name(-11), "ETOOBIG");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_code_has_name_and_message),
      cmocka_unit_test(test_codes_are_negative_and_distinct),
      cmocka_unit_test(test_zero_and_unknown),
      cmocka_unit_test(test_spot_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
