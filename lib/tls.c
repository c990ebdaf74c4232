/*
 * tls.c: placeholder until the TLS transport lands (issue: security). Every
 * entry point fails with CRPC_ETLS and says so.
 */
#include "internal.h"
#include "tls_internal.h"

static const char *not_yet = "TLS is not implemented in this build yet";

int crpc__tls_client_ctx_new(const crpc_tls_opts *opts, void **ctx_out,
                             const char **why) {
  CRPC__UNUSED(opts);
  *ctx_out = NULL;
  *why = not_yet;
  return CRPC_ETLS;
}

int crpc__tls_server_ctx_new(const crpc_tls_server_opts *opts, void **ctx_out,
                             const char **why) {
  CRPC__UNUSED(opts);
  *ctx_out = NULL;
  *why = not_yet;
  return CRPC_ETLS;
}

void crpc__tls_ctx_free(void *ctx) { CRPC__UNUSED(ctx); }

int crpc__tls_client_transport(void *ctx, const char *server_name,
                               crpc__transport **out, const char **why) {
  CRPC__UNUSED(ctx);
  CRPC__UNUSED(server_name);
  *out = NULL;
  *why = not_yet;
  return CRPC_ETLS;
}

int crpc__tls_server_transport(void *ctx, crpc__transport **out,
                               const char **why) {
  CRPC__UNUSED(ctx);
  *out = NULL;
  *why = not_yet;
  return CRPC_ETLS;
}
