/*
 * loop.c: epoll reactor with an eventfd wake-up, a task queue and a binary
 * timer heap (DESIGN.md: "Reactor").
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define RBUF_SIZE (64 * 1024)

struct crpc__loop {
  int epfd;
  crpc__io wake;
  pthread_mutex_t mu; /* guards the task queue and |stopping| */
  crpc__task *head, *tail;
  bool wake_pending; /* an eventfd write is outstanding */
  bool stopping;
  pthread_t thread;
  bool has_thread;
  crpc__timer **heap;
  size_t nheap, capheap;
  uint8_t rbuf[RBUF_SIZE];
  uint8_t wbuf[RBUF_SIZE];
};

static __thread const crpc__loop *current_loop;

int64_t crpc__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_wake(crpc__io *io, uint32_t events) {
  uint64_t v;
  CRPC__UNUSED(events);
  while (read(io->fd, &v, sizeof v) > 0) {
  }
}

int crpc__loop_new(crpc__loop **out) {
  crpc__loop *l = calloc(1, sizeof *l);
  if (!l)
    return CRPC_ENOMEM;
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (l->epfd < 0)
    goto fail_epoll;
  l->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (l->wake.fd < 0)
    goto fail_eventfd;
  l->wake.cb = on_wake;
  if (crpc__io_watch(l, &l->wake, EPOLLIN) != 0)
    goto fail_watch;
  pthread_mutex_init(&l->mu, NULL);
  *out = l;
  return 0;
fail_watch:
  close(l->wake.fd);
fail_eventfd:
  close(l->epfd);
fail_epoll:
  free(l);
  return CRPC_ESYS;
}

void crpc__loop_free(crpc__loop *l) {
  if (!l)
    return;
  crpc__task *t = l->head;
  while (t) { /* tasks never run: their owners are gone with the loop */
    crpc__task *n = t->next;
    if (t->heap)
      free(t);
    t = n;
  }
  close(l->wake.fd);
  close(l->epfd);
  pthread_mutex_destroy(&l->mu);
  free(l->heap);
  free(l);
}

int crpc__io_watch(crpc__loop *l, crpc__io *io, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = io};
  int op = io->watching ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (io->watching == events && events)
    return 0;
  if (epoll_ctl(l->epfd, op, io->fd, &ev) != 0)
    return CRPC_ESYS;
  io->watching = events ? events : EPOLLERR; /* 0 interest still added */
  return 0;
}

int crpc__io_watch_exclusive(crpc__loop *l, crpc__io *io) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = io};
  if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) != 0)
    return CRPC_ESYS;
  io->watching = EPOLLIN;
  return 0;
}

void crpc__io_unwatch(crpc__loop *l, crpc__io *io) {
  if (!io->watching)
    return;
  epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
  io->watching = 0;
}

/* ---- timer heap (1-based indices stored in the timers) ---- */

static void heap_swap(crpc__loop *l, size_t a, size_t b) {
  crpc__timer *t = l->heap[a];
  l->heap[a] = l->heap[b];
  l->heap[b] = t;
  l->heap[a]->heap_idx = a + 1;
  l->heap[b]->heap_idx = b + 1;
}

static void heap_up(crpc__loop *l, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (l->heap[p]->when_ms <= l->heap[i]->when_ms)
      break;
    heap_swap(l, i, p);
    i = p;
  }
}

static void heap_down(crpc__loop *l, size_t i) {
  for (;;) {
    size_t c = 2 * i + 1, m = i;
    if (c < l->nheap && l->heap[c]->when_ms < l->heap[m]->when_ms)
      m = c;
    if (c + 1 < l->nheap && l->heap[c + 1]->when_ms < l->heap[m]->when_ms)
      m = c + 1;
    if (m == i)
      return;
    heap_swap(l, i, m);
    i = m;
  }
}

void crpc__timer_start(crpc__loop *l, crpc__timer *t, int64_t when_ms) {
  if (t->heap_idx)
    crpc__timer_stop(l, t);
  if (l->nheap == l->capheap) {
    size_t cap = l->capheap ? l->capheap * 2 : 64;
    crpc__timer **h = realloc(l->heap, cap * sizeof *h);
    if (!h)
      abort(); /* a timer that silently never fires is worse */
    l->heap = h;
    l->capheap = cap;
  }
  t->when_ms = when_ms;
  l->heap[l->nheap] = t;
  t->heap_idx = ++l->nheap;
  heap_up(l, l->nheap - 1);
}

void crpc__timer_stop(crpc__loop *l, crpc__timer *t) {
  if (!t->heap_idx)
    return;
  size_t i = t->heap_idx - 1;
  size_t last = --l->nheap;
  if (i != last) {
    heap_swap(l, i, last);
    heap_down(l, i);
    heap_up(l, i);
  }
  t->heap_idx = 0;
}

