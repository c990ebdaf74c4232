/*
 * call.c: the parts of a call both sides share: life cycle, the blocking
 * read/write paths over the queues the reactor fills and drains, metadata
 * and status accessors, the arena.
 */
#include <stdlib.h>
#include <string.h>

#include "call_internal.h"
#include "peer.h"

int crpc__call_new(crpc_call **out, bool is_server, crpc__loop *loop,
                   const crpc_mem *mem, crpc__task_fn kick) {
  crpc_call *c = crpc__calloc(mem, 1, sizeof *c);
  if (!c)
    return CRPC_ENOMEM;
  atomic_init(&c->refs, 1);
  c->mem = *mem;
  crpc__mem_pbc(&c->pbc, &c->mem);
  c->arena.mem = c->nv_arena.mem = c->deframer.mem = &c->mem;
  c->deframer.pool = &c->msgpool;
  c->is_server = is_server;
  c->loop = loop;
  c->stream_id = -1;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  c->kick.fn = kick; /* the side's: call.c knows neither */
  c->kick.arg = c;
  c->max_recv = CRPC__DEFAULT_MAX_RECV;
  if (crpc__metadata_new(&c->send_md, &c->mem) ||
      crpc__metadata_new(&c->recv_md, &c->mem) ||
      crpc__metadata_new(&c->trailers, &c->mem)) {
    crpc_metadata_free(c->send_md);
    crpc_metadata_free(c->recv_md);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    crpc__free(mem, c);
    return CRPC_ENOMEM;
  }
  *out = c;
  return 0;
}

