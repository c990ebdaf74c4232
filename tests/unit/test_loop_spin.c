/* Unit tests for lib/loop_spin.c, the adaptive poll before a reactor
 * sleeps. Time is the test's own clock (crpc__spin.now_ns), advanced by a
 * fixed step on every reading, so each test is deterministic: it decides
 * how long each poll pass and each sleep "took". The events are a pipe's
 * read end, readable or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../lib/loop_spin.c"

static int64_t fake_now, fake_step;
static int clock_reads;

static long fake_preemptions;

static long fake_preempted(void) { return fake_preemptions; }

static int64_t fake_clock(void) {
  clock_reads++;
  fake_now += fake_step;
  return fake_now;
}

typedef struct {
  int epfd, rd, wr;
  crpc__spin s;
} rig;

static void rig_up(rig *r, const char *env) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  r->rd = p[0];
  r->wr = p[1];
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  assert_true(r->epfd >= 0);
  struct epoll_event ev = {.events = EPOLLIN};
  assert_int_equal(epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->rd, &ev), 0);
  if (env)
    setenv("CRPC_BUSY_POLL_US", env, 1);
  else
    unsetenv("CRPC_BUSY_POLL_US");
  crpc__spin_init(&r->s);
  r->s.now_ns = fake_clock;
  r->s.preemptions = fake_preempted;
  fake_preemptions = 0;
  fake_now = 0;
  fake_step = 1000; /* 1 us a reading: a pass on a CPU of its own */
  clock_reads = 0;
}

static void rig_down(rig *r) {
  close(r->epfd);
  close(r->rd);
  close(r->wr);
}

static void readable(rig *r, bool yes) {
  char c = 'x';
  if (yes) {
    assert_int_equal(write(r->wr, &c, 1), 1);
  } else {
    while (1) {
      struct epoll_event ev;
      if (epoll_wait(r->epfd, &ev, 1, 0) != 1)
        break;
      assert_int_equal(read(r->rd, &c, 1), 1);
    }
  }
}

static int wait_once(rig *r, int timeout_ms) {
  struct epoll_event evs[4];
  return crpc__spin_wait(&r->s, r->epfd, evs, 4, timeout_ms);
}

/* The default cap; a sleep that ended soon starts polling at the cap. */
static void test_short_sleep_starts_polling(void **state) {
  rig r;
  (void)state;
  rig_up(&r, NULL);
  assert_int_equal(r.s.max_ns, SPIN_DEFAULT_MAX_US * 1000);
  assert_false(r.s.polling);
  readable(&r, true);
  assert_int_equal(wait_once(&r, -1), 1);
  assert_true(r.s.polling);
  rig_down(&r);
}

/* A sleep longer than SPIN_SHORT_FACTOR caps: polling would not have
 * caught it, so the loop goes on sleeping at once. */
static void test_long_sleep_does_not_poll(void **state) {
  rig r;
  (void)state;
  rig_up(&r, NULL);
  fake_step = 1000000; /* each reading 1 ms later */
  readable(&r, true);
  assert_int_equal(wait_once(&r, -1), 1);
  assert_false(r.s.polling);
  rig_down(&r);
}

/* An event found while polling keeps the loop polling. */
static void test_caught_keeps_polling(void **state) {
  rig r;
  (void)state;
  rig_up(&r, NULL);
  r.s.polling = true;
  r.s.backoff = 8;
  readable(&r, true);
  assert_int_equal(wait_once(&r, -1), 1);
  assert_true(r.s.polling);
  assert_int_equal(r.s.backoff, 1);
  rig_down(&r);
}

/* A catch after the thread was preempted (other threads want this CPU)
 * counts as a failure: the poll stops and backs off. */
static void test_preempted_catch_is_a_failure(void **state) {
  rig r;
  (void)state;
  rig_up(&r, NULL);
  r.s.polling = true;
  readable(&r, true);
  fake_preemptions = 3;
  assert_int_equal(wait_once(&r, -1), 1);
  assert_false(r.s.polling);
  assert_int_equal(r.s.skip, 1);
  assert_int_equal(r.s.backoff, 2);
  /* ...and once the preemptions stop, polling comes back */
  assert_int_equal(wait_once(&r, -1), 1); /* skipped */
  assert_int_equal(wait_once(&r, -1), 1); /* short: poll next time */
  assert_true(r.s.polling);
  assert_int_equal(wait_once(&r, -1), 1); /* caught, not preempted */
  assert_true(r.s.polling);
  assert_int_equal(r.s.backoff, 1);
  rig_down(&r);
}

