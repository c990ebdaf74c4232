/*
 * client.c: channels and client calls. A channel lives on one of a few
 * shared client reactor threads (its loop) with its current connection and
 * the calls waiting for one. User threads never touch nghttp2: they queue
 * work on the call and post the call's kick task to the channel's loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "call_internal.h"
#include "h2.h"
#include "sock.h"
#include "tls_internal.h"

#define MAX_ADDRS 8

typedef enum chan_state {
  CH_IDLE,
  CH_CONNECTING,
  CH_READY,
  CH_TRANSIENT_FAILURE
} chan_state;

struct crpc_channel {
  crpc_mem mem;     /* the user's, copied: everything the channel makes */
  crpc__loop *loop; /* one of the shared client loops (below) */
  int loop_idx;
  char *target;
  char *authority;
  char *host; /* TLS name */
  size_t max_recv, max_send;
  ProtobufCAllocator *alloc;
  crpc__encoding default_enc;
  int64_t initial_backoff_ms, max_backoff_ms, backoff_ms;
  int64_t keepalive_ms, keepalive_timeout_ms;
  void *tls; /* crpc__tls_ctx, NULL for clear text */
  crpc_call_creds_cb call_creds; /* [const] */
  void *call_creds_ud;
  bool allow_insecure_creds;
  int64_t handshake_ms; /* conn.c's guard: TLS + the server's SETTINGS */
  size_t max_conn_out;  /* output budget of a connection */
  int64_t stall_ms;     /* write-stall timeout; 0: off */
  /* [loop] */
  chan_state state;
  crpc__conn *conn;     /* current connection */
  crpc__conn *draining; /* older connections finishing their calls */
  crpc_call *pending;   /* waiting for a connection (linked by conn_next) */
  crpc_call *pending_tail;
  crpc__io connect_io;
  crpc__timer connect_timer; /* the TCP connect's own deadline */
  crpc__addr addrs[MAX_ADDRS]; /* the target, resolved at each attempt */
  int naddrs, addr_idx;
  crpc__timer backoff_timer;
  char last_error[256];
  bool shutting_down;
  crpc__task shutdown_task;
  size_t nconns;     /* [loop] connections not yet destroyed */
  pthread_mutex_t done_mu; /* crpc_channel_free waits for the loop's */
  pthread_cond_t done_cv;  /* last word on this channel */
  bool done;
};

/* ---- the shared client reactors ----
 * Channels share a few reactor threads (one per CPU, at most 8) instead of
 * owning one each: a process with thousands of channels keeps a handful of
 * threads. Started with the first channel, stopped with the last. They
 * belong to no channel, so they allocate with libc (channel.h). */

#define MAX_POOL 8
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  crpc__loop *loop;
  pthread_t tid;
  unsigned users;
} pool[MAX_POOL];
static unsigned pool_n, pool_users, pool_next;

static int pool_acquire(crpc__loop **loop, int *idx) {
  int rv = 0;
  pthread_mutex_lock(&pool_mu);
  if (pool_n == 0) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = ncpu < 1 ? 1 : ncpu > MAX_POOL ? MAX_POOL : (unsigned)ncpu;
    for (unsigned i = 0; i < n && rv == 0; i++) {
      if ((rv = crpc__loop_new(&pool[i].loop, NULL)) != 0)
        break;
      crpc__loop_set_shared(pool[i].loop);
      if ((rv = crpc__loop_thread_start(pool[i].loop, &pool[i].tid)) != 0) {
        crpc__loop_free(pool[i].loop);
        break;
      }
      pool[i].users = 0;
      pool_n = i + 1;
    }
    if (pool_n == 0) {
      pthread_mutex_unlock(&pool_mu);
      return rv ? rv : CRPC_ESYS;
    }
  }
  /* the least used loop, round-robin among equals */
  unsigned best = pool_next++ % pool_n;
  for (unsigned i = 0; i < pool_n; i++)
    if (pool[i].users < pool[best].users)
      best = i;
  pool[best].users++;
  pool_users++;
  *loop = pool[best].loop;
  *idx = (int)best;
  pthread_mutex_unlock(&pool_mu);
  return 0;
}

static void pool_release(int idx) {
  pthread_mutex_lock(&pool_mu);
  pool[idx].users--;
  if (--pool_users == 0) {
    for (unsigned i = 0; i < pool_n; i++) {
      crpc__loop_stop(pool[i].loop);
      pthread_join(pool[i].tid, NULL);
      crpc__loop_free(pool[i].loop);
    }
    pool_n = 0;
  }
  pthread_mutex_unlock(&pool_mu);
}

static void start_connect(crpc_channel *ch);
static bool connect_next(crpc_channel *ch);
static void on_connect_timeout(crpc__timer *t);
static void submit_call(crpc_channel *ch, crpc_call *c);

/* ---- finishing a call [loop] ---- */

static void deliver_async(crpc_call *c) {
  crpc_status st = {0};
  ProtobufCMessage *resp = NULL;
  crpc__msgbuf *m;
  pthread_mutex_lock(&c->mu);
  crpc__status_move(&st, &c->status);
  m = crpc__msgq_pop(&c->recvq);
  if (m) /* the callback may ask crpc_call_last_read_compressed() */
    c->last_read_compressed = m->compressed;
  pthread_mutex_unlock(&c->mu);
  /* the response is only lent to the callback: crpc frees it, with the
   * channel's msg_allocator if it has one, else with the channel's mem */
  ProtobufCAllocator *alloc = c->alloc ? c->alloc : &c->pbc;
  if (st.code == CRPC_OK) {
    if (!m)
      crpc__status_set(&st, CRPC_INTERNAL, "server sent no response message");
    else
      crpc__unframe_message(&c->mem, c->method->output, alloc, m,
                            c->recv_enc, c->max_recv, &resp, &st);
  }
  crpc__free(&c->mem, m);
  if (st.code != CRPC_OK && resp) {
    protobuf_c_message_free_unpacked(resp, alloc);
    resp = NULL;
  }
  if (c->async_adapter)
    c->async_adapter(c->async_typed_cb, c, &st, resp, c->async_ud);
  else
    c->async_cb(c, &st, resp, c->async_ud);
  if (resp)
    protobuf_c_message_free_unpacked(resp, alloc);
  pthread_mutex_lock(&c->mu);
  crpc__status_move(&c->status, &st);
  pthread_mutex_unlock(&c->mu);
  crpc_status_clear(&st);
  crpc__loop_background(c->loop, -1);
  crpc__call_unref(c); /* the async machinery's reference */
}

