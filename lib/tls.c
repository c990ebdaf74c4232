/*
 * tls.c: the TLS byte stream (OpenSSL 3). TLS 1.2 is the minimum, ALPN
 * "h2" is required in both directions, clients verify the server's chain
 * and name by default, servers may request or require client
 * certificates. A listener's certificate can be reloaded while it serves:
 * every SSL holds a reference to the SSL_CTX it was made from, so the old
 * context lives on in the connections that use it.
 *
 * Sockets are read and written through a BIO of our own (tls_bio.c): no
 * SIGPIPE, and one send() for the records of one write.
 */
#include "tls_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "peer.h"
#include "tls_bio.h"

typedef struct tls_ctx {
  const crpc_mem *mem; /* the owner's (channel or server) */
  bool server;
  pthread_mutex_t mu;
  SSL_CTX *ssl_ctx; /* [mu]: replaced by crpc__tls_ctx_reload */
  char *cert_file, *key_file, *ca_file;
  crpc_client_auth client_auth;
} tls_ctx;

typedef struct tls_tp {
  crpc__transport base;
  const crpc_mem *mem;
  SSL *ssl;
  BIO *bio; /* the SSL's, once attached */
  bool server;
  bool fd_set;
  bool closed; /* the peer ended the stream (clean or not) */
  char *name;  /* client: the name the certificate must match */
  crpc__peer_id *peer; /* server: set when the handshake completes */
  char err[384];
} tls_tp;

/* |why| strings handed back to callers live here (tls_internal.h). */
static __thread char why_buf[512];

static const char *set_why(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static const char *set_why(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why_buf, sizeof why_buf, fmt, ap);
  va_end(ap);
  return why_buf;
}

/* The reason of the most recent OpenSSL error on this thread. */
static const char *ssl_reason(void) {
  unsigned long e = ERR_peek_last_error();
  if (e && ERR_SYSTEM_ERROR(e))
    return strerror(ERR_GET_REASON(e)); /* e.g. a file that is missing */
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  return r ? r : "unknown error";
}

static int attach_fd(tls_tp *tp, int fd) {
  if (tp->fd_set)
    return 0;
  BIO *b = crpc__tls_bio_new(fd, tp->mem);
  if (!b) {
    snprintf(tp->err, sizeof tp->err, "TLS: out of memory");
    return CRPC__TP_ERROR;
  }
  SSL_set_bio(tp->ssl, b, b);
  tp->bio = b;
  tp->fd_set = true;
  return 0;
}

/* ---- contexts ---- */

static SSL_CTX *base_ctx(bool server, const char **why) {
  SSL_CTX *ctx =
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) {
    *why = set_why("cannot create an OpenSSL context: %s", ssl_reason());
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* conn.c retries a short write with the rest of its buffer, which may
   * have moved; idle connections give their TLS buffers back. */
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  /* renegotiation is a CPU lever for a hostile peer and HTTP/2 forbids
   * it anyway (RFC 9113 9.2.1) */
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  return ctx;
}

static int load_cert_key(SSL_CTX *ctx, const char *cert, const char *key,
                         const char **why) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    *why = set_why("cannot load the certificate chain '%s': %s", cert,
                   ssl_reason());
    return CRPC_ETLS;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
        ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
      *why = set_why("the private key '%s' does not match the certificate "
                     "'%s'",
                     key, cert);
    else
      *why = set_why("cannot load the private key '%s': %s", key,
                     ssl_reason());
    return CRPC_ETLS;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    *why = set_why("the private key '%s' does not match the certificate "
                   "'%s'",
                   key, cert);
    return CRPC_ETLS;
  }
  return 0;
}

static int load_ca(SSL_CTX *ctx, const char *ca, const char **why) {
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
    *why = set_why("cannot load the CA bundle '%s': %s", ca, ssl_reason());
    return CRPC_ETLS;
  }
  return 0;
}

/* Server: pick "h2" from the client's ALPN list or fail the handshake
 * with no_application_protocol. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  CRPC__UNUSED(ssl);
  CRPC__UNUSED(arg);
  for (unsigned i = 0; i < inlen;) {
    unsigned l = in[i];
    if (i + 1 + l > inlen)
      break;
    if (l == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + l;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static SSL_CTX *build_server_ctx(const tls_ctx *t, const char **why) {
  SSL_CTX *ctx = base_ctx(true, why);
  if (!ctx)
    return NULL;
  if (load_cert_key(ctx, t->cert_file, t->key_file, why) != 0)
    goto fail;
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* resumed sessions must keep the client identity we verified */
  static const unsigned char sid[] = "crpc";
  SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
  if (t->client_auth != CRPC_CLIENT_AUTH_NONE) {
    if (load_ca(ctx, t->ca_file, why) != 0)
      goto fail;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca_file);
    if (names)
      SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (t->client_auth == CRPC_CLIENT_AUTH_REQUIRE)
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
  }
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

