/*
 * loop.c: epoll reactor with an eventfd wake-up, a task queue and a binary
 * timer heap (DESIGN.md: "Reactor").
 */
#include "loop.h"

#include <crpc/loop.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "loop_impl.h"



enum { DRIVER_NONE, DRIVER_POOL, DRIVER_CALLER };
/* After a caller lets go, the pool thread leaves the loop alone for a
 * grace period (unless work is posted, an async call is in flight or a
 * timer comes due), so a caller making call after call keeps running it
 * itself, with no thread hop. The grace starts at CALLER_GRACE_MS and
 * doubles each time the pool thread finds a caller still at it, up to
 * CALLER_GRACE_MAX_MS: while blocking callers keep the loop busy the
 * pool thread looks a few times a second, not every 2 ms. What waits for
 * the pool meanwhile is only what nobody waits for: a PING or a GOAWAY
 * on a connection without calls. */
#define CALLER_GRACE_MS 2
#define CALLER_GRACE_MAX_MS 256
/* A follower's wait is woken by the broadcast after each round; this
 * bound is a safety net only, never the mechanism. */
#define FOLLOWER_WAIT_MAX_MS 1000

static __thread const crpc__loop *current_loop;
static __thread const crpc__loop *pool_of; /* set on a loop's own thread */

static void run_own_tasks(crpc__loop *l);
static bool has_own_tasks(crpc__loop *l);

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

int crpc__loop_new(crpc__loop **out, const crpc_mem *mem) {
  crpc__loop *l = crpc__calloc(mem, 1, sizeof *l);
  if (!l)
    return CRPC_ENOMEM;
  l->mem = mem;
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
  pthread_mutex_init(&l->drive_mu, NULL);
  pthread_cond_init(&l->drive_cv, NULL);
  pthread_cond_init(&l->pool_cv, NULL);
  l->grace_ms = CALLER_GRACE_MS;
  crpc__spin_init(&l->spin);
  l->may_spin = true; /* but see crpc__loop_set_shared */
  l->released_due_ms = INT64_MAX;
  *out = l;
  return 0;
fail_watch:
  close(l->wake.fd);
fail_eventfd:
  close(l->epfd);
fail_epoll:
  crpc__free(mem, l);
  return CRPC_ESYS;
}

void crpc__loop_free(crpc__loop *l) {
  if (!l)
    return;
  crpc__task *t = l->head;
  while (t) { /* tasks never run: their owners are gone with the loop */
    crpc__task *n = t->next;
    if (t->heap)
      crpc__free(l->mem, t);
    t = n;
  }
  close(l->wake.fd);
  close(l->epfd);
  pthread_mutex_destroy(&l->mu);
  pthread_mutex_destroy(&l->drive_mu);
  pthread_cond_destroy(&l->drive_cv);
  pthread_cond_destroy(&l->pool_cv);
  crpc__free(l->mem, l->heap);
  crpc__free(l->mem, l);
}

/* Socket-callback mode: tells the program what to watch for |io|. */
static int report_watch(crpc__loop *l, crpc__io *io, uint32_t events) {
  if (!l->watch || io->fd < 0)
    return 0;
  if ((size_t)io->fd >= l->nfdmap) {
    size_t n = l->nfdmap ? l->nfdmap : 64;
    while (n <= (size_t)io->fd)
      n *= 2;
    crpc__io **m = crpc__realloc(l->mem, l->fdmap, n * sizeof *m);
    if (!m)
      return CRPC_ENOMEM;
    memset(m + l->nfdmap, 0, (n - l->nfdmap) * sizeof *m);
    l->fdmap = m;
    l->nfdmap = n;
  }
  l->fdmap[io->fd] = events ? io : NULL;
  unsigned bits = (events & (EPOLLIN | EPOLLRDHUP) ? CRPC_LOOP_READ : 0) |
                  (events & EPOLLOUT ? CRPC_LOOP_WRITE : 0);
  l->watch((crpc_loop *)l, io->fd, bits, l->cb_ud);
  return 0;
}

int crpc__loop_report_io(crpc__loop *l, crpc__io *io) {
  return report_watch(l, io, io->watching);
}

