#define _POSIX_C_SOURCE 200809L
/*
 * test_hostile_server_side.c: a raw HTTP/2 client (rawh2) sends a crpc
 * server what no well-behaved gRPC client would. Each bad request must get
 * the status gRPC specifies on its own stream, and afterwards a good call
 * must still succeed on the same connection (another stream), on a new
 * connection and through a crpc channel: nothing leaks across calls.
 */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include <crpc/crpc.h>

#include "echo.pb-c.h"
#include "rawh2.h"

#define TMO 5000 /* ms: any wait longer than this is a failure, not a hang */
#define MAX_RECV 1024

#define P_UNARY "/crpc.itest.Echo/Unary"
#define P_INLINE "/crpc.itest.Echo/UnaryInline"
#define P_CSTREAM "/crpc.itest.Echo/ClientStream"
#define P_BIDI "/crpc.itest.Echo/Bidi"

typedef Crpc__Itest__EchoRequest Req;
typedef Crpc__Itest__EchoReply Rep;
#define REQ_INIT CRPC__ITEST__ECHO_REQUEST__INIT

static const crpc_method m_unary = {P_UNARY, CRPC_UNARY,
                                    &crpc__itest__echo_request__descriptor,
                                    &crpc__itest__echo_reply__descriptor};
static const crpc_method m_inline = {P_INLINE, CRPC_UNARY,
                                     &crpc__itest__echo_request__descriptor,
                                     &crpc__itest__echo_reply__descriptor};
static const crpc_method m_cstream = {P_CSTREAM, CRPC_CLIENT_STREAMING,
                                      &crpc__itest__echo_request__descriptor,
                                      &crpc__itest__echo_reply__descriptor};
static const crpc_method m_bidi = {P_BIDI, CRPC_BIDI_STREAMING,
                                   &crpc__itest__echo_request__descriptor,
                                   &crpc__itest__echo_reply__descriptor};

/* ---- what the handlers saw ---- */

static pthread_mutex_t obs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t obs_cv = PTHREAD_COND_INITIALIZER;
static int obs_started, obs_cancelled, obs_msgs;

static void note(int *counter) {
  pthread_mutex_lock(&obs_mu);
  (*counter)++;
  pthread_cond_broadcast(&obs_cv);
  pthread_mutex_unlock(&obs_mu);
}

static int snap(const int *counter) {
  pthread_mutex_lock(&obs_mu);
  int v = *counter;
  pthread_mutex_unlock(&obs_mu);
  return v;
}

/* Waits until *counter >= target; false after TMO. */
static bool wait_for(const int *counter, int target) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += TMO / 1000;
  pthread_mutex_lock(&obs_mu);
  while (*counter < target)
    if (pthread_cond_timedwait(&obs_cv, &obs_mu, &ts) != 0)
      break;
  bool ok = *counter >= target;
  pthread_mutex_unlock(&obs_mu);
  return ok;
}

/* ---- handlers ---- */

static crpc_code h_unary(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  const Req *r = (const Req *)req;
  Rep *out = (Rep *)resp;
  note(&obs_started);
  if (r->sleep_ms > 0) {
    /* the handler's own behaviour: wait for cancellation, checking */
    struct timespec step = {0, 1000000};
    for (int i = 0; i < r->sleep_ms; i++) {
      if (crpc_call_is_cancelled(c)) {
        note(&obs_cancelled);
        return CRPC_CANCELLED;
      }
      nanosleep(&step, NULL);
    }
  }
  if (strcmp(r->text, "compress") == 0) /* ask for a gzip response */
    assert_int_equal(crpc_call_set_compression(c, "gzip"), 0);
  size_t n = strlen(r->text) + 6;
  char *t = crpc_call_arena_alloc(c, n);
  snprintf(t, n, "echo:%s", r->text);
  out->text = t;
  return CRPC_OK;
}

static crpc_code h_cstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  ProtobufCMessage *m;
  int n = 0;
  note(&obs_started);
  while (crpc_call_read(c, &m)) {
    protobuf_c_message_free_unpacked(m, NULL);
    n++;
    note(&obs_msgs);
  }
  if (crpc_call_is_cancelled(c)) {
    note(&obs_cancelled);
    return CRPC_CANCELLED;
  }
  ((Rep *)resp)->index = n;
  ((Rep *)resp)->text = "done";
  return CRPC_OK;
}

