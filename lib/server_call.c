/*
 * server_call.c: one call on a server connection: the stream events the
 * transport reports, dispatch (blocking handlers on the worker pool,
 * NONBLOCKING ones inline on the reactor, deferred ones answered later),
 * the output budget's gate on new handlers, and the response (headers,
 * messages, trailers).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "server_internal.h"

static void crpc__server_kick(void *arg);
static int crpc__server_on_begin_headers(crpc__conn *conn, int32_t stream_id);
static int crpc__server_on_header(crpc_call *c, const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen);
static void crpc__server_on_headers_done(crpc_call *c, bool end_stream);
static void crpc__server_on_end_stream(crpc_call *c);
static void crpc__server_on_data_error(crpc_call *c, int rv);
static void crpc__server_on_stream_close(crpc_call *c, uint32_t error_code);
static void crpc__server_on_data(crpc_call *c);
static void crpc__server_fail(crpc_call *c, crpc_code code, const char *msg);
static void crpc__server_fire_cancel(crpc_call *c);
static size_t crpc__server_trailers(crpc_call *c, nghttp2_nv *nva, size_t max);

/* ---- responses [loop] ---- */

#define NV_LIT(k, v)                                                           \
  (nghttp2_nv) {                                                               \
    (uint8_t *)(k), (uint8_t *)(v), sizeof(k) - 1, strlen(v),                  \
        NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE           \
  }

/* Status fields of a trailer block; strings live in the call's nv_arena. */
static size_t status_nv(crpc_call *c, nghttp2_nv *nva) {
  /* static strings: the status must go out even when memory does not */
  static const char *const codes[] = {"0",  "1",  "2",  "3",  "4",  "5",
                                      "6",  "7",  "8",  "9",  "10", "11",
                                      "12", "13", "14", "15", "16"};
  size_t n = 0;
  unsigned code = (unsigned)c->status.code;
  nva[n++] = NV_LIT("grpc-status", codes[code < 17 ? code : 2]);
  if (c->status.message && c->status.message[0]) {
    size_t elen;
    char *enc = crpc__percent_encode_m(&c->mem, c->status.message,
                                       strlen(c->status.message), &elen);
    char *copy = enc ? crpc__arena_alloc(&c->nv_arena, elen + 1) : NULL;
    if (copy) {
      memcpy(copy, enc, elen + 1);
      nva[n++] = NV_LIT("grpc-message", copy);
    }
    crpc__free(&c->mem, enc);
  }
  if (c->status.details_len) {
    char *b64;
    size_t blen;
    if (crpc__base64_encode_m(&c->mem, c->status.details,
                              c->status.details_len, &b64, &blen) == 0) {
      char *copy = crpc__arena_alloc(&c->nv_arena, blen + 1);
      if (copy) {
        memcpy(copy, b64, blen + 1);
        nva[n++] = NV_LIT("grpc-status-details-bin", copy);
      }
      crpc__free(&c->mem, b64);
    }
  }
  return n;
}

static size_t crpc__server_trailers(crpc_call *c, nghttp2_nv *nva, size_t max) {
  pthread_mutex_lock(&c->mu);
  size_t n = status_nv(c, nva);
  n += crpc__md_to_nv(c, c->trailers, nva + n, max - n);
  if (c->md_oom) { /* not the trailers the handler meant: say so */
    crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                     "out of memory encoding the response metadata");
    n = status_nv(c, nva);
  }
  crpc_code code = c->status.code;
  pthread_mutex_unlock(&c->mu);
  crpc__mx_server_end(c, code);
  return n;
}

static size_t response_headers(crpc_call *c, nghttp2_nv *nva, size_t max) {
  size_t n = 0;
  nva[n++] = NV_LIT(":status", "200");
  nva[n++] = NV_LIT("content-type", "application/grpc");
  if (c->send_enc != CRPC__ENC_IDENTITY)
    nva[n++] = NV_LIT("grpc-encoding", crpc__encoding_name(c->send_enc));
  nva[n++] = NV_LIT("grpc-accept-encoding", crpc__accept_encoding());
  n += crpc__md_to_nv(c, c->send_md, nva + n, max - n);
  return n;
}

/* nghttp2 could not take a response (out of memory): reset the stream
 * (INTERNAL_ERROR: the client ends INTERNAL) so the client does not wait
 * for it; if even that fails, the connection goes. */
static void submit_failed(crpc_call *c, int rv) {
  crpc__log_warn("%s: cannot send the response: %s", c->peer,
                 nghttp2_strerror(rv));
  if (nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE,
                                c->stream_id, NGHTTP2_INTERNAL_ERROR) != 0)
    crpc__conn_close(c->conn, CRPC_RESOURCE_EXHAUSTED, "out of memory");
}

