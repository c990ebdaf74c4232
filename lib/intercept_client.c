/*
 * intercept_client.c: running a channel's interceptor chain
 * (crpc/interceptor.h) over a client call: on_start and on_send in
 * registration order, on_headers, on_recv and on_done in reverse. Nothing
 * here allocates: the chain is the channel's, the call keeps a counter.
 */
#include "client_internal.h"

void crpc__icc_start(crpc_call *c) {
  const crpc__client_chain *ch = c->cic;
  for (unsigned i = 0; ch && i < ch->n; i++) {
    c->ic_started = i + 1; /* on_done runs for this one, whatever it says */
    if (!ch->ic[i].on_start)
      continue;
    crpc_code code = ch->ic[i].on_start(c, c->method, c->send_md, ch->ud[i]);
    if (code == CRPC_OK)
      continue;
    if ((unsigned)code > CRPC_UNAUTHENTICATED)
      code = CRPC_UNKNOWN;
    crpc__status_set(&c->status, code,
                     "call ended by a client interceptor (%s)",
                     crpc_code_name(code));
    c->cancel_requested = true; /* fails at the first kick: nothing sent */
    return;
  }
}

crpc_code crpc__icc_send(crpc_call *c, const ProtobufCMessage **msg) {
  const crpc__client_chain *ch = c->cic;
  if (!ch || !ch->n)
    return CRPC_OK;
  pthread_mutex_lock(&c->mu);
  bool ended = c->done || c->cancel_requested;
  crpc_code st = c->status.code;
  pthread_mutex_unlock(&c->mu);
  if (ended) /* the write fails anyway: interceptors see no message */
    return st != CRPC_OK ? st : CRPC_CANCELLED;
  for (unsigned i = 0; ch && i < ch->n; i++) {
    if (!ch->ic[i].on_send)
      continue;
    const ProtobufCMessage *before = *msg;
    crpc_code code = ch->ic[i].on_send(c, msg, ch->ud[i]);
    if (!*msg || (*msg)->descriptor != before->descriptor) {
      *msg = before; /* a replacement of another type cannot be sent */
      code = CRPC_INTERNAL;
    }
    if (code == CRPC_OK)
      continue;
    if ((unsigned)code > CRPC_UNAUTHENTICATED)
      code = CRPC_UNKNOWN;
    pthread_mutex_lock(&c->mu);
    if (!c->done && !c->cancel_requested) {
      crpc__status_set(&c->status, code,
                       "message refused by a client interceptor (%s)",
                       crpc_code_name(code));
      c->cancel_requested = true;
      crpc__call_kick_locked(c);
    }
    pthread_mutex_unlock(&c->mu);
    return code;
  }
  return CRPC_OK;
}

void crpc__icc_headers(crpc_call *c) {
  const crpc__client_chain *ch = c->cic;
  for (unsigned i = ch ? ch->n : 0; i-- > 0;)
    if (ch->ic[i].on_headers)
      ch->ic[i].on_headers(c, c->recv_md, ch->ud[i]);
}

void crpc__icc_done(crpc_call *c, const crpc_status *st) {
  const crpc__client_chain *ch = c->cic;
  for (unsigned i = ch ? c->ic_started : 0; i-- > 0;)
    if (ch->ic[i].on_done)
      ch->ic[i].on_done(c, st, c->trailers, ch->ud[i]);
}

void crpc__ic_recv(crpc_call *c, const uint8_t *data, size_t len,
                   bool compressed) {
  if (c->is_server) {
    const crpc__server_chain *ch = c->sic;
    for (unsigned i = 0; ch && i < ch->n; i++)
      if (ch->ic[i].on_recv)
        ch->ic[i].on_recv(c, data, len, compressed, ch->ud[i]);
    return;
  }
  const crpc__client_chain *ch = c->cic;
  for (unsigned i = ch ? ch->n : 0; i-- > 0;)
    if (ch->ic[i].on_recv)
      ch->ic[i].on_recv(c, data, len, compressed, ch->ud[i]);
}

int crpc_channel_add_interceptor(crpc_channel *ch,
                                 const crpc_client_interceptor *ic,
                                 void *user_data) {
  if (!ch || !ic)
    return CRPC_EINVAL;
  if (ch->ic.n >= CRPC_MAX_INTERCEPTORS)
    return CRPC_ENOMEM;
  ch->ic.ic[ch->ic.n] = *ic;
  ch->ic.ud[ch->ic.n] = user_data;
  ch->ic.n++;
  return 0;
}