static crpc_code h_bidi(crpc_call *c, const ProtobufCMessage *req,
                        ProtobufCMessage *resp, void *ud) {
  ProtobufCMessage *m;
  int i = 0;
  note(&obs_started);
  while (crpc_call_read(c, &m)) {
    Rep rep = CRPC__ITEST__ECHO_REPLY__INIT;
    rep.text = ((Req *)m)->text;
    rep.index = i++;
    bool ok = crpc_call_write(c, &rep.base);
    bool stop = strcmp(((Req *)m)->text, "stop") == 0;
    protobuf_c_message_free_unpacked(m, NULL);
    note(&obs_msgs);
    if (!ok)
      break;
    if (stop) /* return while the client may still be sending */
      return CRPC_OK;
  }
  if (crpc_call_is_cancelled(c)) {
    note(&obs_cancelled);
    return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

/* ---- fixture ---- */

static crpc_server *server;
static int port;
static crpc_channel *channel;

static int setup(void **state) {
  crpc_server_opts so = {0};
  char target[64];
  so.max_recv_msg_size = MAX_RECV;
  so.reactor_threads = 1; /* every connection on one loop: leaks show */
  if (crpc_server_new(&server, &so) != 0 ||
      crpc_server_register(server, &m_unary, h_unary, 0, NULL) != 0 ||
      crpc_server_register(server, &m_inline, h_unary, CRPC_HANDLER_NONBLOCKING,
                           NULL) != 0 ||
      crpc_server_register(server, &m_cstream, h_cstream, 0, NULL) != 0 ||
      crpc_server_register(server, &m_bidi, h_bidi, 0, NULL) != 0 ||
      crpc_server_listen(server, "127.0.0.1:0", NULL, &port) != 0 ||
      crpc_server_start(server) != 0)
    return -1;
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  return crpc_channel_new(&channel, target, NULL);
}

static int teardown(void **state) {
  crpc_channel_free(channel);
  crpc_server_shutdown(server, 1000);
  crpc_server_free(server);
  return 0;
}

/* ---- building requests ---- */

/* A length-prefixed message: |flag| byte, big-endian length, payload. */
static uint8_t *frame_bytes(uint8_t flag, const void *p, size_t n,
                            size_t *out_len) {
  uint8_t *b = malloc(5 + n + 1);
  assert_non_null(b);
  b[0] = flag;
  b[1] = (uint8_t)(n >> 24);
  b[2] = (uint8_t)(n >> 16);
  b[3] = (uint8_t)(n >> 8);
  b[4] = (uint8_t)n;
  if (n)
    memcpy(b + 5, p, n);
  *out_len = 5 + n;
  return b;
}

static uint8_t *frame_req(const Req *r, uint8_t flag, size_t *out_len) {
  size_t n = protobuf_c_message_get_packed_size(&r->base);
  uint8_t *tmp = malloc(n + 1);
  assert_non_null(tmp);
  protobuf_c_message_pack(&r->base, tmp);
  uint8_t *b = frame_bytes(flag, tmp, n, out_len);
  free(tmp);
  return b;
}

/* Headers of a gRPC request. NULL |path| / |ctype| / |method| leave that
 * header out; |extra| headers are appended. */
static rawh2_stream *open_stream(rawh2_conn *c, const char *method,
                                 const char *path, const char *ctype,
                                 const nghttp2_nv *extra, size_t nextra,
                                 bool end_stream) {
  nghttp2_nv nv[16];
  size_t n = 0;
  if (method)
    nv[n++] = RAWH2_NV(":method", method);
  nv[n++] = RAWH2_NV(":scheme", "http");
  if (path)
    nv[n++] = RAWH2_NV(":path", path);
  nv[n++] = RAWH2_NV(":authority", "localhost");
  nv[n++] = RAWH2_NV("te", "trailers");
  if (ctype)
    nv[n++] = RAWH2_NV("content-type", ctype);
  for (size_t i = 0; i < nextra && n < 16; i++)
    nv[n++] = extra[i];
  rawh2_stream *s = rawh2_request(c, nv, n, end_stream);
  assert_non_null(s);
  return s;
}

static rawh2_stream *open_grpc(rawh2_conn *c, const char *path) {
  return open_stream(c, "POST", path, "application/grpc", NULL, 0, false);
}

/* A whole unary request whose body is |body|. */
static rawh2_stream *send_body(rawh2_conn *c, const char *path,
                               const nghttp2_nv *extra, size_t nextra,
                               const void *body, size_t len) {
  rawh2_stream *s =
      open_stream(c, "POST", path, "application/grpc", extra, nextra, false);
  rawh2_write(s, body, len, true);
  return s;
}

static rawh2_stream *send_req(rawh2_conn *c, const char *path, const Req *r,
                              const nghttp2_nv *extra, size_t nextra) {
  size_t len;
  uint8_t *b = frame_req(r, 0, &len);
  rawh2_stream *s = send_body(c, path, extra, nextra, b, len);
  free(b);
  return s;
}

/* Raw connections of the running test, freed by its teardown even when an
 * assertion fails half-way. */
static rawh2_conn *live[16];

static rawh2_conn *connect_raw(void) {
  rawh2_conn *c = rawh2_connect(port);
  assert_non_null(c);
  for (int i = 0; i < 16; i++)
    if (!live[i]) {
      live[i] = c;
      return c;
    }
  fail_msg("too many raw connections");
  return NULL;
}

static void free_raw(rawh2_conn *c) {
  for (int i = 0; i < 16; i++)
    if (live[i] == c)
      live[i] = NULL;
  rawh2_free(c);
}

static int free_live(void **state) {
  for (int i = 0; i < 16; i++) {
    rawh2_free(live[i]);
    live[i] = NULL;
  }
  return 0;
}

/* ---- checking responses ---- */

static void check_status(const rawh2_stream *s, const char *http) {
  const char *st = rawh2_header(s, ":status");
  if (!st)
    fail_msg("stream %d: no response headers (closed=%d rst=%d code=%u)", s->id,
             s->closed, s->rst_received, s->rst_code);
  assert_string_equal(st, http);
}

/* A gRPC answer with |code|, in trailers or trailers-only. */
static void expect_grpc_status(rawh2_stream *s, int code) {
  char want[8];
  assert_true(rawh2_wait_closed(s, TMO));
  check_status(s, "200");
  const char *ct = rawh2_header(s, "content-type");
  assert_non_null(ct);
  assert_memory_equal(ct, "application/grpc", 16);
  const char *gs = rawh2_trailer(s, "grpc-status");
  if (!gs)
    fail_msg("stream %d ended without grpc-status (rst=%d code=%u)", s->id,
             s->rst_received, s->rst_code);
  snprintf(want, sizeof want, "%d", code);
  if (strcmp(gs, want) != 0)
    fail_msg("grpc-status %s, want %s (grpc-message: %s)", gs, want,
             rawh2_trailer(s, "grpc-message") ? rawh2_trailer(s, "grpc-message")
                                              : "none");
}

/* An immediate error: one HEADERS block with END_STREAM, no DATA. */
static void expect_trailers_only(rawh2_stream *s, int code) {
  expect_grpc_status(s, code);
  assert_true(s->end_on_headers);
  assert_int_equal(s->header_blocks, 1);
  assert_int_equal(s->body_len, 0);
}

/* ---- the good calls that must work after every bad one ---- */

static int good_seq;

static void good_call(rawh2_conn *c, const char *path) {
  char text[32];
  Req r = REQ_INIT;
  snprintf(text, sizeof text, "good-%d", ++good_seq);
  r.text = text;
  rawh2_stream *s = send_req(c, path, &r, NULL, 0);
  assert_true(rawh2_wait_closed(s, TMO));
  assert_false(s->rst_received);
  expect_grpc_status(s, 0);
  assert_int_equal(s->header_blocks, 2);
  assert_true(s->body_len > 5);
  size_t mlen = ((size_t)s->body[1] << 24) | ((size_t)s->body[2] << 16) |
                ((size_t)s->body[3] << 8) | s->body[4];
  assert_int_equal(s->body[0], 0);
  assert_int_equal(s->body_len, 5 + mlen); /* exactly one message */
  Rep *rep = crpc__itest__echo_reply__unpack(NULL, mlen, s->body + 5);
  assert_non_null(rep);
  char want[40];
  snprintf(want, sizeof want, "echo:%s", text);
  assert_string_equal(rep->text, want);
  crpc__itest__echo_reply__free_unpacked(rep, NULL);
}

static void good_channel_call(void) {
  Req r = REQ_INIT;
  ProtobufCMessage *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = {.timeout_ms = TMO};
  r.text = "chan";
  crpc_code code = crpc_unary(channel, &m_unary, &o, &r.base, &resp, &st);
  if (code != CRPC_OK)
    fail_msg("channel call: %s: %s", crpc_code_name(code),
             crpc_status_message(&st));
  assert_string_equal(((Rep *)resp)->text, "echo:chan");
  protobuf_c_message_free_unpacked(resp, NULL);
  crpc_status_clear(&st);
}

/* After a bad request on |c| (NULL or dead: the connection is gone). */
static void after_bad(rawh2_conn *c) {
  if (c && !rawh2_dead(c)) {
    good_call(c, P_UNARY);
    good_call(c, P_INLINE);
  }
  rawh2_conn *fresh = connect_raw();
  good_call(fresh, P_UNARY);
  good_call(fresh, P_INLINE);
  free_raw(fresh);
  good_channel_call();
}

/* ---- the bad requests ---- */

static void test_baseline(void **state) {
  rawh2_conn *c = connect_raw();
  after_bad(c);
  free_raw(c);
}

static void test_unknown_method(void **state) {
  const char *paths[] = {"/crpc.itest.Echo/Nope", "/no.Such/Service", "/",
                         "/crpc.itest.Echo/Unary/extra", "/crpc.itest.Echo"};
  rawh2_conn *c = connect_raw();
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    Req r = REQ_INIT;
    r.text = "x";
    rawh2_stream *s = send_req(c, paths[i], &r, NULL, 0);
    expect_trailers_only(s, CRPC_UNIMPLEMENTED);
    after_bad(c);
  }
  free_raw(c);
}

static void test_wrong_content_type(void **state) {
  const char *types[] = {"application/json", "text/plain", "application/grpcx",
                         "", NULL};
  rawh2_conn *c = connect_raw();
  for (size_t i = 0; i < 5; i++) {
    Req r = REQ_INIT;
    size_t len;
    r.text = "x";
    uint8_t *b = frame_req(&r, 0, &len);
    rawh2_stream *s = open_stream(c, "POST", P_UNARY, types[i], NULL, 0, false);
    rawh2_write(s, b, len, true);
    free(b);
    assert_true(rawh2_wait_closed(s, TMO));
    check_status(s, "415");
    assert_true(s->end_on_headers);
    assert_null(rawh2_trailer(s, "grpc-status"));
    after_bad(c);
  }
  free_raw(c);
}

static void test_message_over_limit(void **state) {
  const char *paths[] = {P_UNARY, P_INLINE};
  rawh2_conn *c = connect_raw();
  for (int i = 0; i < 2; i++) {
    Req r = REQ_INIT;
    uint8_t payload[2 * MAX_RECV];
    memset(payload, 'p', sizeof payload);
    r.text = "big";
    r.payload.data = payload;
    r.payload.len = sizeof payload;
    rawh2_stream *s = send_req(c, paths[i], &r, NULL, 0);
    expect_grpc_status(s, CRPC_RESOURCE_EXHAUSTED);
    after_bad(c);
  }
  /* a prefix that claims 4 GiB - 1, with no payload behind it */
  uint8_t huge[5] = {0, 0xff, 0xff, 0xff, 0xff};
  rawh2_stream *s = send_body(c, P_UNARY, NULL, 0, huge, 5);
  expect_grpc_status(s, CRPC_RESOURCE_EXHAUSTED);
  after_bad(c);
  free_raw(c);
}

static void test_truncated_prefix(void **state) {
  const char *paths[] = {P_UNARY, P_INLINE};
  rawh2_conn *c = connect_raw();
  for (int i = 0; i < 2; i++) {
    uint8_t three[3] = {0, 0, 0};
    rawh2_stream *s = send_body(c, paths[i], NULL, 0, three, 3);
    expect_grpc_status(s, CRPC_INTERNAL);
    after_bad(c);
    /* a whole prefix, half the payload it announces */
    uint8_t half[5 + 4] = {0, 0, 0, 0, 8, 0x0a, 0x02, 'h', 'i'};
    s = send_body(c, paths[i], NULL, 0, half, sizeof half);
    expect_grpc_status(s, CRPC_INTERNAL);
    after_bad(c);
  }
  free_raw(c);
}

static void test_compressed_without_encoding(void **state) {
  const char *paths[] = {P_UNARY, P_INLINE};
  rawh2_conn *c = connect_raw();
  for (int i = 0; i < 2; i++) {
    Req r = REQ_INIT;
    size_t len;
    r.text = "flagged";
    uint8_t *b = frame_req(&r, 1, &len);
    rawh2_stream *s = send_body(c, paths[i], NULL, 0, b, len);
    free(b);
    expect_grpc_status(s, CRPC_INTERNAL);
    after_bad(c);
  }
  free_raw(c);
}

static void test_not_protobuf(void **state) {
  const char *paths[] = {P_UNARY, P_INLINE};
  /* field 1 (string) claims 5 bytes and has 2; then a bare 0xff tag */
  const uint8_t junk[][4] = {{0x0a, 0x05, 'a', 'b'}, {0xff, 0xff, 0xff, 0xff}};
  rawh2_conn *c = connect_raw();
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 2; j++) {
      size_t len;
      uint8_t *b = frame_bytes(0, junk[j], 4, &len);
      rawh2_stream *s = send_body(c, paths[i], NULL, 0, b, len);
      free(b);
      expect_grpc_status(s, CRPC_INTERNAL);
      after_bad(c);
    }
  }
  free_raw(c);
}