static void abort_call(crpc_call *c, crpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Submits whatever the call has ready: headers, data, trailers. */
static void pump(crpc_call *c) {
  crpc__conn *conn = c->conn;
  if (!conn || conn->dead)
    return;
  pthread_mutex_lock(&c->mu);
  bool done = c->done, closed = c->send_closed, data = c->sendq.head != NULL;
  pthread_mutex_unlock(&c->mu);
  if (done)
    return;
  if (!c->headers_sent) {
    nghttp2_nv nva[128];
    if (closed && !data) {
      /* trailers-only: one HEADERS frame with the status */
      size_t n = 0;
      nva[n++] = NV_LIT(":status", "200");
      nva[n++] = NV_LIT("content-type", "application/grpc");
      pthread_mutex_lock(&c->mu);
      c->eos_sent = true;
      n += status_nv(c, nva + n);
      n += crpc__md_to_nv(c, c->send_md, nva + n, 128 - n);
      n += crpc__md_to_nv(c, c->trailers, nva + n, 128 - n);
      if (c->md_oom) {
        crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                         "out of memory encoding the response metadata");
        n = 2 + status_nv(c, nva + 2);
      }
      crpc_code code = c->status.code;
      pthread_mutex_unlock(&c->mu);
      crpc__mx_server_end(c, code);
      int rv = nghttp2_submit_response(conn->session, c->stream_id, nva, n,
                                       NULL);
      c->headers_sent = true;
      if (rv != 0)
        submit_failed(c, rv);
    } else if (data || closed) {
      pthread_mutex_lock(&c->mu);
      size_t n = response_headers(c, nva, 128);
      pthread_mutex_unlock(&c->mu);
      if (c->md_oom) { /* trailers-only RESOURCE_EXHAUSTED instead */
        abort_call(c, CRPC_RESOURCE_EXHAUSTED,
                   "out of memory encoding the response metadata");
        return;
      }
      nghttp2_data_provider dp = {.source.ptr = c,
                                  .read_callback = crpc__call_data_read};
      int rv = nghttp2_submit_response(conn->session, c->stream_id, nva, n,
                                       &dp);
      c->headers_sent = true;
      if (rv != 0)
        submit_failed(c, rv);
    }
  } else {
    nghttp2_session_resume_data(conn->session, c->stream_id);
  }
  crpc__conn_schedule_flush(conn);
}

/* Ends the call now with |code|: the handler (if running) sees a cancelled
 * call, its later writes fail and its return value is ignored. */
static void abort_call(crpc_call *c, crpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void abort_call(crpc_call *c, crpc_code code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&c->mu);
  if (c->send_closed && c->eos_sent) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  crpc__status_set(&c->status, code, "%s", msg);
  c->send_closed = true;
  c->cancelled = true;
  crpc__call_sendq_clear(c);
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  crpc__log_debug("%s: %s %s", c->peer, crpc_code_name(code), msg);
  crpc__server_fire_cancel(c);
  pump(c);
}

/* An HTTP-level refusal before any gRPC exchange (415, 405). */
static void http_error(crpc_call *c, const char *status) {
  nghttp2_nv nva[2];
  nva[0] = NV_LIT(":status", status);
  nva[1] = NV_LIT("content-type", "text/plain");
  pthread_mutex_lock(&c->mu);
  c->send_closed = c->eos_sent = true;
  c->cancelled = true;
  pthread_mutex_unlock(&c->mu);
  c->headers_sent = true;
  int rv = nghttp2_submit_response(c->conn->session, c->stream_id, nva, 2,
                                   NULL);
  if (rv != 0)
    submit_failed(c, rv);
  crpc__conn_schedule_flush(c->conn);
}

/* ---- handlers ---- */

static crpc_code invoke(crpc_call *c, const ProtobufCMessage *req,
                        ProtobufCMessage *resp) {
  crpc__server_method *h = c->handler;
  if (h->tramp)
    return h->tramp(c, h->handlers, req, resp, h->user_data);
  return h->handler(c, req, resp, h->user_data);
}

static ProtobufCMessage *new_response(crpc_call *c) {
  const ProtobufCMessageDescriptor *d = c->method->output;
  ProtobufCMessage *resp = crpc__arena_alloc(&c->arena, d->sizeof_message);
  if (resp)
    d->message_init(resp);
  return resp;
}

/* The size of unary responses, per method: the dispatch gate's guess of
 * what a handler about to run will queue (the most of the recent ones,
 * decaying by an eighth per response). */
static void note_response_size(crpc__server_method *h, size_t n) {
  size_t est = atomic_load(&h->resp_estimate);
  size_t next = n > est - est / 8 ? n : est - est / 8;
  atomic_store(&h->resp_estimate, next);
}

