/*
 * server_call.c: one call on a server connection, on the wire: the stream
 * events the transport reports (headers, data, end, reset), the checks
 * before a handler may run, the response (headers, messages, trailers),
 * the kick that sends what the handler queued, cancellation and the
 * deadline. Who runs the handler is server_dispatch.c's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

static void crpc__server_kick(void *arg);
static int crpc__server_on_begin_headers(crpc__conn *conn, int32_t stream_id);
static int crpc__server_on_header(crpc_call *c, const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen);
static void crpc__server_on_headers_done(crpc_call *c, bool end_stream);
static void crpc__server_on_end_stream(crpc_call *c);
static void crpc__server_on_data_error(crpc_call *c, int rv);
static void crpc__server_on_stream_close(crpc_call *c, uint32_t error_code);
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
        crpc__server_abort(c, CRPC_RESOURCE_EXHAUSTED,
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
void crpc__server_abort(crpc_call *c, crpc_code code, const char *fmt, ...) {
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

/* ---- the kick [loop] ---- */

/* NONBLOCKING streaming: hands the handler what is queued, as far as its
 * output lets it, then the closing invocation once the client has
 * finished and every request was handled [loop]. */
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
  if (closed || done)
    crpc__server_handler_over(c, true); /* the gate may open */
  if (done || !c->conn)
    goto out;
  crpc__call_consume(c, consume);
  if (!cancel) /* its output drained: requests it was held from */
    crpc__server_dispatch_more(c);
  if (cancel) {
    pthread_mutex_lock(&c->mu);
    c->cancel_requested = false;
    pthread_mutex_unlock(&c->mu);
    if (code != CRPC_OK) {
      /* a request the handler could not parse */
      crpc__server_abort(c, code, "%s", crpc_status_message(&c->status));
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
  crpc__server_abort(c, CRPC_DEADLINE_EXCEEDED, "deadline exceeded");
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
    crpc__server_abort(c, CRPC_RESOURCE_EXHAUSTED,
               "request headers larger than the server's limit (%u bytes)",
               s->opts.max_header_list_size);
    return;
  }
  if (c->http_status == -3) {
    crpc__server_abort(c, CRPC_RESOURCE_EXHAUSTED,
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
    crpc__server_abort(c, CRPC_UNIMPLEMENTED, "unknown method %s",
               c->path ? c->path : "(no :path)");
    return;
  }
  c->method = &c->handler->method;
  if (c->http_status == -1) {
    crpc__server_abort(c, CRPC_INTERNAL, "malformed grpc-timeout");
    return;
  }
  if (c->recv_enc == CRPC__ENC_UNKNOWN) {
    crpc_metadata_add_str(c->send_md, "grpc-accept-encoding-note",
                          crpc__accept_encoding());
    crpc__server_abort(c, CRPC_UNIMPLEMENTED,
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
  crpc__server_dispatch(c);
}

static void crpc__server_on_end_stream(crpc_call *c) {
  pthread_mutex_lock(&c->mu);
  bool partial = crpc__deframer_partial(&c->deframer);
  c->recv_closed = true;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  if (partial) {
    crpc__server_abort(c, CRPC_INTERNAL, "request ended in the middle of a message");
    return;
  }
  crpc__server_dispatch_end_stream(c);
}

static void crpc__server_on_data_error(crpc_call *c, int rv) {
  crpc__deframer_reset(&c->deframer);
  if (rv == CRPC_ETOOBIG)
    crpc__server_abort(c, CRPC_RESOURCE_EXHAUSTED,
               "received message larger than max (%zu bytes)", c->max_recv);
  else if (rv == CRPC_ENOMEM)
    crpc__server_abort(c, CRPC_RESOURCE_EXHAUSTED,
               "out of memory receiving a message");
  else
    crpc__server_abort(c, CRPC_INTERNAL, "malformed message framing");
  /* stop reading this stream; the rest is discarded */
  c->rx_discard = true;
  crpc__call_release_window(c);
}

static void crpc__server_on_stream_close(crpc_call *c, uint32_t error_code) {
  crpc__server_unpend(c);
  crpc__server_handler_over(c, false);
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
  crpc__server_dispatch_closed(c, cancelled); /* the handler frees its state */
  /* a call that ended before its status was decided (reset, deadline) */
  crpc__ics_finish(c, code);
}

static void crpc__server_fail(crpc_call *c, crpc_code code, const char *msg) {
  CRPC__UNUSED(code);
  CRPC__UNUSED(msg);
  crpc__server_unpend(c);
  pthread_mutex_lock(&c->mu);
  c->done = true;
  c->cancelled = true;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  crpc__mx_server_end(c, CRPC_CANCELLED);
  crpc__server_fire_cancel(c);
  crpc__server_dispatch_closed(c, true);
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
  crpc__server_dispatch_more(c); /* NONBLOCKING streaming: per message */
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
