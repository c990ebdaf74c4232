#define _POSIX_C_SOURCE 200809L
/*
 * test_hostile_client_side.c: a raw HTTP/2 server (rawh2) answers a crpc
 * channel the way broken servers and proxies do. Each bad answer must give
 * the right status on the right call (PROTOCOL-HTTP2.md and
 * http-grpc-status-mapping.md), and the channel must keep working: a
 * stream-level fault leaves the connection (and a call parked on it) alone,
 * a connection-level fault costs one reconnect.
 *
 * The raw server picks its misbehaviour from the request's "x-mode"
 * metadata; without it, it echoes like a good gRPC server.
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

#include <crpc/crpc.h>

#include "echo.pb-c.h"
#include "rawh2.h"

#define TMO 5000 /* ms: every call's deadline; a hang fails, never blocks */
#define MAX_RECV 1024

typedef Crpc__Itest__EchoRequest Req;
typedef Crpc__Itest__EchoReply Rep;
#define REQ_INIT CRPC__ITEST__ECHO_REQUEST__INIT
#define REP_INIT CRPC__ITEST__ECHO_REPLY__INIT

static const crpc_method m_unary = {"/crpc.itest.Echo/Unary", CRPC_UNARY,
                                    &crpc__itest__echo_request__descriptor,
                                    &crpc__itest__echo_reply__descriptor};
static const crpc_method m_sstream = {"/crpc.itest.Echo/ServerStream",
                                      CRPC_SERVER_STREAMING,
                                      &crpc__itest__echo_request__descriptor,
                                      &crpc__itest__echo_reply__descriptor};
static const crpc_method m_cstream = {"/crpc.itest.Echo/ClientStream",
                                      CRPC_CLIENT_STREAMING,
                                      &crpc__itest__echo_request__descriptor,
                                      &crpc__itest__echo_reply__descriptor};

/* ---- the raw server [its thread] ---- */

static rawh2_server *raw;
static crpc_channel *channel;

#define MAX_PARKED 8
static rawh2_stream *parked[MAX_PARKED];
static int nparked;

static uint8_t *frame(const void *p, size_t n, uint8_t flag, size_t *len) {
  uint8_t *b = malloc(5 + n + 1);
  b[0] = flag;
  b[1] = (uint8_t)(n >> 24);
  b[2] = (uint8_t)(n >> 16);
  b[3] = (uint8_t)(n >> 8);
  b[4] = (uint8_t)n;
  if (n)
    memcpy(b + 5, p, n);
  *len = 5 + n;
  return b;
}

/* The framed reply to the request on |s|: "echo:<text>", |index|, and
 * |payload| bytes of payload. */
static uint8_t *reply_for(rawh2_stream *s, int index, size_t payload,
                          size_t *len) {
  char text[64] = "echo:";
  if (s->body_len >= 5) {
    Req *r =
        crpc__itest__echo_request__unpack(NULL, s->body_len - 5, s->body + 5);
    if (r) {
      strncat(text, r->text, sizeof text - 6);
      crpc__itest__echo_request__free_unpacked(r, NULL);
    }
  }
  Rep rep = REP_INIT;
  rep.text = text;
  rep.index = index;
  rep.payload.len = payload;
  rep.payload.data = payload ? calloc(1, payload) : NULL;
  size_t n = protobuf_c_message_get_packed_size(&rep.base);
  uint8_t *tmp = malloc(n + 1);
  protobuf_c_message_pack(&rep.base, tmp);
  uint8_t *b = frame(tmp, n, 0, len);
  free(tmp);
  free(rep.payload.data);
  return b;
}

static void respond_grpc(rawh2_stream *s, const char *ctype, bool end) {
  nghttp2_nv nv[2] = {RAWH2_NV(":status", "200"),
                      RAWH2_NV("content-type", ctype)};
  rawh2_respond(s, nv, 2, end);
}

static void trailers(rawh2_stream *s, const char *status) {
  nghttp2_nv nv[1] = {RAWH2_NV("grpc-status", status)};
  rawh2_trailers(s, nv, 1);
}

