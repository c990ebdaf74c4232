/*
 * subchannel.c: one address of a channel's target: connecting to it with
 * a connect deadline, the TLS and HTTP/2 set-up, gRPC's connection backoff
 * after a failure, its current connection and the older ones still
 * finishing their calls. The load-balancing policy (lb.c) decides which
 * subchannels connect and which carry calls; the channel (channel.c)
 * hears of every state change. Everything here runs on the channel's loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <unistd.h>

#include "client_internal.h"

static void on_connected(crpc__io *io, uint32_t events);
static void on_connect_timeout(crpc__timer *t);
static void on_conn_ready(crpc__conn *conn);

bool crpc__addr_equal(const crpc__addr *a, const crpc__addr *b) {
  return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static void addr_name(const crpc__addr *a, char *buf, size_t len) {
  char host[64] = "?";
  const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const void *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    snprintf(buf, len, "%.64s:%u", host, ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const void *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    snprintf(buf, len, "[%.64s]:%u", host, ntohs(in6->sin6_port));
  } else if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const void *)sa;
    snprintf(buf, len, "unix:%.100s", un->sun_path);
  } else {
    snprintf(buf, len, "?");
  }
}

crpc__subchannel *crpc__subchannel_new(crpc_channel *ch, const crpc__addr *a) {
  crpc__subchannel *sc = crpc__calloc(&ch->mem, 1, sizeof *sc);
  if (!sc)
    return NULL;
  sc->ch = ch;
  sc->addr = *a;
  addr_name(a, sc->name, sizeof sc->name);
  sc->state = CH_IDLE;
  sc->connect_io.fd = -1;
  sc->backoff_ms = ch->initial_backoff_ms;
  return sc;
}

static void set_state(crpc__subchannel *sc, chan_state st) {
  if (sc->state == st)
    return;
  sc->state = st;
  if (!sc->removed)
    crpc__channel_sub_state(sc);
}

static void maybe_free(crpc__subchannel *sc) {
  if (sc->removed && sc->nconns == 0 && sc->connect_io.fd < 0 &&
      !sc->conn && !sc->draining && !sc->ready_queued) {
    crpc_channel *ch = sc->ch;
    crpc__timer_stop(ch->loop, &sc->backoff_timer);
    crpc__timer_stop(ch->loop, &sc->connect_timer);
    crpc__free(&ch->mem, sc);
  }
}

static void on_backoff_done(crpc__timer *t) {
  crpc__subchannel *sc = (crpc__subchannel *)((char *)t -
                                              offsetof(crpc__subchannel,
                                                       backoff_timer));
  if (sc->removed)
    return;
  sc->state = CH_IDLE; /* quietly: the policy reconnects or waits */
  if (sc->reconnect)
    crpc__subchannel_connect(sc);
  else
    crpc__channel_sub_state(sc);
}

/* A connect attempt failed: TRANSIENT_FAILURE until the backoff ends
 * (gRPC's connection backoff: x1.6 a time, +-20% jitter, capped). */
static void connect_failed(crpc__subchannel *sc, const char *why) {
  crpc_channel *ch = sc->ch;
  snprintf(sc->last_error, sizeof sc->last_error, "%s: %s", sc->name, why);
  crpc__log_info("failed to connect to %s (%s): %s", ch->target, sc->name,
                 why);
  int64_t b = sc->backoff_ms;
  int64_t jitter = b / 5;
  int64_t wait = b - jitter + (jitter ? rand() % (2 * jitter + 1) : 0);
  sc->backoff_ms = b * 16 / 10;
  if (sc->backoff_ms > ch->max_backoff_ms)
    sc->backoff_ms = ch->max_backoff_ms;
  sc->backoff_timer.cb = on_backoff_done;
  crpc__timer_start(ch->loop, &sc->backoff_timer, crpc__now_ms() + wait);
  set_state(sc, CH_TRANSIENT_FAILURE);
  crpc__channel_reresolve(ch); /* the address may have moved */
}

