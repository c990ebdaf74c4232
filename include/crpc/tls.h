/**
 * \file
 * tls.h: TLS settings for channels and listeners (OpenSSL 3). TLS 1.2 is
 * the minimum and ALPN "h2" is required in both directions.
 */
#ifndef CRPC_TLS_H
#define CRPC_TLS_H

#include <crpc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Client side. {0} verifies the server against the system trust store. */
typedef struct crpc_tls_opts {
  const char *ca_file;   /**< PEM bundle to trust; NULL: system store */
  const char *cert_file; /**< PEM client certificate chain (mutual TLS) */
  const char *key_file;  /**< PEM private key for cert_file */
  /** Name checked against the server certificate and sent as SNI and
   * :authority instead of the target's host (tests, gRPC's
   * --server_host_override). */
  const char *server_name_override;
} crpc_tls_opts;

/** Whether a TLS listener asks clients for a certificate (mutual TLS). */
typedef enum crpc_client_auth {
  CRPC_CLIENT_AUTH_NONE = 0,    /**< no client certificate requested */
  CRPC_CLIENT_AUTH_REQUEST = 1, /**< requested, verified if sent */
  CRPC_CLIENT_AUTH_REQUIRE = 2  /**< required and verified */
} crpc_client_auth;

/** Server side. cert_file and key_file are required. The files are read
 * by crpc_server_listen() and again by crpc_server_reload_tls(). */
typedef struct crpc_tls_server_opts {
  const char *cert_file;        /**< PEM certificate chain */
  const char *key_file;         /**< PEM private key */
  const char *ca_file;          /**< PEM CAs that sign client certificates */
  crpc_client_auth client_auth; /**< client certificates; {0}: none */
} crpc_tls_server_opts;

#ifdef __cplusplus
}
#endif
#endif /* CRPC_TLS_H */
