/* Unit tests for lib/version.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/version.c"

static void test_version_matches_macros(void **state) {
  char want[32];
  (void)state;
  snprintf(want, sizeof(want), "%d.%d.%d", CRPC_VERSION_MAJOR,
           CRPC_VERSION_MINOR, CRPC_VERSION_PATCH);
  assert_string_equal(crpc_version(), CRPC_VERSION_STRING);
  assert_string_equal(crpc_version(), want);
#ifdef CRPC_TEST_PROJECT_VERSION
  assert_string_equal(crpc_version(), CRPC_TEST_PROJECT_VERSION);
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_matches_macros),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
