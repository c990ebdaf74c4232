/* Unit tests for lib/log.c: levels, the callback, the CRPC_LOG default
 * logger on stderr, truncation and concurrent use. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../lib/log.c"

typedef struct seen {
  int count;
  crpc_log_level last_level;
  char last[2 * LOG_LINE_MAX];
  void *ud;
} seen;

static void record(crpc_log_level level, const char *msg, void *ud) {
  seen *s = ud;
  s->count++;
  s->last_level = level;
  s->ud = ud;
  snprintf(s->last, sizeof(s->last), "%s", msg);
}

static int teardown(void **state) {
  (void)state;
  unsetenv("CRPC_LOG");
  crpc_set_log_callback(NULL, CRPC_LOG_ERROR, NULL);
  return 0;
}

static void test_callback_filters_levels(void **state) {
  seen s = {0};
  (void)state;
  crpc_set_log_callback(record, CRPC_LOG_WARN, &s);
  crpc__log_error("e %d", 1);
  assert_int_equal(s.count, 1);
  assert_int_equal(s.last_level, CRPC_LOG_ERROR);
  assert_string_equal(s.last, "e 1");
  assert_ptr_equal(s.ud, &s);
  crpc__log_warn("w %s", "x");
  assert_int_equal(s.count, 2);
  assert_string_equal(s.last, "w x");
  crpc__log_info("i");
  crpc__log_debug("d");
  assert_int_equal(s.count, 2);

  crpc_set_log_callback(record, CRPC_LOG_DEBUG, &s);
  crpc__log_debug("d");
  assert_int_equal(s.count, 3);
  assert_int_equal(s.last_level, CRPC_LOG_DEBUG);
  /* Out-of-range levels neither crash nor get through. */
  crpc__log((crpc_log_level)7, "bad");
  crpc__log((crpc_log_level)-1, "bad");
  assert_int_equal(s.count, 3);
}

static void test_long_line_truncated(void **state) {
  seen s = {0};
  char big[3000];
  (void)state;
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  crpc_set_log_callback(record, CRPC_LOG_DEBUG, &s);
  crpc__log_error("%s", big);
  assert_int_equal(s.count, 1);
  assert_int_equal(strlen(s.last), LOG_LINE_MAX - 1);
  assert_string_equal(s.last + LOG_LINE_MAX - 4, "...");
}

/* Captures what the default logger writes to fd 2 while |fn| runs. */
static size_t capture_stderr(void (*fn)(void), char *buf, size_t cap) {
  char path[] = "/tmp/crpc_test_log_XXXXXX";
  int fd = mkstemp(path), saved;
  ssize_t n;
  assert_true(fd >= 0);
  unlink(path);
  fflush(stderr);
  saved = dup(2);
  assert_true(saved >= 0);
  assert_true(dup2(fd, 2) >= 0);
  fn();
  fflush(stderr);
  assert_true(dup2(saved, 2) >= 0);
  close(saved);
  n = pread(fd, buf, cap - 1, 0);
  close(fd);
  assert_true(n >= 0);
  buf[n] = '\0';
  return (size_t)n;
}

static void log_each_level(void) {
  crpc__log_error("an error");
  crpc__log_warn("a warning");
  crpc__log_info("some info");
  crpc__log_debug("debugging");
}

static void test_default_silent_without_env(void **state) {
  char buf[1024];
  (void)state;
  unsetenv("CRPC_LOG");
  crpc_set_log_callback(NULL, CRPC_LOG_DEBUG, NULL);
  assert_int_equal(capture_stderr(log_each_level, buf, sizeof(buf)), 0);
  setenv("CRPC_LOG", "", 1);
  crpc_set_log_callback(NULL, CRPC_LOG_DEBUG, NULL);
  assert_int_equal(capture_stderr(log_each_level, buf, sizeof(buf)), 0);
  setenv("CRPC_LOG", "off", 1);
  crpc_set_log_callback(NULL, CRPC_LOG_DEBUG, NULL);
  assert_int_equal(capture_stderr(log_each_level, buf, sizeof(buf)), 0);
}