static char *dup_opt(const crpc_mem *mem, const char *s, bool *oom) {
  if (!s)
    return NULL;
  char *d = crpc__strdup(mem, s);
  if (!d)
    *oom = true;
  return d;
}

static tls_ctx *new_tls_ctx(bool server, const crpc_mem *mem) {
  tls_ctx *t = crpc__calloc(mem, 1, sizeof *t);
  if (t) {
    t->mem = mem;
    t->server = server;
    pthread_mutex_init(&t->mu, NULL);
  }
  return t;
}

int crpc__tls_server_ctx_new(const crpc_tls_server_opts *opts,
                             const crpc_mem *mem, void **ctx_out,
                             const char **why) {
  *ctx_out = NULL;
  *why = NULL;
  if (!opts || !opts->cert_file || !opts->key_file) {
    *why = "a TLS listener needs cert_file and key_file";
    return CRPC_ETLS;
  }
  if (opts->client_auth != CRPC_CLIENT_AUTH_NONE && !opts->ca_file) {
    *why = "client_auth REQUEST/REQUIRE needs ca_file (the CAs that sign "
           "client certificates)";
    return CRPC_ETLS;
  }
  if (opts->client_auth < CRPC_CLIENT_AUTH_NONE ||
      opts->client_auth > CRPC_CLIENT_AUTH_REQUIRE) {
    *why = "unknown client_auth value";
    return CRPC_ETLS;
  }
  tls_ctx *t = new_tls_ctx(true, mem);
  bool oom = !t;
  if (t) {
    t->cert_file = dup_opt(mem, opts->cert_file, &oom);
    t->key_file = dup_opt(mem, opts->key_file, &oom);
    t->ca_file = dup_opt(mem, opts->ca_file, &oom);
    t->client_auth = opts->client_auth;
  }
  if (oom) {
    crpc__tls_ctx_free(t);
    *why = "out of memory";
    return CRPC_ENOMEM;
  }
  t->ssl_ctx = build_server_ctx(t, why);
  if (!t->ssl_ctx) {
    crpc__tls_ctx_free(t);
    return CRPC_ETLS;
  }
  *ctx_out = t;
  return 0;
}

int crpc__tls_client_ctx_new(const crpc_tls_opts *opts, const crpc_mem *mem,
                             void **ctx_out, const char **why) {
  static const unsigned char alpn[] = "\x02h2";
  *ctx_out = NULL;
  *why = NULL;
  if (!opts)
    return CRPC_EINVAL;
  if (!opts->cert_file != !opts->key_file) {
    *why = "a client certificate needs both cert_file and key_file";
    return CRPC_ETLS;
  }
  tls_ctx *t = new_tls_ctx(false, mem);
  if (!t) {
    *why = "out of memory";
    return CRPC_ENOMEM;
  }
  SSL_CTX *ctx = t->ssl_ctx = base_ctx(false, why);
  if (!ctx)
    goto fail;
  ERR_clear_error();
  if (opts->ca_file) {
    if (load_ca(ctx, opts->ca_file, why) != 0)
      goto fail;
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    *why = set_why("cannot load the system trust store: %s", ssl_reason());
    goto fail;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  if (opts->cert_file &&
      load_cert_key(ctx, opts->cert_file, opts->key_file, why) != 0)
    goto fail;
  if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0) {
    *why = "cannot set ALPN";
    goto fail;
  }
  *ctx_out = t;
  return 0;
fail:
  crpc__tls_ctx_free(t);
  return CRPC_ETLS;
}

void crpc__tls_ctx_free(void *ctx) {
  tls_ctx *t = ctx;
  if (!t)
    return;
  SSL_CTX_free(t->ssl_ctx);
  crpc__free(t->mem, t->cert_file);
  crpc__free(t->mem, t->key_file);
  crpc__free(t->mem, t->ca_file);
  pthread_mutex_destroy(&t->mu);
  crpc__free(t->mem, t);
}

