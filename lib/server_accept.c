/*
 * server_accept.c: a server's connections on a reactor thread: accepting
 * (out of descriptors: pause and evict), max_connections (a connection
 * that finds every slot taken waits, parked, for one to free), eviction of
 * idle ones, and the thread's part of a graceful shutdown.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "server_internal.h"

/* ---- connections and threads [loop] ---- */

static void report_drained(srv_thread *t) {
  if (t->reported || !t->draining || t->nconns)
    return;
  t->reported = true;
  crpc__timer_stop(t->loop, &t->grace_timer);
  pthread_mutex_lock(&t->srv->mu);
  t->srv->threads_drained++;
  pthread_cond_broadcast(&t->srv->cv);
  pthread_mutex_unlock(&t->srv->mu);
}

static void wake_parked(crpc_server *s);

static void on_conn_closed(crpc__conn *conn) {
  srv_thread *t = conn->owner;
  if (!t)
    return; /* never made it into the list */
  atomic_fetch_sub(&t->srv->nconns, 1);
  if (conn->prev)
    conn->prev->next = conn->next;
  else
    t->conns = conn->next;
  if (conn->next)
    conn->next->prev = conn->prev;
  t->nconns--;
  report_drained(t);
  if (atomic_load(&t->srv->nparked))
    wake_parked(t->srv);
}

/* Makes room for a new connection by closing this thread's oldest one
 * that has no call, preferring one stuck in its handshake or preface for
 * over a second (slow-loris). False when every connection is busy. */
static bool evict_idle(srv_thread *t) {
  crpc__conn *idle = NULL, *stuck = NULL;
  int64_t now = crpc__now_ms();
  for (crpc__conn *c = t->conns; c; c = c->next) { /* newest first */
    if (c->dead || c->ncalls)
      continue;
    idle = c;
    if (!c->preface_done && now - c->born_ms > 1000)
      stuck = c;
  }
  crpc__conn *v = stuck ? stuck : idle;
  if (!v)
    return false;
  crpc__log_info("%s: closed to make room for a new connection", v->peer);
  if (v->preface_done) {
    nghttp2_session_terminate_session(v->session, NGHTTP2_NO_ERROR);
    crpc__conn_flush(v); /* GOAWAY, then it closes */
  }
  if (!v->dead)
    crpc__conn_close(v, CRPC_UNAVAILABLE, "connection limit reached");
  return true;
}

static void on_accept_resume(crpc__timer *tm) {
  lwatch *lw = (lwatch *)((char *)tm - offsetof(lwatch, pause));
  if (!lw->t->draining)
    crpc__io_watch_exclusive(lw->t->loop, &lw->io);
}

/* Takes one of max_connections' slots; false when all are taken. */
static bool take_slot(crpc_server *s) {
  uint32_t max = s->opts.max_connections;
  unsigned n = atomic_load(&s->nconns);
  do {
    if (max && n >= max)
      return false;
  } while (!atomic_compare_exchange_weak(&s->nconns, &n, n + 1));
  return true;
}

/* Starts serving an accepted socket that holds a slot (released here on
 * failure; on_conn_closed releases it otherwise). */