static void write_reply(rawh2_stream *s, int index, size_t payload, bool end) {
  size_t len;
  uint8_t *b = reply_for(s, index, payload, &len);
  rawh2_write(s, b, len, end);
  free(b);
}

static void echo_ctype(rawh2_stream *s, const char *ctype) {
  respond_grpc(s, ctype, false);
  write_reply(s, 0, 0, false);
  trailers(s, "0");
}

static void echo(rawh2_stream *s) { echo_ctype(s, "application/grpc"); }

/* "prefix:rest" -> rest, or NULL when |mode| does not start so. */
static const char *arg_of(const char *mode, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(mode, prefix, n) == 0 ? mode + n : NULL;
}

static void on_request(rawh2_stream *s, void *ud) {
  const char *mode = rawh2_header(s, "x-mode");
  const char *a;
  if (!s->remote_closed) {
    /* headers only so far: most modes wait for the whole request */
    if (mode && strcmp(mode, "early-status") == 0) {
      nghttp2_nv nv[3] = {RAWH2_NV(":status", "200"),
                          RAWH2_NV("content-type", "application/grpc"),
                          RAWH2_NV("grpc-status", "9")};
      rawh2_respond(s, nv, 3, true);
    }
    return;
  }
  if (!mode) {
    echo(s);
  } else if (strcmp(mode, "early-status") == 0) {
    /* answered already */
  } else if (strcmp(mode, "park") == 0) {
    respond_grpc(s, "application/grpc", false);
    write_reply(s, 0, 0, false);
    if (nparked < MAX_PARKED)
      parked[nparked++] = s;
  } else if (strcmp(mode, "no-trailers") == 0) {
    respond_grpc(s, "application/grpc", false);
    write_reply(s, 0, 0, true); /* END_STREAM on DATA */
  } else if (strcmp(mode, "no-trailers-empty") == 0) {
    respond_grpc(s, "application/grpc", false);
    rawh2_write(s, "", 0, true);
  } else if (strcmp(mode, "headers-end") == 0) {
    respond_grpc(s, "application/grpc", true); /* no grpc-status at all */
  } else if ((a = arg_of(mode, "http:"))) {
    nghttp2_nv nv[2] = {RAWH2_NV(":status", a),
                        RAWH2_NV("content-type", "text/plain")};
    rawh2_respond(s, nv, 2, true);
  } else if ((a = arg_of(mode, "http-body:"))) {
    static const char html[] = "<html><body>503 Service Unavailable"
                               "</body></html>\n";
    nghttp2_nv nv[2] = {RAWH2_NV(":status", a),
                        RAWH2_NV("content-type", "text/html")};
    rawh2_respond(s, nv, 2, false);
    rawh2_write(s, html, sizeof html - 1, true);
  } else if ((a = arg_of(mode, "http-grpc:"))) {
    /* e.g. "503:8": a non-200 status that still carries grpc-status */
    char http[4] = {a[0], a[1], a[2], 0};
    nghttp2_nv nv[4] = {
        RAWH2_NV(":status", http), RAWH2_NV("content-type", "application/grpc"),
        RAWH2_NV("grpc-status", a + 4), RAWH2_NV("grpc-message", "from grpc")};
    rawh2_respond(s, nv, 4, true);
  } else if ((a = arg_of(mode, "status:"))) {
    nghttp2_nv nv[3] = {RAWH2_NV(":status", "200"),
                        RAWH2_NV("content-type", "application/grpc"),
                        RAWH2_NV("grpc-status", a)};
    rawh2_respond(s, nv, 3, true);
  } else if ((a = arg_of(mode, "status-after:"))) {
    respond_grpc(s, "application/grpc", false);
    write_reply(s, 0, 0, false);
    trailers(s, a);
  } else if ((a = arg_of(mode, "message:"))) {
    nghttp2_nv nv[4] = {RAWH2_NV(":status", "200"),
                        RAWH2_NV("content-type", "application/grpc"),
                        RAWH2_NV("grpc-status", "2"),
                        RAWH2_NV("grpc-message", a)};
    rawh2_respond(s, nv, 4, true);
  } else if ((a = arg_of(mode, "ctype:"))) {
    echo_ctype(s, a);
  } else if (strcmp(mode, "ctype-html") == 0) {
    static const char html[] = "<html><body>hello</body></html>\n";
    respond_grpc(s, "text/html", false);
    rawh2_write(s, html, sizeof html - 1, true);
  } else if (strcmp(mode, "big") == 0) {
    respond_grpc(s, "application/grpc", false);
    write_reply(s, 0, 4 * MAX_RECV, false);
    trailers(s, "0");
  } else if (strcmp(mode, "two-messages") == 0) {
    respond_grpc(s, "application/grpc", false);
    write_reply(s, 0, 0, false);
    write_reply(s, 1, 0, false);
    trailers(s, "0");
  } else if (strcmp(mode, "truncated") == 0) {
    size_t len;
    uint8_t *b = reply_for(s, 0, 100, &len);
    respond_grpc(s, "application/grpc", false);
    rawh2_write(s, b, len / 2, false);
    free(b);
    trailers(s, "0");
  } else if (strcmp(mode, "truncated-prefix") == 0) {
    respond_grpc(s, "application/grpc", false);
    rawh2_write(s, "\0\0\0", 3, false);
    trailers(s, "0");
  } else if (strcmp(mode, "compressed-no-encoding") == 0) {
    size_t len;
    uint8_t *b = reply_for(s, 0, 0, &len);
    b[0] = 1;
    respond_grpc(s, "application/grpc", false);
    rawh2_write(s, b, len, false);
    free(b);
    trailers(s, "0");
  } else if (strcmp(mode, "not-protobuf") == 0) {
    size_t len;
    uint8_t *b = frame("\x0a\x05"
                       "ab",
                       4, 0, &len);
    respond_grpc(s, "application/grpc", false);
    rawh2_write(s, b, len, false);
    free(b);
    trailers(s, "0");
  } else if ((a = arg_of(mode, "rst:"))) {
    rawh2_rst(s, (uint32_t)atoi(a));
  } else if ((a = arg_of(mode, "rst-mid:"))) {
    size_t len;
    uint8_t *b = reply_for(s, 0, 100, &len);
    respond_grpc(s, "application/grpc", false);
    rawh2_write(s, b, len / 2, false);
    free(b);
    rawh2_rst(s, (uint32_t)atoi(a));
  } else if (strcmp(mode, "close") == 0) {
    rawh2_close(s->conn);
  } else if (strcmp(mode, "close-mid") == 0) {
    size_t len;
    uint8_t *b = reply_for(s, 0, 100, &len);
    respond_grpc(s, "application/grpc", false);
    rawh2_write(s, b, len / 2, false);
    free(b);
    rawh2_close(s->conn);
  } else if (strcmp(mode, "goaway-close") == 0) {
    rawh2_goaway(s->conn, s->id, NGHTTP2_NO_ERROR);
    rawh2_close(s->conn);
  } else if (strcmp(mode, "goaway-refuse") == 0) {
    /* "not processed": the call may be retried elsewhere */
    rawh2_goaway(s->conn, 0, NGHTTP2_NO_ERROR);
    rawh2_close(s->conn);
  } else if (strcmp(mode, "goaway-graceful") == 0) {
    rawh2_goaway(s->conn, s->id, NGHTTP2_NO_ERROR);
    echo(s);
  } else {
    echo(s);
  }
}

