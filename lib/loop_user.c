/*
 * loop_user.c: the public face of the reactor (crpc/loop.h), a loop the
 * program drives: through its epoll descriptor (one-descriptor mode) or
 * through watch and timer callbacks (socket-callback mode, the shape of
 * curl's multi_socket API). Either way the epoll set stays complete, so
 * crpc can drive the loop itself where the program waits inside crpc on
 * the loop's thread (a shutdown, a blocking call).
 */
#include <string.h>
#include <sys/epoll.h>

#include "loop_impl.h"

static crpc__loop *L(crpc_loop *loop) { return (crpc__loop *)loop; }
static const crpc__loop *CL(const crpc_loop *loop) {
  return (const crpc__loop *)loop;
}

int crpc_loop_new(crpc_loop **out, const crpc_loop_opts *opts) {
  crpc_loop_opts none = {0};
  crpc_mem mem;
  if (!out)
    return CRPC_EINVAL;
  if (!opts)
    opts = &none;
  if (!opts->watch != !opts->timer)
    return CRPC_EINVAL;
  crpc__mem_init(&mem, opts->mem);
  crpc__loop *l;
  int rv = crpc__loop_new(&l, &mem);
  if (rv != 0)
    return rv;
  l->own_mem = mem; /* the loop keeps its own copy */
  l->mem = &l->own_mem;
  l->user = true;
  l->owner = pthread_self();
  l->reported_when = -1;
  if (opts->watch) {
    l->watch = opts->watch;
    l->timer = opts->timer;
    l->cb_ud = opts->user_data;
    /* the wake-up descriptor was added before there was anyone to tell */
    if ((rv = crpc__loop_report_io(l, &l->wake)) != 0) {
      crpc__loop_free(l);
      return rv;
    }
  }
  *out = (crpc_loop *)l;
  return 0;
}

static bool wrong_thread(const crpc__loop *l);

void crpc_loop_free(crpc_loop *loop) {
  crpc__loop *l = L(loop);
  if (!l)
    return;
  /* what is still to run: a server or channel freed from inside a
   * callback of the last turn finishes its free here */
  if (!crpc__loop_in_round(l) && !wrong_thread(l))
    crpc__loop_run_own_now(l);
  crpc__free(l->mem, l->fdmap);
  l->fdmap = NULL;
  crpc__loop_free(l);
}

int crpc_loop_fd(const crpc_loop *loop) {
  const crpc__loop *l = CL(loop);
  return l && !l->watch ? l->epfd : -1;
}

int64_t crpc_loop_timeout_ms(crpc_loop *loop) {
  return loop ? crpc__loop_wants_ms(L(loop)) : -1;
}

/* The loop's functions belong to its thread; elsewhere they refuse. */
static bool wrong_thread(const crpc__loop *l) {
  return !pthread_equal(l->owner, pthread_self());
}

int crpc_loop_run_once(crpc_loop *loop, int timeout_ms) {
  crpc__loop *l = L(loop);
  if (!l)
    return CRPC_EINVAL;
  if (l->watch || crpc__loop_in_round(l) || wrong_thread(l))
    return CRPC_ESTATE;
  l->public_round = true;
  crpc__loop_run_once(l, timeout_ms);
  l->public_round = false;
  return 0;
}

int crpc_loop_run(crpc_loop *loop) {
  crpc__loop *l = L(loop);
  if (!l)
    return CRPC_EINVAL;
  if (l->watch || crpc__loop_in_round(l) || wrong_thread(l))
    return CRPC_ESTATE;
  pthread_mutex_lock(&l->mu);
  l->stopping = false;
  pthread_mutex_unlock(&l->mu);
  for (;;) {
    pthread_mutex_lock(&l->mu);
    bool stop = l->stopping;
    pthread_mutex_unlock(&l->mu);
    if (stop)
      return 0;
    crpc_loop_run_once(loop, -1);
  }
}

void crpc_loop_stop(crpc_loop *loop) {
  if (loop)
    crpc__loop_stop(L(loop));
}

static int callback_round(crpc__loop *l, crpc__io *io, uint32_t events) {
  if (!l->watch || crpc__loop_in_round(l) || wrong_thread(l))
    return CRPC_ESTATE;
  l->public_round = true;
  crpc__loop_callback_round(l, io, events);
  l->public_round = false;
  return 0;
}

int crpc_loop_fd_ready(crpc_loop *loop, int fd, unsigned events) {
  crpc__loop *l = L(loop);
  if (!l)
    return CRPC_EINVAL;
  if (!l->watch || crpc__loop_in_round(l) || wrong_thread(l))
    return CRPC_ESTATE;
  if (fd < 0 || (size_t)fd >= l->nfdmap || !l->fdmap[fd])
    return CRPC_EINVAL;
  crpc__io *io = l->fdmap[fd];
  uint32_t ev = (events & CRPC_LOOP_READ ? EPOLLIN : 0) |
                (events & CRPC_LOOP_WRITE ? EPOLLOUT : 0);
  /* only what it asked for: a stale readiness must not look like more */
  ev &= io->watching | EPOLLIN;
  return callback_round(l, io, ev ? ev : EPOLLIN);
}

int crpc_loop_timer_expired(crpc_loop *loop) {
  crpc__loop *l = L(loop);
  if (!l)
    return CRPC_EINVAL;
  l->reported_when = -1; /* that timer is gone: report the next one */
  return callback_round(l, NULL, 0);
}

int crpc_loop_is_current(const crpc_loop *loop) {
  return loop && pthread_equal(CL(loop)->owner, pthread_self());
}

bool crpc__loop_is_owner(const crpc__loop *l) {
  return l->user && pthread_equal(l->owner, pthread_self());
}

bool crpc__loop_may_drive(const crpc__loop *l) {
  return !l->user || (pthread_equal(l->owner, pthread_self()) &&
                      !crpc__loop_in_round(l));
}