static void start_conn(srv_thread *t, int fd, int lidx) {
  crpc_server *s = t->srv;
  listener *l = &s->listeners[lidx];
  static const crpc__conn_hooks hooks = {.streams = &crpc__server_streams,
                                         .on_closed = on_conn_closed,
                                         .on_drained = crpc__server_conn_drained};
  crpc__transport *tp = NULL;
  if (l->tls) {
    const char *why = NULL;
    if (crpc__tls_server_transport(l->tls, &tp, &why) != 0) {
      crpc__log_warn("TLS: %s", why ? why : "cannot start");
      goto fail_fd;
    }
  }
  crpc__conn *conn;
  if (crpc__conn_new(&conn, t->loop, fd, tp, true, t, &hooks, &s->mem) !=
      0) {
    if (tp)
      tp->ops->free(tp);
    goto fail_fd;
  }
  conn->server = s;
  conn->handshake_ms = s->opts.handshake_timeout_ms;
  conn->idle_ms = s->opts.idle_timeout_ms;
  conn->max_strikes = s->opts.max_ping_strikes;
  conn->min_ping_ms = s->opts.keepalive_min_time_ms;
  conn->ping_without_calls = s->opts.permit_keepalive_without_calls;
  conn->max_age_ms = s->opts.max_connection_age_ms;
  conn->age_grace_ms = s->opts.max_connection_age_grace_ms;
  if (s->opts.keepalive_time_ms > 0) {
    conn->keepalive_ms = s->opts.keepalive_time_ms;
    conn->keepalive_timeout_ms = s->opts.keepalive_timeout_ms;
  }
  conn->out.limit = s->max_conn_out;
  conn->out_parent = &s->out;
  conn->stall_ms = s->stall_ms;
  crpc__sock_peer_string(fd, conn->peer, sizeof conn->peer);
  if (crpc__h2_session_new(conn, s->opts.max_concurrent_streams,
                           s->opts.max_header_list_size) != 0) {
    conn->owner = NULL;
    crpc__conn_close(conn, CRPC_UNAVAILABLE, "out of memory");
    goto fail_slot;
  }
  conn->next = t->conns;
  conn->prev = NULL;
  if (t->conns)
    t->conns->prev = conn;
  t->conns = conn;
  t->nconns++;
  crpc__conn_start(conn);
  return;
fail_fd:
  close(fd);
fail_slot:
  atomic_fetch_sub(&s->nconns, 1);
}

/* One fewer idle connection wanted from other threads (a parked one got a
 * slot or gave up), if any still is. */
static void drop_evict_token(crpc_server *s) {
  unsigned w = atomic_load(&s->evict_wanted);
  while (w && !atomic_compare_exchange_weak(&s->evict_wanted, &w, w - 1))
    ;
}

static void park_timer_arm(srv_thread *t) {
  if (t->npark)
    crpc__timer_start(t->loop, &t->park_timer, t->park[0].until_ms);
  else
    crpc__timer_stop(t->loop, &t->park_timer);
}

static parked park_pop(srv_thread *t) {
  parked p = t->park[0];
  t->npark--;
  memmove(&t->park[0], &t->park[1], t->npark * sizeof t->park[0]);
  atomic_fetch_sub(&t->srv->nparked, 1);
  drop_evict_token(t->srv);
  return p;
}

/* Parked connections that waited their whole handshake timeout are
 * refused. */
void crpc__server_park_expired(crpc__timer *tm) {
  srv_thread *t = (srv_thread *)((char *)tm - offsetof(srv_thread, park_timer));
  int64_t now = crpc__now_ms();
  while (t->npark && t->park[0].until_ms <= now) {
    parked p = park_pop(t);
    crpc__log_warn("connection refused: %u connections, none freed up",
                   t->srv->opts.max_connections);
    close(p.fd);
  }
  park_timer_arm(t);
}

/* A slot freed somewhere: the oldest parked connections get it. */
static void admit_parked(void *arg) {
  srv_thread *t = arg;
  atomic_store(&t->admit_queued, false);
  while (t->npark && !t->draining && take_slot(t->srv)) {
    parked p = park_pop(t);
    start_conn(t, p.fd, p.lidx);
  }
  park_timer_arm(t);
}

/* Another thread parked a connection it could not make room for. */
static void evict_for_others(void *arg) {
  srv_thread *t = arg;
  crpc_server *s = t->srv;
  atomic_store(&t->evict_queued, false);
  unsigned w = atomic_load(&s->evict_wanted);
  while (w && !t->draining) {
    if (!atomic_compare_exchange_weak(&s->evict_wanted, &w, w - 1))
      continue;
    if (!evict_idle(t)) {
      atomic_fetch_add(&s->evict_wanted, 1); /* nothing idle here */
      return;
    }
    w = atomic_load(&s->evict_wanted);
  }
}

static void post_once(srv_thread *t, crpc__task *task, atomic_bool *queued,
                      crpc__task_fn fn) {
  if (atomic_exchange(queued, true))
    return;
  task->fn = fn;
  task->arg = t;
  crpc__loop_post_task(t->loop, task);
}

/* Any thread: a slot may have freed up. */
static void wake_parked(crpc_server *s) {
  for (unsigned i = 0; i < s->nthreads; i++)
    post_once(&s->threads[i], &s->threads[i].admit_task,
              &s->threads[i].admit_queued, admit_parked);
}

