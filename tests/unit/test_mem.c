/* Unit tests for lib/mem.c: the crpc_mem copy, defaults and wrappers, and
 * the failmalloc helper the other tests rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/mem.c"
#include "failmalloc.h"

static void test_init_null_is_libc(void **state) {
  crpc_mem m;
  char *p;
  (void)state;
  memset(&m, 0xab, sizeof(m));
  crpc__mem_init(&m, NULL);
  assert_non_null(m.malloc);
  assert_non_null(m.free);
  assert_non_null(m.calloc);
  assert_non_null(m.realloc);
  p = crpc__malloc(&m, 10);
  assert_non_null(p);
  memset(p, 1, 10);
  p = crpc__realloc(&m, p, 100);
  assert_non_null(p);
  crpc__free(&m, p);
}

static void test_init_copies_user(void **state) {
  failmalloc fm;
  crpc_mem user, m;
  void *p;
  (void)state;
  failmalloc_reset(&fm, 0);
  user = failmalloc_mem(&fm);
  crpc__mem_init(&m, &user);
  /* A copy: changing the user's struct afterwards changes nothing. */
  memset(&user, 0, sizeof(user));
  assert_ptr_equal(m.mem_user_data, &fm);
  p = crpc__malloc(&m, 7);
  assert_non_null(p);
  assert_int_equal(fm.count, 1);
  assert_int_equal(fm.live, 7);
  crpc__free(&m, p);
  assert_int_equal(fm.live, 0);
  assert_int_equal(fm.blocks, 0);
}

static void test_init_incomplete_user_falls_back(void **state) {
  failmalloc fm;
  crpc_mem user, m;
  void *p;
  (void)state;
  failmalloc_reset(&fm, 0);
  user = failmalloc_mem(&fm);
  user.free = NULL; /* cannot pair the user's malloc with anything */
  crpc__mem_init(&m, &user);
  p = crpc__malloc(&m, 8);
  assert_non_null(p);
  crpc__free(&m, p);
  assert_int_equal(fm.count, 0); /* libc was used throughout */

  user = failmalloc_mem(&fm);
  user.realloc = NULL;
  crpc__mem_init(&m, &user);
  assert_ptr_not_equal(m.mem_user_data, &fm);
}

static void test_calloc_emulated_when_missing(void **state) {
  failmalloc fm;
  crpc_mem user, m;
  unsigned char *p;
  size_t i;
  (void)state;
  failmalloc_reset(&fm, 0);
  user = failmalloc_mem(&fm);
  user.calloc = NULL;
  crpc__mem_init(&m, &user);
  assert_ptr_equal(m.mem_user_data, &fm);
  /* Dirty a block first so a non-zeroing path would show. */
  p = crpc__malloc(&m, 64);
  memset(p, 0xff, 64);
  crpc__free(&m, p);
  p = crpc__calloc(&m, 8, 8);
  assert_non_null(p);
  for (i = 0; i < 64; i++)
    assert_int_equal(p[i], 0);
  assert_int_equal(fm.count, 2);
  crpc__free(&m, p);
}

static void test_calloc_overflow(void **state) {
  failmalloc fm;
  crpc_mem m = failmalloc_mem(&fm);
  (void)state;
  failmalloc_reset(&fm, 0);
  assert_null(crpc__calloc(&m, SIZE_MAX / 2, 3));
  assert_null(crpc__calloc(NULL, SIZE_MAX / 2, 3));
  assert_int_equal(fm.count, 0); /* refused before reaching the allocator */
}

static void test_zero_sizes_are_not_null(void **state) {
  void *p, *q;
  (void)state;
  p = crpc__malloc(NULL, 0);
  assert_non_null(p);
  q = crpc__calloc(NULL, 0, 5);
  assert_non_null(q);
  /* realloc to 0 must not free (glibc's realloc(p, 0) does). */
  p = crpc__realloc(NULL, p, 0);
  assert_non_null(p);
  crpc__free(NULL, p);
  crpc__free(NULL, q);
  crpc__free(NULL, NULL);
}

static void test_free_null_skips_user(void **state) {
  failmalloc fm;
  crpc_mem m = failmalloc_mem(&fm);
  (void)state;
  failmalloc_reset(&fm, 0);
  crpc__free(&m, NULL);
  assert_int_equal(fm.blocks, 0);
}