static int next_timeout(crpc__loop *l, int cap) {
  if (!l->nheap)
    return cap;
  int64_t d = l->heap[0]->when_ms - crpc__now_ms();
  if (d < 0)
    d = 0;
  if (cap >= 0 && d > cap)
    return cap;
  return d > 1000000 ? 1000000 : (int)d;
}

static void run_timers(crpc__loop *l) {
  int64_t now = crpc__now_ms();
  while (l->nheap && l->heap[0]->when_ms <= now) {
    crpc__timer *t = l->heap[0];
    crpc__timer_stop(l, t);
    t->cb(t);
  }
}

/* ---- tasks ---- */

void crpc__loop_post_task(crpc__loop *l, crpc__task *task) {
  bool wake;
  task->next = NULL;
  pthread_mutex_lock(&l->mu);
  if (l->tail)
    l->tail->next = task;
  else
    l->head = task;
  l->tail = task;
  wake = !l->wake_pending && !crpc__loop_on_thread(l);
  if (wake)
    l->wake_pending = true;
  pthread_mutex_unlock(&l->mu);
  if (wake) {
    uint64_t one = 1;
    ssize_t r = write(l->wake.fd, &one, sizeof one);
    CRPC__UNUSED(r); /* EAGAIN means a wake-up is already pending */
  }
}

int crpc__loop_post(crpc__loop *l, crpc__task_fn fn, void *arg) {
  crpc__task *t = malloc(sizeof *t);
  if (!t)
    return CRPC_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  t->heap = true;
  crpc__loop_post_task(l, t);
  return 0;
}

static void run_tasks(crpc__loop *l) {
  pthread_mutex_lock(&l->mu);
  crpc__task *t = l->head;
  l->head = l->tail = NULL;
  l->wake_pending = false;
  pthread_mutex_unlock(&l->mu);
  while (t) {
    crpc__task *n = t->next;
    bool heap = t->heap;
    t->fn(t->arg); /* may free or re-post t */
    if (heap)
      free(t);
    t = n;
  }
}

static bool has_tasks(crpc__loop *l) {
  pthread_mutex_lock(&l->mu);
  bool r = l->head != NULL;
  pthread_mutex_unlock(&l->mu);
  return r;
}

void crpc__loop_run_once(crpc__loop *l, int timeout_ms) {
  struct epoll_event evs[64];
  const crpc__loop *prev = current_loop;
  current_loop = l;
  if (has_tasks(l))
    timeout_ms = 0;
  int n = epoll_wait(l->epfd, evs, 64, next_timeout(l, timeout_ms));
  for (int i = 0; i < n; i++) {
    crpc__io *io = evs[i].data.ptr;
    io->cb(io, evs[i].events);
  }
  /* Tasks the tasks post (a flush after the kicks that filled it) run in
   * this round too, a few passes at most so none can starve the I/O. */
  for (int pass = 0; pass < 4 && has_tasks(l); pass++)
    run_tasks(l);
  run_timers(l);
  current_loop = prev;
}

void crpc__loop_run(crpc__loop *l) {
  for (;;) {
    pthread_mutex_lock(&l->mu);
    bool stop = l->stopping;
    pthread_mutex_unlock(&l->mu);
    if (stop)
      break;
    crpc__loop_run_once(l, -1);
  }
  const crpc__loop *prev = current_loop;
  current_loop = l;
  while (has_tasks(l)) /* let posted clean-ups run */
    run_tasks(l);
  current_loop = prev;
}

void crpc__loop_stop(crpc__loop *l) {
  pthread_mutex_lock(&l->mu);
  l->stopping = true;
  pthread_mutex_unlock(&l->mu);
  uint64_t one = 1;
  ssize_t r = write(l->wake.fd, &one, sizeof one);
  CRPC__UNUSED(r);
}

bool crpc__loop_on_thread(const crpc__loop *l) { return current_loop == l; }

static void *loop_main(void *arg) {
  crpc__loop_run(arg);
  return NULL;
}

int crpc__loop_thread_start(crpc__loop *l, pthread_t *tid) {
  if (pthread_create(tid, NULL, loop_main, l) != 0)
    return CRPC_ESYS;
  return 0;
}

uint8_t *crpc__loop_rbuf(crpc__loop *l, size_t *len) {
  *len = RBUF_SIZE;
  return l->rbuf;
}

uint8_t *crpc__loop_wbuf(crpc__loop *l, size_t *len) {
  *len = RBUF_SIZE;
  return l->wbuf;
}
