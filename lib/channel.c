/*
 * channel.c: a channel: the few shared client reactor threads channels
 * live on (or the program's crpc_loop), its target's resolution (through
 * its resolver, resolver.h) into subchannels (subchannel.c) that its
 * load-balancing policy (lb.c) connects and picks from, the calls waiting
 * for a connection, and its life (new, free). User threads never touch
 * nghttp2: they post the call's kick to the channel's loop
 * (client_call.c).
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

static void submit_on_conn(crpc_channel *ch, crpc__conn *conn, crpc_call *c) {
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

void crpc__channel_submit(crpc_channel *ch, crpc_call *c) {
  if (ch->shutting_down) {
    crpc__client_finish(c, CRPC_CANCELLED, "channel closed");
    return;
  }
  crpc__conn *conn = ch->lb->pick(ch);
  if (conn) {
    submit_on_conn(ch, conn, c);
    return;
  }
  if (ch->state == CH_TRANSIENT_FAILURE &&
      !(c->flags & CRPC_CALL_WAIT_FOR_READY)) {
    crpc__client_finish(c, CRPC_UNAVAILABLE, ch->last_error);
    return;
  }
  add_pending(ch, c);
  if (!ch->resolved) {
    if (ch->state == CH_IDLE)
      crpc__channel_set_state(ch, CH_CONNECTING);
    crpc__channel_reresolve(ch);
  } else {
    ch->lb->exit_idle(ch);
  }
}

/* ---- the policy's state [loop] ---- */

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

void crpc__channel_set_state(crpc_channel *ch, chan_state st) {
  if (ch->shutting_down)
    return;
  bool changed = ch->state != st;
  ch->state = st;
  if (changed)
    crpc__channel_publish_state(ch, (int)st);
  if (st == CH_READY && ch->pending) {
    /* the pending calls go out in order, each on a pick of its own */
    crpc_call *c = ch->pending;
    ch->pending = ch->pending_tail = NULL;
    while (c) {
      crpc_call *next = c->conn_next;
      c->conn_next = NULL;
      crpc__channel_submit(ch, c);
      crpc__call_unref(c); /* the pending list's reference */
      c = next;
    }
  } else if (st == CH_TRANSIENT_FAILURE && ch->pending) {
    crpc__log_info("%s", ch->last_error);
    fail_pending(ch, false, CRPC_UNAVAILABLE, ch->last_error);
  }
}

void crpc__channel_sub_state(crpc__subchannel *sc) {
  crpc_channel *ch = sc->ch;
  if (!ch->shutting_down)
    ch->lb->sub_state(ch, sc);
}

/* ---- resolution [loop] ---- */

void crpc__channel_reresolve(crpc_channel *ch) {
  if (ch->resolving || ch->shutting_down)
    return;
  ch->resolving = true;
  crpc__resolver_request(ch->resolver);
}

static void on_resolve_retry(crpc__timer *t) {
  crpc_channel *ch =
      (crpc_channel *)((char *)t - offsetof(crpc_channel, resolve_timer));
  if (ch->pending)
    crpc__channel_reresolve(ch);
}

/* The new address list: subchannels of addresses still there are kept
 * (with their connections), new ones made, the others removed once their
 * calls finish. */
static void update_subs(crpc_channel *ch, const crpc__resolution *res) {
  crpc__subchannel *old = ch->subs, *head = NULL, **tail = &head;
  size_t n = 0;
  for (size_t i = 0; i < res->naddrs; i++) {
    crpc__subchannel *sc = NULL, **pp = &old;
    for (; *pp; pp = &(*pp)->next) {
      if (crpc__addr_equal(&(*pp)->addr, &res->addrs[i])) {
        sc = *pp;
        *pp = sc->next; /* taken from the old list */
        break;
      }
    }
    if (!sc) {
      bool dup = false; /* the same address twice: one subchannel */
      for (crpc__subchannel *s = head; s && !dup; s = s->next)
        dup = crpc__addr_equal(&s->addr, &res->addrs[i]);
      if (dup || !(sc = crpc__subchannel_new(ch, &res->addrs[i])))
        continue;
    }
    sc->next = NULL;
    *tail = sc;
    tail = &sc->next;
    n++;
  }
  ch->subs = head;
  ch->nsubs = n;
  if (ch->pf_cur && ch->pf_cur->removed)
    ch->pf_cur = NULL;
  while (old) { /* no longer resolved */
    crpc__subchannel *next = old->next;
    if (ch->pf_cur == old)
      ch->pf_cur = NULL;
    if (ch->rr_next == old)
      ch->rr_next = NULL;
    crpc__subchannel_remove(old);
    old = next;
  }
}

