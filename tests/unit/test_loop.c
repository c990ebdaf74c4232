/* Unit tests for lib/loop.c's timers when memory runs out: a timer whose
 * heap cannot grow waits in the spill list and still fires, in order, and
 * can be stopped or restarted there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/loop.c"
#include "../../lib/loop_spin.c"
#include "../../lib/mem.c"
#include "failmalloc.h"

static int fired[4], nfired;

static void on_timer(crpc__timer *t) { fired[nfired++] = (int)t->when_ms; }

static void run_until(crpc__loop *l, int n) {
  for (int i = 0; i < 1000 && nfired < n; i++)
    crpc__loop_run_once(l, 5);
}

static void test_spilled_timers_fire(void **state) {
  failmalloc fm;
  crpc_mem m = failmalloc_mem(&fm);
  crpc__loop *l;
  crpc__timer t[4];
  (void)state;
  failmalloc_reset(&fm, 0);
  assert_int_equal(crpc__loop_new(&l, &m), 0);
  /* the heap's first allocation fails: every timer spills */
  atomic_store(&fm.fail_at, atomic_load(&fm.count) + 1);
  int64_t now = crpc__now_ms();
  memset(t, 0, sizeof t);
  for (int i = 0; i < 4; i++)
    t[i].cb = on_timer;
  crpc__timer_start(l, &t[0], now + 30);
  assert_int_equal(atomic_load(&fm.failures), 1);
  assert_true(crpc__timer_armed(&t[0]));
  assert_true(t[0].heap_idx == CRPC__TIMER_SPILLED);
  crpc__timer_start(l, &t[1], now + 10); /* the heap gets room now */
  crpc__timer_start(l, &t[2], now + 20);
  crpc__timer_start(l, &t[3], now + 40);
  crpc__timer_stop(l, &t[3]); /* never fires */
  crpc__timer_start(l, &t[0], now + 25); /* restarted: leaves the spill */
  nfired = 0;
  run_until(l, 3);
  assert_int_equal(nfired, 3);
  assert_true(fired[0] == (int)(now + 10) && fired[1] == (int)(now + 20) &&
              fired[2] == (int)(now + 25));
  assert_false(crpc__timer_armed(&t[0]));
  assert_false(crpc__timer_armed(&t[3]));
  crpc__loop_free(l);
  assert_int_equal(atomic_load(&fm.blocks), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spilled_timers_fire),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
