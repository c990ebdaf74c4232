/*
 * log.c: the library's log lines go to a user callback, or by default to
 * stderr when the CRPC_LOG environment variable asks for them.
 *
 * The level check is one atomic load, so disabled logging costs no
 * formatting and no lock on the hot path.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LOG_UNINIT (-2) /* CRPC_LOG not read yet */
#define LOG_OFF (-1)

/* Longer lines are cut: a log line is not a place for a message body. */
#define LOG_LINE_MAX 1024

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static crpc_log_cb log_cb;    /* guarded by log_mu */
static void *log_user_data;   /* guarded by log_mu */
static atomic_int log_max = LOG_UNINIT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static int ascii_ieq(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char x = *a, y = *b;
    if (x >= 'A' && x <= 'Z')
      x = (char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = (char)(y - 'A' + 'a');
    if (x != y)
      return 0;
  }
  return *a == *b;
}

/* CRPC_LOG=error|warn|info|debug. Unset, empty, "off" or "none": silent.
 * Anything else turns logging on at the documented default, warn. */
static int env_level(void) {
  const char *v = getenv("CRPC_LOG");
  int i;
  if (v == NULL || *v == '\0' || ascii_ieq(v, "off") || ascii_ieq(v, "none"))
    return LOG_OFF;
  for (i = 0; i <= CRPC_LOG_DEBUG; i++)
    if (ascii_ieq(v, level_names[i]))
      return i;
  return CRPC_LOG_WARN;
}

void crpc_set_log_callback(crpc_log_cb cb, crpc_log_level max_level,
                           void *user_data) {
  pthread_mutex_lock(&log_mu);
  log_cb = cb;
  log_user_data = user_data;
  if (cb == NULL)
    atomic_store(&log_max, env_level()); /* re-read: tests change it */
  else
    atomic_store(&log_max, max_level < CRPC_LOG_ERROR   ? LOG_OFF
                           : max_level > CRPC_LOG_DEBUG ? CRPC_LOG_DEBUG
                                                        : (int)max_level);
  pthread_mutex_unlock(&log_mu);
}

static int current_max(void) {
  int max = atomic_load(&log_max);
  if (max != LOG_UNINIT)
    return max;
  pthread_mutex_lock(&log_mu);
  max = atomic_load(&log_max);
  if (max == LOG_UNINIT) {
    max = env_level();
    atomic_store(&log_max, max);
  }
  pthread_mutex_unlock(&log_mu);
  return max;
}

void crpc__log(crpc_log_level level, const char *fmt, ...) {
  char line[LOG_LINE_MAX];
  crpc_log_cb cb;
  void *ud;
  va_list ap;
  int n;

  if ((int)level < CRPC_LOG_ERROR || (int)level > current_max())
    return;
  va_start(ap, fmt);
  n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof(line))
    memcpy(line + sizeof(line) - 4, "...", 4);

  /* The callback runs outside the lock, so it may log or reconfigure. */
  pthread_mutex_lock(&log_mu);
  cb = log_cb;
  ud = log_user_data;
  pthread_mutex_unlock(&log_mu);
  if (cb != NULL)
    cb(level, line, ud);
  else /* one call per line keeps lines from different threads whole */
    fprintf(stderr, "crpc %s: %s\n", level_names[level], line);
}