static void test_bad_framing_flag(void **state) {
  /* the flag byte may only be 0 or 1 */
  rawh2_conn *c = connect_raw();
  Req r = REQ_INIT;
  size_t len;
  r.text = "x";
  uint8_t *b = frame_req(&r, 7, &len);
  rawh2_stream *s = send_body(c, P_UNARY, NULL, 0, b, len);
  free(b);
  expect_grpc_status(s, CRPC_INTERNAL);
  after_bad(c);
  free_raw(c);
}

static void test_unary_message_count(void **state) {
  const char *paths[] = {P_UNARY, P_INLINE};
  rawh2_conn *c = connect_raw();
  for (int i = 0; i < 2; i++) {
    /* no message at all */
    rawh2_stream *s = send_body(c, paths[i], NULL, 0, "", 0);
    expect_grpc_status(s, CRPC_INTERNAL);
    after_bad(c);
    /* two messages for a unary method */
    Req r = REQ_INIT;
    size_t len;
    r.text = "one";
    uint8_t *b = frame_req(&r, 0, &len);
    s = open_grpc(c, paths[i]);
    rawh2_write(s, b, len, false);
    rawh2_write(s, b, len, true);
    free(b);
    expect_grpc_status(s, CRPC_INTERNAL);
    after_bad(c);
  }
  free_raw(c);
}