void crpc__call_ref(crpc_call *c) {
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void crpc__call_unref(crpc_call *c) {
  if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
    return;
  crpc__call_sendq_clear(c); /* detached: budgets already returned */
  crpc__msgq_clear(&c->recvq, &c->mem);
  crpc__msgq_clear(&c->rs.replay, &c->mem); /* a client's kept requests */
  crpc__deframer_reset(&c->deframer);
  crpc__msgpool_drain(&c->msgpool, &c->mem);
  crpc_status_clear(&c->status);
  crpc_metadata_free(c->send_md);
  crpc_metadata_free(c->recv_md);
  crpc_metadata_free(c->trailers);
  crpc__arena_free(&c->arena);
  crpc__arena_free(&c->nv_arena);
  crpc__peer_id_unref(c->peer_id);
  crpc__free(&c->mem, c->path);
  crpc__free(&c->mem, c->cb_copy);
  crpc__free(&c->mem, c->content_type);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  crpc_mem mem = c->mem; /* the last free must not read the freed call */
  crpc__free(&mem, c);
}

typedef struct wait_arg {
  crpc_call *c;
  unsigned seen;
} wait_arg;

static bool call_changed(void *arg) {
  wait_arg *w = arg;
  pthread_mutex_lock(&w->c->mu);
  bool r = w->c->events != w->seen;
  pthread_mutex_unlock(&w->c->mu);
  return r;
}

void crpc__call_wait(crpc_call *c) {
  if (c->is_server || !crpc__loop_may_drive(c->loop)) {
    pthread_cond_wait(&c->cv, &c->mu);
    return;
  }
  wait_arg w = {c, c->events};
  unsigned rounds = crpc__loop_rounds(c->loop); /* with mu: see loop.h */
  pthread_mutex_unlock(&c->mu);
  crpc__loop_wait(c->loop, rounds, call_changed, &w);
  pthread_mutex_lock(&c->mu);
}

void crpc__call_kick(crpc_call *c) {
  crpc__loop *l = c->loop; /* the round may end (and free) an async call */
  bool here = crpc__loop_try_enter(l);
  pthread_mutex_lock(&c->mu);
  crpc__call_kick_locked(c);
  pthread_mutex_unlock(&c->mu);
  if (here) { /* nobody runs the loop: run this round ourselves */
    crpc__loop_run_once(l, 0);
    crpc__loop_leave(l);
  }
}

void crpc__call_kick_locked(crpc_call *c) {
  if (c->kick_queued)
    return;
  c->kick_queued = true;
  crpc__call_ref(c); /* held by the queued task */
  crpc__loop_post_task(c->loop, &c->kick);
}

void crpc__call_sendq_push(crpc_call *c, crpc__msgbuf *m) {
  crpc__msgq_push(&c->sendq, m);
  for (int i = 0; i < 2; i++)
    if (c->budget[i])
      crpc__budget_add(c->budget[i], m->len);
}

crpc__msgbuf *crpc__call_sendq_pop(crpc_call *c) {
  crpc__msgbuf *m = crpc__msgq_pop(&c->sendq);
  for (int i = 0; m && i < 2; i++)
    if (c->budget[i])
      crpc__budget_sub(c->budget[i], m->len);
  return m;
}

void crpc__call_sendq_clear(crpc_call *c) {
  crpc__msgbuf *m;
  while ((m = crpc__call_sendq_pop(c)))
    crpc__free(&c->mem, m);
}

bool crpc__call_out_blocked(const crpc_call *c) {
  if (c->sendq.bytes >= CRPC__SENDQ_LIMIT)
    return true;
  if (!c->budget[0])
    return false;
  if (crpc__budget_full(c->budget[0]))
    return true;
  /* over the server's budget, a connection with nothing in flight may
   * still send: a stalled peer never stops the others for long */
  return c->budget[1] && crpc__budget_full(c->budget[1]) &&
         atomic_load(&c->budget[0]->used) > 0;
}

void crpc__call_budget_attach(crpc_call *c, crpc__budget *conn,
                              crpc__budget *parent) {
  pthread_mutex_lock(&c->mu);
  c->budget[0] = conn;
  c->budget[1] = parent;
  for (int i = 0; i < 2; i++) /* a client's first message may be queued */
    if (c->budget[i] && c->sendq.bytes)
      crpc__budget_add(c->budget[i], c->sendq.bytes);
  pthread_mutex_unlock(&c->mu);
}

void crpc__call_budget_detach(crpc_call *c) {
  pthread_mutex_lock(&c->mu);
  if (c->budget[0] && c->writers_waiting)
    atomic_fetch_sub(&c->budget[0]->waiters, (unsigned)c->writers_waiting);
  for (int i = 0; i < 2; i++) {
    if (c->budget[i] && c->sendq.bytes)
      crpc__budget_sub(c->budget[i], c->sendq.bytes);
    c->budget[i] = NULL;
  }
  pthread_mutex_unlock(&c->mu);
}

int crpc__call_on_message(void *ud, crpc__msgbuf *m) {
  crpc_call *c = ud;
  c->mx_rx += m->len; /* [loop] for metrics: payload as received */
  crpc__ic_recv(c, m->data, m->len, m->compressed);
  pthread_mutex_lock(&c->mu);
  bool wake = c->recvq.head == NULL;
  crpc__msgq_push(&c->recvq, m);
  c->events++;
  if (wake)
    pthread_cond_broadcast(&c->cv);
  if (c->cb)
    crpc__call_cb_schedule(c);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

void crpc__call_consume(crpc_call *c, size_t n) {
  if (!c->conn || c->stream_id <= 0)
    return;
  /* While the reader has (almost) nothing queued, every byte received is
   * credited back at once: a partial message must be able to complete
   * even when it is larger than the window. Once complete messages pile
   * up unread, credit waits for the reader: that is the backpressure. */
  size_t left = c->rx_bytes - c->rx_consumed;
  pthread_mutex_lock(&c->mu);
  /* an inline stream handler answers as it reads: while its answers are
   * not going out, stop taking requests (its backpressure) */
  bool idle = c->recvq.bytes < CRPC__CONSUME_BATCH &&
              (!c->inline_stream || c->sendq.bytes < CRPC__SENDQ_LIMIT);
  if (idle || n > left)
    n = left;
  c->uncredited = left - n; /* the reader kicks only while this is > 0 */
  pthread_mutex_unlock(&c->mu);
  if (!n)
    return;
  c->rx_consumed += n;
  nghttp2_session_consume(c->conn->session, c->stream_id, n);
}

void crpc__call_release_window(crpc_call *c) {
  size_t left = c->rx_bytes - c->rx_consumed;
  if (left && c->conn)
    nghttp2_session_consume_connection(c->conn->session, left);
  c->rx_consumed = c->rx_bytes;
}

bool crpc__call_next_message(crpc_call *c, crpc__msgbuf **out) {
  pthread_mutex_lock(&c->mu);
  while (!c->recvq.head && !c->recv_closed && !c->done && !c->cancelled)
    crpc__call_wait(c);
  crpc__msgbuf *m = crpc__msgq_pop(&c->recvq);
  bool credit_here = false;
  if (m) {
    c->to_consume += m->len + 5;
    /* credit the window back in batches, and at once when we have drained
     * what the peer sent (it may be waiting for window to send more); a
     * reactor that already credited everything needs no wake-up */
    if (c->uncredited &&
        (c->to_consume >= CRPC__CONSUME_BATCH || !c->recvq.head)) {
      /* After a small message the credit leaves from this thread, as a
       * write does, if nobody runs the loop: posting it wakes the pool
       * thread, and our next wait takes the loop back, a dozen thread
       * switches a message on a blocking stream. After a large one it is
       * posted: the pool thread keeps the socket drained while we unpack
       * (1 MiB downloads were 13 % slower without). On the pool thread
       * itself (an async completion reading its response) it is posted
       * too: a round run from inside the completion would be one more. */
      if (c->is_server || m->len >= CRPC__CREDIT_POSTED_MIN ||
          crpc__loop_on_own_thread(c->loop))
        crpc__call_kick_locked(c);
      else
        credit_here = true;
    }
  }
  pthread_mutex_unlock(&c->mu);
  if (credit_here)
    crpc__call_kick(c);
  *out = m;
  return m != NULL;
}

bool crpc_call_write(crpc_call *call, const ProtobufCMessage *msg) {
  return crpc_call_write2(call, msg, 0);
}

bool crpc_call_write2(crpc_call *c, const ProtobufCMessage *msg,
                      unsigned flags) {
  crpc__msgbuf *m;
  if (!c || !msg)
    return false;
  if (c->is_server) {
    crpc__ics_send(c, msg);
  } else if (crpc__icc_send(c, &msg) != CRPC_OK) {
    crpc__call_kick(c); /* the call ends with the interceptor's status */
    return false;
  }
  crpc__encoding enc = (flags & CRPC_WRITE_NO_COMPRESS) ? CRPC__ENC_IDENTITY
                                                         : c->send_enc;
  int rv = crpc__frame_message(&c->mem, &c->msgpool, msg, enc, c->max_send, &m);
  if (rv != 0) {
    if (rv == CRPC_ETOOBIG) {
      size_t n = protobuf_c_message_get_packed_size(msg);
      if (c->is_server)
        crpc__log_warn("%s: response of %zu bytes is over the send limit",
                       crpc_call_method(c), n);
      pthread_mutex_lock(&c->mu);
      if (!c->done && !c->is_server) {
        crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                         "message of %zu bytes is larger than the send "
                         "limit (%zu)",
                         n, c->max_send);
        c->cancel_requested = true;
        crpc__call_kick_locked(c);
      }
      pthread_mutex_unlock(&c->mu);
    } else if (rv == CRPC_ENOMEM) {
      /* a message lost for want of memory ends the call (either side),
       * or the peer would wait for it */
      pthread_mutex_lock(&c->mu);
      if (!c->done && !c->cancel_requested && !c->send_closed) {
        crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                         "out of memory framing a message");
        if (c->is_server) /* the status to send, whatever the handler
                             returns: its later writes fail */
          c->send_closed = true;
        else
          c->cancel_requested = true;
        crpc__call_kick_locked(c);
      }
      pthread_mutex_unlock(&c->mu);
    }
    return false;
  }
  pthread_mutex_lock(&c->mu);
  /* a NONBLOCKING handler on the reactor never waits: it queues, and the
   * call stops taking requests until the queue drains */
  bool on_loop = crpc__loop_on_thread(c->loop);
  while (!on_loop && !c->done && !c->send_closed &&
         crpc__call_out_blocked(c)) {
    crpc__budget *b = c->budget[0]; /* the write-stall timer counts us */
    if (b)
      atomic_fetch_add(&b->waiters, 1);
    c->writers_waiting++;
    crpc__call_wait(c);
    c->writers_waiting--;
    if (b && c->budget[0] == b) /* else detach took our count back */
      atomic_fetch_sub(&b->waiters, 1);
  }
  if (c->done || c->send_closed || c->cancel_requested) {
    pthread_mutex_unlock(&c->mu);
    crpc__msgpool_put(&c->msgpool, &c->mem, m);
    return false;
  }
  crpc__call_sendq_push(c, m);
  c->wrote_any = true; /* the response headers are on their way */
  if (c->is_server) {
    crpc__call_kick_locked(c);
    pthread_mutex_unlock(&c->mu);
  } else {
    pthread_mutex_unlock(&c->mu);
    crpc__call_kick(c); /* the message may leave from this thread */
  }
  return true;
}