/* After the handler: queue the response and the status [any thread]. */
static void complete(crpc_call *c, crpc_code code, ProtobufCMessage *resp) {
  crpc__msgbuf *m = NULL;
  pthread_mutex_lock(&c->mu);
  c->handler_returned = true; /* its cancel callback's data may go now */
  c->cancel_cb = NULL;
  c->wd_cb = NULL; /* answered: no write-done callback from now on */
  while (c->cancel_cb_running && !crpc__loop_on_thread(c->loop))
    pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  if (code == CRPC_OK && resp) {
    crpc__ics_send(c, resp);
    int rv = crpc__frame_message(&c->mem, &c->msgpool, resp, c->send_enc, c->max_send,
                                 &m);
    if (rv != 0) {
      code = rv == CRPC_ETOOBIG ? CRPC_RESOURCE_EXHAUSTED : CRPC_INTERNAL;
      crpc_call_set_status_message(
          c, rv == CRPC_ETOOBIG ? "response larger than the send limit"
                                : "cannot encode the response");
    }
  }
  bool had_resp = resp != NULL;
  if (had_resp) {
    /* the response is packed: what the handler built for it (in the
     * arena) goes now, so a response waiting for a slow reader is held
     * once, not twice */
    crpc__arena_free(&c->arena);
    resp = NULL;
    if (m && c->method->kind == CRPC_UNARY)
      note_response_size(c->handler, m->len);
  }
  if (c->deadline_ms && crpc__now_ms() >= c->deadline_ms) {
    /* past the deadline the handler's answer no longer counts */
    code = CRPC_DEADLINE_EXCEEDED;
    crpc_call_set_status_message(c, "deadline exceeded");
    crpc__msgpool_put(&c->msgpool, &c->mem, m);
    m = NULL;
  }
  if (c->sic && c->sic->n) {
    /* interceptors see the status the client will get, and may still
     * add trailers */
    pthread_mutex_lock(&c->mu);
    crpc_code final = c->send_closed ? c->status.code : code;
    pthread_mutex_unlock(&c->mu);
    if (final == CRPC_OK && !m && !had_resp &&
        (c->method->kind == CRPC_UNARY ||
         c->method->kind == CRPC_CLIENT_STREAMING))
      final = CRPC_INTERNAL;
    crpc__ics_finish(c, final);
  }
  pthread_mutex_lock(&c->mu);
  if (!c->send_closed) {
    if (m)
      crpc__call_sendq_push(c, m);
    else if (code == CRPC_OK && !had_resp &&
             (c->method->kind == CRPC_UNARY ||
              c->method->kind == CRPC_CLIENT_STREAMING))
      code = CRPC_INTERNAL;
    m = NULL;
    c->status.code = code;
    c->send_closed = true;
    crpc__call_kick_locked(c);
  }
  pthread_mutex_unlock(&c->mu);
  crpc__msgpool_put(&c->msgpool, &c->mem, m);
}

/* The server's auth hook, before the handler and on its thread. False when
 * it refused the call (which is then complete). */
static bool authorized(crpc_call *c) {
  crpc_code code = crpc__ics_start(c); /* the auth hook is one of them */
  if (code == CRPC_OK)
    return true;
  pthread_mutex_lock(&c->mu);
  bool has_msg = c->status.message != NULL;
  pthread_mutex_unlock(&c->mu);
  if (!has_msg) {
    char msg[96];
    snprintf(msg, sizeof msg, "request rejected by a server interceptor "
                              "(%s)", crpc_code_name(code));
    crpc_call_set_status_message(c, msg);
  }
  complete(c, code, NULL);
  return false;
}

/* Reads the single request of a unary / server-streaming call; crpc frees
 * it after the handler, so it comes from the server's allocator. */
static bool read_request(crpc_call *c, ProtobufCMessage **req) {
  if (crpc__call_read(c, req, &c->pbc))
    return true;
  pthread_mutex_lock(&c->mu);
  bool cancelled = c->cancelled || c->cancel_requested || c->done;
  pthread_mutex_unlock(&c->mu);
  if (!cancelled) {
    crpc_call_set_status_message(c, "missing request message");
    complete(c, CRPC_INTERNAL, NULL);
  }
  return false;
}

static void run_handler(void *arg) {
  crpc_call *c = arg;
  ProtobufCMessage *req = NULL, *resp = NULL;
  crpc_method_kind kind = c->method->kind;
  if (!authorized(c))
    goto out;
  if (kind == CRPC_UNARY || kind == CRPC_SERVER_STREAMING) {
    if (!read_request(c, &req))
      goto out;
    if (kind == CRPC_UNARY) {
      crpc__msgbuf *extra;
      if (crpc__call_next_message(c, &extra)) {
        crpc__free(&c->mem, extra);
        crpc_call_set_status_message(c, "more than one request message for "
                                        "a unary method");
        complete(c, CRPC_INTERNAL, NULL);
        goto out;
      }
    }
  }
  if (kind == CRPC_UNARY || kind == CRPC_CLIENT_STREAMING) {
    resp = new_response(c);
    if (!resp) {
      complete(c, CRPC_RESOURCE_EXHAUSTED, NULL);
      goto out;
    }
  }
  complete(c, invoke(c, req, resp), resp);
out:
  if (req)
    protobuf_c_message_free_unpacked(req, &c->pbc);
  crpc__call_unref(c); /* the worker's reference */
}