static void on_resolved(void *owner, const crpc__resolution *res) {
  crpc_channel *ch = owner;
  ch->resolving = false;
  if (ch->shutting_down)
    return;
  if (res->error || res->naddrs == 0) {
    if (ch->state == CH_READY)
      return; /* keep what works; the next failure asks again */
    snprintf(ch->last_error, sizeof ch->last_error,
             "failed to resolve %s: %s", ch->target,
             res->error ? res->error : "no addresses");
    crpc__channel_set_state(ch, CH_TRANSIENT_FAILURE);
    /* wait-for-ready calls wait: ask again after a backoff */
    int64_t b = ch->resolve_backoff_ms;
    ch->resolve_backoff_ms = b * 16 / 10 > ch->max_backoff_ms
                                 ? ch->max_backoff_ms
                                 : b * 16 / 10;
    ch->resolve_timer.cb = on_resolve_retry;
    crpc__timer_start(ch->loop, &ch->resolve_timer, crpc__now_ms() + b);
    return;
  }
  ch->resolve_backoff_ms = ch->initial_backoff_ms;
  ch->resolved = true;
  update_subs(ch, res);
  if (!ch->subs) {
    snprintf(ch->last_error, sizeof ch->last_error,
             "failed to resolve %s: out of memory", ch->target);
    crpc__channel_set_state(ch, CH_TRANSIENT_FAILURE);
    return;
  }
  ch->lb->update(ch);
}

static void signal_done(crpc_channel *ch) {
  pthread_mutex_lock(&ch->done_mu);
  ch->done = true;
  pthread_cond_signal(&ch->done_cv);
  pthread_mutex_unlock(&ch->done_mu);
}

void crpc__channel_conn_freed(crpc_channel *ch) {
  if (--ch->nconns == 0 && ch->shutting_down)
    signal_done(ch); /* the last thing this loop does for the channel */
}

static void connect_task(void *arg) {
  crpc_channel *ch = arg;
  pthread_mutex_lock(&ch->done_mu);
  ch->connect_queued = false;
  pthread_mutex_unlock(&ch->done_mu);
  if (ch->shutting_down)
    return;
  if (!ch->resolved) {
    if (ch->state == CH_IDLE)
      crpc__channel_set_state(ch, CH_CONNECTING);
    crpc__channel_reresolve(ch);
  } else {
    ch->lb->exit_idle(ch);
  }
}

/* crpc_channel_state(ch, 1) [any thread]: leave IDLE. */
void crpc__channel_kick_connect(crpc_channel *ch) {
  pthread_mutex_lock(&ch->done_mu);
  bool post = !ch->connect_queued && !ch->done;
  ch->connect_queued = true;
  pthread_mutex_unlock(&ch->done_mu);
  if (!post)
    return;
  ch->connect_task.fn = connect_task;
  ch->connect_task.arg = ch;
  ch->connect_task.heap = false;
  crpc__loop_post_task(ch->loop, &ch->connect_task);
}

/* ---- the channel ---- */

