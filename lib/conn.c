/*
 * conn.c: drives one nghttp2 session over a byte stream on its reactor
 * thread: reads into the loop's buffer, feeds nghttp2 and routes stream
 * events to the call; its output is conn_write.c's.
 */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "call_internal.h"

#define MAX_READS_PER_ROUND 16
/* Frames nghttp2 may hold for a peer that does not read (a stalled but
 * honest connection has a few per open stream). */
#define MAX_QUEUED_FRAMES 10000

static void conn_on_io(crpc__io *io, uint32_t events);
static void on_guard(crpc__timer *t);
static void on_stall(crpc__timer *t);

static void drain_task(void *arg) {
  crpc__conn *c = arg;
  atomic_store(&c->drain_queued, false);
  crpc__conn_drained(c);
}

static void on_out_drained(crpc__budget *b) {
  crpc__conn_post_drained(b->owner);
}

void crpc__conn_post_drained(crpc__conn *c) {
  if (atomic_exchange(&c->drain_queued, true))
    return;
  crpc__loop_post_task(c->loop, &c->drain_task);
}

void crpc__conn_drained(crpc__conn *c) {
  if (c->dead)
    return;
  for (crpc_call *call = c->calls; call; call = call->conn_next) {
    pthread_mutex_lock(&call->mu);
    if (call->writers_waiting)
      crpc__call_notify(call);
    pthread_mutex_unlock(&call->mu);
  }
  if (c->hooks.on_drained)
    c->hooks.on_drained(c);
}

/* Closes the connection stall_ms after the peer last took DATA, if
 * writers are then blocked on it (or its budget is full); checked again
 * at that time after any progress. */
static void on_stall(crpc__timer *t) {
  crpc__conn *c = (crpc__conn *)((char *)t - offsetof(crpc__conn, stall_timer));
  bool stuck = atomic_load(&c->out.waiters) > 0 || crpc__budget_full(&c->out);
  int64_t now = crpc__now_ms();
  if (stuck && now - c->last_progress_ms >= c->stall_ms) {
    crpc__log_warn("%s: peer read nothing for %lld ms with %zu bytes queued: "
                   "closing", c->peer, (long long)c->stall_ms,
                   atomic_load(&c->out.used));
    if (c->session && !c->handshaking) {
      nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
      crpc__conn_flush(c); /* GOAWAY, if the socket still takes it */
    }
    crpc__conn_close(c, CRPC_UNAVAILABLE,
                     "the peer stopped reading (write stall timeout)");
    return;
  }
  if (atomic_load(&c->out.used) == 0)
    return; /* nothing queued: stall_arm() starts watching again */
  int64_t next = c->last_progress_ms + c->stall_ms;
  crpc__timer_start(c->loop, &c->stall_timer,
                    next > now ? next : now + c->stall_ms);
}

static void flush_task(void *arg) {
  crpc__conn *c = arg;
  c->flush_queued = false;
  crpc__conn_flush(c);
}

static void destroy_task(void *arg) {
  crpc__conn *c = arg;
  crpc__timer_stop(c->loop, &c->stall_timer);
  if (c->hooks.on_closed)
    c->hooks.on_closed(c);
  if (c->session)
    nghttp2_session_del(c->session);
  if (c->tp)
    c->tp->ops->free(c->tp);
  close(c->io.fd);
  crpc__free(c->mem, c->wbuf);
  void (*on_freed)(void *) = c->hooks.on_freed;
  void *owner = c->owner;
  crpc__free(c->mem, c);
  if (on_freed)
    on_freed(owner);
}