/* NONBLOCKING unary: the whole request is here; run on the reactor. */
static void run_inline(crpc_call *c);
static void dispatch(crpc_call *c);

/*
 * The output budget's gate on new handlers [loop]: none while the
 * connection's budget is full, nor while the server's is and this
 * connection has output queued; and a unary handler waits while those
 * already running would, by the method's recent response size, fill the
 * connection's budget (one always may run). A client that asks for large
 * responses and never reads them then holds a budget's worth of them, not
 * one per stream.
 */
static bool gate_closed(crpc__conn *conn, const crpc_call *c) {
  size_t used = atomic_load(&conn->out.used);
  if (crpc__budget_full(&conn->out))
    return true;
  if (conn->out_parent && crpc__budget_full(conn->out_parent) && used > 0)
    return true;
  if (c->method->kind != CRPC_UNARY)
    return false;
  size_t running = atomic_load(&conn->unary_inflight);
  size_t est = atomic_load(&c->handler->resp_estimate);
  return running > 0 && est > 0 &&
         (running >= (conn->out.limit - used) / est);
}

/* Holds the call back until the gate opens (it keeps its request; its
 * deadline still runs). */
static void pend(crpc_call *c) {
  crpc__conn *conn = c->conn;
  c->pending = true;
  c->pend_next = NULL;
  if (conn->pend_tail)
    conn->pend_tail->pend_next = c;
  else
    conn->pend_head = c;
  conn->pend_tail = c;
}

static void unpend(crpc_call *c) {
  crpc__conn *conn = c->conn;
  if (!c->pending || !conn)
    return;
  crpc_call **pp = &conn->pend_head, *prev = NULL;
  while (*pp && *pp != c) {
    prev = *pp;
    pp = &(*pp)->pend_next;
  }
  if (*pp)
    *pp = c->pend_next;
  if (conn->pend_tail == c)
    conn->pend_tail = prev;
  c->pending = false;
  c->pend_next = NULL;
}

/* Starts held-back calls, oldest first, while the gate lets them [loop]. */
static void run_pending(crpc__conn *conn) {
  while (conn->pend_head && !conn->dead) {
    crpc_call *c = conn->pend_head;
    if (!c->send_closed && gate_closed(conn, c))
      return;
    unpend(c);
    if (c->send_closed || c->done)
      continue; /* ended while it waited (deadline, reset) */
    crpc__call_ref(c);
    if (c->inline_unary)
      run_inline(c);
    else
      dispatch(c);
    crpc__call_unref(c);
  }
}

void crpc__server_conn_drained(crpc__conn *conn) {
  run_pending(conn);
  /* handlers held back by the budget get their queued requests again */
  for (crpc_call *c = conn->calls; c; c = c->conn_next) {
    if (!c->inline_stream)
      continue;
    pthread_mutex_lock(&c->mu);
    if (c->recvq.head)
      crpc__call_kick_locked(c);
    pthread_mutex_unlock(&c->mu);
  }
}

/* The server's budget drained: every thread wakes its writers and gates. */
static void thread_drained(void *arg) {
  srv_thread *t = arg;
  atomic_store(&t->drain_queued, false);
  for (crpc__conn *c = t->conns; c; c = c->next)
    crpc__conn_drained(c);
}

void crpc__server_out_drained(crpc__budget *b) {
  crpc_server *s = b->owner;
  for (unsigned i = 0; s->threads && i < s->nthreads; i++) {
    srv_thread *t = &s->threads[i];
    if (atomic_exchange(&t->drain_queued, true))
      continue;
    t->drain_task.fn = thread_drained;
    t->drain_task.arg = t;
    crpc__loop_post_task(t->loop, &t->drain_task);
  }
}

/* A NONBLOCKING handler's invocation returned |code|: complete the call,
 * unless it deferred. A deferred call is completed by crpc_call_answer(),
 * or here when that answer came (from another thread) before the handler
 * returned. */
static void handler_returned(crpc_call *c, crpc_code code,
                             ProtobufCMessage *resp) {
  pthread_mutex_lock(&c->mu);
  c->in_inline = false;
  bool deferred = c->deferred, early = c->answered_early;
  if (early) {
    code = c->early_code;
    c->deferred = c->answered_early = false;
  } else if (deferred) {
    c->deferred_resp = resp; /* crpc_call_answer() completes it */
  }
  pthread_mutex_unlock(&c->mu);
  if (!deferred)
    complete(c, code, resp);
  else if (early) {
    complete(c, code, resp);
    crpc__call_unref(c); /* the answer's */
  }
}