static void deliver_async_task(void *arg) { deliver_async(arg); }

/* Ends the call with the status already in c->status (or |code| / |msg|
 * when that is still OK and |code| is not). */
static void finish(crpc_call *c, crpc_code code, const char *msg) {
  crpc_channel *ch = c->channel;
  pthread_mutex_lock(&c->mu);
  if (c->done) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  if (code != CRPC_OK && c->status.code == CRPC_OK)
    crpc__status_set(&c->status, code, "%s", msg);
  if (c->trailing_out &&
      crpc__metadata_append(c->trailing_out, c->trailers) != 0)
    c->md_oom = true;
  if (c->md_oom && c->status.code == CRPC_OK)
    crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                     "out of memory storing the response metadata");
  if (c->status.code == CRPC_OK && c->method->kind == CRPC_UNARY &&
      c->recvq.count > 1)
    crpc__status_set(&c->status, CRPC_INTERNAL,
                     "server sent %zu response messages to a unary call",
                     c->recvq.count);
  c->done = true;
  c->got_headers = true;
  bool async = c->async_cb || c->async_adapter;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  crpc__timer_stop(ch->loop, &c->deadline_timer);
  if (!async)
    return;
  if (crpc__loop_on_own_thread(ch->loop)) {
    deliver_async(c);
  } else { /* a caller is running the loop: its thread is not ours to use */
    c->done_task.fn = deliver_async_task;
    c->done_task.arg = c;
    c->done_task.heap = false;
    crpc__loop_post_own(ch->loop, &c->done_task);
  }
}

static void remove_pending(crpc_channel *ch, crpc_call *c) {
  crpc_call **pp = &ch->pending, *prev = NULL;
  while (*pp && *pp != c) {
    prev = *pp;
    pp = &(*pp)->conn_next;
  }
  if (!*pp)
    return;
  *pp = c->conn_next;
  if (ch->pending_tail == c)
    ch->pending_tail = prev;
  c->conn_next = NULL;
  crpc__call_unref(c); /* the pending list's reference */
}

static bool is_pending(crpc_channel *ch, crpc_call *c) {
  for (crpc_call *p = ch->pending; p; p = p->conn_next)
    if (p == c)
      return true;
  return false;
}

/* Gives up on the stream: RST_STREAM(CANCEL), further DATA dropped. The
 * call stays attached until nghttp2 reports the stream closed, so nghttp2
 * never holds a data source that points at a freed call. */
static void reset_stream(crpc_call *c) {
  crpc__conn *conn = c->conn;
  if (!conn || c->rx_discard)
    return;
  c->rx_discard = true;
  nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, c->stream_id,
                            NGHTTP2_CANCEL);
  crpc__call_release_window(c);
  crpc__conn_schedule_flush(conn);
}

static void on_deadline(crpc__timer *t) {
  crpc_call *c =
      (crpc_call *)((char *)t - offsetof(crpc_call, deadline_timer));
  crpc_channel *ch = c->channel;
  crpc__call_ref(c);
  pthread_mutex_lock(&c->mu);
  if (!c->done)
    crpc__status_set(&c->status, CRPC_DEADLINE_EXCEEDED,
                     "deadline exceeded");
  c->cancelled = true;
  pthread_mutex_unlock(&c->mu);
  reset_stream(c);
  remove_pending(ch, c);
  finish(c, CRPC_DEADLINE_EXCEEDED, "deadline exceeded");
  crpc__call_unref(c);
}

/* ---- the kick: everything a user thread asks of the reactor ---- */

void crpc__client_kick(void *arg) {
  crpc_call *c = arg;
  crpc_channel *ch = c->channel;
  pthread_mutex_lock(&c->mu);
  c->kick_queued = false;
  bool cancel = c->cancel_requested, done = c->done;
  size_t consume = c->to_consume;
  c->to_consume = 0;
  pthread_mutex_unlock(&c->mu);

  if (done)
    goto out;
  if (cancel) {
    reset_stream(c);
    remove_pending(ch, c);
    pthread_mutex_lock(&c->mu);
    c->cancelled = true;
    pthread_mutex_unlock(&c->mu);
    finish(c, CRPC_CANCELLED, "cancelled");
    goto out;
  }
  if (!c->submitted) {
    if (is_pending(ch, c))
      goto out;
    if (c->deadline_ms) {
      if (c->deadline_ms <= crpc__now_ms()) {
        finish(c, CRPC_DEADLINE_EXCEEDED, "deadline exceeded before start");
        goto out;
      }
      c->deadline_timer.cb = on_deadline;
      crpc__timer_start(ch->loop, &c->deadline_timer, c->deadline_ms);
    }
    submit_call(ch, c);
    goto out;
  }
  if (c->conn) {
    crpc__call_consume(c, consume);
    nghttp2_session_resume_data(c->conn->session, c->stream_id);
    crpc__conn_schedule_flush(c->conn);
  }
out:
  crpc__call_unref(c); /* the kick's reference */
}

/* ---- submitting [loop] ---- */

static void add_pending(crpc_channel *ch, crpc_call *c) {
  crpc__call_ref(c);
  c->conn_next = NULL;
  if (ch->pending_tail)
    ch->pending_tail->conn_next = c;
  else
    ch->pending = c;
  ch->pending_tail = c;
}

