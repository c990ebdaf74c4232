#define _POSIX_C_SOURCE 200809L
/*
 * test_tls.c: TLS and mutual TLS between crpc peers: calls of every kind,
 * the identity a handler sees, call credentials, the auth hook, certificate
 * reload, and each bad input of the security issue (certificate from
 * another CA, expired, hostname mismatch, no client certificate, clear
 * text against TLS and the reverse, ALPN without h2, a malformed
 * authorization header). Every failure must carry a message that says
 * what went wrong.
 *
 *   test_tls CERT_DIR      (CERT_DIR made by make_test_certs.sh)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "sec_util.h"

/* ---- crpc's log lines, so tests can check the server's side too ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cv = PTHREAD_COND_INITIALIZER;
static char log_buf[64 * 1024];
static size_t log_len;

static void on_log(crpc_log_level lvl, const char *msg, void *ud) {
  (void)lvl;
  (void)ud;
  pthread_mutex_lock(&log_mu);
  size_t n = strlen(msg);
  if (log_len + n + 2 >= sizeof log_buf)
    log_len = 0; /* tests clear it; never overflow */
  memcpy(log_buf + log_len, msg, n);
  log_len += n;
  log_buf[log_len++] = '\n';
  log_buf[log_len] = '\0';
  pthread_cond_broadcast(&log_cv);
  pthread_mutex_unlock(&log_mu);
}

static void log_clear(void) {
  pthread_mutex_lock(&log_mu);
  log_len = 0;
  log_buf[0] = '\0';
  pthread_mutex_unlock(&log_mu);
}

/* Waits (event-driven, bounded) for a log line containing |needle|. */
static bool log_wait(const char *needle) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += SEC_TMO / 1000;
  pthread_mutex_lock(&log_mu);
  bool found;
  while (!(found = strstr(log_buf, needle) != NULL))
    if (pthread_cond_timedwait(&log_cv, &log_mu, &until) != 0)
      break;
  found = strstr(log_buf, needle) != NULL;
  if (!found)
    fprintf(stderr, "log has no '%s':\n%s\n", needle, log_buf);
  pthread_mutex_unlock(&log_mu);
  return found;
}

/* ---- helpers ---- */

static crpc_tls_server_opts server_tls(const char *cert, crpc_client_auth a) {
  static __thread char c[512], k[512];
  snprintf(c, sizeof c, "%s", sec_path(cert));
  snprintf(k, sizeof k, "%s", sec_path(cert));
  /* "server" -> server.pem / server.key */
  snprintf(c, sizeof c, "%s.pem", sec_path(cert));
  snprintf(k, sizeof k, "%s.key", sec_path(cert));
  crpc_tls_server_opts o = {.cert_file = c, .key_file = k,
                            .ca_file = sec_path("ca.pem"),
                            .client_auth = a};
  return o;
}

/* A channel to 127.0.0.1:port named |host|, trusting ca.pem, with the
 * client certificate |cert| (NULL: none). */
static crpc_channel *tls_channel(const char *host, int port, const char *cert,
                                 crpc_channel_opts *extra) {
  char cp[512], kp[512];
  crpc_tls_opts t = {.ca_file = sec_path("ca.pem")};
  if (cert) {
    snprintf(cp, sizeof cp, "%s.pem", sec_path(cert));
    snprintf(kp, sizeof kp, "%s.key", sec_path(cert));
    t.cert_file = cp;
    t.key_file = kp;
  }
  crpc_channel_opts o = {0};
  if (extra)
    o = *extra;
  o.tls = &t;
  crpc_channel *ch = NULL;
  int rv = crpc_channel_new(&ch, sec_target(host, port), &o);
  assert_int_equal(rv, 0);
  return ch;
}