/* A poll that finds nothing within the window stops polling; the next
 * try waits for |backoff| short sleeps, and each failure doubles that, up
 * to SPIN_BACKOFF_MAX. */
static void test_failed_poll_backs_off(void **state) {
  rig r;
  (void)state;
  rig_up(&r, NULL);
  for (unsigned want = 1; want <= 2 * SPIN_BACKOFF_MAX; want *= 2) {
    r.s.polling = true;
    readable(&r, false);
    assert_int_equal(wait_once(&r, 1), 0); /* the poll, then 1 ms asleep */
    assert_false(r.s.polling);
    unsigned skip = want > SPIN_BACKOFF_MAX ? SPIN_BACKOFF_MAX : want;
    assert_int_equal(r.s.skip, skip);
    readable(&r, true);
    for (unsigned i = 0; i < skip; i++) {
      assert_int_equal(wait_once(&r, -1), 1);
      assert_false(r.s.polling);
    }
    assert_int_equal(r.s.skip, 0);
    assert_int_equal(wait_once(&r, -1), 1); /* the next short one: retry */
    assert_true(r.s.polling);
  }
  rig_down(&r);
}

/* The window is covered by passes of about a microsecond... */
static void test_poll_lasts_the_window(void **state) {
  rig r;
  (void)state;
  rig_up(&r, NULL);
  r.s.polling = true;
  readable(&r, false);
  assert_int_equal(wait_once(&r, 1), 0);
  /* start, one reading a pass until the window is over, one before the
   * sleep (the timeout left) */
  assert_true(clock_reads >= SPIN_DEFAULT_MAX_US);
  rig_down(&r);
}

/* ...but a pass that took longer than SPIN_PASS_MAX_NS (another thread
 * ran on this CPU during the yield) ends the poll at once. */
static void test_shared_cpu_ends_the_poll(void **state) {
  rig r;
  (void)state;
  rig_up(&r, "10000");
  r.s.polling = true; /* 10 ms of polling, were the CPU ours */
  fake_step = SPIN_PASS_MAX_NS + 1000;
  readable(&r, false);
  assert_int_equal(wait_once(&r, 1), 0);
  assert_true(clock_reads <= 4);
  assert_false(r.s.polling); /* and counts as a failure */
  assert_int_equal(r.s.skip, 1);
  rig_down(&r);
}

/* A zero timeout is the program's own poll: no polling, no learning. */
static void test_zero_timeout_never_polls(void **state) {
  rig r;
  (void)state;
  rig_up(&r, NULL);
  r.s.polling = true;
  readable(&r, false);
  assert_int_equal(wait_once(&r, 0), 0);
  assert_int_equal(clock_reads, 0);
  assert_true(r.s.polling);
  rig_down(&r);
}

/* CRPC_BUSY_POLL_US: 0 turns polling off, a number sets the cap (at most
 * SPIN_LIMIT_MAX_US), anything else is as if unset. */
static void test_env_sets_the_cap(void **state) {
  static const struct {
    const char *env;
    int64_t want_ns;
  } cases[] = {
      {"0", 0},
      {"20", 20000},
      {"99999999", SPIN_LIMIT_MAX_US * 1000},
      {"", SPIN_DEFAULT_MAX_US * 1000},
      {"-5", SPIN_DEFAULT_MAX_US * 1000},
      {"12abc", SPIN_DEFAULT_MAX_US * 1000},
      {"99999999999999999999999", SPIN_DEFAULT_MAX_US * 1000},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rig r;
    rig_up(&r, cases[i].env);
    assert_int_equal(r.s.max_ns, cases[i].want_ns);
    rig_down(&r);
  }
  /* off: a short sleep never starts a poll */
  rig r;
  rig_up(&r, "0");
  readable(&r, true);
  assert_int_equal(wait_once(&r, -1), 1);
  assert_false(r.s.polling);
  assert_int_equal(clock_reads, 0);
  rig_down(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_short_sleep_starts_polling),
      cmocka_unit_test(test_long_sleep_does_not_poll),
      cmocka_unit_test(test_caught_keeps_polling),
      cmocka_unit_test(test_preempted_catch_is_a_failure),
      cmocka_unit_test(test_failed_poll_backs_off),
      cmocka_unit_test(test_poll_lasts_the_window),
      cmocka_unit_test(test_shared_cpu_ends_the_poll),
      cmocka_unit_test(test_zero_timeout_never_polls),
      cmocka_unit_test(test_env_sets_the_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