/* Finishes every parked call: a second message, then status OK. */
static void finish_parked(void *arg) {
  for (int i = 0; i < nparked; i++) {
    write_reply(parked[i], 1, 0, false);
    trailers(parked[i], "0");
  }
  nparked = 0;
}

/* ---- fixture ---- */

static int setup(void **state) {
  char target[64];
  raw = rawh2_server_start(on_request, NULL);
  if (!raw)
    return -1;
  snprintf(target, sizeof target, "127.0.0.1:%d", rawh2_server_port(raw));
  crpc_channel_opts o = {0};
  o.max_recv_msg_size = MAX_RECV;
  o.initial_backoff_ms = 1; /* reconnect at once after a dropped conn */
  o.max_backoff_ms = 10;
  return crpc_channel_new(&channel, target, &o);
}

static int teardown(void **state) {
  crpc_channel_free(channel);
  rawh2_server_stop(raw);
  return 0;
}

/* ---- calls ---- */

/* A unary call with x-mode |mode| (NULL: a good call). */
static crpc_code call_mode(const char *mode, crpc_status *st,
                           ProtobufCMessage **resp_out) {
  crpc_metadata *md;
  ProtobufCMessage *resp = NULL;
  Req r = REQ_INIT;
  r.text = "hi";
  assert_int_equal(crpc_metadata_new(&md), 0);
  if (mode)
    assert_int_equal(crpc_metadata_add_str(md, "x-mode", mode), 0);
  crpc_call_opts o = {.timeout_ms = TMO, .metadata = md};
  crpc_code code = crpc_unary(channel, &m_unary, &o, &r.base, &resp, st);
  crpc_metadata_free(md);
  if (resp_out)
    *resp_out = resp;
  else if (resp)
    protobuf_c_message_free_unpacked(resp, NULL);
  return code;
}