static void expect_fail(crpc_channel *ch, crpc_code want,
                        const char *needle) {
  crpc_status st = {0};
  crpc_code code = sec_hello(ch, NULL, "x", NULL, &st);
  if (getenv("SEC_VERBOSE"))
    fprintf(stderr, "  %s: %s\n", crpc_code_name(code),
            crpc_status_message(&st));
  if (code != want || !strstr(crpc_status_message(&st), needle))
    fprintf(stderr, "got %s '%s', want %s '...%s...'\n",
            crpc_code_name(code), crpc_status_message(&st),
            crpc_code_name(want), needle);
  assert_int_equal(code, want);
  assert_non_null(strstr(crpc_status_message(&st), needle));
  crpc_status_clear(&st);
}

/* ---- calls over TLS ---- */

static void tls_unary(void **state) {
  (void)state;
  sec_server s;
  crpc_tls_server_opts t = server_tls("server", CRPC_CLIENT_AUTH_NONE);
  assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);
  /* by name and by IP address: both are in the certificate */
  const char *hosts[] = {"localhost", "127.0.0.1"};
  for (int i = 0; i < 2; i++) {
    crpc_channel *ch = tls_channel(hosts[i], s.port, NULL, NULL);
    crpc_metadata *tr;
    crpc_metadata_new(&tr);
    crpc_status st = {0};
    for (int k = 0; k < 3; k++)
      assert_int_equal(sec_hello(ch, NULL, "tls", tr, &st), CRPC_OK);
    assert_string_equal(sec_md(tr, "x-peer-tls"), "1");
    assert_string_equal(sec_md(tr, "x-peer-subject"), "-");
    crpc_metadata_free(tr);
    crpc_status_clear(&st);
    crpc_channel_free(ch);
  }
  sec_server_stop(&s);
}

static void tls_streaming(void **state) {
  (void)state;
  sec_server s;
  crpc_tls_server_opts t = server_tls("server", CRPC_CLIENT_AUTH_REQUIRE);
  assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);
  crpc_channel *ch = tls_channel("localhost", s.port, "client", NULL);
  crpc_call_opts co = {.timeout_ms = SEC_TMO};

  /* server streaming: 200 replies of 20 KB, more than a TLS record each */
  crpc_call *call;
  assert_int_equal(crpc_call_start(&call, ch, &sec_stream_method, &co), 0);
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = "200:20000";
  assert_true(crpc_call_write(call, &req.base));
  assert_true(crpc_call_writes_done(call));
  ProtobufCMessage *m;
  int n = 0;
  while (crpc_call_read(call, &m)) {
    Helloworld__HelloReply *r = (Helloworld__HelloReply *)m;
    assert_int_equal(strlen(r->message), 20000);
    protobuf_c_message_free_unpacked(m, NULL);
    n++;
  }
  crpc_status st = {0};
  assert_int_equal(crpc_call_finish(call, &st), CRPC_OK);
  assert_int_equal(n, 200);
  crpc_call_free(call);

  /* bidi: ping-pong */
  assert_int_equal(crpc_call_start(&call, ch, &sec_bidi_method, &co), 0);
  for (int i = 0; i < 50; i++) {
    char name[32];
    snprintf(name, sizeof name, "m%d", i);
    req.name = name;
    assert_true(crpc_call_write(call, &req.base));
    assert_true(crpc_call_read(call, &m));
    char want[40];
    snprintf(want, sizeof want, "echo:m%d", i);
    assert_string_equal(((Helloworld__HelloReply *)m)->message, want);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_true(crpc_call_writes_done(call));
  assert_false(crpc_call_read(call, &m));
  assert_int_equal(crpc_call_finish(call, &st), CRPC_OK);
  crpc_call_free(call);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
  sec_server_stop(&s);
}

/* ---- mutual TLS and the identity handlers see ---- */