static void submit_on_conn(crpc_channel *ch, crpc_call *c) {
  crpc__conn *conn = ch->conn;
  nghttp2_nv nva[96];
  size_t n = 0;
  char timeout[16];
  nghttp2_nv *nv;
#define ADD(k, v)                                                              \
  do {                                                                         \
    nv = &nva[n++];                                                            \
    nv->name = (uint8_t *)(k);                                                 \
    nv->namelen = strlen(k);                                                   \
    nv->value = (uint8_t *)(v);                                                \
    nv->valuelen = strlen(v);                                                  \
    nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;  \
  } while (0)
  ADD(":method", "POST");
  ADD(":scheme", ch->tls ? "https" : "http");
  ADD(":path", c->method->path);
  ADD(":authority", ch->authority);
  ADD("te", "trailers");
  ADD("content-type", "application/grpc");
  ADD("user-agent", "crpc/" CRPC_VERSION_STRING);
  ADD("grpc-accept-encoding", crpc__accept_encoding());
  if (c->send_enc != CRPC__ENC_IDENTITY)
    ADD("grpc-encoding", crpc__encoding_name(c->send_enc));
  if (c->deadline_ms) {
    int64_t left = c->deadline_ms - crpc__now_ms();
    crpc__timeout_format(left > 0 ? left : 1, timeout);
    nv = &nva[n++];
    nv->name = (uint8_t *)"grpc-timeout";
    nv->namelen = 12;
    nv->value = (uint8_t *)timeout;
    nv->valuelen = strlen(timeout);
    nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME;
  }
#undef ADD
  n += crpc__md_to_nv(c, c->send_md, nva + n, 96 - n);
  if (c->md_oom) {
    finish(c, CRPC_RESOURCE_EXHAUSTED,
           "out of memory encoding the request metadata");
    return;
  }
  nghttp2_data_provider dp = {.source.ptr = c,
                              .read_callback = crpc__call_data_read};
  int32_t id = nghttp2_submit_request(conn->session, NULL, nva, n, &dp, c);
  if (id < 0) {
    finish(c, id == NGHTTP2_ERR_NOMEM ? CRPC_RESOURCE_EXHAUSTED
                                      : CRPC_UNAVAILABLE,
           nghttp2_strerror(id));
    return;
  }
  c->stream_id = id;
  c->submitted = true;
  c->deframer.max_len = c->max_recv;
  crpc__conn_attach(conn, c);
  crpc__conn_schedule_flush(conn);
}

static bool conn_usable(crpc__conn *conn) {
  return conn && !conn->dead && !conn->goaway_received &&
         nghttp2_session_check_request_allowed(conn->session);
}

static void retire_conn(crpc_channel *ch) {
  /* the connection stays until its calls finish; new calls go elsewhere */
  crpc__conn *conn = ch->conn;
  ch->conn = NULL;
  conn->next = ch->draining;
  conn->prev = NULL;
  if (ch->draining)
    ch->draining->prev = conn;
  ch->draining = conn;
  ch->state = CH_IDLE;
  if (conn->ncalls == 0)
    crpc__conn_close(conn, CRPC_UNAVAILABLE, "connection retired");
}

static void submit_call(crpc_channel *ch, crpc_call *c) {
  if (ch->shutting_down) {
    finish(c, CRPC_CANCELLED, "channel closed");
    return;
  }
  if (ch->state == CH_READY && !conn_usable(ch->conn))
    retire_conn(ch);
  switch (ch->state) {
  case CH_READY:
    submit_on_conn(ch, c);
    return;
  case CH_CONNECTING:
    add_pending(ch, c);
    return;
  case CH_IDLE:
    add_pending(ch, c);
    start_connect(ch);
    return;
  case CH_TRANSIENT_FAILURE:
    if (c->flags & CRPC_CALL_WAIT_FOR_READY)
      add_pending(ch, c);
    else
      finish(c, CRPC_UNAVAILABLE, ch->last_error);
    return;
  }
}

/* ---- connecting [loop] ---- */

static void fail_pending(crpc_channel *ch, bool all, crpc_code code,
                         const char *msg) {
  crpc_call *keep = NULL, *keep_tail = NULL, *c = ch->pending;
  ch->pending = ch->pending_tail = NULL;
  while (c) {
    crpc_call *next = c->conn_next;
    c->conn_next = NULL;
    if (!all && (c->flags & CRPC_CALL_WAIT_FOR_READY)) {
      if (keep_tail)
        keep_tail->conn_next = c;
      else
        keep = c;
      keep_tail = c;
    } else {
      finish(c, code, msg);
      crpc__call_unref(c);
    }
    c = next;
  }
  ch->pending = keep;
  ch->pending_tail = keep_tail;
}

static void on_backoff_done(crpc__timer *t) {
  crpc_channel *ch =
      (crpc_channel *)((char *)t - offsetof(crpc_channel, backoff_timer));
  ch->state = CH_IDLE;
  if (ch->pending) /* wait-for-ready calls */
    start_connect(ch);
}

static void connect_failed(crpc_channel *ch, const char *why) {
  snprintf(ch->last_error, sizeof ch->last_error,
           "failed to connect to %s: %s", ch->target, why);
  crpc__log_info("%s", ch->last_error);
  ch->state = CH_TRANSIENT_FAILURE;
  fail_pending(ch, false, CRPC_UNAVAILABLE, ch->last_error);
  /* exponential back-off with +-20% jitter (gRPC's connection-backoff) */
  int64_t b = ch->backoff_ms;
  int64_t jitter = b / 5;
  int64_t wait = b - jitter + (jitter ? rand() % (2 * jitter + 1) : 0);
  ch->backoff_ms = b * 16 / 10;
  if (ch->backoff_ms > ch->max_backoff_ms)
    ch->backoff_ms = ch->max_backoff_ms;
  ch->backoff_timer.cb = on_backoff_done;
  crpc__timer_start(ch->loop, &ch->backoff_timer, crpc__now_ms() + wait);
}

static void signal_done(crpc_channel *ch) {
  pthread_mutex_lock(&ch->done_mu);
  ch->done = true;
  pthread_cond_signal(&ch->done_cv);
  pthread_mutex_unlock(&ch->done_mu);
}

static void on_conn_closed(crpc__conn *conn) {
  crpc_channel *ch = conn->owner;
  if (ch->conn == conn) {
    ch->conn = NULL;
    if (ch->state == CH_READY)
      ch->state = CH_IDLE;
    if (ch->pending && !ch->shutting_down)
      start_connect(ch);
    return;
  }
  for (crpc__conn *d = ch->draining; d; d = d->next) {
    if (d == conn) {
      if (d->prev)
        d->prev->next = d->next;
      else
        ch->draining = d->next;
      if (d->next)
        d->next->prev = d->prev;
      return;
    }
  }
}

/* The conn's memory (from ch->mem) is all freed: the channel may go. */
static void on_conn_freed(void *owner) {
  crpc_channel *ch = owner;
  if (--ch->nconns == 0 && ch->shutting_down)
    signal_done(ch); /* the last thing this loop does for the channel */
}

