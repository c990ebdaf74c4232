/*
 * client_api.c: the client call API a program calls [user thread]:
 * starting a call (call credentials, the first message of a unary call),
 * the blocking and async unary calls, and the streaming side's
 * writes_done, headers, finish and free. What happens on the wire is
 * client_call.c's; the callback API is client_cb.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

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