void crpc__subchannel_connect(crpc__subchannel *sc) {
  crpc_channel *ch = sc->ch;
  if (sc->state != CH_IDLE || sc->removed || ch->shutting_down)
    return;
  int fd = crpc__sock_connect(&sc->addr);
  if (fd < 0) {
    connect_failed(sc, strerror(errno));
    return;
  }
  sc->connect_io.fd = fd;
  sc->connect_io.cb = on_connected;
  sc->connect_io.watching = 0;
  if (crpc__io_watch(ch->loop, &sc->connect_io, EPOLLOUT) != 0) {
    close(fd);
    sc->connect_io.fd = -1;
    connect_failed(sc, "cannot watch the socket");
    return;
  }
  /* a SYN into the void must not hang the channel for minutes */
  sc->connect_timer.cb = on_connect_timeout;
  crpc__timer_start(ch->loop, &sc->connect_timer,
                    crpc__now_ms() + ch->handshake_ms);
  set_state(sc, CH_CONNECTING);
}

static void stop_connecting(crpc__subchannel *sc) {
  crpc_channel *ch = sc->ch;
  crpc__timer_stop(ch->loop, &sc->connect_timer);
  if (sc->connect_io.fd >= 0) {
    crpc__io_unwatch(ch->loop, &sc->connect_io);
    close(sc->connect_io.fd);
    sc->connect_io.fd = -1;
  }
}

static void on_connect_timeout(crpc__timer *t) {
  crpc__subchannel *sc = (crpc__subchannel *)((char *)t -
                                              offsetof(crpc__subchannel,
                                                       connect_timer));
  stop_connecting(sc);
  connect_failed(sc, "connect timed out");
  maybe_free(sc);
}

static void push_draining(crpc__subchannel *sc, crpc__conn *conn) {
  conn->next = sc->draining;
  conn->prev = NULL;
  if (sc->draining)
    sc->draining->prev = conn;
  sc->draining = conn;
}

/* The connection stays until its calls finish; new calls go elsewhere. */
static void retire_conn(crpc__subchannel *sc) {
  crpc__conn *conn = sc->conn;
  sc->conn = NULL;
  push_draining(sc, conn);
  if (conn->ncalls == 0)
    crpc__conn_close(conn, CRPC_UNAVAILABLE, "connection retired");
  sc->state = CH_IDLE;
  if (sc->reconnect && !sc->removed)
    crpc__subchannel_connect(sc); /* round_robin keeps every one up */
  else if (!sc->removed)
    crpc__channel_sub_state(sc);
  crpc__channel_reresolve(sc->ch); /* GOAWAY: the servers may have moved */
}

static bool conn_usable(crpc__conn *conn) {
  return conn && !conn->dead && !conn->goaway_received &&
         nghttp2_session_check_request_allowed(conn->session);
}

crpc__conn *crpc__subchannel_conn(crpc__subchannel *sc) {
  if (sc->state != CH_READY)
    return NULL;
  if (!conn_usable(sc->conn)) {
    retire_conn(sc);
    return NULL;
  }
  return sc->conn;
}

static void on_conn_closed(crpc__conn *conn) {
  crpc__subchannel *sc = conn->owner;
  if (sc->conn == conn) {
    sc->conn = NULL;
    if (sc->removed)
      return;
    if (sc->state == CH_CONNECTING) { /* no HTTP/2 from this address */
      connect_failed(sc, conn->close_msg[0]
                             ? conn->close_msg
                             : "closed before the HTTP/2 handshake finished");
      return;
    }
    if (sc->state == CH_READY) {
      /* lost: IDLE (gRPC), reconnect when the policy wants it */
      sc->state = CH_IDLE;
      if (sc->reconnect)
        crpc__subchannel_connect(sc);
      else
        crpc__channel_sub_state(sc);
      crpc__channel_reresolve(sc->ch);
    }
    return;
  }
  for (crpc__conn *d = sc->draining; d; d = d->next) {
    if (d == conn) {
      if (d->prev)
        d->prev->next = d->next;
      else
        sc->draining = d->next;
      if (d->next)
        d->next->prev = d->prev;
      return;
    }
  }
}

/* The conn's memory (from ch->mem) is all freed. */
static void on_conn_freed(void *owner) {
  crpc__subchannel *sc = owner;
  crpc_channel *ch = sc->ch;
  sc->nconns--;
  maybe_free(sc);
  crpc__channel_conn_freed(ch); /* may be the channel's last word */
}