static void test_bad_encoding(void **state) {
  rawh2_conn *c = connect_raw();
  Req r = REQ_INIT;
  size_t len;
  r.text = "x";
  /* an encoding nobody supports */
  nghttp2_nv br = RAWH2_NV("grpc-encoding", "br");
  uint8_t *b = frame_req(&r, 1, &len);
  rawh2_stream *s = send_body(c, P_UNARY, &br, 1, b, len);
  free(b);
  expect_trailers_only(s, CRPC_UNIMPLEMENTED);
  after_bad(c);
  /* gzip announced, garbage sent */
  nghttp2_nv gz = RAWH2_NV("grpc-encoding", "gzip");
  b = frame_bytes(1, "not gzip at all", 15, &len);
  s = send_body(c, P_UNARY, &gz, 1, b, len);
  free(b);
  expect_grpc_status(s, CRPC_INTERNAL);
  after_bad(c);
  free_raw(c);
}

static void test_rst_mid_call(void **state) {
  rawh2_conn *c = connect_raw();
  /* a unary handler still running */
  int started = snap(&obs_started), cancelled = snap(&obs_cancelled);
  Req r = REQ_INIT;
  r.text = "slow";
  r.sleep_ms = 4 * TMO;
  rawh2_stream *s = send_req(c, P_UNARY, &r, NULL, 0);
  assert_true(rawh2_run(c, NULL, NULL, TMO));
  assert_true(wait_for(&obs_started, started + 1));
  rawh2_rst(s, NGHTTP2_CANCEL);
  assert_true(rawh2_wait_closed(s, TMO));
  assert_true(wait_for(&obs_cancelled, cancelled + 1));
  after_bad(c);
  /* a client-streaming handler between two messages */
  int msgs = snap(&obs_msgs);
  cancelled = snap(&obs_cancelled);
  size_t len;
  uint8_t *b = frame_req(&r, 0, &len);
  s = open_grpc(c, P_CSTREAM);
  rawh2_write(s, b, len, false);
  free(b);
  assert_true(rawh2_run(c, NULL, NULL, TMO));
  assert_true(wait_for(&obs_msgs, msgs + 1));
  rawh2_rst(s, NGHTTP2_CANCEL);
  assert_true(rawh2_wait_closed(s, TMO));
  assert_true(wait_for(&obs_cancelled, cancelled + 1));
  after_bad(c);
  free_raw(c);
}