int crpc__tls_ctx_reload(void *ctx, const char **why) {
  tls_ctx *t = ctx;
  *why = NULL;
  if (!t || !t->server)
    return CRPC_EINVAL;
  SSL_CTX *fresh = build_server_ctx(t, why);
  if (!fresh)
    return CRPC_ETLS;
  pthread_mutex_lock(&t->mu);
  SSL_CTX *old = t->ssl_ctx;
  t->ssl_ctx = fresh;
  pthread_mutex_unlock(&t->mu);
  SSL_CTX_free(old); /* open connections keep their own reference */
  return 0;
}

/* ---- peer identity ---- */

/* Appends one GENERAL_NAME as "DNS:x" etc.; other kinds are skipped, and
 * so are names with an embedded NUL, which could pass for a shorter one. */
static int add_general_name(crpc__peer_id *p, const GENERAL_NAME *gn) {
  char buf[512];
  const char *prefix = NULL;
  const ASN1_STRING *s = NULL;
  switch (gn->type) {
  case GEN_DNS:
    prefix = "DNS:";
    s = gn->d.dNSName;
    break;
  case GEN_URI:
    prefix = "URI:";
    s = gn->d.uniformResourceIdentifier;
    break;
  case GEN_EMAIL:
    prefix = "email:";
    s = gn->d.rfc822Name;
    break;
  case GEN_IPADD: {
    const ASN1_OCTET_STRING *ip = gn->d.iPAddress;
    char a[INET6_ADDRSTRLEN];
    int len = ASN1_STRING_length(ip);
    if ((len != 4 && len != 16) ||
        !inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip),
                   a, sizeof a))
      return 0;
    snprintf(buf, sizeof buf, "IP:%s", a);
    return crpc__peer_id_add_san(p, buf);
  }
  default:
    return 0;
  }
  int len = ASN1_STRING_length(s);
  const unsigned char *d = ASN1_STRING_get0_data(s);
  size_t plen = strlen(prefix);
  if (len <= 0 || (size_t)len + plen >= sizeof buf ||
      memchr(d, '\0', (size_t)len))
    return 0;
  memcpy(buf, prefix, plen);
  memcpy(buf + plen, d, (size_t)len);
  buf[plen + (size_t)len] = '\0';
  return crpc__peer_id_add_san(p, buf);
}

/* The verified client certificate's subject and SANs; an empty identity
 * when the client sent none. NULL only on OOM. */
static crpc__peer_id *make_peer_id(SSL *ssl, const crpc_mem *mem) {
  crpc__peer_id *p = crpc__peer_id_new(mem);
  X509 *cert = SSL_get0_peer_certificate(ssl);
  if (!p || !cert || SSL_get_verify_result(ssl) != X509_V_OK)
    return p;
  BIO *bio = BIO_new(BIO_s_mem());
  if (!bio)
    goto oom;
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char *data;
  long n = BIO_get_mem_data(bio, &data);
  p->subject = crpc__malloc(mem, (size_t)n + 1);
  if (p->subject) {
    memcpy(p->subject, data, (size_t)n);
    p->subject[n] = '\0';
  }
  BIO_free(bio);
  if (!p->subject)
    goto oom;
  GENERAL_NAMES *names =
      X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  int rv = 0;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && rv == 0; i++)
    rv = add_general_name(p, sk_GENERAL_NAME_value(names, i));
  GENERAL_NAMES_free(names);
  if (rv == 0)
    return p;
oom:
  crpc__peer_id_unref(p);
  return NULL;
}

crpc__peer_id *crpc__tls_peer_id(crpc__transport *t) {
  tls_tp *tp = (tls_tp *)t;
  return tp ? crpc__peer_id_ref(tp->peer) : NULL;
}

/* ---- the transport ---- */