bool crpc_call_read(crpc_call *c, ProtobufCMessage **msg_out) {
  if (!c || !msg_out)
    return false;
  /* what the user frees: call.h's contract */
  return crpc__call_read(c, msg_out, c->is_server ? NULL : c->alloc);
}

bool crpc__call_read(crpc_call *c, ProtobufCMessage **msg_out,
                     ProtobufCAllocator *alloc) {
  crpc__msgbuf *m;
  crpc_status st = {0};
  *msg_out = NULL;
  if (!crpc__call_next_message(c, &m))
    return false;
  const ProtobufCMessageDescriptor *d =
      c->is_server ? c->method->input : c->method->output;
  c->last_read_compressed = m->compressed;
  crpc_code code = crpc__unframe_message(&c->mem, d, alloc, m, c->recv_enc,
                                         c->max_recv, msg_out, &st);
  crpc__msgpool_put(&c->msgpool, &c->mem, m);
  if (code == CRPC_OK)
    return true;
  /* A message we cannot use ends the call with the spec's status. */
  pthread_mutex_lock(&c->mu);
  if (!c->done) {
    crpc__status_move(&c->status, &st);
    if (c->is_server) /* the status to send, whatever the handler returns */
      c->send_closed = true;
    c->cancel_requested = true;
    crpc__call_kick_locked(c);
  } else if (!c->is_server && c->status.code == CRPC_OK) {
    /* the server had finished, but a message it sent is lost: the call
     * must not end OK */
    crpc__status_move(&c->status, &st);
  }
  pthread_mutex_unlock(&c->mu);
  crpc_status_clear(&st);
  return false;
}