/* The bad call must end with |want|, and say something. */
static void expect_mode(const char *mode, crpc_code want) {
  crpc_status st = {0};
  crpc_code code = call_mode(mode, &st, NULL);
  if (code != want)
    fail_msg("x-mode %s: got %s (%s), want %s", mode, crpc_code_name(code),
             crpc_status_message(&st), crpc_code_name(want));
  assert_int_equal(st.code, want);
  assert_non_null(st.message);
  assert_true(st.message[0] != '\0');
  crpc_status_clear(&st);
}

static void good_call(void) {
  crpc_status st = {0};
  ProtobufCMessage *resp = NULL;
  crpc_code code = call_mode(NULL, &st, &resp);
  if (code != CRPC_OK)
    fail_msg("good call: %s: %s", crpc_code_name(code),
             crpc_status_message(&st));
  assert_non_null(resp);
  assert_string_equal(((Rep *)resp)->text, "echo:hi");
  protobuf_c_message_free_unpacked(resp, NULL);
  crpc_status_clear(&st);
}

/* A server-streaming call left open on the current connection. */
static crpc_call *park(void) {
  crpc_call *c;
  ProtobufCMessage *m;
  crpc_metadata *md;
  Req r = REQ_INIT;
  r.text = "parked";
  assert_int_equal(crpc_metadata_new(&md), 0);
  assert_int_equal(crpc_metadata_add_str(md, "x-mode", "park"), 0);
  crpc_call_opts o = {.timeout_ms = TMO, .metadata = md};
  assert_int_equal(crpc_call_start(&c, channel, &m_sstream, &o), 0);
  crpc_metadata_free(md);
  assert_true(crpc_call_write(c, &r.base));
  assert_true(crpc_call_writes_done(c));
  assert_true(crpc_call_read(c, &m)); /* it is on the server now */
  assert_int_equal(((Rep *)m)->index, 0);
  protobuf_c_message_free_unpacked(m, NULL);
  return c;
}

/* The parked call completes normally (|alive|) or has failed UNAVAILABLE
 * with its connection. */
static void unpark(crpc_call *c, bool alive) {
  ProtobufCMessage *m;
  crpc_status st = {0};
  assert_true(rawh2_server_exec(raw, finish_parked, NULL, TMO));
  if (alive) {
    assert_true(crpc_call_read(c, &m));
    assert_int_equal(((Rep *)m)->index, 1);
    assert_string_equal(((Rep *)m)->text, "echo:parked");
    protobuf_c_message_free_unpacked(m, NULL);
    assert_false(crpc_call_read(c, &m));
    assert_int_equal(crpc_call_finish(c, &st), CRPC_OK);
  } else {
    assert_false(crpc_call_read(c, &m));
    assert_int_equal(crpc_call_finish(c, &st), CRPC_UNAVAILABLE);
  }
  crpc_status_clear(&st);
  crpc_call_free(c);
}

/* One bad call between a parked call and a good one. A stream-level fault
 * (|conn_lost| false) must leave the connection alone: the parked call
 * completes and no new connection is made. A connection-level one fails
 * the parked call UNAVAILABLE and costs exactly one reconnect. */
