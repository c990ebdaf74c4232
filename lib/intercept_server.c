/*
 * intercept_server.c: running a server's interceptor chain
 * (crpc/interceptor.h) over a server call: on_start and on_recv in
 * registration order, on_send and on_finish in reverse. The auth hook
 * (crpc_server_set_auth_hook) is one interceptor of the chain.
 */
#include "server_internal.h"

crpc_code crpc__ics_start(crpc_call *c) {
  const crpc__server_chain *ch = c->sic;
  for (unsigned i = 0; ch && i < ch->n; i++) {
    pthread_mutex_lock(&c->mu);
    c->ic_started = i + 1; /* its on_finish runs, whatever it says */
    pthread_mutex_unlock(&c->mu);
    if (!ch->ic[i].on_start)
      continue;
    crpc_code code = ch->ic[i].on_start(c, c->method, ch->ud[i]);
    if (code == CRPC_OK)
      continue;
    if ((unsigned)code > CRPC_UNAUTHENTICATED)
      code = CRPC_UNKNOWN;
    return code;
  }
  return CRPC_OK;
}

void crpc__ics_send(crpc_call *c, const ProtobufCMessage *msg) {
  const crpc__server_chain *ch = c->sic;
  for (unsigned i = ch ? ch->n : 0; i-- > 0;)
    if (ch->ic[i].on_send)
      ch->ic[i].on_send(c, msg, ch->ud[i]);
}

void crpc__ics_finish(crpc_call *c, crpc_code code) {
  const crpc__server_chain *ch = c->sic;
  if (!ch || !ch->n)
    return;
  pthread_mutex_lock(&c->mu);
  unsigned n = c->ic_done ? 0 : c->ic_started;
  c->ic_done = true;
  pthread_mutex_unlock(&c->mu);
  for (unsigned i = n; i-- > 0;)
    if (ch->ic[i].on_finish)
      ch->ic[i].on_finish(c, code, ch->ud[i]);
}

/* The auth hook as the chain's interceptor: reads the hook at call time,
 * so crpc_server_set_auth_hook() may replace or remove it before start. */
static crpc_code auth_on_start(crpc_call *c, const crpc_method *m, void *ud) {
  CRPC__UNUSED(m);
  crpc_server *s = ud;
  if (!s->auth_hook)
    return CRPC_OK;
  crpc_code code = s->auth_hook(c, s->auth_ud);
  if (code != CRPC_OK) {
    pthread_mutex_lock(&c->mu);
    bool has_msg = c->status.message != NULL;
    pthread_mutex_unlock(&c->mu);
    if (!has_msg)
      crpc_call_set_status_message(c, "request rejected by the server's "
                                      "authorization check");
  }
  return code;
}

int crpc__server_auth_interceptor(crpc_server *s) {
  if (s->auth_in_chain)
    return 0;
  crpc_server_interceptor ic = {.on_start = auth_on_start};
  int rv = crpc_server_add_interceptor(s, &ic, s);
  if (rv == 0)
    s->auth_in_chain = true;
  return rv;
}

int crpc_server_add_interceptor(crpc_server *s,
                                const crpc_server_interceptor *ic,
                                void *user_data) {
  if (!s || !ic)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  if (s->ic.n >= CRPC_MAX_INTERCEPTORS)
    return CRPC_ENOMEM;
  s->ic.ic[s->ic.n] = *ic;
  s->ic.ud[s->ic.n] = user_data;
  s->ic.n++;
  return 0;
}
