/*
 * client_call.c: one client call on the wire: the kick that hands a user
 * thread's work to the loop, the deadline, the stream events the
 * transport reports (headers, trailers, the HTTP to gRPC status mapping,
 * end and close) and finishing it. The API a program calls to start,
 * read and finish calls is client_api.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

static void crpc__client_on_header(crpc_call *c, const nghttp2_frame *f,
                                   const uint8_t *name, size_t namelen,
                                   const uint8_t *value, size_t valuelen);
static void crpc__client_on_headers_done(crpc_call *c, const nghttp2_frame *f);
static void crpc__client_on_end_stream(crpc_call *c);
static void crpc__client_on_stream_close(crpc_call *c, uint32_t error_code);
static void crpc__client_on_data_error(crpc_call *c, int rv);
static void crpc__client_fail(crpc_call *c, crpc_code code, const char *msg);

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
  crpc__msgpool_put(&c->msgpool, &c->mem, m);
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
void crpc__client_finish(crpc_call *c, crpc_code code, const char *msg) {
  crpc_channel *ch = c->channel;
  pthread_mutex_lock(&c->mu);
  if (c->done || c->ic_finishing) {
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
  if (c->ic_started) {
    /* interceptors see the end before the program does; the status is
     * lent as a copy (on the stack: no allocation), as crpc_call_cancel()
     * from another thread could still replace the call's */
    char text[256] = "";
    crpc_status st = {.code = c->status.code};
    if (c->status.message) {
      snprintf(text, sizeof text, "%s", c->status.message);
      st.message = text;
    }
    c->ic_finishing = true;
    pthread_mutex_unlock(&c->mu);
    crpc__icc_done(c, &st);
    pthread_mutex_lock(&c->mu);
  }
  c->done = true;
  c->got_headers = true;
  bool async = c->async_cb || c->async_adapter;
  crpc_code final = c->status.code;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  crpc__mx_client_end(c, final);
  crpc__timer_stop(ch->loop, &c->deadline_timer);
  crpc__retry_finish(c);
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
  crpc__client_finish(c, CRPC_DEADLINE_EXCEEDED, "deadline exceeded");
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
    crpc__client_finish(c, CRPC_CANCELLED, "cancelled");
    goto out;
  }
  if (!c->submitted) {
    if (is_pending(ch, c) || c->rs.waiting) /* retry.c starts it again */
      goto out;
    if (c->deadline_ms) {
      if (c->deadline_ms <= crpc__now_ms()) {
        crpc__client_finish(c, CRPC_DEADLINE_EXCEEDED, "deadline exceeded before start");
        goto out;
      }
      c->deadline_timer.cb = on_deadline;
      crpc__timer_start(ch->loop, &c->deadline_timer, c->deadline_ms);
    }
    crpc__channel_submit(ch, c);
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

/* ---- headers, data and close from the connection [loop] ---- */

static void crpc__client_on_header(crpc_call *c, const nghttp2_frame *f,
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
  if (namelen == 22 && memcmp(n, "grpc-retry-pushback-ms", 22) == 0) {
    c->rs.pushback_ms = crpc__retry_parse_pushback(value, valuelen);
    return; /* gRFC A6 (a reserved key: not the program's metadata) */
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

static void crpc__client_on_headers_done(crpc_call *c, const nghttp2_frame *f) {
  if (f->headers.cat != NGHTTP2_HCAT_RESPONSE)
    return;
  if (c->http_status >= 100 && c->http_status < 200)
    return; /* informational */
  bool trailers_only = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  pthread_mutex_lock(&c->mu);
  if (!trailers_only) /* gRFC A6: response headers commit the call */
    crpc__retry_commit(c);
  bool committed = c->rs.committed;
  pthread_mutex_unlock(&c->mu);
  if (committed) /* interceptors see the call's headers, not an attempt's */
    crpc__icc_headers(c);
  pthread_mutex_lock(&c->mu);
  if (committed) { /* else another attempt may follow */
    c->got_headers = true;
    if (c->initial_out &&
        crpc__metadata_append(c->initial_out, c->recv_md) != 0)
      c->md_oom = true;
    crpc__call_notify(c);
  }
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
  crpc__client_finish(c, CRPC_OK, NULL);
}

static void crpc__client_on_end_stream(crpc_call *c) {
  pthread_mutex_lock(&c->mu);
  if (c->rs.committed) {
    c->recv_closed = true;
    crpc__call_notify(c);
  } else {
    c->rs.eos_seen = true; /* readers wait: another attempt may follow */
  }
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

static void crpc__client_on_stream_close(crpc_call *c, uint32_t error_code) {
  crpc_code code = CRPC_OK;
  char msg[128] = "";
  if (c->rx_discard)
    return; /* we ended it (cancel, deadline, bad data): status is set */
  pthread_mutex_lock(&c->mu);
  bool recv_closed = c->recv_closed || c->rs.eos_seen; /* not a reset */
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
  if (crpc__retry_attempt_failed(c, error_code == NGHTTP2_REFUSED_STREAM &&
                                        !c->got_grpc_status))
    return; /* another attempt follows */
  crpc__client_finish(c, CRPC_OK, NULL);
}

static void crpc__client_on_data_error(crpc_call *c, int rv) {
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
  crpc__client_finish(c, CRPC_OK, NULL);
}

static void crpc__client_fail(crpc_call *c, crpc_code code, const char *msg) {
  /* the connection went: a retryable status may try another one */
  pthread_mutex_lock(&c->mu);
  if (!c->done && c->status.code == CRPC_OK && code != CRPC_OK)
    crpc__status_set(&c->status, code, "%s", msg);
  pthread_mutex_unlock(&c->mu);
  if (c->submitted && crpc__retry_attempt_failed(c, false))
    return;
  crpc__client_finish(c, code, msg);
}


/* ---- what the transport reports (conn.h) ---- */

static int cli_header(crpc_call *c, const nghttp2_frame *f,
                      const uint8_t *name, size_t namelen,
                      const uint8_t *value, size_t valuelen) {
  crpc__client_on_header(c, f, name, namelen, value, valuelen);
  return 0;
}

static void cli_headers_done(crpc_call *c, const nghttp2_frame *f,
                             bool end_stream) {
  CRPC__UNUSED(end_stream);
  crpc__client_on_headers_done(c, f);
}

const crpc__stream_events crpc__client_streams = {
    .header = cli_header,
    .headers_done = cli_headers_done,
    .end_stream = crpc__client_on_end_stream,
    .data_error = crpc__client_on_data_error,
    .stream_close = crpc__client_on_stream_close,
    .fail = crpc__client_fail,
};