static void bad_call_n(const char *mode, crpc_code want, bool conn_lost,
                       int new_conns) {
  good_call(); /* connected */
  crpc_call *p = park();
  int conns = rawh2_server_accepted(raw);
  expect_mode(mode, want);
  good_call();
  good_call();
  assert_int_equal(rawh2_server_accepted(raw), conns + new_conns);
  unpark(p, !conn_lost);
  good_call();
}

static void bad_call(const char *mode, crpc_code want, bool conn_lost) {
  bad_call_n(mode, want, conn_lost, conn_lost ? 1 : 0);
}

/* ---- tests ---- */

static void test_baseline(void **state) {
  good_call();
  crpc_call *p = park();
  good_call();
  unpark(p, true);
}

/* END_STREAM on DATA, no trailers. gRPC core says UNKNOWN ("No status
 * received"), grpc-java INTERNAL; crpc: UNKNOWN with a message. */
static void test_no_trailers(void **state) {
  bad_call("no-trailers", CRPC_UNKNOWN, false);
  bad_call("no-trailers-empty", CRPC_UNKNOWN, false);
  bad_call("headers-end", CRPC_UNKNOWN, false);
  crpc_status st = {0};
  assert_int_equal(call_mode("no-trailers", &st, NULL), CRPC_UNKNOWN);
  assert_non_null(strstr(crpc_status_message(&st), "grpc-status"));
  crpc_status_clear(&st);
}

/* http-grpc-status-mapping.md, for responses without grpc-status. */
static void test_http_status(void **state) {
  static const struct {
    const char *http;
    crpc_code code;
  } map[] = {{"400", CRPC_INTERNAL},          {"401", CRPC_UNAUTHENTICATED},
             {"403", CRPC_PERMISSION_DENIED}, {"404", CRPC_UNIMPLEMENTED},
             {"429", CRPC_UNAVAILABLE},       {"502", CRPC_UNAVAILABLE},
             {"503", CRPC_UNAVAILABLE},       {"504", CRPC_UNAVAILABLE},
             {"500", CRPC_UNKNOWN},           {"418", CRPC_UNKNOWN}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
    char mode[32];
    snprintf(mode, sizeof mode, "http:%s", map[i].http);
    bad_call(mode, map[i].code, false);
  }
  crpc_status st = {0};
  assert_int_equal(call_mode("http:503", &st, NULL), CRPC_UNAVAILABLE);
  assert_non_null(strstr(crpc_status_message(&st), "503"));
  crpc_status_clear(&st);
}

/* A proxy's error page: the body is HTML, not gRPC frames. The status
 * must still come from the HTTP status, not from "malformed framing". */
static void test_http_status_with_body(void **state) {
  bad_call("http-body:503", CRPC_UNAVAILABLE, false);
  bad_call("http-body:404", CRPC_UNIMPLEMENTED, false);
  bad_call("http-body:401", CRPC_UNAUTHENTICATED, false);
}

/* "If grpc-status was provided, it must be used." */
static void test_http_status_with_grpc_status(void **state) {
  bad_call("http-grpc:503:8", CRPC_RESOURCE_EXHAUSTED, false);
  bad_call("http-grpc:404:5", CRPC_NOT_FOUND, false);
  crpc_status st = {0};
  assert_int_equal(call_mode("http-grpc:503:8", &st, NULL),
                   CRPC_RESOURCE_EXHAUSTED);
  assert_string_equal(st.message, "from grpc");
  crpc_status_clear(&st);
}

static void test_garbage_grpc_status(void **state) {
  const char *bad[] = {"abc",        "99", "-1", "",   "17",
                       "4294967296", "+1", "1a", "0x1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char mode[48];
    snprintf(mode, sizeof mode, "status:%s", bad[i]);
    bad_call(mode, CRPC_UNKNOWN, false);
    snprintf(mode, sizeof mode, "status-after:%s", bad[i]);
    bad_call(mode, CRPC_UNKNOWN, false);
  }
}