static void mtls_identity(void **state) {
  (void)state;
  sec_server s;
  crpc_tls_server_opts t = server_tls("server", CRPC_CLIENT_AUTH_REQUIRE);
  assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);
  crpc_channel *ch = tls_channel("localhost", s.port, "alice", NULL);
  crpc_metadata *tr;
  crpc_metadata_new(&tr);
  crpc_status st = {0};
  assert_int_equal(sec_hello(ch, NULL, "alice", tr, &st), CRPC_OK);
  assert_string_equal(sec_md(tr, "x-peer-tls"), "1");
  assert_string_equal(sec_md(tr, "x-peer-subject"),
                      "CN=alice,OU=people,O=crpc test");
  assert_string_equal(sec_md(tr, "x-peer-sans"),
                      "DNS:alice.crpc.test,IP:10.0.0.7,"
                      "URI:spiffe://crpc.test/alice,email:alice@crpc.test");
  crpc_metadata_free(tr);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
  sec_server_stop(&s);
}

static void mtls_request_optional(void **state) {
  (void)state;
  sec_server s;
  crpc_tls_server_opts t = server_tls("server", CRPC_CLIENT_AUTH_REQUEST);
  assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);
  crpc_status st = {0};
  crpc_metadata *tr;

  /* no certificate: allowed, no identity */
  crpc_channel *ch = tls_channel("localhost", s.port, NULL, NULL);
  crpc_metadata_new(&tr);
  assert_int_equal(sec_hello(ch, NULL, "anon", tr, &st), CRPC_OK);
  assert_string_equal(sec_md(tr, "x-peer-subject"), "-");
  assert_string_equal(sec_md(tr, "x-peer-sans"), "");
  crpc_metadata_free(tr);
  crpc_channel_free(ch);

  /* a certificate: verified and visible */
  ch = tls_channel("localhost", s.port, "client", NULL);
  crpc_metadata_new(&tr);
  assert_int_equal(sec_hello(ch, NULL, "c", tr, &st), CRPC_OK);
  assert_string_equal(sec_md(tr, "x-peer-subject"),
                      "CN=greeter-client,O=crpc test");
  assert_string_equal(sec_md(tr, "x-peer-sans"),
                      "URI:spiffe://crpc.test/greeter-client,"
                      "DNS:client.crpc.test");
  crpc_metadata_free(tr);
  crpc_channel_free(ch);

  /* a certificate from another CA: refused even though optional */
  ch = tls_channel("localhost", s.port, "other_client", NULL);
  expect_fail(ch, CRPC_UNAVAILABLE, "rejected our client certificate");
  crpc_channel_free(ch);
  crpc_status_clear(&st);
  sec_server_stop(&s);
}

/* ---- call credentials and the auth hook ---- */

static crpc_code bearer_creds(const char *path, crpc_metadata *md,
                              void *ud) {
  (void)path;
  return crpc_metadata_add_str(md, "authorization", ud) == 0
             ? CRPC_OK
             : CRPC_INTERNAL;
}

static crpc_code refusing_creds(const char *path, crpc_metadata *md,
                                void *ud) {
  (void)path;
  (void)md;
  (void)ud;
  return CRPC_PERMISSION_DENIED;
}

/* Accepts "Bearer good-token" from alice only. */
static crpc_code auth_hook(crpc_call *call, void *ud) {
  (void)ud;
  size_t n = 0;
  const uint8_t *v = crpc_metadata_get(crpc_call_request_metadata(call),
                                       "authorization", &n);
  if (!v) {
    crpc_call_set_status_message(call, "missing bearer token");
    return CRPC_UNAUTHENTICATED;
  }
  if (n < 7 || memcmp(v, "Bearer ", 7) != 0) {
    crpc_call_set_status_message(call, "malformed authorization header");
    return CRPC_UNAUTHENTICATED;
  }
  if (n - 7 != 10 || memcmp(v + 7, "good-token", 10) != 0) {
    crpc_call_set_status_message(call, "invalid token");
    return CRPC_UNAUTHENTICATED;
  }
  const char *subj = crpc_call_peer_cert_subject(call);
  if (!subj || strcmp(subj, "CN=alice,OU=people,O=crpc test") != 0) {
    crpc_call_set_status_message(call, "only alice may call");
    return CRPC_PERMISSION_DENIED;
  }
  return CRPC_OK;
}