static void run_inline(crpc_call *c) {
  crpc__msgbuf *m;
  crpc_status st = {0};
  ProtobufCMessage *req = NULL, *resp;
  pthread_mutex_lock(&c->mu);
  m = crpc__msgq_pop(&c->recvq);
  bool extra = c->recvq.head != NULL;
  pthread_mutex_unlock(&c->mu);
  if (m)
    crpc__call_consume(c, m->len + 5);
  if (!m || extra) {
    crpc__msgpool_put(&c->msgpool, &c->mem, m);
    abort_call(c, CRPC_INTERNAL, "%s", m ? "more than one request message"
                                         : "missing request message");
    return;
  }
  if (!authorized(c)) {
    crpc__msgpool_put(&c->msgpool, &c->mem, m);
    return;
  }
  c->last_read_compressed = m->compressed; /* the handler may ask */
  crpc_code code = crpc__unframe_message(&c->mem, c->method->input, &c->pbc,
                                         m, c->recv_enc, c->max_recv, &req,
                                         &st);
  crpc__msgpool_put(&c->msgpool, &c->mem, m);
  if (code != CRPC_OK) {
    abort_call(c, code, "%s", crpc_status_message(&st));
    crpc_status_clear(&st);
    return;
  }
  resp = c->method->kind == CRPC_UNARY ? new_response(c) : NULL;
  /* under mu: crpc_call_answer() from another thread reads it */
  pthread_mutex_lock(&c->mu);
  c->in_inline = true;
  pthread_mutex_unlock(&c->mu);
  code = resp || c->method->kind != CRPC_UNARY ? invoke(c, req, resp)
                                               : CRPC_RESOURCE_EXHAUSTED;
  protobuf_c_message_free_unpacked(req, &c->pbc);
  handler_returned(c, code, resp);
}

int crpc_call_defer(crpc_call *c) {
  if (!c || !c->is_server)
    return CRPC_EINVAL;
  if (!c->in_inline || !crpc__loop_on_thread(c->loop))
    return CRPC_ESTATE; /* only from inside a NONBLOCKING handler */
  pthread_mutex_lock(&c->mu);
  bool already = c->deferred;
  c->deferred = true;
  pthread_mutex_unlock(&c->mu);
  if (!already)
    crpc__call_ref(c); /* the answer's */
  return 0;
}

int crpc_call_answer(crpc_call *c, crpc_code code) {
  if (!c || !c->is_server)
    return CRPC_EINVAL;
  if ((unsigned)code > CRPC_UNAUTHENTICATED)
    code = CRPC_UNKNOWN;
  pthread_mutex_lock(&c->mu);
  if (c->deferred && c->in_inline) {
    /* the handler that deferred is still running (this is the handler
     * itself, or another thread): remember the answer, it completes the
     * call when the handler returns */
    bool twice = c->answered_early;
    if (!twice) {
      c->answered_early = true;
      c->early_code = code;
    }
    pthread_mutex_unlock(&c->mu);
    return twice ? CRPC_ESTATE : 0;
  }
  bool deferred = c->deferred;
  ProtobufCMessage *resp = c->deferred_resp;
  if (deferred) {
    c->deferred = false;
    c->deferred_resp = NULL;
  }
  pthread_mutex_unlock(&c->mu);
  if (!deferred)
    return CRPC_ESTATE;
  complete(c, code, resp); /* any thread: the loop sends it */
  crpc__call_unref(c);
  return 0;
}

/* NONBLOCKING client/bidi streaming: one invocation per message, on the
 * reactor, then a closing one with req NULL. */
static void crpc__server_on_data(crpc_call *c) {
  crpc__msgbuf *m;
  crpc_status st = {0};
  for (;;) {
    pthread_mutex_lock(&c->mu);
    /* while its answers are not going out, the handler gets no more
     * requests (they wait, unread, and the window closes): server.h's
     * backpressure for NONBLOCKING streaming handlers */
    bool stop = c->send_closed || c->done || crpc__call_out_blocked(c);
    m = stop ? NULL : crpc__msgq_pop(&c->recvq);
    pthread_mutex_unlock(&c->mu);
    if (!m)
      return;
    ProtobufCMessage *req = NULL;
    c->last_read_compressed = m->compressed; /* the handler may ask */
    crpc_code code = crpc__unframe_message(&c->mem, c->method->input,
                                           &c->pbc, m, c->recv_enc,
                                           c->max_recv, &req, &st);
    crpc__msgpool_put(&c->msgpool, &c->mem, m);
    if (code != CRPC_OK) {
      abort_call(c, code, "%s", crpc_status_message(&st));
      crpc_status_clear(&st);
      return;
    }
    code = invoke(c, req, NULL);
    protobuf_c_message_free_unpacked(req, &c->pbc);
    if (code != CRPC_OK) { /* the handler ends the call early */
      c->final_invoked = true;
      complete(c, code, NULL);
      return;
    }
  }
}

/* The closing invocation: req NULL; resp set for client streaming unless
 * the call was cancelled (then the handler only cleans up). Unless it was
 * cancelled, the handler may crpc_call_defer() there: the status (and the
 * response) then wait for crpc_call_answer(). */
