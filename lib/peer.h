/*
 * peer.h: the verified identity of a TLS peer (certificate subject and
 * subjectAltNames), shared by a connection and every server call that
 * arrived on it. Calls may outlive their connection, so it is refcounted.
 */
#ifndef CRPC_PEER_H
#define CRPC_PEER_H

#include <stdatomic.h>
#include <stddef.h>

#include <crpc/common.h>

typedef struct crpc__peer_id {
  atomic_int refs;
  const crpc_mem *mem; /* the server's; it outlives every call */
  char *subject; /* RFC 2253, NULL when the peer sent no certificate */
  size_t nsans;
  char **sans; /* "DNS:x", "IP:1.2.3.4", "URI:...", "email:..." */
} crpc__peer_id;

/* An empty identity with one reference, allocated from |mem|, or NULL on
 * OOM. */
crpc__peer_id *crpc__peer_id_new(const crpc_mem *mem);
/* Appends one SAN (copied). Returns 0 or CRPC_ENOMEM. */
int crpc__peer_id_add_san(crpc__peer_id *p, const char *san);
crpc__peer_id *crpc__peer_id_ref(crpc__peer_id *p); /* NULL-safe */
void crpc__peer_id_unref(crpc__peer_id *p);          /* NULL-safe */

#endif