static void on_connected(crpc__io *io, uint32_t events) {
  crpc_channel *ch =
      (crpc_channel *)((char *)io - offsetof(crpc_channel, connect_io));
  CRPC__UNUSED(events);
  int fd = io->fd;
  crpc__io_unwatch(ch->loop, io);
  crpc__timer_stop(ch->loop, &ch->connect_timer);
  io->fd = -1;
  int err = crpc__sock_connect_result(fd);
  if (err) {
    close(fd);
    /* "localhost" may resolve to ::1 first while the server listens
     * on 127.0.0.1 only: try the target's other addresses in turn */
    ch->addr_idx++;
    if (connect_next(ch))
      return;
    connect_failed(ch, strerror(err));
    return;
  }
  crpc__transport *tp = NULL;
  if (ch->tls) {
    const char *why = NULL;
    if (crpc__tls_client_transport(ch->tls, ch->host, &tp, &why) != 0) {
      close(fd);
      connect_failed(ch, why ? why : "TLS setup failed");
      return;
    }
  }
  static const crpc__conn_hooks hooks = {.on_closed = on_conn_closed,
                                         .on_freed = on_conn_freed};
  crpc__conn *conn;
  if (crpc__conn_new(&conn, ch->loop, fd, tp, false, ch, &hooks, &ch->mem) !=
      0) {
    if (tp)
      tp->ops->free(tp);
    close(fd);
    connect_failed(ch, "out of memory");
    return;
  }
  ch->nconns++;
  crpc__sock_peer_string(fd, conn->peer, sizeof conn->peer);
  conn->handshake_ms = ch->handshake_ms;
  conn->keepalive_ms = ch->keepalive_ms;
  conn->keepalive_timeout_ms = ch->keepalive_timeout_ms;
  conn->out.limit = ch->max_conn_out;
  conn->stall_ms = ch->stall_ms;
  if (crpc__h2_session_new(conn, 0, 0) != 0) {
    crpc__conn_close(conn, CRPC_UNAVAILABLE, "out of memory");
    connect_failed(ch, "out of memory");
    return;
  }
  ch->conn = conn;
  ch->state = CH_READY;
  ch->backoff_ms = ch->initial_backoff_ms;
  crpc_call *c = ch->pending;
  ch->pending = ch->pending_tail = NULL;
  while (c) {
    crpc_call *next = c->conn_next;
    c->conn_next = NULL;
    submit_call(ch, c);
    crpc__call_unref(c); /* the pending list's reference */
    c = next;
  }
  crpc__conn_start(conn); /* TLS: the ClientHello goes out first */
}

/* Starts connecting to ch->addrs[ch->addr_idx] and on, skipping addresses
 * whose socket cannot even be created. False when none is left. */
static bool connect_next(crpc_channel *ch) {
  for (; ch->addr_idx < ch->naddrs; ch->addr_idx++) {
    int fd = crpc__sock_connect(&ch->addrs[ch->addr_idx]);
    if (fd < 0)
      continue;
    ch->connect_io.fd = fd;
    ch->connect_io.cb = on_connected;
    ch->connect_io.watching = 0;
    if (crpc__io_watch(ch->loop, &ch->connect_io, EPOLLOUT) != 0) {
      close(fd);
      ch->connect_io.fd = -1;
      continue;
    }
    /* a SYN into the void must not hang the channel for minutes */
    ch->connect_timer.cb = on_connect_timeout;
    crpc__timer_start(ch->loop, &ch->connect_timer,
                      crpc__now_ms() + ch->handshake_ms);
    return true;
  }
  return false;
}

static void on_connect_timeout(crpc__timer *t) {
  crpc_channel *ch =
      (crpc_channel *)((char *)t - offsetof(crpc_channel, connect_timer));
  crpc__io_unwatch(ch->loop, &ch->connect_io);
  close(ch->connect_io.fd);
  ch->connect_io.fd = -1;
  ch->addr_idx++;
  if (connect_next(ch))
    return;
  ch->state = CH_IDLE;
  connect_failed(ch, "connect timed out");
}

static void start_connect(crpc_channel *ch) {
  if (ch->state == CH_CONNECTING || ch->state == CH_READY)
    return;
  /* resolved again on every attempt: names may move */
  int n = crpc__resolve(ch->target, false, ch->addrs, MAX_ADDRS, NULL,
                        &ch->mem);
  if (n < 0) {
    connect_failed(ch, "cannot resolve the target");
    return;
  }
  ch->naddrs = n;
  ch->addr_idx = 0;
  ch->state = CH_CONNECTING;
  if (!connect_next(ch)) {
    ch->state = CH_IDLE;
    connect_failed(ch, strerror(errno));
  }
}

/* ---- headers, data and close from the connection [loop] ---- */