static void auth_hook_and_bearer(void **state) {
  (void)state;
  sec_server s;
  crpc_tls_server_opts t = server_tls("server", CRPC_CLIENT_AUTH_REQUEST);
  assert_int_equal(sec_server_start(&s, NULL, &t, auth_hook, NULL), 0);
  crpc_status st = {0};

  /* per-channel bearer token: arrives, and alice passes */
  crpc_channel_opts co = {.call_creds = bearer_creds,
                          .call_creds_user_data = "Bearer good-token"};
  crpc_channel *ch = tls_channel("localhost", s.port, "alice", &co);
  crpc_metadata *tr;
  crpc_metadata_new(&tr);
  assert_int_equal(sec_hello(ch, NULL, "a", tr, &st), CRPC_OK);
  assert_string_equal(sec_md(tr, "x-authorization"), "Bearer good-token");
  crpc_metadata_free(tr);
  crpc_channel_free(ch);

  /* right token, wrong identity: PERMISSION_DENIED */
  ch = tls_channel("localhost", s.port, "client", &co);
  expect_fail(ch, CRPC_PERMISSION_DENIED, "only alice may call");
  crpc_channel_free(ch);

  /* no token */
  int before = atomic_load(&s.calls);
  ch = tls_channel("localhost", s.port, "alice", NULL);
  expect_fail(ch, CRPC_UNAUTHENTICATED, "missing bearer token");

  /* per-call credentials: malformed and wrong tokens */
  crpc_call_opts call_o = {.call_creds = bearer_creds,
                           .call_creds_user_data = "Basic Zm9vOmJhcg=="};
  assert_int_equal(sec_hello(ch, &call_o, "x", NULL, &st),
                   CRPC_UNAUTHENTICATED);
  assert_string_equal(crpc_status_message(&st),
                      "malformed authorization header");
  call_o.call_creds_user_data = "Bearer";
  assert_int_equal(sec_hello(ch, &call_o, "x", NULL, &st),
                   CRPC_UNAUTHENTICATED);
  call_o.call_creds_user_data = "Bearer bad-token";
  assert_int_equal(sec_hello(ch, &call_o, "x", NULL, &st),
                   CRPC_UNAUTHENTICATED);
  assert_string_equal(crpc_status_message(&st), "invalid token");
  /* a handler never ran for a refused call */
  assert_int_equal(atomic_load(&s.calls), before);
  call_o.call_creds_user_data = "Bearer good-token";
  assert_int_equal(sec_hello(ch, &call_o, "x", NULL, &st), CRPC_OK);

  /* the hook also guards streaming calls */
  crpc_call *call;
  crpc_call_opts so = {.timeout_ms = SEC_TMO};
  assert_int_equal(crpc_call_start(&call, ch, &sec_bidi_method, &so), 0);
  assert_int_equal(crpc_call_finish(call, &st), CRPC_UNAUTHENTICATED);
  crpc_call_free(call);

  /* call credentials that refuse: the call fails with their code and
   * nothing is sent */
  call_o.call_creds = refusing_creds;
  before = atomic_load(&s.calls);
  assert_int_equal(sec_hello(ch, &call_o, "x", NULL, &st),
                   CRPC_PERMISSION_DENIED);
  assert_non_null(strstr(crpc_status_message(&st), "call credentials"));
  assert_int_equal(atomic_load(&s.calls), before);
  crpc_channel_free(ch);
  crpc_status_clear(&st);
  sec_server_stop(&s);
}

static int async_code = -1;
static pthread_mutex_t async_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t async_cv = PTHREAD_COND_INITIALIZER;

static void on_async(crpc_call *call, const crpc_status *st,
                     const ProtobufCMessage *resp, void *ud) {
  (void)call;
  (void)resp;
  (void)ud;
  pthread_mutex_lock(&async_mu);
  async_code = st->code;
  pthread_cond_broadcast(&async_cv);
  pthread_mutex_unlock(&async_mu);
}