static void test_default_levels_from_env(void **state) {
  char buf[1024];
  (void)state;
  setenv("CRPC_LOG", "debug", 1);
  crpc_set_log_callback(NULL, CRPC_LOG_ERROR, NULL);
  capture_stderr(log_each_level, buf, sizeof(buf));
  assert_string_equal(buf, "crpc error: an error\n"
                           "crpc warn: a warning\n"
                           "crpc info: some info\n"
                           "crpc debug: debugging\n");

  setenv("CRPC_LOG", "ERROR", 1); /* case-insensitive */
  crpc_set_log_callback(NULL, CRPC_LOG_ERROR, NULL);
  capture_stderr(log_each_level, buf, sizeof(buf));
  assert_string_equal(buf, "crpc error: an error\n");

  setenv("CRPC_LOG", "info", 1);
  crpc_set_log_callback(NULL, CRPC_LOG_ERROR, NULL);
  capture_stderr(log_each_level, buf, sizeof(buf));
  assert_string_equal(buf, "crpc error: an error\n"
                           "crpc warn: a warning\n"
                           "crpc info: some info\n");

  /* Set to something unknown: on, at the default (warn). */
  setenv("CRPC_LOG", "1", 1);
  crpc_set_log_callback(NULL, CRPC_LOG_ERROR, NULL);
  capture_stderr(log_each_level, buf, sizeof(buf));
  assert_string_equal(buf, "crpc error: an error\ncrpc warn: a warning\n");
}

static void test_env_read_lazily(void **state) {
  char buf[1024];
  (void)state;
  setenv("CRPC_LOG", "warn", 1);
  atomic_store(&log_max, LOG_UNINIT); /* as at process start */
  capture_stderr(log_each_level, buf, sizeof(buf));
  assert_string_equal(buf, "crpc error: an error\ncrpc warn: a warning\n");
}

static void test_callback_overrides_env(void **state) {
  char buf[1024];
  seen s = {0};
  (void)state;
  setenv("CRPC_LOG", "debug", 1);
  crpc_set_log_callback(record, CRPC_LOG_INFO, &s);
  assert_int_equal(capture_stderr(log_each_level, buf, sizeof(buf)), 0);
  assert_int_equal(s.count, 3);
}

/* A callback that logs again must not deadlock. */
static int reentered;
static void reenter(crpc_log_level level, const char *msg, void *ud) {
  (void)msg;
  (void)ud;
  if (level == CRPC_LOG_ERROR)
    crpc__log_warn("from the callback");
  else
    reentered++;
}

static void test_callback_may_log(void **state) {
  (void)state;
  reentered = 0;
  crpc_set_log_callback(reenter, CRPC_LOG_DEBUG, NULL);
  crpc__log_error("outer");
  assert_int_equal(reentered, 1);
}

#define THREADS 4
#define LINES 500
static atomic_int total, malformed;

static void count_cb(crpc_log_level level, const char *msg, void *ud) {
  (void)level;
  (void)ud;
  /* No cmocka asserts off the main thread: they longjmp. */
  if (strncmp(msg, "line ", 5) != 0)
    atomic_fetch_add(&malformed, 1);
  atomic_fetch_add(&total, 1);
}

static void *logger_thread(void *arg) {
  int i;
  for (i = 0; i < LINES; i++)
    crpc__log_info("line %d of %p", i, arg);
  return NULL;
}

static void test_threads(void **state) {
  pthread_t t[THREADS];
  int i;
  (void)state;
  atomic_store(&total, 0);
  crpc_set_log_callback(count_cb, CRPC_LOG_INFO, NULL);
  for (i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, logger_thread, (void *)(intptr_t)i), 0);
  for (i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(atomic_load(&total), THREADS * LINES);
  assert_int_equal(atomic_load(&malformed), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_callback_filters_levels, teardown),
      cmocka_unit_test_teardown(test_long_line_truncated, teardown),
      cmocka_unit_test_teardown(test_default_silent_without_env, teardown),
      cmocka_unit_test_teardown(test_default_levels_from_env, teardown),
      cmocka_unit_test_teardown(test_env_read_lazily, teardown),
      cmocka_unit_test_teardown(test_callback_overrides_env, teardown),
      cmocka_unit_test_teardown(test_callback_may_log, teardown),
      cmocka_unit_test_teardown(test_threads, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
