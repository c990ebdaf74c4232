/*
 * tls_internal.h: what the transport needs from tls.c (OpenSSL 3).
 * Contexts are built once per channel / listener; transports once per
 * connection.
 */
#ifndef CRPC_TLS_INTERNAL_H
#define CRPC_TLS_INTERNAL_H

#include <crpc/tls.h>

#include "transport.h"

/* Returns 0 or CRPC_ETLS (|why| gets a static or thread-local reason),
 * CRPC_ENOMEM. crpc's part of the context, its transports and peer
 * identities come from |mem| (the owner's, which outlives them all);
 * OpenSSL allocates with its own process-wide allocator (common.h). */
int crpc__tls_client_ctx_new(const crpc_tls_opts *opts, const crpc_mem *mem,
                             void **ctx_out, const char **why);
int crpc__tls_server_ctx_new(const crpc_tls_server_opts *opts,
                             const crpc_mem *mem, void **ctx_out,
                             const char **why);
void crpc__tls_ctx_free(void *ctx);

/* A TLS transport for a new connection. |server_name| is checked against the
 * certificate and sent as SNI. */
int crpc__tls_client_transport(void *ctx, const char *server_name,
                               crpc__transport **out, const char **why);
int crpc__tls_server_transport(void *ctx, crpc__transport **out,
                               const char **why);

/* Rebuilds a server context from the files it was made from; new
 * connections use the new certificate, open ones keep theirs. Any thread.
 * Returns 0, CRPC_EINVAL (not a server context) or CRPC_ETLS (the old
 * credentials stay in use). */
int crpc__tls_ctx_reload(void *ctx, const char **why);

/* Server side, after the handshake: a new reference to the client's
 * verified identity (peer.h; an empty one without a client certificate),
 * or NULL for a transport that is not TLS. */
struct crpc__peer_id *crpc__tls_peer_id(crpc__transport *tp);

#endif