static void creds_refused_in_clear_text(void **state) {
  (void)state;
  sec_server s;
  assert_int_equal(sec_server_start(&s, NULL, NULL, NULL, NULL), 0);
  crpc_channel_opts co = {.call_creds = bearer_creds,
                          .call_creds_user_data = "Bearer secret"};
  crpc_channel *ch = NULL;
  assert_int_equal(crpc_channel_new(&ch, sec_target("127.0.0.1", s.port),
                                    &co),
                   0);
  expect_fail(ch, CRPC_UNAUTHENTICATED, "clear-text channel");
  /* the async path reports it through the callback */
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = "x";
  const crpc_method *m = &helloworld__greeter__crpc_service.methods[0];
  async_code = -1;
  assert_int_equal(crpc_unary_async(ch, m, NULL, &req.base, on_async, NULL),
                   0);
  pthread_mutex_lock(&async_mu);
  while (async_code < 0)
    pthread_cond_wait(&async_cv, &async_mu);
  pthread_mutex_unlock(&async_mu);
  assert_int_equal(async_code, CRPC_UNAUTHENTICATED);
  crpc_channel_free(ch);
  assert_int_equal(atomic_load(&s.calls), 0); /* the token never left */

  /* per-call credentials are refused the same way */
  assert_int_equal(
      crpc_channel_new(&ch, sec_target("127.0.0.1", s.port), NULL), 0);
  crpc_call_opts callo = {.call_creds = bearer_creds,
                          .call_creds_user_data = "Bearer secret"};
  crpc_status st = {0};
  assert_int_equal(sec_hello(ch, &callo, "x", NULL, &st),
                   CRPC_UNAUTHENTICATED);
  crpc_channel_free(ch);
  assert_int_equal(atomic_load(&s.calls), 0);

  /* unless explicitly allowed */
  co.allow_insecure_call_creds = 1;
  assert_int_equal(crpc_channel_new(&ch, sec_target("127.0.0.1", s.port),
                                    &co),
                   0);
  crpc_metadata *tr;
  crpc_metadata_new(&tr);
  assert_int_equal(sec_hello(ch, NULL, "x", tr, &st), CRPC_OK);
  assert_string_equal(sec_md(tr, "x-authorization"), "Bearer secret");
  assert_string_equal(sec_md(tr, "x-peer-tls"), "0");
  crpc_metadata_free(tr);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
  sec_server_stop(&s);
}

/* ---- bad inputs ---- */

static void bad_server_certificates(void **state) {
  (void)state;
  struct {
    const char *cert, *host, *needle;
  } cases[] = {
      {"other_server", "localhost", "unable to get local issuer"},
      {"expired_server", "localhost", "expired"},
      {"wronghost_server", "localhost", "hostname mismatch"},
      {"server", "127.0.0.2", "hostname mismatch"}, /* IP not in SANs */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sec_server s;
    crpc_tls_server_opts t = server_tls(cases[i].cert, CRPC_CLIENT_AUTH_NONE);
    assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);
    crpc_channel *ch;
    if (strcmp(cases[i].host, "127.0.0.2") == 0) {
      /* connect to 127.0.0.1 but verify as 127.0.0.2 */
      crpc_tls_opts to = {.ca_file = sec_path("ca.pem"),
                          .server_name_override = "127.0.0.2"};
      crpc_channel_opts co = {.tls = &to};
      assert_int_equal(crpc_channel_new(&ch, sec_target("127.0.0.1", s.port),
                                        &co),
                       0);
    } else {
      ch = tls_channel(cases[i].host, s.port, NULL, NULL);
    }
    log_clear();
    expect_fail(ch, CRPC_UNAVAILABLE, cases[i].needle);
    assert_int_equal(atomic_load(&s.calls), 0);
    crpc_channel_free(ch);
    sec_server_stop(&s);
  }

  /* server_name_override makes a certificate for another name pass */
  sec_server s;
  crpc_tls_server_opts t =
      server_tls("wronghost_server", CRPC_CLIENT_AUTH_NONE);
  assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);
  crpc_tls_opts to = {.ca_file = sec_path("ca.pem"),
                      .server_name_override = "wrong.example"};
  crpc_channel_opts co = {.tls = &to};
  crpc_channel *ch;
  assert_int_equal(
      crpc_channel_new(&ch, sec_target("localhost", s.port), &co), 0);
  crpc_status st = {0};
  assert_int_equal(sec_hello(ch, NULL, "o", NULL, &st), CRPC_OK);
  crpc_channel_free(ch);
  sec_server_stop(&s);
}