void crpc__client_on_header(crpc_call *c, const nghttp2_frame *f,
                            const uint8_t *name, size_t namelen,
                            const uint8_t *value, size_t valuelen) {
  bool trailers = f->headers.cat == NGHTTP2_HCAT_HEADERS ||
                  (f->hd.flags & NGHTTP2_FLAG_END_STREAM);
  const char *n = (const char *)name;
  if (namelen == 7 && memcmp(n, ":status", 7) == 0) {
    c->http_status = 0;
    for (size_t i = 0; i < valuelen && i < 3; i++)
      c->http_status = c->http_status * 10 + (value[i] - '0');
    return;
  }
  if (namelen == 11 && memcmp(n, "grpc-status", 11) == 0) {
    crpc_code code;
    pthread_mutex_lock(&c->mu);
    if (crpc__parse_grpc_status((const char *)value, valuelen, &code) != 0) {
      code = CRPC_UNKNOWN;
    }
    c->got_grpc_status = true;
    /* a status this side already decided (cancel, a lost message) is not
     * overridden by the server's */
    bool mine = c->done || c->cancel_requested;
    if (!mine)
      c->status.code = code;
    /* a code we cannot use: say so, unless grpc-message says more */
    if (!mine && code == CRPC_UNKNOWN && !c->status.message &&
        !(valuelen == 1 && value[0] == '2'))
      crpc__status_set(&c->status, code, "invalid grpc-status \"%.*s\"",
                       (int)(valuelen > 32 ? 32 : valuelen),
                       (const char *)value);
    pthread_mutex_unlock(&c->mu);
    return;
  }
  if (namelen == 12 && memcmp(n, "grpc-message", 12) == 0) {
    char *msg = crpc__percent_decode((const char *)value, valuelen);
    pthread_mutex_lock(&c->mu);
    if (!c->done && !c->cancel_requested) {
      free(c->status.message);
      c->status.message = msg;
      msg = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    free(msg);
    return;
  }
  if (namelen == 23 && memcmp(n, "grpc-status-details-bin", 23) == 0) {
    uint8_t *d;
    size_t dlen;
    if (crpc__base64_decode((const char *)value, valuelen, &d, &dlen) != 0)
      return;
    pthread_mutex_lock(&c->mu);
    if (!c->done && !c->cancel_requested) {
      free(c->status.details);
      c->status.details = d;
      c->status.details_len = dlen;
      d = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    free(d);
    return;
  }
  if (namelen == 13 && memcmp(n, "grpc-encoding", 13) == 0) {
    c->recv_enc = crpc__encoding_from_name((const char *)value, valuelen);
    return;
  }
  if (namelen == 12 && memcmp(n, "content-type", 12) == 0) {
    if ((valuelen < 16 || memcmp(value, "application/grpc", 16) != 0) &&
        !c->content_type)
      c->content_type = crpc__strndup(&c->mem, (const char *)value,
                                      valuelen); /* not gRPC */
    return;
  }
  pthread_mutex_lock(&c->mu);
  if (crpc__metadata_add_wire(trailers ? c->trailers : c->recv_md, name,
                              namelen, value, valuelen) == CRPC_ENOMEM)
    c->md_oom = true; /* the call ends RESOURCE_EXHAUSTED (finish) */
  pthread_mutex_unlock(&c->mu);
}

void crpc__client_on_headers_done(crpc_call *c, const nghttp2_frame *f) {
  if (f->headers.cat != NGHTTP2_HCAT_RESPONSE)
    return;
  if (c->http_status >= 100 && c->http_status < 200)
    return; /* informational */
  pthread_mutex_lock(&c->mu);
  c->got_headers = true;
  if (c->initial_out &&
      crpc__metadata_append(c->initial_out, c->recv_md) != 0)
    c->md_oom = true;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  if (c->got_grpc_status || (c->http_status == 200 && !c->content_type))
    return;
  /* Not a gRPC answer (a proxy's error page...): its body is no gRPC
   * framing, so end the call now with the status the headers give
   * (http-grpc-status-mapping.md; a grpc-status would have won). */
  char msg[128];
  crpc_code code = CRPC_UNKNOWN;
  if (c->http_status != 200) {
    code = crpc__http_status_to_code(c->http_status);
    snprintf(msg, sizeof msg, "server answered HTTP %d%s", c->http_status,
             c->content_type ? " with a non-gRPC content-type" : "");
  } else {
    snprintf(msg, sizeof msg, "server answered with a non-gRPC "
                              "content-type");
  }
  if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
    c->rx_discard = true; /* nothing follows; the stream closes */
  else
    reset_stream(c);
  pthread_mutex_lock(&c->mu);
  if (!c->done)
    crpc__status_set(&c->status, code, "%s", msg);
  pthread_mutex_unlock(&c->mu);
  finish(c, CRPC_OK, NULL);
}

void crpc__client_on_end_stream(crpc_call *c) {
  pthread_mutex_lock(&c->mu);
  c->recv_closed = true;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  /* PROTOCOL-HTTP2.md "Early Server Closure": the server ended the call
   * while we still send. RST_STREAM(NO_ERROR) closes the stream now, so
   * the call ends with the server's status instead of waiting for our
   * END_STREAM (or the deadline). */
  if (c->conn && !c->rx_discard &&
      nghttp2_session_get_stream_local_close(c->conn->session,
                                             c->stream_id) == 0) {
    nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE,
                              c->stream_id, NGHTTP2_NO_ERROR);
    crpc__conn_schedule_flush(c->conn);
  }
}

void crpc__client_on_stream_close(crpc_call *c, uint32_t error_code) {
  crpc_code code = CRPC_OK;
  char msg[128] = "";
  if (c->rx_discard)
    return; /* we ended it (cancel, deadline, bad data): status is set */
  pthread_mutex_lock(&c->mu);
  bool recv_closed = c->recv_closed; /* END_STREAM, not a reset */
  pthread_mutex_unlock(&c->mu);
  if (c->http_status != 200 && c->http_status != 0 && !c->got_grpc_status) {
    /* not a gRPC answer: the spec's HTTP status mapping */
    code = crpc__http_status_to_code(c->http_status);
    snprintf(msg, sizeof msg, "server answered HTTP %d%s", c->http_status,
             c->content_type ? " with a non-gRPC content-type" : "");
  } else if (c->content_type) {
    code = CRPC_UNKNOWN;
    snprintf(msg, sizeof msg, "server answered with a non-gRPC content-type");
  } else if (!c->got_grpc_status) {
    if (error_code == NGHTTP2_REFUSED_STREAM) {
      code = CRPC_UNAVAILABLE;
      snprintf(msg, sizeof msg, "stream refused by the server");
    } else if (error_code == NGHTTP2_CANCEL) {
      code = CRPC_CANCELLED;
      snprintf(msg, sizeof msg, "stream cancelled by the server");
    } else if (error_code == NGHTTP2_ENHANCE_YOUR_CALM) {
      code = CRPC_RESOURCE_EXHAUSTED; /* PROTOCOL-HTTP2.md: bandwidth */
      snprintf(msg, sizeof msg, "stream reset by the server: "
                                "ENHANCE_YOUR_CALM (bandwidth exhausted)");
    } else if (error_code == NGHTTP2_INADEQUATE_SECURITY) {
      code = CRPC_PERMISSION_DENIED;
      snprintf(msg, sizeof msg, "stream reset by the server: "
                                "INADEQUATE_SECURITY");
    } else if (error_code != NGHTTP2_NO_ERROR || !recv_closed) {
      /* RST_STREAM(NO_ERROR) without a status is INTERNAL too */
      code = CRPC_INTERNAL;
      snprintf(msg, sizeof msg, "stream reset by the server: %s",
               nghttp2_http2_strerror(error_code));
    } else {
      code = CRPC_UNKNOWN;
      snprintf(msg, sizeof msg, "server closed the stream without a "
                                "grpc-status");
    }
  } else if (crpc__deframer_partial(&c->deframer) &&
             c->status.code == CRPC_OK) {
    /* an error status explains a cut-off message better than we can */
    code = CRPC_INTERNAL;
    snprintf(msg, sizeof msg, "stream ended in the middle of a message");
  }
  if (code != CRPC_OK) {
    pthread_mutex_lock(&c->mu);
    crpc__status_set(&c->status, code, "%s", msg);
    pthread_mutex_unlock(&c->mu);
  }
  finish(c, CRPC_OK, NULL);
}

void crpc__client_on_data_error(crpc_call *c, int rv) {
  pthread_mutex_lock(&c->mu);
  if (rv == CRPC_ETOOBIG)
    crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                     "received message larger than max (%zu)", c->max_recv);
  else if (rv == CRPC_ENOMEM)
    crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                     "out of memory receiving a message");
  else
    crpc__status_set(&c->status, CRPC_INTERNAL,
                     "malformed message framing from the server");
  pthread_mutex_unlock(&c->mu);
  reset_stream(c);
  finish(c, CRPC_OK, NULL);
}