static void test_wrong_content_type(void **state) {
  /* gRPC frames and status OK, but not labelled gRPC */
  bad_call("ctype:application/json", CRPC_UNKNOWN, false);
  bad_call("ctype:text/plain", CRPC_UNKNOWN, false);
  /* an HTML page with status 200 */
  bad_call("ctype-html", CRPC_UNKNOWN, false);
  crpc_status st = {0};
  assert_int_equal(call_mode("ctype-html", &st, NULL), CRPC_UNKNOWN);
  assert_non_null(strstr(crpc_status_message(&st), "content-type"));
  crpc_status_clear(&st);
  /* the accepted forms */
  crpc_status ok = {0};
  assert_int_equal(call_mode("ctype:application/grpc+proto", &ok, NULL),
                   CRPC_OK);
  assert_int_equal(call_mode("ctype:application/grpc;charset=x", &ok, NULL),
                   CRPC_OK);
  crpc_status_clear(&ok);
}

static void test_message_over_limit(void **state) {
  bad_call("big", CRPC_RESOURCE_EXHAUSTED, false);
}

static void test_truncated_message(void **state) {
  bad_call("truncated", CRPC_INTERNAL, false);
  bad_call("truncated-prefix", CRPC_INTERNAL, false);
}

static void test_bad_messages(void **state) {
  bad_call("compressed-no-encoding", CRPC_INTERNAL, false);
  bad_call("not-protobuf", CRPC_INTERNAL, false);
  /* a unary call answered twice (gRPC: INTERNAL) */
  bad_call("two-messages", CRPC_INTERNAL, false);
}

/* PROTOCOL-HTTP2.md's RST_STREAM table. */
static void test_rst_stream(void **state) {
  static const struct {
    uint32_t h2;
    crpc_code code;
  } map[] = {{NGHTTP2_CANCEL, CRPC_CANCELLED},
             {NGHTTP2_REFUSED_STREAM, CRPC_UNAVAILABLE},
             {NGHTTP2_NO_ERROR, CRPC_INTERNAL},
             {NGHTTP2_PROTOCOL_ERROR, CRPC_INTERNAL},
             {NGHTTP2_INTERNAL_ERROR, CRPC_INTERNAL},
             {NGHTTP2_ENHANCE_YOUR_CALM, CRPC_RESOURCE_EXHAUSTED},
             {NGHTTP2_INADEQUATE_SECURITY, CRPC_PERMISSION_DENIED}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
    char mode[32];
    snprintf(mode, sizeof mode, "rst:%u", map[i].h2);
    bad_call(mode, map[i].code, false);
    snprintf(mode, sizeof mode, "rst-mid:%u", map[i].h2);
    bad_call(mode, map[i].code, false);
  }
}

static void test_connection_closed(void **state) {
  bad_call("close", CRPC_UNAVAILABLE, true);
  bad_call("close-mid", CRPC_UNAVAILABLE, true);
}

static void test_goaway(void **state) {
  bad_call("goaway-close", CRPC_UNAVAILABLE, true);
  /* a stream the GOAWAY says was never processed is retried once,
   * transparently, on a new connection (gRFC A6), which refuses it too:
   * two connections for it */
  bad_call_n("goaway-refuse", CRPC_UNAVAILABLE, true, 2);
  /* a graceful GOAWAY: this call completes, the next ones reconnect, the
   * parked call (an accepted stream) still completes */
  good_call();
  crpc_call *p = park();
  int conns = rawh2_server_accepted(raw);
  crpc_status st = {0};
  assert_int_equal(call_mode("goaway-graceful", &st, NULL), CRPC_OK);
  good_call();
  assert_int_equal(rawh2_server_accepted(raw), conns + 1);
  unpark(p, true);
  crpc_status_clear(&st);
}