static void bad_client_certificates(void **state) {
  (void)state;
  sec_server s;
  crpc_tls_server_opts t = server_tls("server", CRPC_CLIENT_AUTH_REQUIRE);
  assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);

  /* no certificate where one is required */
  log_clear();
  crpc_channel *ch = tls_channel("localhost", s.port, NULL, NULL);
  expect_fail(ch, CRPC_UNAVAILABLE, "certificate required");
  assert_true(log_wait("requires a client certificate"));
  crpc_channel_free(ch);

  /* a certificate signed by another CA */
  log_clear();
  ch = tls_channel("localhost", s.port, "other_client", NULL);
  expect_fail(ch, CRPC_UNAVAILABLE, "unknown ca");
  assert_true(log_wait("client certificate verify failed"));
  crpc_channel_free(ch);
  assert_int_equal(atomic_load(&s.calls), 0);

  /* and a good client is still served */
  ch = tls_channel("localhost", s.port, "client", NULL);
  crpc_status st = {0};
  assert_int_equal(sec_hello(ch, NULL, "ok", NULL, &st), CRPC_OK);
  crpc_channel_free(ch);
  sec_server_stop(&s);
}

static void clear_text_mismatch(void **state) {
  (void)state;
  crpc_status st = {0};
  /* clear-text client, TLS server */
  sec_server s;
  crpc_tls_server_opts t = server_tls("server", CRPC_CLIENT_AUTH_NONE);
  assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);
  crpc_channel *ch;
  assert_int_equal(
      crpc_channel_new(&ch, sec_target("localhost", s.port), NULL), 0);
  log_clear();
  expect_fail(ch, CRPC_UNAVAILABLE, "is it a TLS port?");
  assert_true(log_wait("does not speak TLS"));
  crpc_channel_free(ch);
  sec_server_stop(&s);

  /* TLS client, clear-text server */
  assert_int_equal(sec_server_start(&s, NULL, NULL, NULL, NULL), 0);
  ch = tls_channel("localhost", s.port, NULL, NULL);
  log_clear();
  expect_fail(ch, CRPC_UNAVAILABLE, "does not speak TLS");
  assert_true(log_wait("a TLS client on a clear-text port"));
  crpc_channel_free(ch);
  assert_int_equal(atomic_load(&s.calls), 0);
  crpc_status_clear(&st);
  sec_server_stop(&s);
}

/* A raw TLS client offering |alpn| (NULL: no ALPN at all). Returns true if
 * the server let it through the handshake and kept the connection. */
static bool raw_tls_client(int port, const unsigned char *alpn,
                           unsigned alpn_len) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, sec_path("ca.pem"), NULL);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  if (alpn)
    SSL_CTX_set_alpn_protos(ctx, alpn, alpn_len);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {SEC_TMO / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  bool ok = SSL_connect(ssl) == 1;
  if (ok) {
    /* TLS 1.3: the server checks ALPN after the client's Finished; it
     * then closes instead of sending its HTTP/2 SETTINGS */
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                  "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    SSL_write(ssl, preface, sizeof preface - 1);
    char buf[64];
    ok = SSL_read(ssl, buf, sizeof buf) > 0;
  }
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  return ok;
}

static void alpn_required_by_server(void **state) {
  (void)state;
  sec_server s;
  crpc_tls_server_opts t = server_tls("server", CRPC_CLIENT_AUTH_NONE);
  assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);
  log_clear();
  assert_false(raw_tls_client(s.port, (const unsigned char *)"\x08http/1.1",
                              9));
  assert_true(log_wait("did not offer ALPN h2"));
  log_clear();
  assert_false(raw_tls_client(s.port, NULL, 0));
  assert_true(log_wait("did not negotiate ALPN h2"));
  /* the same raw client offering h2 is served (the test can fail) */
  assert_true(raw_tls_client(s.port, (const unsigned char *)"\x02h2", 3));
  sec_server_stop(&s);
}

