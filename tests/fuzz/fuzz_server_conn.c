/*
 * Fuzz target: a whole crpc server connection fed raw bytes, as nghttp2's
 * fuzz/fuzz_target.cc feeds a session. One server (one reactor thread, a
 * worker pool, every RPC kind, an auth hook, small limits) runs for the
 * whole process; each input is written to a fresh loopback connection
 * after the HTTP/2 client magic and followed by a GOAWAY, so the server
 * closes once its streams are done (handlers run and answer). When it has
 * been quiet for QUIET_MS with streams still open, the write side is shut
 * and the server must then close at once: a crash, a sanitizer report, a
 * leak or a connection the server never closes (a hang) is a finding.
 *
 * Seeds: tests/fuzz/corpus/server_conn/ (made by
 * tests/security/gen_server_conn_corpus.py: every RPC kind, CONTINUATION,
 * padding, compression, metadata, resets, pings, bad requests).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "fuzz.h"
#include "helloworld.crpc.h"

#define WAIT_MS 10000
#define QUIET_MS 20

static crpc_server *srv;
static int port;
static pthread_once_t once = PTHREAD_ONCE_INIT;

typedef Helloworld__HelloRequest Req;
typedef Helloworld__HelloReply Rep;

static const crpc_method m_inline = {"/f.F/Inline", CRPC_UNARY,
                                     &helloworld__hello_request__descriptor,
                                     &helloworld__hello_reply__descriptor};
static const crpc_method m_sstream = {"/f.F/SStream", CRPC_SERVER_STREAMING,
                                      &helloworld__hello_request__descriptor,
                                      &helloworld__hello_reply__descriptor};
static const crpc_method m_cstream = {"/f.F/CStream", CRPC_CLIENT_STREAMING,
                                      &helloworld__hello_request__descriptor,
                                      &helloworld__hello_reply__descriptor};
static const crpc_method m_bidi = {"/f.F/Bidi", CRPC_BIDI_STREAMING,
                                   &helloworld__hello_request__descriptor,
                                   &helloworld__hello_reply__descriptor};

static crpc_code unary(crpc_call *c, const ProtobufCMessage *req,
                       ProtobufCMessage *resp, void *ud) {
  (void)ud;
  const Req *r = (const Req *)req;
  Rep *out = (Rep *)resp;
  out->message = crpc_call_arena_strdup(c, r->name);
  const crpc_metadata *md = crpc_call_request_metadata(c);
  for (size_t i = 0; i < crpc_metadata_count(md); i++) {
    const char *k;
    const uint8_t *v;
    size_t n;
    crpc_metadata_at(md, i, &k, &v, &n);
    crpc_call_add_trailing_metadata(c, k, v, n);
  }
  if (r->name && strcmp(r->name, "gzip") == 0)
    crpc_call_set_compression(c, "gzip");
  if (r->name && strcmp(r->name, "fail") == 0) {
    crpc_call_set_status_message(c, "failed \xff on purpose");
    return CRPC_ABORTED;
  }
  return CRPC_OK;
}

static crpc_code sstream(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  (void)resp;
  (void)ud;
  const Req *r = (const Req *)req;
  Rep out = HELLOWORLD__HELLO_REPLY__INIT;
  out.message = r->name;
  for (int i = 0; i < 3; i++)
    if (!crpc_call_write(c, &out.base))
      return CRPC_CANCELLED;
  return CRPC_OK;
}

static crpc_code cstream(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  (void)req;
  (void)ud;
  ProtobufCMessage *m;
  int n = 0;
  while (crpc_call_read(c, &m)) {
    protobuf_c_message_free_unpacked(m, NULL);
    n++;
  }
  ((Rep *)resp)->message = n ? "some" : "none";
  return CRPC_OK;
}

static crpc_code bidi(crpc_call *c, const ProtobufCMessage *req,
                      ProtobufCMessage *resp, void *ud) {
  (void)req;
  (void)resp;
  (void)ud;
  ProtobufCMessage *m;
  while (crpc_call_read(c, &m)) {
    Rep out = HELLOWORLD__HELLO_REPLY__INIT;
    out.message = ((Req *)m)->name;
    bool ok = crpc_call_write(c, &out.base);
    protobuf_c_message_free_unpacked(m, NULL);
    if (!ok)
      return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

static crpc_code say_hello(crpc_call *c, const Req *req, Rep *resp,
                           void *ud) {
  return unary(c, &req->base, &resp->base, ud);
}

/* Refuses calls that carry "x-deny". */
static crpc_code hook(crpc_call *c, void *ud) {
  (void)ud;
  if (crpc_metadata_get(crpc_call_request_metadata(c), "x-deny", NULL)) {
    crpc_call_set_status_message(c, "denied");
    return CRPC_PERMISSION_DENIED;
  }
  return CRPC_OK;
}

static void stop(void) { crpc_server_free(srv); }

static void setup(void) {
  signal(SIGPIPE, SIG_IGN); /* our own writes to a closed connection */
  crpc_server_opts o = {.reactor_threads = 1,
                        .max_workers = 8,
                        .max_recv_msg_size = 64 * 1024,
                        .max_concurrent_streams = 16,
                        .max_header_list_size = 4096,
                        .handshake_timeout_ms = 5000};
  const Helloworld__Greeter_CrpcHandlers h = {.say_hello = say_hello};
  FUZZ_CHECK(crpc_server_new(&srv, &o) == 0);
  FUZZ_CHECK(helloworld__greeter__crpc_register(srv, &h, NULL) == 0);
  FUZZ_CHECK(crpc_server_register(srv, &m_inline, unary,
                                  CRPC_HANDLER_NONBLOCKING, NULL) == 0);
  FUZZ_CHECK(crpc_server_register(srv, &m_sstream, sstream, 0, NULL) == 0);
  FUZZ_CHECK(crpc_server_register(srv, &m_cstream, cstream, 0, NULL) == 0);
  FUZZ_CHECK(crpc_server_register(srv, &m_bidi, bidi, 0, NULL) == 0);
  FUZZ_CHECK(crpc_server_set_auth_hook(srv, hook, NULL) == 0);
  FUZZ_CHECK(crpc_server_listen(srv, "127.0.0.1:0", NULL, &port) == 0);
  FUZZ_CHECK(crpc_server_start(srv) == 0);
  atexit(stop);
}

static void send_all(int fd, const uint8_t *p, size_t len) {
  while (len) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; /* the server closed early: fine */
    p += n;
    len -= (size_t)n;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  pthread_once(&once, setup);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {WAIT_MS / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  FUZZ_CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  send_all(fd, (const uint8_t *)magic, sizeof magic - 1);
  send_all(fd, data, size);
  static const uint8_t goaway[] = {0, 0, 8, 7, 0, 0, 0, 0, 0,
                                   0, 0, 0, 0, 0, 0, 0, 0};
  send_all(fd, goaway, sizeof goaway);
  bool shut = false;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, shut ? WAIT_MS : QUIET_MS);
    if (r == 0 && !shut) {
      shutdown(fd, SHUT_WR); /* streams left open: end of input */
      shut = true;
      continue;
    }
    if (r == 0) {
      fprintf(stderr, "the server did not close the connection\n");
      FUZZ_CHECK(0);
    }
    uint8_t buf[16384];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EINTR))
      break;
  }
  close(fd);
  return 0;
}
