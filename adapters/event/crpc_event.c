/*
 * crpc_event.c: drives a crpc_loop from libevent through crpc's
 * socket-callback mode: one persistent event per descriptor crpc asks to
 * watch, one timer event for crpc's next deadline.
 */
#include <stdlib.h>
#include <string.h>

#include <crpc/event.h>

struct crpc_event {
  struct event_base *base;
  crpc_loop *loop;
  struct event *timer;
  struct event **byfd;
  size_t nbyfd;
};

static void on_fd(evutil_socket_t fd, short what, void *ud) {
  struct crpc_event *ce = ud;
  unsigned ev = (what & EV_READ ? CRPC_LOOP_READ : 0) |
                (what & EV_WRITE ? CRPC_LOOP_WRITE : 0);
  crpc_loop_fd_ready(ce->loop, (int)fd, ev);
}

static void on_watch(crpc_loop *loop, int fd, unsigned events, void *ud) {
  struct crpc_event *ce = ud;
  (void)loop;
  struct event *e = (size_t)fd < ce->nbyfd ? ce->byfd[fd] : NULL;
  if (e) { /* libevent cannot change an event's interest: a new one */
    event_free(e);
    ce->byfd[fd] = NULL;
  }
  if (!events)
    return;
  if ((size_t)fd >= ce->nbyfd) {
    size_t n = ce->nbyfd ? ce->nbyfd : 64;
    while (n <= (size_t)fd)
      n *= 2;
    struct event **m = realloc(ce->byfd, n * sizeof *m);
    if (!m)
      return; /* crpc's deadlines still end the calls on this fd */
    memset(m + ce->nbyfd, 0, (n - ce->nbyfd) * sizeof *m);
    ce->byfd = m;
    ce->nbyfd = n;
  }
  short what = (short)(EV_PERSIST | (events & CRPC_LOOP_READ ? EV_READ : 0) |
                       (events & CRPC_LOOP_WRITE ? EV_WRITE : 0));
  if ((e = event_new(ce->base, fd, what, on_fd, ce)) == NULL)
    return;
  event_add(e, NULL);
  ce->byfd[fd] = e;
}

static void on_ev_timer(evutil_socket_t fd, short what, void *ud) {
  struct crpc_event *ce = ud;
  (void)fd, (void)what;
  crpc_loop_timer_expired(ce->loop);
}

static void on_timer(crpc_loop *loop, int64_t ms, void *ud) {
  struct crpc_event *ce = ud;
  (void)loop;
  if (ms < 0) {
    evtimer_del(ce->timer);
    return;
  }
  struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                       .tv_usec = (suseconds_t)(ms % 1000) * 1000};
  evtimer_add(ce->timer, &tv);
}

int crpc_event_new(crpc_event **out, struct event_base *base,
                   const crpc_mem *mem) {
  if (!out || !base)
    return CRPC_EINVAL;
  struct crpc_event *ce = calloc(1, sizeof *ce);
  if (!ce)
    return CRPC_ENOMEM;
  ce->base = base;
  if ((ce->timer = evtimer_new(base, on_ev_timer, ce)) == NULL) {
    free(ce);
    return CRPC_ENOMEM;
  }
  crpc_loop_opts lo = {.watch = on_watch, .timer = on_timer, .user_data = ce,
                       .mem = mem};
  int rv = crpc_loop_new(&ce->loop, &lo);
  if (rv != 0) {
    crpc_event_free(ce);
    return rv;
  }
  *out = ce;
  return 0;
}

crpc_loop *crpc_event_loop(crpc_event *ce) { return ce ? ce->loop : NULL; }

void crpc_event_free(crpc_event *ce) {
  if (!ce)
    return;
  for (size_t fd = 0; fd < ce->nbyfd; fd++)
    if (ce->byfd[fd])
      event_free(ce->byfd[fd]);
  event_free(ce->timer);
  crpc_loop_free(ce->loop);
  free(ce->byfd);
  free(ce);
}