/* Describes a failed handshake or I/O in words a user can act on. */
static void describe(tls_tp *tp, int ssl_err, const char *when) {
  unsigned long e = ERR_peek_last_error();
  int reason = e ? ERR_GET_REASON(e) : 0;
  const char *peer = tp->server ? "client" : "server";
  long vr = SSL_get_verify_result(tp->ssl);
  if (ssl_err == SSL_ERROR_SYSCALL && !e) {
    if (errno)
      snprintf(tp->err, sizeof tp->err, "TLS %s failed: %s", when,
               strerror(errno));
    else
      snprintf(tp->err, sizeof tp->err,
               "TLS %s failed: the %s closed the connection", when, peer);
    return;
  }
  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK) {
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
      snprintf(tp->err, sizeof tp->err,
               "TLS %s failed: the server certificate is not valid for "
               "'%s' (hostname mismatch)",
               when, tp->name ? tp->name : "?");
    else
      snprintf(tp->err, sizeof tp->err,
               "TLS %s failed: %s certificate verify failed: %s", when, peer,
               X509_verify_cert_error_string(vr));
    return;
  }
  const char *hint = "";
  switch (reason) {
  case SSL_R_WRONG_VERSION_NUMBER:
  case SSL_R_PACKET_LENGTH_TOO_LONG:
  case SSL_R_HTTP_REQUEST:
    hint = tp->server ? " (the client does not speak TLS: a clear-text "
                        "client on a TLS port?)"
                      : " (the server does not speak TLS: a clear-text "
                        "port?)";
    break;
  case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    hint = " (this server requires a client certificate)";
    break;
  case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
  case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    hint = tp->server ? "" : " (does the server require a client "
                             "certificate?)";
    break;
  case SSL_R_NO_APPLICATION_PROTOCOL:
    hint = " (the client did not offer ALPN h2: not an HTTP/2 client)";
    break;
  case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
    hint = " (the server refused ALPN h2: not an HTTP/2 server)";
    break;
  case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
  case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
  case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
  case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    hint = tp->server ? " (the client rejected our certificate)"
                      : " (the server rejected our client certificate)";
    break;
  default:
    break;
  }
  snprintf(tp->err, sizeof tp->err, "TLS %s failed: %s%s", when,
           e ? ssl_reason() : "protocol error", hint);
}

static int tp_handshake(crpc__transport *t, int fd) {
  tls_tp *tp = (tls_tp *)t;
  if (attach_fd(tp, fd) != 0)
    return CRPC__TP_ERROR;
  ERR_clear_error();
  errno = 0;
  int r = SSL_do_handshake(tp->ssl);
  if (r == 1) {
    const unsigned char *proto = NULL;
    unsigned plen = 0;
    SSL_get0_alpn_selected(tp->ssl, &proto, &plen);
    if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
      snprintf(tp->err, sizeof tp->err,
               "TLS handshake failed: the %s did not negotiate ALPN h2 "
               "(HTTP/2 over TLS is required)",
               tp->server ? "client" : "server");
      return CRPC__TP_ERROR;
    }
    if (tp->server && !(tp->peer = make_peer_id(tp->ssl, tp->mem))) {
      snprintf(tp->err, sizeof tp->err, "TLS: out of memory");
      return CRPC__TP_ERROR;
    }
    return 0;
  }
  int e = SSL_get_error(tp->ssl, r);
  if (e == SSL_ERROR_WANT_READ)
    return CRPC__TP_WANT_READ;
  if (e == SSL_ERROR_WANT_WRITE)
    return CRPC__TP_WANT_WRITE;
  describe(tp, e, "handshake");
  return CRPC__TP_ERROR;
}