static void inline_stream_close(crpc_call *c, bool cancelled) {
  if (c->final_invoked)
    return;
  c->final_invoked = true;
  ProtobufCMessage *resp = NULL;
  if (!cancelled && c->method->kind == CRPC_CLIENT_STREAMING &&
      !(resp = new_response(c))) {
    complete(c, CRPC_RESOURCE_EXHAUSTED, NULL);
    return;
  }
  pthread_mutex_lock(&c->mu); /* crpc_call_answer() reads it */
  c->in_inline = !cancelled;
  pthread_mutex_unlock(&c->mu);
  crpc_code code = invoke(c, NULL, resp);
  if (cancelled)
    return;
  handler_returned(c, code, resp);
}

static void dispatch(crpc_call *c) {
  crpc_server *s = c->conn->server;
  c->dispatched = true;
  if (c->method->kind == CRPC_UNARY) {
    c->unary_counted = true; /* until the kick sees it complete */
    atomic_fetch_add(&c->conn->unary_inflight, 1);
  }
  crpc__call_ref(c);
  if (crpc__workers_submit(s->workers, run_handler, c) != 0) {
    crpc__call_unref(c);
    abort_call(c, CRPC_RESOURCE_EXHAUSTED, "no worker thread available");
  }
}

/* ---- the kick [loop] ---- */

/* NONBLOCKING streaming: hands the handler what is queued, as far as its
 * output lets it, then the closing invocation once the client has
 * finished and every request was handled [loop]. */
static void inline_pump(crpc_call *c) {
  crpc__server_on_data(c);
  pthread_mutex_lock(&c->mu);
  bool end = c->recv_closed && !c->recvq.head && !c->send_closed && !c->done;
  pthread_mutex_unlock(&c->mu);
  if (end)
    inline_stream_close(c, false);
}

static void crpc__server_kick(void *arg) {
  crpc_call *c = arg;
  pthread_mutex_lock(&c->mu);
  c->kick_queued = false;
  bool cancel = c->cancel_requested, done = c->done;
  crpc_code code = c->status.code;
  size_t consume = c->to_consume;
  c->to_consume = 0;
  bool closed = c->send_closed;
  pthread_mutex_unlock(&c->mu);
  if (c->unary_counted && (closed || done) && c->conn) {
    c->unary_counted = false; /* its handler is done: the gate may open */
    atomic_fetch_sub(&c->conn->unary_inflight, 1);
    if (c->conn->pend_head)
      run_pending(c->conn);
  }
  if (done || !c->conn)
    goto out;
  crpc__call_consume(c, consume);
  if (c->inline_stream && !cancel)
    inline_pump(c); /* its output drained: requests it was held from */
  if (cancel) {
    pthread_mutex_lock(&c->mu);
    c->cancel_requested = false;
    pthread_mutex_unlock(&c->mu);
    if (code != CRPC_OK) {
      /* a request the handler could not parse */
      abort_call(c, code, "%s", crpc_status_message(&c->status));
    } else {
      crpc__conn *conn = c->conn;
      pthread_mutex_lock(&c->mu);
      c->cancelled = true;
      c->send_closed = true;
      crpc__call_notify(c);
      pthread_mutex_unlock(&c->mu);
      crpc__server_fire_cancel(c);
      nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE,
                                c->stream_id, NGHTTP2_CANCEL);
      crpc__conn_schedule_flush(conn);
    }
    goto out;
  }
  pump(c);
out:
  crpc__call_unref(c); /* the kick's reference */
}

/* ---- stream events [loop] ---- */

static void on_deadline(crpc__timer *t) {
  crpc_call *c =
      (crpc_call *)((char *)t - offsetof(crpc_call, deadline_timer));
  crpc__call_ref(c);
  abort_call(c, CRPC_DEADLINE_EXCEEDED, "deadline exceeded");
  crpc__call_unref(c);
}