int crpc__conn_new(crpc__conn **out, crpc__loop *loop, int fd,
                   crpc__transport *tp, bool is_server, void *owner,
                   const crpc__conn_hooks *hooks, const crpc_mem *mem) {
  crpc__conn *c = crpc__calloc(mem, 1, sizeof *c);
  if (!c)
    return CRPC_ENOMEM;
  c->mem = mem;
  c->loop = loop;
  c->io.fd = fd;
  c->io.cb = conn_on_io;
  c->tp = tp;
  c->is_server = is_server;
  c->owner = owner;
  c->hooks = *hooks;
  c->handshaking = tp != NULL;
  c->flush_task.fn = flush_task;
  c->flush_task.arg = c;
  c->close_task.fn = destroy_task;
  c->close_task.arg = c;
  c->guard_timer.cb = on_guard;
  c->stall_timer.cb = on_stall;
  c->drain_task.fn = drain_task;
  c->drain_task.arg = c;
  c->out.on_drained = on_out_drained;
  c->out.owner = c;
  if (crpc__io_watch(loop, &c->io, EPOLLIN | EPOLLRDHUP) != 0) {
    crpc__free(mem, c);
    return CRPC_ESYS;
  }
  *out = c;
  return 0;
}

void crpc__conn_attach(crpc__conn *c, crpc_call *call) {
  call->conn = c;
  call->conn_prev = NULL;
  call->conn_next = c->calls;
  if (c->calls)
    c->calls->conn_prev = call;
  c->calls = call;
  c->ncalls++;
  crpc__call_ref(call); /* the connection's reference */
  crpc__call_budget_attach(call, &c->out, c->out_parent);
  if (c->idle_ms > 0 && c->preface_done)
    crpc__timer_stop(c->loop, &c->guard_timer); /* busy: not idle */
}

void crpc__conn_detach(crpc__conn *c, crpc_call *call) {
  if (call->conn != c)
    return;
  if (call->conn_prev)
    call->conn_prev->conn_next = call->conn_next;
  else
    c->calls = call->conn_next;
  if (call->conn_next)
    call->conn_next->conn_prev = call->conn_prev;
  call->conn_next = call->conn_prev = NULL;
  call->conn = NULL;
  c->ncalls--;
  crpc__call_budget_detach(call);
  if (c->session && call->stream_id > 0)
    nghttp2_session_set_stream_user_data(c->session, call->stream_id, NULL);
  crpc__timer_stop(c->loop, &call->deadline_timer);
  crpc__call_unref(call);
  if (c->ncalls == 0 && c->idle_ms > 0 && c->preface_done && !c->dead)
    crpc__timer_start(c->loop, &c->guard_timer, crpc__now_ms() + c->idle_ms);
}

void crpc__conn_close(crpc__conn *c, crpc_code code, const char *msg) {
  if (c->dead)
    return;
  c->dead = true;
  snprintf(c->close_msg, sizeof c->close_msg, "%s", msg ? msg : "closed");
  crpc__io_unwatch(c->loop, &c->io);
  crpc__timer_stop(c->loop, &c->guard_timer);
  crpc__timer_stop(c->loop, &c->ka_timer);
  crpc__timer_stop(c->loop, &c->stall_timer);
  crpc__timer_stop(c->loop, &c->age_timer);
  while (c->calls) {
    crpc_call *call = c->calls;
    crpc__call_ref(call);
    c->hooks.streams->fail(call, code, msg);
    crpc__conn_detach(c, call); /* no-op if the fail already detached */
    crpc__call_unref(call);
  }
  /* Freed from the task queue: we may be inside an nghttp2 callback. */
  crpc__loop_post_task(c->loop, &c->close_task);
}

static crpc_call *stream_call(crpc__conn *c, int32_t id) {
  return nghttp2_session_get_stream_user_data(c->session, id);
}

/* ---- input ---- */