static void test_conn_closed_mid_message(void **state) {
  /* client streaming: one message in, the next cut in half, then close */
  rawh2_conn *c = connect_raw();
  int msgs = snap(&obs_msgs), cancelled = snap(&obs_cancelled);
  Req r = REQ_INIT;
  size_t len;
  r.text = "first";
  uint8_t *b = frame_req(&r, 0, &len);
  rawh2_stream *s = open_grpc(c, P_CSTREAM);
  rawh2_write(s, b, len, false);
  rawh2_write(s, b, len / 2, false);
  free(b);
  assert_true(rawh2_run(c, NULL, NULL, TMO));
  assert_true(wait_for(&obs_msgs, msgs + 1));
  rawh2_close(c);
  assert_true(wait_for(&obs_cancelled, cancelled + 1));
  free_raw(c);
  after_bad(NULL);
  /* unary: the handler never gets a request; the server must not care */
  const char *paths[] = {P_UNARY, P_INLINE};
  for (int i = 0; i < 2; i++) {
    c = connect_raw();
    b = frame_req(&r, 0, &len);
    s = open_grpc(c, paths[i]);
    rawh2_write(s, b, len - 2, false);
    free(b);
    assert_true(rawh2_run(c, NULL, NULL, TMO));
    rawh2_close(c);
    free_raw(c);
    after_bad(NULL);
  }
}