void crpc__client_fail(crpc_call *c, crpc_code code, const char *msg) {
  finish(c, code, msg);
}

/* ---- the channel ---- */

int crpc_channel_new(crpc_channel **out, const char *target,
                     const crpc_channel_opts *opts) {
  crpc_channel_opts none = {0};
  crpc__addr probe[1];
  char *host = NULL;
  crpc_mem mem;
  int rv;
  if (!out || !target)
    return CRPC_EINVAL;
  if (!opts)
    opts = &none;
  crpc__mem_init(&mem, opts->mem);
  /* Parse now so a bad target fails here, not at the first call. */
  rv = crpc__resolve(target, false, probe, 1, &host, &mem);
  if (rv == CRPC_ENOMEM)
    return rv;
  if (rv == CRPC_ETARGET)
    return rv; /* malformed; a name that does not resolve yet is fine */
  crpc__encoding enc = CRPC__ENC_IDENTITY;
  if (opts->compression) {
    enc = crpc__encoding_from_name(opts->compression,
                                   strlen(opts->compression));
    if (enc == CRPC__ENC_UNKNOWN) {
      crpc__free(&mem, host);
      return CRPC_EENCODING;
    }
  }
  crpc_channel *ch = crpc__calloc(&mem, 1, sizeof *ch);
  if (!ch) {
    crpc__free(&mem, host);
    return CRPC_ENOMEM;
  }
  ch->mem = mem;
  ch->target = crpc__strdup(&ch->mem, target);
  ch->host = host ? host : crpc__strdup(&ch->mem, "localhost");
  if (opts->tls && opts->tls->server_name_override) {
    crpc__free(&ch->mem, ch->host);
    ch->host = crpc__strdup(&ch->mem, opts->tls->server_name_override);
  }
  if (opts->authority)
    ch->authority = crpc__strdup(&ch->mem, opts->authority);
  else if (opts->tls && opts->tls->server_name_override)
    ch->authority = crpc__strdup(&ch->mem, opts->tls->server_name_override);
  else {
    const char *t = target;
    if (strncmp(t, "dns:///", 7) == 0)
      t += 7;
    else if (strncmp(t, "ipv4:", 5) == 0 || strncmp(t, "ipv6:", 5) == 0)
      t += 5;
    ch->authority = crpc__strdup(&ch->mem,
                                 strncmp(t, "unix:", 5) == 0 ? "localhost"
                                                             : t);
  }
  ch->max_recv = opts->max_recv_msg_size ? opts->max_recv_msg_size
                                         : CRPC__DEFAULT_MAX_RECV;
  ch->max_send = opts->max_send_msg_size;
  ch->alloc = opts->msg_allocator;
  ch->default_enc = enc;
  ch->initial_backoff_ms =
      opts->initial_backoff_ms > 0 ? opts->initial_backoff_ms : 1000;
  ch->max_backoff_ms = opts->max_backoff_ms > 0 ? opts->max_backoff_ms
                                                : 120000;
  ch->backoff_ms = ch->initial_backoff_ms;
  ch->keepalive_ms = opts->keepalive_ms > 0 ? opts->keepalive_ms : 0;
  ch->keepalive_timeout_ms = opts->keepalive_timeout_ms;
  ch->connect_io.fd = -1;
  ch->call_creds = opts->call_creds;
  ch->call_creds_ud = opts->call_creds_user_data;
  ch->allow_insecure_creds = opts->allow_insecure_call_creds != 0;
  ch->handshake_ms =
      opts->handshake_timeout_ms ? opts->handshake_timeout_ms : 20000;
  ch->max_conn_out = opts->max_conn_output_bytes
                         ? opts->max_conn_output_bytes
                         : CRPC__DEFAULT_CONN_OUTPUT;
  ch->stall_ms = opts->write_stall_timeout_ms == 0
                     ? CRPC__DEFAULT_WRITE_STALL_MS
                     : (opts->write_stall_timeout_ms < 0
                            ? 0
                            : opts->write_stall_timeout_ms);
  if (!ch->target || !ch->host || !ch->authority) {
    rv = CRPC_ENOMEM;
    goto fail;
  }
  if (opts->tls) {
    const char *why = NULL;
    rv = crpc__tls_client_ctx_new(opts->tls, &ch->mem, &ch->tls, &why);
    if (rv != 0) {
      crpc__log_error("TLS setup failed: %s", why ? why : "unknown");
      goto fail;
    }
  }
  if (opts->loop) { /* the program's loop: no thread of ours */
    ch->loop = (crpc__loop *)opts->loop;
    ch->loop_idx = -1;
  } else if ((rv = pool_acquire(&ch->loop, &ch->loop_idx)) != 0) {
    goto fail;
  }
  pthread_mutex_init(&ch->done_mu, NULL);
  pthread_cond_init(&ch->done_cv, NULL);
  *out = ch;
  return 0;
fail:
  if (ch->tls)
    crpc__tls_ctx_free(ch->tls);
  crpc__free(&mem, ch->target);
  crpc__free(&mem, ch->host);
  crpc__free(&mem, ch->authority);
  crpc__free(&mem, ch);
  return rv;
}