static void do_handshake(crpc__conn *c) {
  int r = c->tp->ops->handshake(c->tp, c->io.fd);
  if (r == 0) {
    c->handshaking = false;
    crpc__io_watch(c->loop, &c->io, EPOLLIN | EPOLLRDHUP);
    crpc__conn_flush(c);
    return;
  }
  if (r == CRPC__TP_WANT_READ)
    crpc__io_watch(c->loop, &c->io, EPOLLIN | EPOLLRDHUP);
  else if (r == CRPC__TP_WANT_WRITE)
    crpc__io_watch(c->loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
  else {
    crpc__log_warn("TLS handshake with %s failed: %s", c->peer,
                   c->tp->ops->error(c->tp));
    crpc__conn_close(c, CRPC_UNAVAILABLE, c->tp->ops->error(c->tp));
  }
}

/* ---- defences ---- */

/* The handshake deadline (slow-loris: a peer that never finishes the TLS
 * handshake or never sends its preface), then the idle deadline. */
static void on_guard(crpc__timer *t) {
  crpc__conn *c = (crpc__conn *)((char *)t - offsetof(crpc__conn, guard_timer));
  if (c->dead)
    return;
  if (c->calm_reason) { /* a peer that does not read its GOAWAY */
    crpc__conn_close(c, CRPC_UNAVAILABLE, c->calm_reason);
    return;
  }
  if (!c->preface_done) {
    const char *what = c->handshaking ? "the TLS handshake"
                                      : "the HTTP/2 preface (SETTINGS)";
    crpc__log_info("%s: no end to %s after %lld ms: closing", c->peer, what,
                   (long long)c->handshake_ms);
    crpc__conn_close(c, CRPC_UNAVAILABLE,
                     c->handshaking ? "timed out in the TLS handshake"
                                    : "timed out waiting for the HTTP/2 "
                                      "preface");
    return;
  }
  if (c->ncalls == 0 && c->idle_ms > 0) {
    crpc__log_debug("%s: idle for %lld ms: GOAWAY", c->peer,
                    (long long)c->idle_ms);
    nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
    crpc__conn_flush(c); /* sends the GOAWAY and closes */
    if (!c->dead)
      crpc__conn_close(c, CRPC_UNAVAILABLE, "idle connection closed");
  }
}

/* GOAWAY(ENHANCE_YOUR_CALM) with |why| as its debug data (gRPC clients
 * look for "too_many_pings" there), then nghttp2's terminating GOAWAY,
 * which also makes it ignore the rest of the input at once (a flood's
 * next frames); the connection closes once both are sent. Safe inside
 * nghttp2 callbacks. */
static void calm_down(crpc__conn *c, const char *why) {
  if (c->calm_reason || !c->session)
    return;
  c->calm_reason = why;
  crpc__log_warn("%s: %s: GOAWAY(ENHANCE_YOUR_CALM)", c->peer, why);
  nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(c->session),
                        NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)why,
                        strlen(why));
  nghttp2_session_terminate_session2(
      c->session, nghttp2_session_get_last_proc_stream_id(c->session),
      NGHTTP2_ENHANCE_YOUR_CALM);
  crpc__conn_schedule_flush(c);
  /* it closes once the GOAWAY is out; a peer that does not read gets a
   * second at most */
  crpc__timer_start(c->loop, &c->guard_timer, crpc__now_ms() + 1000);
}

/* A PING or SETTINGS from the peer. As gRPC's ping policy: one that comes
 * too soon after the previous one of its kind with no response (HEADERS
 * or DATA) sent in between is a strike; too many strikes is a flood. Each
 * costs us an ACK, so a peer could otherwise keep us busy for free.
 * Too soon: SETTINGS, 1 s; PING, keepalive_min_time_ms (gRPC's
 * min_ping_interval_without_data), or 2 hours on a connection without a
 * call unless permit_keepalive_without_calls (both as gRPC; 1 s when the
 * enforcement is off). Strikes are shared, as the one budget of ACKs. */
#define NO_CALL_PING_MS (2 * 3600 * 1000)
static void on_control(crpc__conn *c, bool ping) {
  int64_t now = crpc__now_ms();
  if (ping) {
    int64_t min = 1000;
    if (c->min_ping_ms > 0)
      min = c->ncalls == 0 && !c->ping_without_calls ? NO_CALL_PING_MS
                                                      : c->min_ping_ms;
    if (c->max_strikes && !c->sent_since_ping && c->last_ping_ms &&
        now - c->last_ping_ms < min && ++c->strikes > c->max_strikes)
      calm_down(c, "too_many_pings");
    c->last_ping_ms = now;
    c->sent_since_ping = false;
    return;
  }
  if (c->max_strikes && !c->sent_since_ctl && now - c->last_ctl_ms < 1000 &&
      ++c->strikes > c->max_strikes)
    calm_down(c, "SETTINGS flood");
  c->last_ctl_ms = now;
  c->sent_since_ctl = false;
}