static int crpc__server_on_begin_headers(crpc__conn *conn, int32_t stream_id) {
  crpc_server *s = conn->server;
  crpc_call *c;
  if (crpc__call_new(&c, true, conn->loop, conn->mem, crpc__server_kick) != 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  c->stream_id = stream_id;
  c->max_recv = s->max_recv;
  c->max_send = s->opts.max_send_msg_size;
  c->deframer.max_len = s->max_recv;
  c->accepts_enc[CRPC__ENC_IDENTITY] = true;
  memcpy(c->peer, conn->peer, sizeof c->peer);
  c->peer_tls = conn->tp != NULL;
  c->peer_id = crpc__tls_peer_id(conn->tp);
  c->sic = &s->ic;
  crpc__conn_attach(conn, c);
  crpc__call_unref(c); /* the connection holds it now */
  nghttp2_session_set_stream_user_data(conn->session, stream_id, c);
  return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit) {
  return strlen(lit) == len && memcmp(name, lit, len) == 0;
}

static int crpc__server_on_header(crpc_call *c, const uint8_t *name, size_t namelen,
                           const uint8_t *value, size_t valuelen) {
  crpc_server *s = c->conn->server;
  c->header_bytes += namelen + valuelen + 32;
  if (c->header_bytes > s->opts.max_header_list_size) {
    if (c->dispatched || c->trailers_phase)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    /* keep nothing more; answered RESOURCE_EXHAUSTED when the block ends */
    c->http_status = -2;
    return 0;
  }
  if (c->dispatched || c->trailers_phase)
    return 0; /* request trailers carry nothing we use */
  if (name_is(name, namelen, ":path")) {
    crpc__free(&c->mem, c->path);
    if (!(c->path = crpc__strndup(&c->mem, (const char *)value, valuelen)))
      c->http_status = -3; /* answered RESOURCE_EXHAUSTED below */
  } else if (name_is(name, namelen, ":method")) {
    if (!(valuelen == 4 && memcmp(value, "POST", 4) == 0))
      c->http_status = 405;
  } else if (name_is(name, namelen, "content-type")) {
    crpc__free(&c->mem, c->content_type);
    if (!(c->content_type =
              crpc__strndup(&c->mem, (const char *)value, valuelen)))
      c->http_status = -3;
  } else if (name_is(name, namelen, "grpc-timeout")) {
    int64_t ms;
    if (crpc__timeout_parse((const char *)value, valuelen, &ms) == 0)
      c->deadline_ms = crpc__now_ms() + ms;
    else
      c->http_status = -1; /* malformed: answered INTERNAL below */
  } else if (name_is(name, namelen, "grpc-encoding")) {
    c->recv_enc = crpc__encoding_from_name((const char *)value, valuelen);
  } else if (name_is(name, namelen, "grpc-accept-encoding")) {
    for (int e = CRPC__ENC_DEFLATE; e <= CRPC__ENC_GZIP; e++)
      c->accepts_enc[e] = crpc__accept_encoding_has(
          (const char *)value, valuelen, (crpc__encoding)e);
  } else if (namelen && name[0] != ':') {
    if (crpc__metadata_add_wire(c->recv_md, name, namelen, value, valuelen) ==
        CRPC_ENOMEM)
      c->http_status = -3;
  }
  return 0;
}

static void crpc__server_on_headers_done(crpc_call *c, bool end_stream) {
  crpc_server *s = c->conn->server;
  if (c->trailers_phase || c->dispatched)
    return;
  c->trailers_phase = true;
  if (c->http_status == -2) {
    abort_call(c, CRPC_RESOURCE_EXHAUSTED,
               "request headers larger than the server's limit (%u bytes)",
               s->opts.max_header_list_size);
    return;
  }
  if (c->http_status == -3) {
    abort_call(c, CRPC_RESOURCE_EXHAUSTED,
               "out of memory reading the request headers");
    return;
  }
  if (c->http_status == 405) {
    http_error(c, "405");
    return;
  }
  if (!c->content_type || strncmp(c->content_type, "application/grpc", 16) ||
      (c->content_type[16] && c->content_type[16] != '+' &&
       c->content_type[16] != ';')) {
    http_error(c, "415");
    return;
  }
  c->handler = c->path ? crpc__server_find_method(s, c->path, strlen(c->path)) : NULL;
  crpc__mx_server_start(c, s);
  if (!c->handler) {
    c->method = NULL;
    abort_call(c, CRPC_UNIMPLEMENTED, "unknown method %s",
               c->path ? c->path : "(no :path)");
    return;
  }
  c->method = &c->handler->method;
  if (c->http_status == -1) {
    abort_call(c, CRPC_INTERNAL, "malformed grpc-timeout");
    return;
  }
  if (c->recv_enc == CRPC__ENC_UNKNOWN) {
    crpc_metadata_add_str(c->send_md, "grpc-accept-encoding-note",
                          crpc__accept_encoding());
    abort_call(c, CRPC_UNIMPLEMENTED,
               "unsupported grpc-encoding; supported: %s",
               crpc__accept_encoding());
    return;
  }
  if (c->deadline_ms) {
    c->deadline_timer.cb = on_deadline;
    crpc__timer_start(c->loop, &c->deadline_timer, c->deadline_ms);
  }
  if (end_stream)
    c->recv_closed = true;
  if (!(c->handler->flags & CRPC_HANDLER_NONBLOCKING)) {
    if (gate_closed(c->conn, c))
      pend(c);
    else
      dispatch(c);
  } else if (c->method->kind == CRPC_UNARY ||
             c->method->kind == CRPC_SERVER_STREAMING) {
    c->inline_unary = true; /* runs at END_STREAM, with the request */
  } else {
    c->dispatched = true; /* later HEADERS are trailers */
    if (authorized(c))
      c->inline_stream = true; /* runs as messages arrive */
  }
}

static void crpc__server_on_end_stream(crpc_call *c) {
  pthread_mutex_lock(&c->mu);
  bool partial = crpc__deframer_partial(&c->deframer);
  c->recv_closed = true;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  if (partial) {
    abort_call(c, CRPC_INTERNAL, "request ended in the middle of a message");
    return;
  }
  if (c->inline_unary && !c->send_closed) {
    if (gate_closed(c->conn, c))
      pend(c);
    else
      run_inline(c);
  } else if (c->inline_stream) {
    inline_pump(c); /* messages that came with END_STREAM, then the end */
  }
}

static void crpc__server_on_data_error(crpc_call *c, int rv) {
  crpc__deframer_reset(&c->deframer);
  if (rv == CRPC_ETOOBIG)
    abort_call(c, CRPC_RESOURCE_EXHAUSTED,
               "received message larger than max (%zu bytes)", c->max_recv);
  else if (rv == CRPC_ENOMEM)
    abort_call(c, CRPC_RESOURCE_EXHAUSTED,
               "out of memory receiving a message");
  else
    abort_call(c, CRPC_INTERNAL, "malformed message framing");
  /* stop reading this stream; the rest is discarded */
  c->rx_discard = true;
  crpc__call_release_window(c);
}

static void crpc__server_on_stream_close(crpc_call *c, uint32_t error_code) {
  unpend(c);
  if (c->unary_counted && c->conn) {
    c->unary_counted = false;
    atomic_fetch_sub(&c->conn->unary_inflight, 1);
  }
  pthread_mutex_lock(&c->mu);
  c->done = true;
  if (error_code != NGHTTP2_NO_ERROR || !c->eos_sent)
    c->cancelled = true;
  bool cancelled = c->cancelled;
  crpc_code code = c->status.code;
  if (cancelled && code == CRPC_OK)
    code = CRPC_CANCELLED; /* reset before its status went out */
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  crpc__mx_server_end(c, code);
  if (cancelled)
    crpc__server_fire_cancel(c);
  if (c->inline_stream)
    inline_stream_close(c, cancelled); /* the handler frees its state */
  /* a call that ended before its status was decided (reset, deadline) */
  crpc__ics_finish(c, code);
}

static void crpc__server_fail(crpc_call *c, crpc_code code, const char *msg) {
  CRPC__UNUSED(code);
  CRPC__UNUSED(msg);
  unpend(c);
  pthread_mutex_lock(&c->mu);
  c->done = true;
  c->cancelled = true;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  crpc__mx_server_end(c, CRPC_CANCELLED);
  crpc__server_fire_cancel(c);
  if (c->inline_stream)
    inline_stream_close(c, true);
  crpc__ics_finish(c, CRPC_CANCELLED);
}

static void crpc__server_fire_cancel(crpc_call *c) {
  pthread_mutex_lock(&c->mu);
  crpc_call_cancel_cb cb = c->handler_returned ? NULL : c->cancel_cb;
  void *ud = c->cancel_ud;
  c->cancel_cb = NULL;
  c->cancel_cb_running = cb != NULL;
  pthread_mutex_unlock(&c->mu);
  if (!cb)
    return;
  cb(c, ud);
  pthread_mutex_lock(&c->mu);
  c->cancel_cb_running = false;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
}

/* ---- crpc_call_on_cancel ---- */

static void fire_cancel_task(void *arg) {
  crpc_call *c = arg;
  crpc__server_fire_cancel(c);
  crpc__call_unref(c);
}

int crpc_call_on_cancel(crpc_call *c, crpc_call_cancel_cb cb,
                        void *user_data) {
  if (!c || !c->is_server)
    return CRPC_EINVAL;
  pthread_mutex_lock(&c->mu);
  /* a callback being replaced may be running: its data must outlive it */
  while (c->cancel_cb_running && !crpc__loop_on_thread(c->loop))
    pthread_cond_wait(&c->cv, &c->mu);
  c->cancel_cb = cb;
  c->cancel_ud = user_data;
  bool now = cb && (c->cancelled || c->done);
  pthread_mutex_unlock(&c->mu);
  if (now) { /* already cancelled: soon, on the reactor, not from here */
    crpc__call_ref(c);
    if (crpc__loop_post(c->loop, fire_cancel_task, c) != 0)
      crpc__call_unref(c);
  }
  return 0;
}

/* ---- what the transport reports (conn.h) ---- */

static int srv_header(crpc_call *c, const nghttp2_frame *f,
                      const uint8_t *name, size_t namelen,
                      const uint8_t *value, size_t valuelen) {
  CRPC__UNUSED(f);
  return crpc__server_on_header(c, name, namelen, value, valuelen);
}

static void srv_headers_done(crpc_call *c, const nghttp2_frame *f,
                             bool end_stream) {
  CRPC__UNUSED(f);
  crpc__server_on_headers_done(c, end_stream);
}

static void srv_data(crpc_call *c) {
  if (c->inline_stream) /* NONBLOCKING streaming: a call per message */
    inline_pump(c);
}

const crpc__stream_events crpc__server_streams = {
    .begin = crpc__server_on_begin_headers,
    .header = srv_header,
    .headers_done = srv_headers_done,
    .end_stream = crpc__server_on_end_stream,
    .data = srv_data,
    .data_error = crpc__server_on_data_error,
    .stream_close = crpc__server_on_stream_close,
    .fail = crpc__server_fail,
    .trailers = crpc__server_trailers,
};