int crpc__io_watch(crpc__loop *l, crpc__io *io, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = io};
  int op = io->watching ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (io->watching == events && events)
    return 0;
  if (epoll_ctl(l->epfd, op, io->fd, &ev) != 0)
    return CRPC_ESYS;
  io->watching = events ? events : EPOLLERR; /* 0 interest still added */
  /* the epoll set stays complete in both modes: crpc drives the loop
   * itself when a caller on the loop's thread must wait (shutdown) */
  return report_watch(l, io, events ? events : EPOLLERR);
}

int crpc__io_watch_exclusive(crpc__loop *l, crpc__io *io) {
  if (l->user) /* one loop only: nothing to share the listener with */
    return crpc__io_watch(l, io, EPOLLIN);
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
  report_watch(l, io, 0);
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

/* Out of memory for the heap: the timer waits in an unsorted list that
 * every round scans (a timer that silently never fires would be worse,
 * and a timer start cannot fail). */
static void spill(crpc__loop *l, crpc__timer *t) {
  t->heap_idx = CRPC__TIMER_SPILLED;
  t->spill_prev = NULL;
  t->spill_next = l->spill;
  if (l->spill)
    l->spill->spill_prev = t;
  l->spill = t;
}

void crpc__timer_start(crpc__loop *l, crpc__timer *t, int64_t when_ms) {
  if (t->heap_idx)
    crpc__timer_stop(l, t);
  if (l->nheap == l->capheap) {
    size_t cap = l->capheap ? l->capheap * 2 : 64;
    crpc__timer **h = crpc__realloc(l->mem, l->heap, cap * sizeof *h);
    if (!h) {
      t->when_ms = when_ms;
      spill(l, t);
      return;
    }
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
  if (t->heap_idx == CRPC__TIMER_SPILLED) {
    if (t->spill_prev)
      t->spill_prev->spill_next = t->spill_next;
    else
      l->spill = t->spill_next;
    if (t->spill_next)
      t->spill_next->spill_prev = t->spill_prev;
    t->spill_next = t->spill_prev = NULL;
    t->heap_idx = 0;
    return;
  }
  size_t i = t->heap_idx - 1;
  size_t last = --l->nheap;
  if (i != last) {
    heap_swap(l, i, last);
    heap_down(l, i);
    heap_up(l, i);
  }
  t->heap_idx = 0;
}

/* The next timer's absolute time, INT64_MAX: none [loop]. */
static int64_t next_due(const crpc__loop *l) {
  int64_t when = l->nheap ? l->heap[0]->when_ms : INT64_MAX;
  for (const crpc__timer *t = l->spill; t; t = t->spill_next)
    if (t->when_ms < when)
      when = t->when_ms;
  return when;
}

static int next_timeout(crpc__loop *l, int cap) {
  if (!l->nheap && !l->spill)
    return cap;
  int64_t d = next_due(l) - crpc__now_ms();
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
  /* a callback may stop or start any spilled timer: rescan after each */
  for (crpc__timer *t = l->spill; t;) {
    if (t->when_ms > now) {
      t = t->spill_next;
      continue;
    }
    crpc__timer_stop(l, t);
    t->cb(t);
    t = l->spill;
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
    if (l->shared) { /* nobody may be running it: call the pool thread */
      pthread_mutex_lock(&l->drive_mu);
      if (l->driver == DRIVER_NONE) {
        l->urgent = true;
        pthread_cond_signal(&l->pool_cv);
      }
      pthread_mutex_unlock(&l->drive_mu);
    }
  }
}

int crpc__loop_post(crpc__loop *l, crpc__task_fn fn, void *arg) {
  crpc__task *t = crpc__malloc(l->mem, sizeof *t);
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
      crpc__free(l->mem, t);
    t = n;
  }
}

static bool has_tasks(crpc__loop *l) {
  pthread_mutex_lock(&l->mu);
  bool r = l->head != NULL;
  pthread_mutex_unlock(&l->mu);
  return r;
}

/* A program-driven loop, in the program's own turn: the loop's own work
 * (async completions, which must not run inside another API call) runs
 * too, and the program learns when to call back. */
static bool user_turn(crpc__loop *l) {
  return l->user && l->public_round && current_loop != l;
}

static void user_turn_end(crpc__loop *l) {
  const crpc__loop *prev_pool = pool_of;
  pool_of = l;
  run_own_tasks(l);
  for (int pass = 0; pass < 4 && has_tasks(l); pass++)
    run_tasks(l);
  pool_of = prev_pool;
}

void crpc__loop_callback_round(crpc__loop *l, crpc__io *io, uint32_t events) {
  const crpc__loop *prev = current_loop;
  bool turn = user_turn(l);
  current_loop = l;
  if (io)
    io->cb(io, events);
  for (int pass = 0; pass < 4 && has_tasks(l); pass++)
    run_tasks(l);
  run_timers(l);
  if (turn)
    user_turn_end(l);
  current_loop = prev;
  crpc__loop_report_timer(l);
}

int64_t crpc__loop_wants_ms(crpc__loop *l) {
  if (has_tasks(l) || (l->user && has_own_tasks(l)))
    return 0;
  return next_timeout(l, -1);
}

void crpc__loop_report_timer(crpc__loop *l) {
  if (!l->timer)
    return;
  int64_t d = crpc__loop_wants_ms(l);
  int64_t when = d < 0 ? -1 : crpc__now_ms() + d;
  if (when == l->reported_when && d != 0)
    return;
  l->reported_when = when;
  l->timer((crpc_loop *)l, d, l->cb_ud);
}

bool crpc__loop_in_round(const crpc__loop *l) { return current_loop == l; }

void crpc__loop_run_own_now(crpc__loop *l) {
  const crpc__loop *prev = current_loop, *prev_pool = pool_of;
  current_loop = pool_of = l;
  while (has_own_tasks(l) || has_tasks(l)) {
    run_tasks(l);
    run_own_tasks(l);
  }
  current_loop = prev;
  pool_of = prev_pool;
}

void crpc__loop_run_once(crpc__loop *l, int timeout_ms) {
  struct epoll_event evs[64];
  const crpc__loop *prev = current_loop;
  bool turn = user_turn(l);
  if (turn && has_own_tasks(l))
    timeout_ms = 0;
  current_loop = l;
  if (has_tasks(l))
    timeout_ms = 0;
  /* A wait crpc makes may first poll briefly (loop_spin.c); with
   * |timeout_ms| 0 (the program's own poll said the loop is ready) it
   * never does. */
  int tmo = next_timeout(l, timeout_ms);
  int n = l->may_spin ? crpc__spin_wait(&l->spin, l->epfd, evs, 64, tmo)
                      : epoll_wait(l->epfd, evs, 64, tmo);
  for (int i = 0; i < n; i++) {
    crpc__io *io = evs[i].data.ptr;
    io->cb(io, evs[i].events);
  }
  /* Tasks the tasks post (a flush after the kicks that filled it) run in
   * this round too, a few passes at most so none can starve the I/O. */
  for (int pass = 0; pass < 4 && has_tasks(l); pass++)
    run_tasks(l);
  run_timers(l);
  if (turn)
    user_turn_end(l);
  current_loop = prev;
  crpc__loop_report_timer(l);
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
  pthread_mutex_lock(&l->drive_mu);
  pthread_cond_broadcast(&l->pool_cv);
  pthread_mutex_unlock(&l->drive_mu);
  uint64_t one = 1;
  ssize_t r = write(l->wake.fd, &one, sizeof one);
  CRPC__UNUSED(r);
}

bool crpc__loop_on_thread(const crpc__loop *l) { return current_loop == l; }

/* ---- shared client loops: run by callers, or by the pool thread ---- */

void crpc__loop_set_shared(crpc__loop *l) {
  l->shared = true;
  l->may_spin = false; /* set by whoever takes the loop */
}

static bool stopping(crpc__loop *l) {
  pthread_mutex_lock(&l->mu);
  bool r = l->stopping;
  pthread_mutex_unlock(&l->mu);
  return r;
}

static void wake_fd(crpc__loop *l) {
  uint64_t one = 1;
  ssize_t r = write(l->wake.fd, &one, sizeof one);
  CRPC__UNUSED(r);
}

/* Absolute CLOCK_REALTIME time |ms| from now, for pthread_cond_timedwait. */
static struct timespec after_ms(int64_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)(ms / 1000);
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

/* Ends a round run by a caller or the pool thread: followers look again
 * (drive_mu held, the round's changes already made). */
static void round_done(crpc__loop *l) {
  l->rounds++;
  if (l->followers)
    pthread_cond_broadcast(&l->drive_cv);
}

/* drive_mu held, by the thread that drove the loop until now (so it may
 * still read the timers). */
static void let_go(crpc__loop *l) {
  l->driver = DRIVER_NONE;
  l->released_ms = crpc__now_ms();
  l->released_due_ms = next_due(l);
  round_done(l);
  if (l->background) /* async calls need someone to run the loop now */
    pthread_cond_signal(&l->pool_cv);
}

void crpc__loop_background(crpc__loop *l, int delta) {
  if (!l->shared)
    return;
  pthread_mutex_lock(&l->drive_mu);
  l->background += delta;
  if (delta > 0 && l->driver == DRIVER_NONE)
    pthread_cond_signal(&l->pool_cv);
  pthread_mutex_unlock(&l->drive_mu);
}

bool crpc__loop_try_enter(crpc__loop *l) {
  if (!l->shared || crpc__loop_on_thread(l))
    return false;
  pthread_mutex_lock(&l->drive_mu);
  bool ok = l->driver == DRIVER_NONE;
  if (ok) {
    l->driver = DRIVER_CALLER;
    l->may_spin = true;
  }
  pthread_mutex_unlock(&l->drive_mu);
  if (ok)
    current_loop = l; /* posts from here need no wake-up */
  return ok;
}

void crpc__loop_leave(crpc__loop *l) {
  current_loop = NULL;
  pthread_mutex_lock(&l->drive_mu);
  let_go(l);
  pthread_mutex_unlock(&l->drive_mu);
}

void crpc__loop_wait(crpc__loop *l, unsigned rounds_seen,
                     bool (*ready)(void *), void *arg) {
  pthread_mutex_lock(&l->drive_mu);
  if (l->driver == DRIVER_NONE) {
    l->driver = DRIVER_CALLER;
    l->may_spin = true; /* a caller waits for its own call: poll for it */
    pthread_mutex_unlock(&l->drive_mu);
    /* what we wait for may have happened before we took the loop: then
     * running it could block on an idle socket */
    if (!ready(arg))
      crpc__loop_run_once(l, -1);
    pthread_mutex_lock(&l->drive_mu);
    let_go(l);
    pthread_mutex_unlock(&l->drive_mu);
    return;
  }
  if (l->driver == DRIVER_POOL && !l->yield_asked) {
    l->yield_asked = true; /* hand the loop to us after this round */
    wake_fd(l);
  }
  /* The one running the loop broadcasts after each round. A round that
   * ended after the caller last looked (|rounds_seen|, read with the
   * call's lock held, before any change it waits for could be made) may
   * have made that change: then look again at once. Otherwise the change
   * is still to come, and the round that makes it ends with a broadcast
   * we are already waiting for. */
  if (l->rounds == rounds_seen) {
    struct timespec ts = after_ms(FOLLOWER_WAIT_MAX_MS);
    l->followers++;
    pthread_cond_timedwait(&l->drive_cv, &l->drive_mu, &ts);
    l->followers--;
  }
  pthread_mutex_unlock(&l->drive_mu);
}

unsigned crpc__loop_rounds(crpc__loop *l) {
  pthread_mutex_lock(&l->drive_mu);
  unsigned r = l->rounds;
  pthread_mutex_unlock(&l->drive_mu);
  return r;
}

bool crpc__loop_on_own_thread(const crpc__loop *l) { return pool_of == l; }

void crpc__loop_post_own(crpc__loop *l, crpc__task *task) {
  if (!l->user && !l->shared) {
    /* a server reactor: only its own thread ever runs it */
    crpc__loop_post_task(l, task);
    return;
  }
  task->next = NULL;
  pthread_mutex_lock(&l->mu);
  if (l->ptail)
    l->ptail->next = task;
  else
    l->phead = task;
  l->ptail = task;
  pthread_mutex_unlock(&l->mu);
  if (l->user) { /* the program's next turn runs it */
    if (!crpc__loop_in_round(l))
      wake_fd(l);
    return;
  }
  pthread_mutex_lock(&l->drive_mu);
  l->urgent = true;
  pthread_cond_signal(&l->pool_cv);
  pthread_mutex_unlock(&l->drive_mu);
}

/* The loop's own thread; drive_mu not held. */
static void run_own_tasks(crpc__loop *l) {
  pthread_mutex_lock(&l->mu);
  crpc__task *t = l->phead;
  l->phead = l->ptail = NULL;
  pthread_mutex_unlock(&l->mu);
  while (t) {
    crpc__task *n = t->next;
    bool heap = t->heap;
    t->fn(t->arg);
    if (heap)
      crpc__free(l->mem, t);
    t = n;
  }
}

static bool has_own_tasks(crpc__loop *l) {
  pthread_mutex_lock(&l->mu);
  bool r = l->phead != NULL;
  pthread_mutex_unlock(&l->mu);
  return r;
}

static void run_shared(crpc__loop *l) {
  pool_of = l;
  pthread_mutex_lock(&l->drive_mu);
  while (!stopping(l)) {
    if (has_own_tasks(l)) { /* async completions: never on a caller */
      pthread_mutex_unlock(&l->drive_mu);
      run_own_tasks(l);
      pthread_mutex_lock(&l->drive_mu);
      continue;
    }
    if (l->driver != DRIVER_NONE) {
      /* a caller runs it: look again after the grace, a longer one each
       * time a caller is found at it (a caller letting go does not wake
       * us, to spare a thread switch a call) */
      struct timespec ts = after_ms(l->grace_ms);
      pthread_cond_timedwait(&l->pool_cv, &l->drive_mu, &ts);
      if (l->driver != DRIVER_NONE || l->released_ms + l->grace_ms >
                                          crpc__now_ms())
        l->grace_ms = l->grace_ms * 2 > CALLER_GRACE_MAX_MS
                          ? CALLER_GRACE_MAX_MS
                          : l->grace_ms * 2;
      continue;
    }
    if (!l->urgent && !l->followers && !l->background) {
      /* a caller just let go: it may be back at once; but a timer that
       * comes due meanwhile is ours to run */
      int64_t until = l->released_ms + l->grace_ms;
      if (l->released_due_ms < until)
        until = l->released_due_ms;
      int64_t now = crpc__now_ms();
      if (now < until) {
        struct timespec ts = after_ms(until - now);
        pthread_cond_timedwait(&l->pool_cv, &l->drive_mu, &ts);
        continue;
      }
    }
    l->driver = DRIVER_POOL;
    /* The pool thread polls only for async calls that nobody else waits
     * for: with a caller waiting, the caller should get the loop (and
     * the CPU) as soon as it can. */
    l->may_spin = l->background > 0 && l->followers == 0;
    l->urgent = false;
    l->grace_ms = CALLER_GRACE_MS;
    pthread_mutex_unlock(&l->drive_mu);
    crpc__loop_run_once(l, -1);
    pthread_mutex_lock(&l->drive_mu);
    bool yield = l->yield_asked;
    l->yield_asked = false;
    l->driver = DRIVER_NONE;
    if (yield) { /* a caller takes over now */
      l->released_ms = crpc__now_ms();
      l->released_due_ms = next_due(l);
    }
    round_done(l);
  }
  pthread_mutex_unlock(&l->drive_mu);
  const crpc__loop *prev = current_loop;
  current_loop = l;
  while (has_tasks(l) || has_own_tasks(l)) { /* let posted clean-ups run */
    run_tasks(l);
    run_own_tasks(l);
  }
  current_loop = prev;
}

static void *loop_main(void *arg) {
  crpc__loop *l = arg;
  if (l->shared)
    run_shared(l);
  else
    crpc__loop_run(l);
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

uint8_t *crpc__loop_sbuf(crpc__loop *l, size_t *len) {
  *len = SBUF_SIZE;
  return l->sbuf;
}
