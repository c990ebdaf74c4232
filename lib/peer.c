/*
 * peer.c: the peer identity a server handler (or auth hook) can authorize
 * against. tls.c fills it from the verified client certificate once per
 * connection; every call on that connection holds a reference.
 */
#include "peer.h"

#include <stdlib.h>
#include <string.h>

#include "call_internal.h"

crpc__peer_id *crpc__peer_id_new(const crpc_mem *mem) {
  crpc__peer_id *p = crpc__calloc(mem, 1, sizeof *p);
  if (p) {
    atomic_init(&p->refs, 1);
    p->mem = mem;
  }
  return p;
}

int crpc__peer_id_add_san(crpc__peer_id *p, const char *san) {
  char **sans = crpc__realloc(p->mem, p->sans, (p->nsans + 1) * sizeof *sans);
  if (!sans)
    return CRPC_ENOMEM;
  p->sans = sans;
  if (!(sans[p->nsans] = crpc__strdup(p->mem, san)))
    return CRPC_ENOMEM;
  p->nsans++;
  return 0;
}

crpc__peer_id *crpc__peer_id_ref(crpc__peer_id *p) {
  if (p)
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
  return p;
}

void crpc__peer_id_unref(crpc__peer_id *p) {
  if (!p ||
      atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
    return;
  for (size_t i = 0; i < p->nsans; i++)
    crpc__free(p->mem, p->sans[i]);
  crpc__free(p->mem, p->sans);
  crpc__free(p->mem, p->subject);
  crpc__free(p->mem, p);
}

/* ---- public accessors (server calls) ---- */

bool crpc_call_peer_is_tls(const crpc_call *c) {
  return c && c->is_server && c->peer_tls;
}

const char *crpc_call_peer_cert_subject(const crpc_call *c) {
  return c && c->peer_id ? c->peer_id->subject : NULL;
}

size_t crpc_call_peer_cert_san_count(const crpc_call *c) {
  return c && c->peer_id && c->peer_id->subject ? c->peer_id->nsans : 0;
}

const char *crpc_call_peer_cert_san(const crpc_call *c, size_t i) {
  if (!c || !c->peer_id || i >= crpc_call_peer_cert_san_count(c))
    return NULL;
  return c->peer_id->sans[i];
}