void crpc_call_cancel(crpc_call *c) {
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  if (!c->done && !c->cancel_requested && !c->ic_finishing) {
    c->cancel_requested = true;
    if (!c->is_server)
      crpc__status_set(&c->status, CRPC_CANCELLED, "cancelled by the client");
    crpc__call_kick_locked(c);
  }
  pthread_mutex_unlock(&c->mu);
}

const char *crpc_call_method(const crpc_call *c) {
  return c && c->method ? c->method->path : "";
}

int64_t crpc_call_time_left_ms(const crpc_call *c) {
  if (!c || !c->deadline_ms)
    return -1;
  int64_t left = c->deadline_ms - crpc__now_ms();
  return left > 0 ? left : 0;
}

bool crpc_call_is_cancelled(const crpc_call *call) {
  crpc_call *c = (crpc_call *)call;
  if (!c)
    return false;
  pthread_mutex_lock(&c->mu);
  bool r = c->cancelled || c->cancel_requested;
  pthread_mutex_unlock(&c->mu);
  if (!r && c->deadline_ms && crpc__now_ms() >= c->deadline_ms)
    r = true;
  return r;
}

void *crpc_call_arena_alloc(crpc_call *c, size_t size) {
  return c ? crpc__arena_alloc(&c->arena, size) : NULL;
}

char *crpc_call_arena_strdup(crpc_call *c, const char *s) {
  if (!c || !s)
    return NULL;
  size_t n = strlen(s) + 1;
  char *p = crpc__arena_alloc(&c->arena, n);
  if (p)
    memcpy(p, s, n);
  return p;
}