/* A TLS server that negotiates no ALPN, for one connection. */
typedef struct raw_srv {
  int lfd, port;
  pthread_t tid;
} raw_srv;

static void *raw_srv_main(void *arg) {
  raw_srv *r = arg;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate_chain_file(ctx, sec_path("server.pem"));
  SSL_CTX_use_PrivateKey_file(ctx, sec_path("server.key"), SSL_FILETYPE_PEM);
  int fd = accept(r->lfd, NULL, NULL);
  struct timeval tv = {SEC_TMO / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    char buf[256];
    while (SSL_read(ssl, buf, sizeof buf) > 0) {
    }
  }
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  return NULL;
}

static void alpn_required_by_client(void **state) {
  (void)state;
  raw_srv r;
  r.lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  assert_int_equal(bind(r.lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(r.lfd, 4), 0);
  getsockname(r.lfd, (struct sockaddr *)&a, &len);
  r.port = ntohs(a.sin_port);
  pthread_create(&r.tid, NULL, raw_srv_main, &r);
  crpc_channel *ch = tls_channel("localhost", r.port, NULL, NULL);
  expect_fail(ch, CRPC_UNAVAILABLE, "did not negotiate ALPN h2");
  crpc_channel_free(ch);
  pthread_join(r.tid, NULL);
  close(r.lfd);
}

/* ---- a server that accepts and then says nothing ---- */

static void client_handshake_timeout(void **state) {
  (void)state;
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(lfd, 8), 0); /* connects complete; never read */
  getsockname(lfd, (struct sockaddr *)&a, &len);
  int port = ntohs(a.sin_port);
  crpc_channel_opts co = {.handshake_timeout_ms = 200};
  crpc_channel *ch = tls_channel("localhost", port, NULL, &co);
  expect_fail(ch, CRPC_UNAVAILABLE, "timed out in the TLS handshake");
  crpc_channel_free(ch);
  assert_int_equal(
      crpc_channel_new(&ch, sec_target("127.0.0.1", port), &co), 0);
  expect_fail(ch, CRPC_UNAVAILABLE, "timed out waiting for the HTTP/2");
  crpc_channel_free(ch);
  close(lfd);
}

/* ---- configuration errors are reported at set-up ---- */

static void config_errors(void **state) {
  (void)state;
  crpc_server *srv;
  assert_int_equal(crpc_server_new(&srv, NULL), 0);
  crpc_tls_server_opts t = server_tls("server", CRPC_CLIENT_AUTH_NONE);
  crpc_tls_server_opts bad = t;
  bad.key_file = sec_path("nonexistent.key");
  log_clear();
  assert_int_equal(crpc_server_listen(srv, "127.0.0.1:0", &bad, NULL),
                   CRPC_ETLS);
  assert_true(log_wait("nonexistent.key"));
  bad = t;
  bad.key_file = sec_path("client.key"); /* not the certificate's key */
  assert_int_equal(crpc_server_listen(srv, "127.0.0.1:0", &bad, NULL),
                   CRPC_ETLS);
  assert_true(log_wait("does not match"));
  bad = t;
  bad.client_auth = CRPC_CLIENT_AUTH_REQUIRE;
  bad.ca_file = NULL;
  assert_int_equal(crpc_server_listen(srv, "127.0.0.1:0", &bad, NULL),
                   CRPC_ETLS);
  bad = t;
  bad.cert_file = NULL;
  assert_int_equal(crpc_server_listen(srv, "127.0.0.1:0", &bad, NULL),
                   CRPC_ETLS);
  crpc_server_free(srv);

  crpc_channel *ch = NULL;
  crpc_tls_opts to = {.ca_file = sec_path("nonexistent.pem")};
  crpc_channel_opts co = {.tls = &to};
  assert_int_equal(crpc_channel_new(&ch, "localhost:1", &co), CRPC_ETLS);
  to.ca_file = NULL;
  to.cert_file = sec_path("client.pem"); /* without a key */
  assert_int_equal(crpc_channel_new(&ch, "localhost:1", &co), CRPC_ETLS);
  to.cert_file = NULL;
  /* the system trust store loads, and does not trust our test CA */
  assert_int_equal(crpc_channel_new(&ch, "localhost:1", &co), 0);
  crpc_channel_free(ch);
}