static ssize_t tp_read(crpc__transport *t, int fd, uint8_t *buf, size_t len) {
  tls_tp *tp = (tls_tp *)t;
  size_t got = 0;
  CRPC__UNUSED(fd);
  if (tp->closed)
    return 0;
  /* Fill the buffer: SSL_read returns one record at a time, and conn.c
   * takes a short read to mean the socket is drained. */
  while (got < len) {
    size_t want = len - got > INT_MAX ? INT_MAX : len - got;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(tp->ssl, buf + got, (int)want);
    if (r > 0) {
      got += (size_t)r;
      continue;
    }
    int e = SSL_get_error(tp->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (got)
        break;
      return e == SSL_ERROR_WANT_READ ? CRPC__TP_WANT_READ
                                      : CRPC__TP_WANT_WRITE;
    }
    unsigned long le = ERR_peek_last_error();
    if (e == SSL_ERROR_ZERO_RETURN ||
        (e == SSL_ERROR_SYSCALL && !le && errno == 0) ||
        (le && ERR_GET_REASON(le) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
      /* close_notify, or a peer that just closed the socket (most do) */
      tp->closed = true;
      break;
    }
    describe(tp, e, "read");
    if (got)
      break; /* the error shows again on the next call */
    return CRPC__TP_ERROR;
  }
  return (ssize_t)got;
}

static ssize_t tp_write(crpc__transport *t, int fd, const uint8_t *buf,
                        size_t len, uint8_t *scratch, size_t scratch_cap) {
  tls_tp *tp = (tls_tp *)t;
  CRPC__UNUSED(fd);
  ERR_clear_error();
  errno = 0;
  crpc__tls_bio_gather(tp->bio, scratch, scratch_cap);
  int r = SSL_write(tp->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
  int err = errno;
  if (crpc__tls_bio_end_gather(tp->bio) != 0) {
    snprintf(tp->err, sizeof tp->err, "TLS write failed: %s",
             strerror(errno));
    return CRPC__TP_ERROR;
  }
  if (r > 0)
    return r;
  errno = err;
  int e = SSL_get_error(tp->ssl, r);
  if (e == SSL_ERROR_WANT_WRITE)
    return CRPC__TP_WANT_WRITE;
  if (e == SSL_ERROR_WANT_READ)
    return CRPC__TP_WANT_READ;
  describe(tp, e, "write");
  return CRPC__TP_ERROR;
}

static int tp_flush(crpc__transport *t, int fd) {
  tls_tp *tp = (tls_tp *)t;
  CRPC__UNUSED(fd);
  if (!tp->bio)
    return 0;
  int r = crpc__tls_bio_flush(tp->bio);
  if (r > 0)
    return CRPC__TP_WANT_WRITE;
  if (r < 0) {
    snprintf(tp->err, sizeof tp->err, "TLS write failed: %s",
             strerror(errno));
    return CRPC__TP_ERROR;
  }
  return 0;
}

static const char *tp_error(crpc__transport *t) {
  tls_tp *tp = (tls_tp *)t;
  return tp->err[0] ? tp->err : "TLS error";
}

static void tp_free(crpc__transport *t) {
  tls_tp *tp = (tls_tp *)t;
  if (!tp)
    return;
  SSL_free(tp->ssl); /* frees the BIO, drops the SSL_CTX reference */
  crpc__peer_id_unref(tp->peer);
  crpc__free(tp->mem, tp->name);
  crpc__free(tp->mem, tp);
}

static const crpc__transport_ops tls_ops = {
    tp_read, tp_write, tp_flush, tp_handshake, tp_error, tp_free,
};

static tls_tp *new_tp(tls_ctx *t, const char **why) {
  tls_tp *tp = crpc__calloc(t->mem, 1, sizeof *tp);
  if (!tp) {
    *why = "out of memory";
    return NULL;
  }
  tp->mem = t->mem;
  tp->base.ops = &tls_ops;
  tp->server = t->server;
  pthread_mutex_lock(&t->mu);
  tp->ssl = SSL_new(t->ssl_ctx);
  pthread_mutex_unlock(&t->mu);
  if (!tp->ssl) {
    *why = set_why("cannot create a TLS session: %s", ssl_reason());
    crpc__free(t->mem, tp);
    return NULL;
  }
  return tp;
}

int crpc__tls_client_transport(void *ctx, const char *server_name,
                               crpc__transport **out, const char **why) {
  tls_ctx *t = ctx;
  unsigned char ip[16];
  *out = NULL;
  *why = NULL;
  if (!t || !server_name || !*server_name) {
    *why = "TLS needs a server name to verify";
    return CRPC_ETLS;
  }
  tls_tp *tp = new_tp(t, why);
  if (!tp)
    return CRPC_ENOMEM;
  /* "[::1]" from a target is an address too */
  size_t n = strlen(server_name);
  if (server_name[0] == '[' && server_name[n - 1] == ']')
    tp->name = crpc__strndup(tp->mem, server_name + 1, n - 2);
  else
    tp->name = crpc__strdup(tp->mem, server_name);
  if (!tp->name) {
    tp_free(&tp->base);
    *why = "out of memory";
    return CRPC_ENOMEM;
  }
  int ok;
  if (inet_pton(AF_INET, tp->name, ip) == 1 ||
      inet_pton(AF_INET6, tp->name, ip) == 1) {
    /* an address: checked against IP SANs; no SNI (RFC 6066 3) */
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tp->ssl), tp->name);
  } else {
    SSL_set_hostflags(tp->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = SSL_set_tlsext_host_name(tp->ssl, tp->name) == 1 &&
         SSL_set1_host(tp->ssl, tp->name) == 1;
  }
  if (!ok) {
    *why = set_why("cannot use '%s' as the TLS server name", tp->name);
    tp_free(&tp->base);
    return CRPC_ETLS;
  }
  SSL_set_connect_state(tp->ssl);
  *out = &tp->base;
  return 0;
}

int crpc__tls_server_transport(void *ctx, crpc__transport **out,
                               const char **why) {
  tls_ctx *t = ctx;
  *out = NULL;
  *why = NULL;
  if (!t || !t->server)
    return CRPC_EINVAL;
  tls_tp *tp = new_tp(t, why);
  if (!tp)
    return CRPC_ENOMEM;
  SSL_set_accept_state(tp->ssl);
  *out = &tp->base;
  return 0;
}