/* Stream resets in either direction draw on a budget of RST_BURST that
 * refills at one per RST_INTERVAL_MS (nghttp2's own rapid-reset limit
 * counts only the peer's RST_STREAM; this also counts the streams we reset
 * because the peer made us, e.g. refused or malformed ones). The budget is
 * kept as the time it would be full again (GCRA). */
#define RST_BURST 1000
#define RST_INTERVAL_MS 30
static void count_reset(crpc__conn *c) {
  int64_t now = crpc__now_ms();
  int64_t floor = now - (int64_t)RST_BURST * RST_INTERVAL_MS;
  if (c->rst_tokens_ms < floor)
    c->rst_tokens_ms = floor;
  c->rst_tokens_ms += RST_INTERVAL_MS;
  if (c->rst_tokens_ms > now)
    calm_down(c, "too many stream resets (rapid reset)");
}

static void on_keepalive(crpc__timer *t) {
  crpc__conn *c = (crpc__conn *)((char *)t - offsetof(crpc__conn, ka_timer));
  int64_t now = crpc__now_ms();
  if (c->dead)
    return;
  if (c->ping_sent_ms && c->last_recv_ms < c->ping_sent_ms) {
    if (now - c->ping_sent_ms >= c->keepalive_timeout_ms) {
      crpc__log_info("%s: keepalive PING unanswered for %lld ms", c->peer,
                     (long long)(now - c->ping_sent_ms));
      crpc__conn_close(c, CRPC_UNAVAILABLE, "keepalive timeout");
      return;
    }
    crpc__timer_start(c->loop, &c->ka_timer,
                      c->ping_sent_ms + c->keepalive_timeout_ms);
    return;
  }
  if (now - c->last_recv_ms >= c->keepalive_ms) {
    nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL);
    c->ping_sent_ms = now;
    crpc__conn_flush(c);
    if (!c->dead)
      crpc__timer_start(c->loop, &c->ka_timer, now + c->keepalive_timeout_ms);
    return;
  }
  crpc__timer_start(c->loop, &c->ka_timer, c->last_recv_ms + c->keepalive_ms);
}

void crpc__conn_start(crpc__conn *c) {
  c->born_ms = crpc__now_ms();
  c->last_recv_ms = c->born_ms;
  if (c->keepalive_ms > 0) {
    if (c->keepalive_timeout_ms <= 0)
      c->keepalive_timeout_ms = 20000;
    c->ka_timer.cb = on_keepalive;
    crpc__timer_start(c->loop, &c->ka_timer, c->born_ms + c->keepalive_ms);
  }
  if (c->handshake_ms > 0)
    crpc__timer_start(c->loop, &c->guard_timer, c->born_ms + c->handshake_ms);
  if (c->is_server)
    crpc__conn_mgmt_start(c);
  if (c->handshaking)
    do_handshake(c);
  else
    crpc__conn_flush(c);
}