static void test_deadline_1ms(void **state) {
  rawh2_conn *c = connect_raw();
  Req r = REQ_INIT;
  r.text = "late";
  r.sleep_ms = 4 * TMO;
  nghttp2_nv to = RAWH2_NV("grpc-timeout", "1m");
  rawh2_stream *s = send_req(c, P_UNARY, &r, &to, 1);
  assert_true(rawh2_wait_closed(s, TMO));
  /* the spec allows either: a DEADLINE_EXCEEDED status or RST(CANCEL) */
  if (!(s->rst_received && s->rst_code == NGHTTP2_CANCEL))
    expect_grpc_status(s, CRPC_DEADLINE_EXCEEDED);
  after_bad(c);
  /* the fast path too: whatever wins the race, the call ends cleanly */
  r.sleep_ms = 0;
  s = send_req(c, P_INLINE, &r, &to, 1);
  assert_true(rawh2_wait_closed(s, TMO));
  const char *gs = rawh2_trailer(s, "grpc-status");
  assert_true(s->rst_received ||
              (gs && (strcmp(gs, "0") == 0 || strcmp(gs, "4") == 0)));
  after_bad(c);
  free_raw(c);
}

static void test_timeout_garbage(void **state) {
  const char *bad[] = {"abc", "1x",   "123456789S",           "", "-1S", "1",
                       "S",   "1.5S", "99999999999999999999H"};
  rawh2_conn *c = connect_raw();
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    Req r = REQ_INIT;
    r.text = "x";
    nghttp2_nv to = RAWH2_NV("grpc-timeout", bad[i]);
    rawh2_stream *s = send_req(c, P_UNARY, &r, &to, 1);
    expect_trailers_only(s, CRPC_INTERNAL);
    after_bad(c);
  }
  free_raw(c);
}

static void test_method_not_post(void **state) {
  const char *methods[] = {"GET", "PUT", "post"};
  rawh2_conn *c = connect_raw();
  for (int i = 0; i < 3; i++) {
    Req r = REQ_INIT;
    size_t len;
    r.text = "x";
    uint8_t *b = frame_req(&r, 0, &len);
    rawh2_stream *s =
        open_stream(c, methods[i], P_UNARY, "application/grpc", NULL, 0, false);
    rawh2_write(s, b, len, true);
    free(b);
    assert_true(rawh2_wait_closed(s, TMO));
    check_status(s, "405");
    assert_null(rawh2_trailer(s, "grpc-status"));
    after_bad(c);
  }
  /* GET with no body at all */
  rawh2_stream *s =
      open_stream(c, "GET", P_UNARY, "application/grpc", NULL, 0, true);
  assert_true(rawh2_wait_closed(s, TMO));
  check_status(s, "405");
  after_bad(c);
  free_raw(c);
}

