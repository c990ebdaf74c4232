/*
 * client_call.c: one client call: starting it (credentials, the first
 * message of a unary call), the kick that hands a user thread's work to
 * the loop, the stream events the transport reports (headers, trailers,
 * the HTTP to gRPC status mapping, end and close), finishing it, and the
 * blocking and async unary API over the same machinery.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "client_internal.h"

static void crpc__client_kick(void *arg);
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

static void crpc__client_kick(void *arg) {
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
  int rv = crpc__call_new(&c, false, ch->loop, &ch->mem, crpc__client_kick);
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
  crpc__retry_call_init(c, ch); /* the service config's method settings */
  c->cic = &ch->ic;
  crpc__icc_start(c); /* interceptors first: they are the outermost */
  if (!c->cancel_requested)
    run_call_creds(c, ch, opts);
  crpc__mx_client_new(c);
  *out = c;
  return 0;
}

/* Hands the call's work to its loop. When nobody is running the loop, the
 * caller runs that round itself: the request leaves from this thread. */
static void start(crpc_call *c) {
  crpc__mx_client_start(c);
  crpc__call_kick(c);
}

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
  if (!c->cancel_requested && crpc__icc_send(c, &req) != CRPC_OK) {
    c->send_closed = true; /* ends at the first kick, nothing sent */
    *out = c;
    return 0;
  }
  rv = crpc__frame_message(&c->mem, &c->msgpool, req, c->send_enc, c->max_send, &mb);
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
  crpc__msgpool_put(&c->msgpool, &c->mem, mb);
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