/*
 * Every slot is taken: rather than refuse at once, the connection waits
 * (accepted, not read) for one to free up, for at most its handshake
 * timeout. A client that arrives just as another one leaves is then
 * served even when the server learns of the departure after the arrival
 * (another thread's connection, or a later event in this round). To make
 * room, this thread closes its oldest idle connection, or asks the other
 * threads to close one of theirs. False when the thread's park is full.
 */
static bool park(srv_thread *t, int fd, int lidx) {
  crpc_server *s = t->srv;
  if (t->npark == PARK_MAX)
    return false;
  int64_t wait = s->opts.handshake_timeout_ms > 0 ? s->opts.handshake_timeout_ms
                                                  : 20000;
  t->park[t->npark++] = (parked){fd, lidx, crpc__now_ms() + wait};
  atomic_fetch_add(&s->nparked, 1);
  park_timer_arm(t);
  if (evict_idle(t))
    return true; /* its on_conn_closed admits this one */
  atomic_fetch_add(&s->evict_wanted, 1);
  for (unsigned i = 0; i < s->nthreads; i++)
    if (&s->threads[i] != t)
      post_once(&s->threads[i], &s->threads[i].evict_task,
                &s->threads[i].evict_queued, evict_for_others);
  return true;
}

void crpc__server_on_accept(crpc__io *io, uint32_t events) {
  lwatch *lw = (lwatch *)io;
  srv_thread *t = lw->t;
  crpc_server *s = t->srv;
  listener *l = &s->listeners[lw->idx];
  CRPC__UNUSED(events);
  for (int i = 0; i < ACCEPTS_PER_ROUND && !t->draining; i++) {
    int fd = crpc__sock_accept(l->fd);
    if (fd < 0) {
      struct pollfd p = {.fd = l->fd, .events = POLLIN};
      if ((errno == EMFILE || errno == ENFILE) && poll(&p, 1, 0) == 1) {
        /* a connection waits and the listener stays readable: without
         * this the loop would spin */
        crpc__log_warn("accept: %s", strerror(errno));
        if (!evict_idle(t)) {
          crpc__io_unwatch(t->loop, &lw->io);
          lw->pause.cb = on_accept_resume;
          crpc__timer_start(t->loop, &lw->pause, crpc__now_ms() + 100);
        }
      }
      return;
    }
    if (take_slot(s)) {
      start_conn(t, fd, lw->idx);
    } else if (!park(t, fd, lw->idx)) {
      crpc__log_warn("connection refused: %u connections, all busy",
                     s->opts.max_connections);
      close(fd);
    }
  }
}

static void on_grace_expired(crpc__timer *tm) {
  srv_thread *t =
      (srv_thread *)((char *)tm - offsetof(srv_thread, grace_timer));
  crpc__conn *c = t->conns;
  while (c) {
    crpc__conn *next = c->next;
    crpc__conn_close(c, CRPC_CANCELLED, "server shutting down");
    c = next;
  }
}

void crpc__server_thread_shutdown(void *arg) {
  srv_thread *t = arg;
  crpc_server *s = t->srv;
  t->draining = true;
  for (int i = 0; i < s->nlisteners; i++)
    crpc__io_unwatch(t->loop, &t->lio[i].io);
  while (t->npark)
    close(park_pop(t).fd);
  park_timer_arm(t);
  /* the last thread to stop watching closes the listeners, so new
   * connections are refused rather than left in the backlog */
  pthread_mutex_lock(&s->mu);
  if (++s->threads_unwatched == s->nthreads) {
    for (int i = 0; i < s->nlisteners; i++) {
      close(s->listeners[i].fd);
      s->listeners[i].fd = -1;
    }
  }
  pthread_mutex_unlock(&s->mu);
  for (crpc__conn *c = t->conns; c; c = c->next) {
    if (c->dead || !c->session)
      continue;
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session),
                          NGHTTP2_NO_ERROR, NULL, 0);
    crpc__conn_flush(c); /* closes at once when no stream is open */
  }
  if (t->grace_ms >= 0 && t->nconns) {
    t->grace_timer.cb = on_grace_expired;
    crpc__timer_start(t->loop, &t->grace_timer, crpc__now_ms() + t->grace_ms);
  }
  report_drained(t);
}