int crpc_channel_new(crpc_channel **out, const char *target,
                     const crpc_channel_opts *opts) {
  crpc_channel_opts none = {0};
  char *host = NULL, *authority = NULL;
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
  /* the policy: the service config's, else the option, else pick_first */
  const crpc__lb_policy *lb =
      crpc__lb_find(sc && sc->lb_policy ? sc->lb_policy : opts->lb_policy);
  if (!lb) {
    crpc__log_error("unknown load-balancing policy \"%s\" (crpc has "
                    "pick_first and round_robin)", opts->lb_policy);
    if (opts->error_buf && opts->error_buf_size)
      snprintf(opts->error_buf, opts->error_buf_size,
               "lb_policy: unknown load-balancing policy \"%s\" (crpc "
               "has pick_first and round_robin)", opts->lb_policy);
    crpc__service_config_free(sc, &mem);
    return CRPC_EINVAL;
  }
  /* Parse now so a bad target fails here, not at the first call. */
  rv = crpc__target_names(target, &authority, &host, &mem);
  if (rv == CRPC_ETARGET && opts->resolver) {
    /* a name for the program's resolver: any string */
    authority = crpc__strdup(&mem, target);
    host = crpc__strdup(&mem, target);
    rv = authority && host ? 0 : CRPC_ENOMEM;
  }
  if (rv != 0) {
    crpc__free(&mem, host);
    crpc__free(&mem, authority);
    crpc__service_config_free(sc, &mem);
    return rv;
  }
  crpc__encoding enc = CRPC__ENC_IDENTITY;
  if (opts->compression) {
    enc = crpc__encoding_from_name(opts->compression,
                                   strlen(opts->compression));
    if (enc == CRPC__ENC_UNKNOWN) {
      crpc__free(&mem, host);
      crpc__free(&mem, authority);
      crpc__service_config_free(sc, &mem);
      return CRPC_EENCODING;
    }
  }
  crpc_channel *ch = crpc__calloc(&mem, 1, sizeof *ch);
  if (!ch) {
    crpc__free(&mem, host);
    crpc__free(&mem, authority);
    crpc__service_config_free(sc, &mem);
    return CRPC_ENOMEM;
  }
  ch->lb = lb;
  ch->mem = mem;
  ch->sc = sc;
  if (sc && sc->has_throttle) { /* gRFC A6: the bucket starts full */
    ch->throttle.max = sc->max_tokens_milli;
    ch->throttle.ratio = sc->token_ratio_milli;
    atomic_init(&ch->throttle.tokens, sc->max_tokens_milli);
  }
  ch->target = crpc__strdup(&ch->mem, target);
  ch->host = host;
  if (opts->tls && opts->tls->server_name_override) {
    crpc__free(&ch->mem, ch->host);
    ch->host = crpc__strdup(&ch->mem, opts->tls->server_name_override);
  }
  ch->authority = authority;
  if (opts->authority || (opts->tls && opts->tls->server_name_override)) {
    crpc__free(&ch->mem, ch->authority);
    ch->authority = crpc__strdup(&ch->mem, opts->authority
                                               ? opts->authority
                                               : opts->tls->server_name_override);
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
  ch->resolve_backoff_ms = ch->initial_backoff_ms;
  ch->keepalive_ms = opts->keepalive_ms > 0 ? opts->keepalive_ms : 0;
  ch->keepalive_timeout_ms = opts->keepalive_timeout_ms;
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
  crpc__resolver_args ra = {.loop = ch->loop,
                            .target = target,
                            .mem = &ch->mem,
                            .custom = opts->resolver,
                            .channel = ch,
                            .min_interval_ms =
                                opts->min_resolution_interval_ms,
                            .cb = on_resolved,
                            .owner = ch};
  if ((rv = crpc__resolver_new(&ch->resolver, &ra)) != 0) {
    if (ch->loop_idx >= 0)
      pool_release(ch->loop_idx);
    goto fail;
  }
  atomic_init(&ch->pub_state, (int)CH_IDLE);
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
  crpc__timer_stop(ch->loop, &ch->resolve_timer);
  crpc__resolver_free(ch->resolver); /* no result comes after this */
  ch->resolver = NULL;
  fail_pending(ch, true, CRPC_CANCELLED, "channel closed");
  crpc__subchannel *sc = ch->subs;
  ch->subs = ch->pf_cur = ch->rr_next = NULL;
  ch->nsubs = 0;
  while (sc) {
    crpc__subchannel *next = sc->next;
    crpc__subchannel_close(sc);
    sc = next;
  }
  /* closed connections are freed by tasks queued behind this one; the
   * last of them signals (crpc__channel_conn_freed) */
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
  pthread_mutex_lock(&ch->done_mu);
  while (ch->fires) { /* watch callbacks already on their way */
    if (ch->loop_idx < 0 && crpc__loop_may_drive(ch->loop)) {
      pthread_mutex_unlock(&ch->done_mu);
      crpc__loop_run_own_now(ch->loop);
      pthread_mutex_lock(&ch->done_mu);
      continue;
    }
    pthread_cond_wait(&ch->done_cv, &ch->done_mu);
  }
  pthread_mutex_unlock(&ch->done_mu);
  crpc__channel_watches_shutdown(ch);
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
