/*
 * metrics_file.c: the examples' metrics writer thread (metrics_file.h).
 */
#include "metrics_file.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct metrics_file {
  const crpc_metrics *m;
  const char *path;
  pthread_t tid;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* signalled by metrics_file_stop() */
  bool stop;
};

static void write_once(metrics_file *w) {
  if (crpc_metrics_write_file(w->m, w->path) != 0)
    fprintf(stderr, "cannot write %s: %s\n", w->path, strerror(errno));
}

static void *run(void *arg) {
  metrics_file *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    pthread_mutex_unlock(&w->mu);
    write_once(w);
    pthread_mutex_lock(&w->mu);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 1;
    while (!w->stop &&
           pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
      ;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int metrics_file_start(metrics_file **out, const crpc_metrics *m,
                       const char *path) {
  metrics_file *w = calloc(1, sizeof *w);
  if (!w)
    return CRPC_ENOMEM;
  w->m = m;
  w->path = path;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&w->mu, NULL);
  if (crpc_metrics_write_file(m, path) != 0) { /* say it now, not later */
    fprintf(stderr, "cannot write --metrics_file=%s: %s\n", path,
            strerror(errno));
    free(w);
    return CRPC_ESYS;
  }
  if (pthread_create(&w->tid, NULL, run, w) != 0) {
    free(w);
    return CRPC_ESYS;
  }
  *out = w;
  return 0;
}

void metrics_file_stop(metrics_file *w) {
  if (!w)
    return;
  pthread_mutex_lock(&w->mu);
  w->stop = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->tid, NULL);
  write_once(w); /* the calls of the last second */
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}