static void test_no_path(void **state) {
  rawh2_conn *c = connect_raw();
  Req r = REQ_INIT;
  size_t len;
  r.text = "x";
  uint8_t *b = frame_req(&r, 0, &len);
  rawh2_stream *s =
      open_stream(c, "POST", NULL, "application/grpc", NULL, 0, false);
  rawh2_write(s, b, len, true);
  free(b);
  assert_true(rawh2_wait_closed(s, TMO));
  /* a malformed request (RFC 9113 8.3.1): nghttp2 resets the stream */
  assert_true(s->rst_received);
  assert_int_equal(s->rst_code, NGHTTP2_PROTOCOL_ERROR);
  after_bad(c);
  /* the same with END_STREAM on the HEADERS */
  s = open_stream(c, "POST", NULL, "application/grpc", NULL, 0, true);
  assert_true(rawh2_wait_closed(s, TMO));
  assert_true(s->rst_received);
  after_bad(c);
  /* a :path that is not a path at all, and an empty one */
  const char *bad[] = {"no-slash", ""};
  for (int i = 0; i < 2; i++) {
    s = open_stream(c, "POST", bad[i], "application/grpc", NULL, 0, true);
    assert_true(rawh2_wait_closed(s, TMO));
    assert_true(s->rst_received);
    assert_int_equal(s->rst_code, NGHTTP2_PROTOCOL_ERROR);
    after_bad(c);
  }
  free_raw(c);
}

static bool remote_done(void *arg) {
  return ((rawh2_stream *)arg)->remote_closed;
}

/* The server answers before the request ended. PROTOCOL-HTTP2.md ("Early
 * Server Closure"): it should then RST_STREAM(NO_ERROR) so the stream is
 * freed. A client that never finishes such requests must not use up the
 * connection's concurrent streams (100): 150 of them, then a good call. */
static void test_early_answer_frees_stream(void **state) {
  rawh2_conn *c = connect_raw();
  for (int i = 0; i < 150; i++) {
    rawh2_stream *s;
    switch (i % 3) {
    case 0:
      s = open_stream(c, "POST", P_UNARY, "text/plain", NULL, 0, false);
      break;
    case 1:
      s = open_grpc(c, "/crpc.itest.Echo/Nope");
      break;
    default: {
      uint8_t big[5] = {0, 0, 1, 0, 0}; /* 64 KiB, over the limit */
      s = open_grpc(c, P_UNARY);
      rawh2_write(s, big, 5, false);
    }
    }
    if (!rawh2_run(c, remote_done, s, TMO))
      fail_msg("request %d got no answer: streams leak", i);
    if (i < 3) {
      assert_true(rawh2_wait_closed(s, TMO));
      assert_true(s->rst_received);
      assert_int_equal(s->rst_code, NGHTTP2_NO_ERROR);
    }
  }
  after_bad(c);
  free_raw(c);
}

/* A handler that finishes while the client is still streaming: trailers,
 * then RST_STREAM(NO_ERROR) ("Early Server Closure"). */
static void test_handler_returns_early(void **state) {
  rawh2_conn *c = connect_raw();
  Req r = REQ_INIT;
  size_t len;
  r.text = "stop";
  uint8_t *b = frame_req(&r, 0, &len);
  rawh2_stream *s = open_grpc(c, P_BIDI);
  rawh2_write(s, b, len, false); /* no END_STREAM: we "keep streaming" */
  free(b);
  expect_grpc_status(s, CRPC_OK);
  assert_true(s->rst_received);
  assert_int_equal(s->rst_code, NGHTTP2_NO_ERROR);
  after_bad(c);
  free_raw(c);
}

/* A gzip body that inflates to 64 MiB (a valid protobuf: one bytes field
 * of zeros) against a 1 KiB limit: RESOURCE_EXHAUSTED, and the server
 * stops inflating at the limit (tests/unit/test_compress.c bounds the
 * memory). Built in 64 KiB steps, so the test never holds 64 MiB either. */