/* ---- certificate reload ---- */

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  assert_non_null(in);
  assert_non_null(out);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  fclose(in);
  fclose(out);
}

static void reload(void **state) {
  (void)state;
  char cert[512], key[512];
  snprintf(cert, sizeof cert, "%s", sec_path("reload.pem"));
  snprintf(key, sizeof key, "%s", sec_path("reload.key"));
  /* starts with a certificate our clients do not trust */
  copy_file(sec_path("other_server.pem"), cert);
  copy_file(sec_path("other_server.key"), key);
  crpc_tls_server_opts t = {.cert_file = cert, .key_file = key};
  sec_server s;
  assert_int_equal(sec_server_start(&s, NULL, &t, NULL, NULL), 0);
  crpc_channel *ch = tls_channel("localhost", s.port, NULL, NULL);
  expect_fail(ch, CRPC_UNAVAILABLE, "certificate verify failed");
  crpc_channel_free(ch);

  /* a broken file: reload fails, the old certificate stays */
  copy_file(sec_path("server.pem"), cert);
  copy_file(sec_path("alice.key"), key);
  assert_int_equal(crpc_server_reload_tls(s.srv), CRPC_ETLS);
  ch = tls_channel("localhost", s.port, NULL, NULL);
  expect_fail(ch, CRPC_UNAVAILABLE, "certificate verify failed");
  crpc_channel_free(ch);

  /* rotated: an open connection keeps working, new ones see the new
   * certificate */
  crpc_tls_opts ot = {.ca_file = sec_path("other_ca.pem")};
  crpc_channel_opts oo = {.tls = &ot};
  crpc_channel *old;
  assert_int_equal(
      crpc_channel_new(&old, sec_target("localhost", s.port), &oo), 0);
  crpc_status st = {0};
  assert_int_equal(sec_hello(old, NULL, "before", NULL, &st), CRPC_OK);
  copy_file(sec_path("server.key"), key);
  assert_int_equal(crpc_server_reload_tls(s.srv), 0);
  assert_int_equal(sec_hello(old, NULL, "after", NULL, &st), CRPC_OK);
  ch = tls_channel("localhost", s.port, NULL, NULL);
  assert_int_equal(sec_hello(ch, NULL, "new", NULL, &st), CRPC_OK);
  crpc_channel_free(ch);
  crpc_channel_free(old);
  crpc_status_clear(&st);
  sec_server_stop(&s);
  remove(cert);
  remove(key);
}

int main(int argc, char **argv) {
  sec_init(argc, argv);
  signal(SIGPIPE, SIG_IGN); /* the raw OpenSSL peers here write with write() */
  crpc_set_log_callback(on_log, CRPC_LOG_DEBUG, NULL);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tls_unary),
      cmocka_unit_test(tls_streaming),
      cmocka_unit_test(mtls_identity),
      cmocka_unit_test(mtls_request_optional),
      cmocka_unit_test(auth_hook_and_bearer),
      cmocka_unit_test(creds_refused_in_clear_text),
      cmocka_unit_test(bad_server_certificates),
      cmocka_unit_test(bad_client_certificates),
      cmocka_unit_test(clear_text_mismatch),
      cmocka_unit_test(alpn_required_by_server),
      cmocka_unit_test(alpn_required_by_client),
      cmocka_unit_test(client_handshake_timeout),
      cmocka_unit_test(config_errors),
      cmocka_unit_test(reload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