/* Invalid percent-escapes pass through unchanged; valid ones decode. */
static void test_grpc_message_escapes(void **state) {
  static const struct {
    const char *wire, *want;
  } cases[] = {{"%zz", "%zz"},
               {"trailing %", "trailing %"},
               {"one digit %4", "one digit %4"},
               {"%%41", "%A"},
               {"ok%41%42", "okAB"},
               {"%e2%82%AC", "\xe2\x82\xac"},
               {"100%", "100%"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char mode[64];
    crpc_status st = {0};
    snprintf(mode, sizeof mode, "message:%s", cases[i].wire);
    assert_int_equal(call_mode(mode, &st, NULL), CRPC_UNKNOWN);
    assert_non_null(st.message);
    assert_string_equal(st.message, cases[i].want);
    crpc_status_clear(&st);
  }
  good_call();
}

/* Trailers arrive while the client is still streaming: the call ends with
 * the server's status (PROTOCOL-HTTP2.md "Early Server Closure"); it must
 * not wait for writes_done or the deadline. */
static void test_status_before_client_done(void **state) {
  crpc_call *c;
  crpc_metadata *md;
  crpc_status st = {0};
  Req r = REQ_INIT;
  r.text = "more";
  assert_int_equal(crpc_metadata_new(&md), 0);
  assert_int_equal(crpc_metadata_add_str(md, "x-mode", "early-status"), 0);
  crpc_call_opts o = {.timeout_ms = TMO, .metadata = md};
  assert_int_equal(crpc_call_start(&c, channel, &m_cstream, &o), 0);
  crpc_metadata_free(md);
  /* may already fail: the server answers as soon as it has the headers */
  (void)crpc_call_write(c, &r.base);
  crpc_code code = crpc_call_finish(c, &st); /* no writes_done */
  if (code != CRPC_FAILED_PRECONDITION)
    fail_msg("got %s (%s)", crpc_code_name(code), crpc_status_message(&st));
  assert_false(crpc_call_write(c, &r.base)); /* the call is over */
  crpc_status_clear(&st);
  crpc_call_free(c);
  good_call();
}

/* ---- the async API sees the same statuses ---- */

typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  crpc_code code;
} waiter;

static void on_done(crpc_call *call, const crpc_status *st,
                    const ProtobufCMessage *resp, void *ud) {
  waiter *w = ud;
  pthread_mutex_lock(&w->mu);
  w->done = true;
  w->code = st->code;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static crpc_code async_mode(const char *mode) {
  waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
  crpc_metadata *md;
  Req r = REQ_INIT;
  r.text = "a";
  assert_int_equal(crpc_metadata_new(&md), 0);
  assert_int_equal(crpc_metadata_add_str(md, "x-mode", mode), 0);
  crpc_call_opts o = {.timeout_ms = TMO, .metadata = md};
  assert_int_equal(
      crpc_unary_async(channel, &m_unary, &o, &r.base, on_done, &w), 0);
  crpc_metadata_free(md);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += TMO / 1000 + 1;
  pthread_mutex_lock(&w.mu);
  while (!w.done)
    if (pthread_cond_timedwait(&w.cv, &w.mu, &ts) != 0)
      break;
  bool done = w.done;
  pthread_mutex_unlock(&w.mu);
  assert_true(done);
  return w.code;
}

static void test_async(void **state) {
  assert_int_equal(async_mode("no-trailers"), CRPC_UNKNOWN);
  assert_int_equal(async_mode("http:503"), CRPC_UNAVAILABLE);
  assert_int_equal(async_mode("status:abc"), CRPC_UNKNOWN);
  assert_int_equal(async_mode("big"), CRPC_RESOURCE_EXHAUSTED);
  assert_int_equal(async_mode("rst:8"), CRPC_CANCELLED);
  assert_int_equal(async_mode("close"), CRPC_UNAVAILABLE);
  good_call();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_baseline),
      cmocka_unit_test(test_no_trailers),
      cmocka_unit_test(test_http_status),
      cmocka_unit_test(test_http_status_with_body),
      cmocka_unit_test(test_http_status_with_grpc_status),
      cmocka_unit_test(test_garbage_grpc_status),
      cmocka_unit_test(test_wrong_content_type),
      cmocka_unit_test(test_message_over_limit),
      cmocka_unit_test(test_truncated_message),
      cmocka_unit_test(test_bad_messages),
      cmocka_unit_test(test_rst_stream),
      cmocka_unit_test(test_connection_closed),
      cmocka_unit_test(test_goaway),
      cmocka_unit_test(test_grpc_message_escapes),
      cmocka_unit_test(test_status_before_client_done),
      cmocka_unit_test(test_async),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
