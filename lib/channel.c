/*
 * channel.c: a channel: the few shared client reactor threads channels
 * live on (or the program's crpc_loop), its target's addresses, connecting
 * to them in turn with a connect deadline and back-off, its current
 * connection and the calls waiting for one, and its life (new, free).
 * User threads never touch nghttp2: they post the call's kick to the
 * channel's loop (client_call.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "client_internal.h"

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
  char attempts[12];
  if (c->rs.attempts > 0) { /* gRFC A6: this is a retry */
    snprintf(attempts, sizeof attempts, "%d", c->rs.attempts);
    nv = &nva[n++];
    nv->name = (uint8_t *)"grpc-previous-rpc-attempts";
    nv->namelen = 26;
    nv->value = (uint8_t *)attempts;
    nv->valuelen = strlen(attempts);
    nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME;
  }
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
    crpc__client_finish(c, CRPC_RESOURCE_EXHAUSTED,
           "out of memory encoding the request metadata");
    return;
  }
  nghttp2_data_provider dp = {.source.ptr = c,
                              .read_callback = crpc__call_data_read};
  int32_t id = nghttp2_submit_request(conn->session, NULL, nva, n, &dp, c);
  if (id < 0) {
    crpc__client_finish(c, id == NGHTTP2_ERR_NOMEM ? CRPC_RESOURCE_EXHAUSTED
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

void crpc__channel_submit(crpc_channel *ch, crpc_call *c) {
  if (ch->shutting_down) {
    crpc__client_finish(c, CRPC_CANCELLED, "channel closed");
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
      crpc__client_finish(c, CRPC_UNAVAILABLE, ch->last_error);
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
      crpc__client_finish(c, code, msg);
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
  static const crpc__conn_hooks hooks = {.streams = &crpc__client_streams,
                                         .on_closed = on_conn_closed,
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
    crpc__channel_submit(ch, c);
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

/* ---- the channel ---- */

int crpc_channel_new(crpc_channel **out, const char *target,
                     const crpc_channel_opts *opts) {
  crpc_channel_opts none = {0};
  crpc__addr probe[1];
  char *host = NULL;
  crpc_mem mem;
  crpc__service_config *sc = NULL;
  int rv;
  if (opts && opts->error_buf && opts->error_buf_size)
    opts->error_buf[0] = 0;
  if (!out || !target)
    return CRPC_EINVAL;
  if (!opts)
    opts = &none;
  crpc__mem_init(&mem, opts->mem);
  if (opts->service_config_json) {
    char err[256];
    rv = crpc__service_config_parse(opts->service_config_json,
                                    strlen(opts->service_config_json), &mem,
                                    &sc, err, sizeof err);
    if (rv != 0) {
      crpc__log_error("%s", err);
      if (opts->error_buf && opts->error_buf_size)
        snprintf(opts->error_buf, opts->error_buf_size, "%s", err);
      return rv;
    }
  }
  /* Parse now so a bad target fails here, not at the first call. */
  rv = crpc__resolve(target, false, probe, 1, &host, &mem);
  if (rv == CRPC_ENOMEM || rv == CRPC_ETARGET) {
    /* malformed; a name that does not resolve yet is fine */
    crpc__service_config_free(sc, &mem);
    return rv;
  }
  crpc__encoding enc = CRPC__ENC_IDENTITY;
  if (opts->compression) {
    enc = crpc__encoding_from_name(opts->compression,
                                   strlen(opts->compression));
    if (enc == CRPC__ENC_UNKNOWN) {
      crpc__free(&mem, host);
      crpc__service_config_free(sc, &mem);
      return CRPC_EENCODING;
    }
  }
  crpc_channel *ch = crpc__calloc(&mem, 1, sizeof *ch);
  if (!ch) {
    crpc__free(&mem, host);
    crpc__service_config_free(sc, &mem);
    return CRPC_ENOMEM;
  }
  ch->mem = mem;
  ch->sc = sc;
  if (sc && sc->has_throttle) { /* gRFC A6: the bucket starts full */
    ch->throttle.max = sc->max_tokens_milli;
    ch->throttle.ratio = sc->token_ratio_milli;
    atomic_init(&ch->throttle.tokens, sc->max_tokens_milli);
  }
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
  ch->metrics = opts->metrics;
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
  crpc__service_config_free(ch->sc, &mem);
  crpc__free(&mem, ch);
  return rv;
}

int crpc_channel_set_addresses(crpc_channel *ch, const char *const *addrs,
                               size_t n, const char *error) {
  if (!ch || !ch->resolver)
    return CRPC_EINVAL;
  return crpc__resolver_set_addresses(ch->resolver, addrs, n, error);
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

static void channel_free_now(crpc_channel *ch);

static void channel_free_task(void *arg) { channel_free_now(arg); }

void crpc_channel_free(crpc_channel *ch) {
  if (!ch)
    return;
  if (ch->loop_idx < 0 && crpc__loop_in_round(ch->loop)) {
    /* from inside one of its loop's callbacks (the program's loop): the
     * stack may still hold the connection that called us. Close and free
     * once the callbacks have unwound, in the loop's own work. */
    ch->free_task.fn = channel_free_task;
    ch->free_task.arg = ch;
    ch->free_task.heap = false;
    crpc__loop_post_own(ch->loop, &ch->free_task);
    return;
  }
  channel_free_now(ch);
}

static void channel_free_now(crpc_channel *ch) {
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
  if (ch->loop_idx < 0 && crpc__loop_may_drive(ch->loop))
    crpc__loop_run_own_now(ch->loop); /* the cancelled calls' callbacks */
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
  crpc__service_config_free(ch->sc, &mem);
  crpc__free(&mem, ch);
}
