/*
 * server_dispatch.c: who runs a server call's handler, and its answer.
 * Blocking handlers go to the worker pool, NONBLOCKING ones run inline on
 * the reactor (unary at END_STREAM, streaming once per message), deferred
 * ones are answered later from any thread (crpc_call_defer/answer); the
 * output budget's gate holds new handlers back while responses pile up;
 * complete() turns the handler's answer into the queued response and
 * status, which server_call.c sends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

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

void crpc__server_unpend(crpc_call *c) {
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
    crpc__server_unpend(c);
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
    crpc__server_abort(c, CRPC_INTERNAL, "%s", m ? "more than one request message"
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
    crpc__server_abort(c, code, "%s", crpc_status_message(&st));
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
      crpc__server_abort(c, code, "%s", crpc_status_message(&st));
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
    crpc__server_abort(c, CRPC_RESOURCE_EXHAUSTED, "no worker thread available");
  }
}

static void inline_pump(crpc_call *c) {
  crpc__server_on_data(c);
  pthread_mutex_lock(&c->mu);
  bool end = c->recv_closed && !c->recvq.head && !c->send_closed && !c->done;
  pthread_mutex_unlock(&c->mu);
  if (end)
    inline_stream_close(c, false);
}

/* ---- what the call's stream events ask of dispatch [loop] ---- */

void crpc__server_dispatch(crpc_call *c) {
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

void crpc__server_dispatch_end_stream(crpc_call *c) {
  if (c->inline_unary && !c->send_closed) {
    if (gate_closed(c->conn, c))
      pend(c);
    else
      run_inline(c);
  } else if (c->inline_stream) {
    inline_pump(c); /* messages that came with END_STREAM, then the end */
  }
}

void crpc__server_dispatch_more(crpc_call *c) {
  if (c->inline_stream) /* NONBLOCKING streaming: a call per message */
    inline_pump(c);
}

void crpc__server_dispatch_closed(crpc_call *c, bool cancelled) {
  if (c->inline_stream)
    inline_stream_close(c, cancelled); /* the handler frees its state */
}

void crpc__server_handler_over(crpc_call *c, bool run_held) {
  if (!c->unary_counted || !c->conn)
    return;
  c->unary_counted = false; /* its handler is done: the gate may open */
  atomic_fetch_sub(&c->conn->unary_inflight, 1);
  if (run_held && c->conn->pend_head)
    run_pending(c->conn);
}