static void on_connected(crpc__io *io, uint32_t events) {
  crpc__subchannel *sc = (crpc__subchannel *)((char *)io -
                                              offsetof(crpc__subchannel,
                                                       connect_io));
  crpc_channel *ch = sc->ch;
  CRPC__UNUSED(events);
  int fd = io->fd;
  crpc__io_unwatch(ch->loop, io);
  crpc__timer_stop(ch->loop, &sc->connect_timer);
  io->fd = -1;
  int err = crpc__sock_connect_result(fd);
  if (err) {
    close(fd);
    connect_failed(sc, strerror(err));
    maybe_free(sc);
    return;
  }
  crpc__transport *tp = NULL;
  if (ch->tls) {
    const char *why = NULL;
    if (crpc__tls_client_transport(ch->tls, ch->host, &tp, &why) != 0) {
      close(fd);
      connect_failed(sc, why ? why : "TLS setup failed");
      maybe_free(sc);
      return;
    }
  }
  static const crpc__conn_hooks hooks = {.streams = &crpc__client_streams,
                                         .on_closed = on_conn_closed,
                                         .on_freed = on_conn_freed,
                                         .on_ready = on_conn_ready};
  crpc__conn *conn;
  if (crpc__conn_new(&conn, ch->loop, fd, tp, false, sc, &hooks, &ch->mem) !=
      0) {
    if (tp)
      tp->ops->free(tp);
    close(fd);
    connect_failed(sc, "out of memory");
    maybe_free(sc);
    return;
  }
  sc->nconns++;
  ch->nconns++;
  crpc__sock_peer_string(fd, conn->peer, sizeof conn->peer);
  conn->handshake_ms = ch->handshake_ms;
  conn->keepalive_ms = ch->keepalive_ms;
  conn->keepalive_timeout_ms = ch->keepalive_timeout_ms;
  conn->out.limit = ch->max_conn_out;
  conn->stall_ms = ch->stall_ms;
  if (crpc__h2_session_new(conn, 0, 0) != 0) {
    crpc__conn_close(conn, CRPC_UNAVAILABLE, "out of memory");
    connect_failed(sc, "out of memory");
    return;
  }
  if (sc->removed) { /* resolved away while it connected */
    crpc__conn_close(conn, CRPC_UNAVAILABLE, "address no longer resolved");
    return;
  }
  sc->conn = conn; /* READY once the server's SETTINGS come (on_ready) */
  crpc__conn_start(conn); /* TLS: the ClientHello goes out first */
}

static void ready_task(void *arg) {
  crpc__subchannel *sc = arg;
  sc->ready_queued = false;
  if (sc->removed) {
    maybe_free(sc);
    return;
  }
  if (sc->state != CH_CONNECTING || !conn_usable(sc->conn))
    return;
  sc->backoff_ms = sc->ch->initial_backoff_ms;
  set_state(sc, CH_READY); /* the channel submits what waits */
}

/* Inside nghttp2's callback: the state changes in a task of its own. */
static void on_conn_ready(crpc__conn *conn) {
  crpc__subchannel *sc = conn->owner;
  if (sc->conn != conn || sc->ready_queued)
    return;
  sc->ready_queued = true;
  sc->ready_task.fn = ready_task;
  sc->ready_task.arg = sc;
  sc->ready_task.heap = false;
  crpc__loop_post_task(sc->ch->loop, &sc->ready_task);
}

void crpc__subchannel_remove(crpc__subchannel *sc) {
  sc->removed = true;
  stop_connecting(sc);
  crpc__timer_stop(sc->ch->loop, &sc->backoff_timer);
  if (sc->conn) {
    crpc__conn *conn = sc->conn;
    sc->conn = NULL;
    push_draining(sc, conn);
    if (conn->ncalls == 0)
      crpc__conn_close(conn, CRPC_UNAVAILABLE, "address no longer resolved");
  }
  maybe_free(sc);
}

void crpc__subchannel_close(crpc__subchannel *sc) {
  sc->removed = true;
  stop_connecting(sc);
  crpc__timer_stop(sc->ch->loop, &sc->backoff_timer);
  if (sc->conn) {
    crpc__conn *conn = sc->conn;
    sc->conn = NULL;
    crpc__conn_close(conn, CRPC_CANCELLED, "channel closed");
  }
  while (sc->draining) {
    crpc__conn *d = sc->draining;
    sc->draining = d->next;
    d->next = d->prev = NULL;
    crpc__conn_close(d, CRPC_CANCELLED, "channel closed");
  }
  /* closed connections are freed by tasks queued behind this one; the
   * last frees the subchannel */
  maybe_free(sc);
}
