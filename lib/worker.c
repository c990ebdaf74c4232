/*
 * worker.c: threads for handlers that may block. A job goes to an idle
 * thread; with none idle a new thread starts, up to the maximum; beyond it,
 * jobs wait in FIFO order. Idle threads stay until the pool is freed.
 */
#include <pthread.h>
#include <stdlib.h>

#include "call_internal.h"

typedef struct job {
  struct job *next;
  void (*fn)(void *);
  void *arg;
} job;

struct crpc__workers {
  const crpc_mem *mem;
  pthread_mutex_t mu;
  pthread_cond_t cv;      /* jobs or stop */
  pthread_cond_t idle_cv; /* a job finished (for free) */
  job *head, *tail;
  unsigned max, nthreads, nidle, running;
  size_t queued; /* jobs waiting for a thread */
  bool stopping;
  pthread_t *tids;
};

static void *worker_main(void *arg) {
  crpc__workers *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->head && !w->stopping) {
      w->nidle++;
      pthread_cond_wait(&w->cv, &w->mu);
      w->nidle--;
    }
    if (!w->head)
      break;
    job *j = w->head;
    w->queued--;
    w->head = j->next;
    if (!w->head)
      w->tail = NULL;
    w->running++;
    pthread_mutex_unlock(&w->mu);
    j->fn(j->arg);
    crpc__free(w->mem, j);
    pthread_mutex_lock(&w->mu);
    w->running--;
    pthread_cond_broadcast(&w->idle_cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int crpc__workers_new(crpc__workers **out, unsigned max,
                      const crpc_mem *mem) {
  crpc__workers *w = crpc__calloc(mem, 1, sizeof *w);
  if (!w)
    return CRPC_ENOMEM;
  w->mem = mem;
  w->max = max ? max : 256;
  w->tids = crpc__calloc(mem, w->max, sizeof *w->tids);
  if (!w->tids) {
    crpc__free(mem, w);
    return CRPC_ENOMEM;
  }
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  pthread_cond_init(&w->idle_cv, NULL);
  *out = w;
  return 0;
}

int crpc__workers_submit(crpc__workers *w, void (*fn)(void *), void *arg) {
  job *j = crpc__malloc(w->mem, sizeof *j);
  if (!j)
    return CRPC_ENOMEM;
  j->fn = fn;
  j->arg = arg;
  j->next = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->tail)
    w->tail->next = j;
  else
    w->head = j;
  w->tail = j;
  w->queued++;
  if (w->queued > w->nidle && w->nthreads < w->max) {
    if (pthread_create(&w->tids[w->nthreads], NULL, worker_main, w) == 0)
      w->nthreads++;
    else if (w->nthreads == 0) {
      w->head = w->tail = NULL;
      w->queued = 0;
      pthread_mutex_unlock(&w->mu);
      crpc__free(w->mem, j);
      return CRPC_ESYS;
    }
  }
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

void crpc__workers_free(crpc__workers *w) {
  if (!w)
    return;
  pthread_mutex_lock(&w->mu);
  while (w->head || w->running)
    pthread_cond_wait(&w->idle_cv, &w->mu);
  w->stopping = true;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  for (unsigned i = 0; i < w->nthreads; i++)
    pthread_join(w->tids[i], NULL);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  pthread_cond_destroy(&w->idle_cv);
  crpc__free(w->mem, w->tids);
  crpc__free(w->mem, w);
}