static void conn_on_io(crpc__io *io, uint32_t events) {
  crpc__conn *c = (crpc__conn *)((char *)io - offsetof(crpc__conn, io));
  if (c->dead)
    return;
  if (c->handshaking) {
    do_handshake(c);
    if (c->handshaking || c->dead)
      return;
  }
  c->in_io = true;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
    size_t cap;
    uint8_t *buf = crpc__loop_rbuf(c->loop, &cap);
    for (int i = 0; i < MAX_READS_PER_ROUND && !c->dead; i++) {
      ssize_t n;
      if (c->tp)
        n = c->tp->ops->read(c->tp, c->io.fd, buf, cap);
      else {
        n = read(c->io.fd, buf, cap);
        if (n < 0)
          n = (errno == EAGAIN || errno == EINTR) ? CRPC__TP_WANT_READ
                                                  : CRPC__TP_ERROR;
      }
      if (n == CRPC__TP_WANT_READ || n == CRPC__TP_WANT_WRITE)
        break;
      if (n <= 0) {
        char why[200];
        int err = errno;
        c->in_io = false;
        if (c->tp && n < 0)
          snprintf(why, sizeof why, "%s", c->tp->ops->error(c->tp));
        else
          snprintf(why, sizeof why, "%s%s%s",
                   n == 0 ? "connection closed by peer"
                          : "connection read failed: ",
                   n == 0 ? "" : strerror(err),
                   c->is_server || c->preface_done ? ""
                   : c->tp ? " right after the TLS handshake (does the "
                             "server require a client certificate, or "
                             "refuse ours?)"
                           : " before HTTP/2 started (is it a TLS port? "
                             "set crpc_channel_opts.tls)");
        crpc__conn_close(c, CRPC_UNAVAILABLE, why);
        return;
      }
      if (c->keepalive_ms > 0)
        c->last_recv_ms = crpc__now_ms(); /* any input proves liveness */
      /* after GOAWAY(ENHANCE_YOUR_CALM): drain the peer, never parse it
       * (each PING it sent would queue one more ACK) */
      ssize_t r = c->calm_reason
                      ? n
                      : nghttp2_session_mem_recv(c->session, buf, (size_t)n);
      if (r < 0) {
        const char *why = nghttp2_strerror((int)r);
        if (!c->tp && !c->preface_done && n >= 2 &&
            (buf[0] == 0x15 || buf[0] == 0x16) && buf[1] == 0x03)
          why = c->is_server ? "a TLS client on a clear-text port"
                             : "the server speaks TLS but this channel is "
                               "clear text (set crpc_channel_opts.tls)";
        crpc__log_info("HTTP/2 error from %s: %s", c->peer, why);
        /* nghttp2 queued a GOAWAY where it could; send it, then close */
        c->in_io = false;
        crpc__conn_flush(c);
        crpc__conn_close(c, CRPC_UNAVAILABLE, why);
        return;
      }
      if (nghttp2_session_get_outbound_queue_size(c->session) >
          MAX_QUEUED_FRAMES) {
        /* a peer that makes us queue frames (RST_STREAM for each stream it
         * opens past the limit, ...) and never reads them: nghttp2 1.52
         * bounds only the PING and SETTINGS ACKs */
        crpc__log_warn("%s: %zu frames queued for a peer that does not "
                       "read them: closing",
                       c->peer,
                       nghttp2_session_get_outbound_queue_size(c->session));
        c->in_io = false;
        crpc__conn_close(c, CRPC_UNAVAILABLE,
                         "the peer does not read what it asks for");
        return;
      }
      if ((size_t)n < cap)
        break; /* drained the socket for now */
    }
  }
  c->in_io = false;
  crpc__conn_flush(c);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f,
                            void *ud) {
  crpc__conn *c = ud;
  CRPC__UNUSED(s);
  if (c->hooks.streams->begin && f->hd.type == NGHTTP2_HEADERS &&
      f->headers.cat == NGHTTP2_HCAT_REQUEST)
    return c->hooks.streams->begin(c, f->hd.stream_id);
  return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *ud) {
  crpc__conn *c = ud;
  CRPC__UNUSED(s);
  CRPC__UNUSED(flags);
  if (f->hd.type != NGHTTP2_HEADERS)
    return 0;
  crpc_call *call = stream_call(c, f->hd.stream_id);
  if (!call)
    return 0;
  return c->hooks.streams->header(call, f, name, namelen, value, valuelen);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f,
                         void *ud) {
  crpc__conn *c = ud;
  CRPC__UNUSED(s);
  if (f->hd.type == NGHTTP2_GOAWAY) {
    c->goaway_received = true;
    return 0;
  }
  if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
    if (c->preface_done) {
      on_control(c, false);
      return 0;
    }
    c->preface_done = true; /* the handshake deadline is met */
    if (c->hooks.on_ready)
      c->hooks.on_ready(c);
    c->last_ctl_ms = crpc__now_ms();
    crpc__timer_stop(c->loop, &c->guard_timer);
    if (c->idle_ms > 0 && c->ncalls == 0)
      crpc__timer_start(c->loop, &c->guard_timer,
                        c->last_ctl_ms + c->idle_ms);
    return 0;
  }
  if (f->hd.type == NGHTTP2_PING) {
    if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
      on_control(c, true);
    else if (c->is_server)
      crpc__conn_ping_ack(c, f->ping.opaque_data);
    return 0;
  }
  if (f->hd.type == NGHTTP2_RST_STREAM && c->is_server)
    count_reset(c);
  if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
    return 0;
  crpc_call *call = stream_call(c, f->hd.stream_id);
  if (!call)
    return 0;
  bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  crpc__call_ref(call);
  if (f->hd.type == NGHTTP2_HEADERS)
    c->hooks.streams->headers_done(call, f, end);
  if (end && call->conn == c)
    c->hooks.streams->end_stream(call);
  crpc__call_unref(call);
  return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *ud) {
  crpc__conn *c = ud;
  CRPC__UNUSED(flags);
  crpc_call *call = stream_call(c, id);
  if (!call) {
    /* a stream we gave up on: keep the connection window open */
    nghttp2_session_consume_connection(s, len);
    return 0;
  }
  call->rx_bytes += len;
  if (call->rx_discard) {
    crpc__call_consume(call, len);
    return 0;
  }
  int rv = crpc__deframer_feed(&call->deframer, data, len,
                               crpc__call_on_message, call);
  if (rv == 0 && c->hooks.streams->data) {
    crpc__call_ref(call);
    c->hooks.streams->data(call); /* e.g. per-message handlers */
    crpc__call_unref(call);
  }
  if (rv == 0)
    crpc__call_consume(call, 0); /* credits at once if the reader is idle */
  if (rv != 0) {
    crpc__call_ref(call);
    c->hooks.streams->data_error(call, rv);
    crpc__call_unref(call);
  }
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id,
                           uint32_t error_code, void *ud) {
  crpc__conn *c = ud;
  CRPC__UNUSED(s);
  crpc_call *call = stream_call(c, id);
  if (!call)
    return 0;
  crpc__call_ref(call);
  crpc__call_release_window(call);
  c->hooks.streams->stream_close(call, error_code);
  crpc__conn_detach(c, call);
  crpc__call_unref(call);
  return 0;
}