static void shutdown_task(void *arg) {
  crpc_channel *ch = arg;
  ch->shutting_down = true;
  crpc__timer_stop(ch->loop, &ch->backoff_timer);
  crpc__timer_stop(ch->loop, &ch->connect_timer);
  if (ch->connect_io.fd >= 0) {
    crpc__io_unwatch(ch->loop, &ch->connect_io);
    close(ch->connect_io.fd);
    ch->connect_io.fd = -1;
  }
  fail_pending(ch, true, CRPC_CANCELLED, "channel closed");
  if (ch->conn)
    crpc__conn_close(ch->conn, CRPC_CANCELLED, "channel closed");
  while (ch->draining) {
    crpc__conn *d = ch->draining;
    ch->draining = d->next;
    d->next = d->prev = NULL;
    crpc__conn_close(d, CRPC_CANCELLED, "channel closed");
  }
  /* closed connections are freed by tasks queued behind this one; the
   * last of them signals (on_conn_closed) */
  if (ch->nconns == 0)
    signal_done(ch);
}

void crpc_channel_free(crpc_channel *ch) {
  if (!ch)
    return;
  ch->shutdown_task.fn = shutdown_task;
  ch->shutdown_task.arg = ch;
  crpc__loop_post_task(ch->loop, &ch->shutdown_task);
  pthread_mutex_lock(&ch->done_mu);
  while (!ch->done) {
    if (ch->loop_idx < 0 && crpc__loop_is_owner(ch->loop)) {
      /* the program's loop, and we are its thread: drive it ourselves */
      pthread_mutex_unlock(&ch->done_mu);
      crpc__loop_run_once(ch->loop, 100);
      pthread_mutex_lock(&ch->done_mu);
      continue;
    }
    pthread_cond_wait(&ch->done_cv, &ch->done_mu);
  }
  pthread_mutex_unlock(&ch->done_mu);
  if (ch->loop_idx >= 0)
    pool_release(ch->loop_idx);
  pthread_mutex_destroy(&ch->done_mu);
  pthread_cond_destroy(&ch->done_cv);
  if (ch->tls)
    crpc__tls_ctx_free(ch->tls);
  crpc_mem mem = ch->mem; /* the last free must not read the channel */
  crpc__free(&mem, ch->target);
  crpc__free(&mem, ch->host);
  crpc__free(&mem, ch->authority);
  crpc__free(&mem, ch);
}

/* ---- starting calls [user thread] ---- */

/* Call credentials run on the starting thread, before anything is sent:
 * the channel's, then the call's. A refusal, or credentials on a clear-text
 * channel without allow_insecure_call_creds, fails the call at its first
 * kick, so async callers still get their callback from the reactor. */
static void run_call_creds(crpc_call *c, crpc_channel *ch,
                           const crpc_call_opts *opts) {
  crpc_call_creds_cb cb[2] = {ch->call_creds, opts ? opts->call_creds : NULL};
  void *ud[2] = {ch->call_creds_ud, opts ? opts->call_creds_user_data : NULL};
  for (int i = 0; i < 2; i++) {
    if (!cb[i])
      continue;
    if (!ch->tls && !ch->allow_insecure_creds) {
      crpc__status_set(&c->status, CRPC_UNAUTHENTICATED,
                       "call credentials are not sent over a clear-text "
                       "channel (use TLS, or set "
                       "crpc_channel_opts.allow_insecure_call_creds)");
      c->cancel_requested = true;
      return;
    }
    crpc_code code = cb[i](c->method->path, c->send_md, ud[i]);
    if (code != CRPC_OK) {
      if ((unsigned)code > CRPC_UNAUTHENTICATED)
        code = CRPC_UNKNOWN;
      crpc__status_set(&c->status, code,
                       "call credentials refused to authorize the call "
                       "(%s)",
                       crpc_code_name(code));
      c->cancel_requested = true;
      return;
    }
  }
}

static int new_call(crpc_call **out, crpc_channel *ch, const crpc_method *m,
                    const crpc_call_opts *opts) {
  crpc_call *c;
  if (!ch || !m || !m->path || !m->input || !m->output)
    return CRPC_EINVAL;
  int rv = crpc__call_new(&c, false, ch->loop, &ch->mem);
  if (rv != 0)
    return rv;
  c->channel = ch;
  c->method = m;
  c->max_recv = ch->max_recv;
  c->max_send = ch->max_send;
  c->alloc = ch->alloc;
  c->send_enc = ch->default_enc;
  if (opts) {
    if (opts->timeout_ms > 0)
      c->deadline_ms = crpc__now_ms() + opts->timeout_ms;
    if (opts->metadata)
      rv = crpc__metadata_append(c->send_md, opts->metadata);
    c->flags = opts->flags;
    c->initial_out = opts->initial_metadata_out;
    c->trailing_out = opts->trailing_metadata_out;
    if (opts->compression) {
      c->send_enc = crpc__encoding_from_name(opts->compression,
                                             strlen(opts->compression));
      if (c->send_enc == CRPC__ENC_UNKNOWN)
        rv = CRPC_EENCODING;
    }
  }
  if (rv != 0) {
    crpc__call_unref(c);
    return rv;
  }
  run_call_creds(c, ch, opts);
  *out = c;
  return 0;
}

/* Hands the call's work to its loop. When nobody is running the loop, the
 * caller runs that round itself: the request leaves from this thread. */
static void start(crpc_call *c) { crpc__call_kick(c); }

int crpc__client_new_call(crpc_call **out, crpc_channel *ch,
                          const crpc_method *m, const crpc_call_opts *opts) {
  return new_call(out, ch, m, opts);
}

void crpc__client_start(crpc_call *c) { start(c); }

int crpc_call_start(crpc_call **out, crpc_channel *ch, const crpc_method *m,
                    const crpc_call_opts *opts) {
  if (!out)
    return CRPC_EINVAL;
  int rv = new_call(out, ch, m, opts);
  if (rv == 0)
    start(*out);
  return rv;
}

/* A unary call: request queued and half-closed before the first kick, so
 * the reactor sees it once. */
static int start_unary(crpc_call **out, crpc_channel *ch, const crpc_method *m,
                       const crpc_call_opts *opts,
                       const ProtobufCMessage *req) {
  crpc_call *c;
  crpc__msgbuf *mb;
  if (!req)
    return CRPC_EINVAL;
  int rv = new_call(&c, ch, m, opts);
  if (rv != 0)
    return rv;
  rv = crpc__frame_message(&c->mem, req, c->send_enc, c->max_send, &mb);
  if (rv != 0) {
    crpc__call_unref(c);
    return rv;
  }
  crpc__call_sendq_push(c, mb); /* counted once attached */
  c->send_closed = true;
  *out = c;
  return 0;
}