size_t crpc__md_to_nv(crpc_call *c, const crpc_metadata *md, nghttp2_nv *nva,
                      size_t max) {
  size_t n = 0, count = crpc_metadata_count(md);
  for (size_t i = 0; i < count && n < max; i++) {
    const char *k;
    const uint8_t *v;
    size_t vlen;
    crpc_metadata_at(md, i, &k, &v, &vlen);
    size_t klen = strlen(k);
    nghttp2_nv *nv = &nva[n];
    nv->name = (uint8_t *)k;
    nv->namelen = klen;
    nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    if (crpc__metadata_key_is_bin(k, klen)) {
      char *b64;
      size_t blen;
      if (crpc__base64_encode_m(&c->mem, v, vlen, &b64, &blen) != 0) {
        c->md_oom = true; /* the only way encoding fails */
        continue;
      }
      char *copy = crpc__arena_alloc(&c->nv_arena, blen + 1);
      if (!copy) {
        crpc__free(&c->mem, b64);
        c->md_oom = true;
        continue;
      }
      memcpy(copy, b64, blen + 1);
      crpc__free(&c->mem, b64);
      nv->value = (uint8_t *)copy;
      nv->valuelen = blen;
    } else {
      nv->value = (uint8_t *)v;
      nv->valuelen = vlen;
    }
    n++;
  }
  return n;
}

/* ---- server-side accessors ---- */

const crpc_metadata *crpc_call_request_metadata(const crpc_call *c) {
  return c && c->is_server ? c->recv_md : NULL;
}

int crpc_call_add_initial_metadata(crpc_call *c, const char *key,
                                   const void *value, size_t len) {
  if (!c || !c->is_server)
    return CRPC_EINVAL;
  pthread_mutex_lock(&c->mu);
  int rv = c->wrote_any || c->send_closed
               ? CRPC_ESTATE
               : crpc_metadata_add(c->send_md, key, value, len);
  pthread_mutex_unlock(&c->mu);
  return rv;
}

int crpc_call_add_trailing_metadata(crpc_call *c, const char *key,
                                    const void *value, size_t len) {
  if (!c || !c->is_server)
    return CRPC_EINVAL;
  pthread_mutex_lock(&c->mu);
  int rv = c->send_closed ? CRPC_ESTATE
                          : crpc_metadata_add(c->trailers, key, value, len);
  pthread_mutex_unlock(&c->mu);
  return rv;
}

void crpc_call_set_status_message(crpc_call *c, const char *msg) {
  if (!c || !c->is_server)
    return;
  pthread_mutex_lock(&c->mu);
  if (!c->send_closed) {
    free(c->status.message);
    c->status.message = msg ? strdup(msg) : NULL;
  }
  pthread_mutex_unlock(&c->mu);
}

void crpc_call_set_status_details(crpc_call *c, const void *data,
                                  size_t len) {
  if (!c || !c->is_server)
    return;
  pthread_mutex_lock(&c->mu);
  if (!c->send_closed) {
    free(c->status.details);
    c->status.details = NULL;
    c->status.details_len = 0;
    if (data && len && (c->status.details = malloc(len))) {
      memcpy(c->status.details, data, len);
      c->status.details_len = len;
    }
  }
  pthread_mutex_unlock(&c->mu);
}

const char *crpc_call_peer(const crpc_call *c) {
  return c && c->peer[0] ? c->peer : "unknown";
}

int crpc_call_set_compression(crpc_call *c, const char *encoding) {
  if (!c || !encoding || !c->is_server)
    return CRPC_EINVAL;
  crpc__encoding enc = crpc__encoding_from_name(encoding, strlen(encoding));
  if (enc == CRPC__ENC_UNKNOWN)
    return CRPC_EENCODING;
  pthread_mutex_lock(&c->mu);
  int rv = 0;
  if (c->wrote_any || c->send_closed)
    rv = CRPC_ESTATE;
  else /* only what the client said it can decode */
    c->send_enc = c->accepts_enc[enc] ? enc : CRPC__ENC_IDENTITY;
  pthread_mutex_unlock(&c->mu);
  return rv;
}

bool crpc_call_last_read_compressed(const crpc_call *c) {
  return c && c->last_read_compressed;
}

void crpc_call_set_user_data(crpc_call *c, void *user_data) {
  if (c)
    c->user_data = user_data;
}

void *crpc_call_user_data(const crpc_call *c) { return c ? c->user_data : NULL; }