static void test_strdup(void **state) {
  char *s;
  (void)state;
  assert_null(crpc__strdup(NULL, NULL));
  s = crpc__strdup(NULL, "hello");
  assert_string_equal(s, "hello");
  crpc__free(NULL, s);
  s = crpc__strdup(NULL, "");
  assert_string_equal(s, "");
  crpc__free(NULL, s);
}

/* A small "module" built on the wrappers: several allocations and a grow,
 * undone in reverse on failure. */
static failmalloc scenario_fm;

static int scenario(void *arg) {
  crpc_mem m;
  char *a = NULL, *b = NULL, *c = NULL;
  int *v = NULL, *nv;
  int rv = CRPC_ENOMEM;
  (void)arg;
  {
    crpc_mem user = failmalloc_mem(&scenario_fm);
    crpc__mem_init(&m, &user);
  }
  if ((a = crpc__strdup(&m, "first")) == NULL)
    goto fail_a;
  if ((b = crpc__malloc(&m, 100)) == NULL)
    goto fail_b;
  if ((v = crpc__calloc(&m, 4, sizeof(int))) == NULL)
    goto fail_v;
  if ((nv = crpc__realloc(&m, v, 1000 * sizeof(int))) == NULL)
    goto fail_c;
  v = nv;
  if ((c = crpc__strdup(&m, a)) == NULL)
    goto fail_c;
  assert_string_equal(c, "first");
  rv = 0;
  crpc__free(&m, c);
fail_c:
  crpc__free(&m, v);
fail_v:
  crpc__free(&m, b);
fail_b:
  crpc__free(&m, a);
fail_a:
  return rv;
}

static void test_failmalloc_loop(void **state) {
  const char *why = NULL;
  long runs;
  (void)state;
  runs = failmalloc_run(&scenario_fm, scenario, NULL, &why);
  if (runs < 0)
    fail_msg("%s", why);
  /* strdup, malloc, calloc, realloc (grows), strdup: 5 points of failure. */
  assert_int_equal(runs, 6);
}

/* The helper itself must catch a leak and a lie about success. */
static void *leaked;

static int leaky(void *arg) {
  crpc_mem m = failmalloc_mem(&scenario_fm);
  void *p = crpc__malloc(&m, 1), *q;
  (void)arg;
  if (p == NULL)
    return CRPC_ENOMEM;
  if ((q = crpc__malloc(&m, 1)) == NULL) {
    leaked = p; /* the bug under test; freed by the test afterwards */
    return CRPC_ENOMEM;
  }
  crpc__free(&m, q);
  crpc__free(&m, p);
  return 0;
}

static int liar(void *arg) {
  crpc_mem m = failmalloc_mem(&scenario_fm);
  void *p = crpc__malloc(&m, 1);
  (void)arg;
  crpc__free(&m, p);
  return 0;
}

static void test_failmalloc_catches_bugs(void **state) {
  const char *why = NULL;
  (void)state;
  assert_int_equal(failmalloc_run(&scenario_fm, leaky, NULL, &why), -1);
  assert_string_equal(why, "leak after an injected allocation failure");
  {
    crpc_mem m = failmalloc_mem(&scenario_fm);
    crpc__free(&m, leaked);
  }
  assert_int_equal(failmalloc_run(&scenario_fm, liar, NULL, &why), -1);
  assert_string_equal(why,
                      "scenario reported success although an allocation failed");
}

static void test_failmalloc_peak(void **state) {
  failmalloc fm;
  crpc_mem m = failmalloc_mem(&fm);
  void *a, *b;
  (void)state;
  failmalloc_reset(&fm, 0);
  a = crpc__malloc(&m, 100);
  b = crpc__malloc(&m, 50);
  crpc__free(&m, a);
  b = crpc__realloc(&m, b, 20);
  assert_int_equal(fm.peak, 150);
  assert_int_equal(fm.live, 20);
  crpc__free(&m, b);
  assert_int_equal(fm.live, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_null_is_libc),
      cmocka_unit_test(test_init_copies_user),
      cmocka_unit_test(test_init_incomplete_user_falls_back),
      cmocka_unit_test(test_calloc_emulated_when_missing),
      cmocka_unit_test(test_calloc_overflow),
      cmocka_unit_test(test_zero_sizes_are_not_null),
      cmocka_unit_test(test_free_null_skips_user),
      cmocka_unit_test(test_strdup),
      cmocka_unit_test(test_failmalloc_loop),
      cmocka_unit_test(test_failmalloc_catches_bugs),
      cmocka_unit_test(test_failmalloc_peak),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