crpc_code crpc_unary(crpc_channel *ch, const crpc_method *m,
                     const crpc_call_opts *opts, const ProtobufCMessage *req,
                     ProtobufCMessage **resp_out, crpc_status *st) {
  crpc_call *c;
  crpc_status local = {0};
  crpc__msgbuf *mb;
  if (resp_out)
    *resp_out = NULL;
  int rv = start_unary(&c, ch, m, opts, req);
  if (rv != 0) {
    crpc_code code = rv == CRPC_ETOOBIG ? CRPC_RESOURCE_EXHAUSTED
                                        : CRPC_INTERNAL;
    crpc__status_set(st, code, "cannot start the call: %s",
                     crpc_strerror(rv));
    return code;
  }
  start(c);
  pthread_mutex_lock(&c->mu);
  while (!c->done)
    crpc__call_wait(c);
  crpc__status_move(&local, &c->status);
  mb = crpc__msgq_pop(&c->recvq);
  pthread_mutex_unlock(&c->mu);
  if (local.code == CRPC_OK) {
    ProtobufCMessage *resp = NULL;
    if (!mb)
      crpc__status_set(&local, CRPC_INTERNAL,
                       "server sent no response message");
    else
      crpc__unframe_message(&c->mem, m->output, c->alloc, mb, c->recv_enc,
                            c->max_recv, &resp, &local);
    if (resp && resp_out)
      *resp_out = resp;
    else if (resp)
      protobuf_c_message_free_unpacked(resp, c->alloc);
  }
  crpc__free(&c->mem, mb);
  crpc_code code = local.code;
  if (st)
    crpc__status_move(st, &local);
  crpc_status_clear(&local);
  crpc__call_unref(c);
  return code;
}

static int unary_async(crpc_channel *ch, const crpc_method *m,
                       const crpc_call_opts *opts, const ProtobufCMessage *req,
                       crpc_unary_cb cb, crpc_unary_adapter adapter,
                       crpc_fn typed, void *ud) {
  crpc_call *c;
  if (!cb && !(adapter && typed))
    return CRPC_EINVAL;
  int rv = start_unary(&c, ch, m, opts, req);
  if (rv != 0)
    return rv;
  c->async_cb = cb;
  c->async_adapter = adapter;
  c->async_typed_cb = typed;
  c->async_ud = ud;
  crpc__loop_background(c->loop, +1); /* nobody waits on this thread */
  start(c); /* the call's first reference now belongs to deliver_async */
  return 0;
}

int crpc_unary_async(crpc_channel *ch, const crpc_method *m,
                     const crpc_call_opts *opts, const ProtobufCMessage *req,
                     crpc_unary_cb cb, void *user_data) {
  return unary_async(ch, m, opts, req, cb, NULL, NULL, user_data);
}

int crpc_unary_async_typed(crpc_channel *ch, const crpc_method *m,
                           const crpc_call_opts *opts,
                           const ProtobufCMessage *req,
                           crpc_unary_adapter adapter, crpc_fn typed_cb,
                           void *user_data) {
  return unary_async(ch, m, opts, req, NULL, adapter, typed_cb, user_data);
}

/* ---- streaming client API [user thread] ---- */

bool crpc_call_writes_done(crpc_call *c) {
  if (!c || c->is_server)
    return false;
  pthread_mutex_lock(&c->mu);
  bool ok = !c->done && !c->send_closed;
  if (ok)
    c->send_closed = true;
  pthread_mutex_unlock(&c->mu);
  if (ok)
    crpc__call_kick(c);
  return ok;
}

const crpc_metadata *crpc_call_initial_metadata(crpc_call *c) {
  if (!c || c->is_server)
    return NULL;
  pthread_mutex_lock(&c->mu);
  while (!c->got_headers && !c->done)
    crpc__call_wait(c);
  pthread_mutex_unlock(&c->mu);
  return c->recv_md;
}

crpc_code crpc_call_finish(crpc_call *c, crpc_status *st) {
  if (!c || c->is_server)
    return CRPC_INVALID_ARGUMENT;
  pthread_mutex_lock(&c->mu);
  while (!c->done)
    crpc__call_wait(c);
  crpc_code code = c->status.code;
  if (st) {
    crpc_status_clear(st);
    st->code = code;
    st->message = c->status.message ? strdup(c->status.message) : NULL;
    if (c->status.details_len && (st->details = malloc(c->status.details_len))) {
      memcpy(st->details, c->status.details, c->status.details_len);
      st->details_len = c->status.details_len;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return code;
}

crpc_code crpc_call_finish_with_response(crpc_call *c,
                                         ProtobufCMessage **resp_out,
                                         crpc_status *st) {
  ProtobufCMessage *resp = NULL, *extra = NULL;
  if (resp_out)
    *resp_out = NULL;
  crpc_call_writes_done(c);
  bool got = crpc_call_read(c, &resp);
  if (got && crpc_call_read(c, &extra)) {
    protobuf_c_message_free_unpacked(extra, c->alloc);
    pthread_mutex_lock(&c->mu);
    if (!c->done && c->status.code == CRPC_OK) {
      crpc__status_set(&c->status, CRPC_INTERNAL,
                       "server sent more than one response to a "
                       "client-streaming call");
      c->cancel_requested = true;
      crpc__call_kick_locked(c);
    }
    pthread_mutex_unlock(&c->mu);
  }
  crpc_code code = crpc_call_finish(c, st);
  if (code == CRPC_OK && !got) {
    code = CRPC_INTERNAL;
    crpc__status_set(st, code, "server sent no response message");
  }
  if (code == CRPC_OK && resp_out)
    *resp_out = resp;
  else if (resp)
    protobuf_c_message_free_unpacked(resp, c->alloc);
  return code;
}

const crpc_metadata *crpc_call_trailing_metadata(crpc_call *c) {
  if (!c || c->is_server)
    return NULL;
  pthread_mutex_lock(&c->mu);
  bool done = c->done;
  pthread_mutex_unlock(&c->mu);
  return done ? c->trailers : NULL;
}

void crpc_call_free(crpc_call *c) {
  if (!c)
    return;
  if (c->is_server) /* server calls belong to the server */
    return;
  if (c->cb) { /* no callback after this, even one already scheduled */
    pthread_mutex_lock(&c->mu);
    c->cb_freed = true;
    pthread_mutex_unlock(&c->mu);
  }
  crpc_call_cancel(c);
  crpc__call_unref(c);
}