/* PROTOCOL-HTTP2.md, "Early Server Closure": a server that has sent its
 * trailers before the client's END_STREAM resets the stream with NO_ERROR,
 * or a client that never finishes such requests would pin the stream (and
 * use up the connection's concurrent streams). */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f,
                         void *ud) {
  crpc__conn *c = ud;
  if (c->is_server &&
      (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
      (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
      nghttp2_session_get_stream_remote_close(s, f->hd.stream_id) == 0)
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                              NGHTTP2_NO_ERROR);
  /* defences: the peer's pings are answered by data; streams we reset
   * with an error draw on the reset budget */
  if (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) {
    c->sent_since_ctl = true;
    c->sent_since_ping = true;
    c->strikes = 0;

  } else if (f->hd.type == NGHTTP2_RST_STREAM && c->is_server &&
             f->rst_stream.error_code != NGHTTP2_NO_ERROR) {
    count_reset(c);
  }
  return 0;
}

int crpc__conn_make_callbacks(nghttp2_session_callbacks **out) {
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0)
    return CRPC_ENOMEM;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
                                                          on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
  nghttp2_session_callbacks_set_send_data_callback(cb, crpc__conn_send_data);
  nghttp2_session_callbacks_set_data_source_read_length_callback(
      cb, crpc__conn_data_length);
  *out = cb;
  return 0;
}