static void test_zip_bomb(void **state) {
  const size_t inflated = 64u << 20;
  uint8_t head[8] = {0x32}; /* field 6 (payload), length-delimited */
  size_t hl = 1;
  for (size_t v = inflated; v; v >>= 7)
    head[hl++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
  z_stream z = {0};
  assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY),
                   Z_OK);
  size_t cap = 1 << 20, len = 0;
  uint8_t *out = malloc(cap);
  static uint8_t zeros[65536];
  assert_non_null(out);
  /* round 0 feeds the protobuf header, then 1024 rounds of 64 KiB zeros,
   * then Z_FINISH */
  size_t rounds = inflated / sizeof zeros;
  for (size_t i = 0; i <= rounds + 1; i++) {
    bool last = i == rounds + 1;
    z.next_in = i == 0 ? head : zeros;
    z.avail_in = i == 0 ? (uInt)hl : last ? 0 : (uInt)sizeof zeros;
    do {
      z.next_out = out + len;
      z.avail_out = (uInt)(cap - len);
      deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
      len = cap - z.avail_out;
    } while (z.avail_in > 0 && len < cap);
  }
  deflateEnd(&z);
  assert_true(len < cap && len > 0);
  size_t flen;
  uint8_t *b = frame_bytes(1, out, len, &flen);
  free(out);
  rawh2_conn *c = connect_raw();
  nghttp2_nv gz = RAWH2_NV("grpc-encoding", "gzip");
  rawh2_stream *st = send_body(c, P_UNARY, &gz, 1, b, flen);
  free(b);
  expect_grpc_status(st, CRPC_RESOURCE_EXHAUSTED);
  after_bad(c);
  free_raw(c);
}

/* A client asking for a compressed response: gzip only when its
 * grpc-accept-encoding lists gzip; unknown names in the list are ignored. */
static void test_response_compression(void **state) {
  rawh2_conn *c = connect_raw();
  Req r = REQ_INIT;
  size_t len;
  r.text = "compress";
  const char *lists[] = {"br, zstd", "br, gzip", "identity", "x-custom ,gzip"};
  const bool want_gzip[] = {false, true, false, true};
  for (int i = 0; i < 4; i++) {
    nghttp2_nv ae = RAWH2_NV("grpc-accept-encoding", lists[i]);
    uint8_t *b = frame_req(&r, 0, &len);
    rawh2_stream *st = send_body(c, P_UNARY, &ae, 1, b, len);
    free(b);
    expect_grpc_status(st, CRPC_OK);
    const char *enc = rawh2_header(st, "grpc-encoding");
    assert_true(st->body_len > 5);
    if (want_gzip[i]) {
      assert_non_null(enc);
      assert_string_equal(enc, "gzip");
      assert_int_equal(st->body[0], 1); /* compressed flag */
    } else {
      assert_true(enc == NULL || strcmp(enc, "identity") == 0);
      assert_int_equal(st->body[0], 0);
    }
  }
  after_bad(c);
  free_raw(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_baseline, free_live),
      cmocka_unit_test_teardown(test_unknown_method, free_live),
      cmocka_unit_test_teardown(test_wrong_content_type, free_live),
      cmocka_unit_test_teardown(test_message_over_limit, free_live),
      cmocka_unit_test_teardown(test_truncated_prefix, free_live),
      cmocka_unit_test_teardown(test_compressed_without_encoding, free_live),
      cmocka_unit_test_teardown(test_not_protobuf, free_live),
      cmocka_unit_test_teardown(test_bad_framing_flag, free_live),
      cmocka_unit_test_teardown(test_unary_message_count, free_live),
      cmocka_unit_test_teardown(test_bad_encoding, free_live),
      cmocka_unit_test_teardown(test_rst_mid_call, free_live),
      cmocka_unit_test_teardown(test_conn_closed_mid_message, free_live),
      cmocka_unit_test_teardown(test_deadline_1ms, free_live),
      cmocka_unit_test_teardown(test_timeout_garbage, free_live),
      cmocka_unit_test_teardown(test_method_not_post, free_live),
      cmocka_unit_test_teardown(test_no_path, free_live),
      cmocka_unit_test_teardown(test_early_answer_frees_stream, free_live),
      cmocka_unit_test_teardown(test_handler_returns_early, free_live),
      cmocka_unit_test_teardown(test_zip_bomb, free_live),
      cmocka_unit_test_teardown(test_response_compression, free_live),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
