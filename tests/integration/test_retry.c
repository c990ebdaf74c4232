#define _POSIX_C_SOURCE 200809L
/*
 * test_retry.c: the service config applied to calls (gRFC A2) and retries
 * (gRFC A6) against an in-process crpc server that counts the attempts it
 * sees, and gRPC's transparent retry of a refused stream (rawh2.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <crpc/crpc.h>

#include "echo.pb-c.h"
#include "rawh2.h"

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

typedef Crpc__Itest__EchoRequest Req;
typedef Crpc__Itest__EchoReply Rep;
#define REQ_INIT CRPC__ITEST__ECHO_REQUEST__INIT

/* What the server saw; guarded by mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int attempts;       /* handler invocations since the test's reset */
static int fail_first;     /* the first this many attempts fail */

static void reset(int fail) {
  pthread_mutex_lock(&mu);
  attempts = 0;
  fail_first = fail;
  pthread_mutex_unlock(&mu);
}

static int count(void) {
  pthread_mutex_lock(&mu);
  int n = attempts;
  pthread_mutex_unlock(&mu);
  return n;
}

/* Counts the attempt; true when it is one that must fail. */
static bool note_attempt(crpc_call *c) {
  pthread_mutex_lock(&mu);
  bool fail = attempts++ < fail_first;
  pthread_mutex_unlock(&mu);
  return fail;
}

/* Woken by crpc_call_on_cancel (state on the handler's stack). */
typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool cancelled;
} waiter;

static void on_cancel(crpc_call *c, void *ud) {
  waiter *w = ud;
  pthread_mutex_lock(&w->mu);
  w->cancelled = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static crpc_code h_unary(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  const Req *r = (const Req *)req;
  if (note_attempt(c))
    return CRPC_UNAVAILABLE;
  if (r->sleep_ms > 0) { /* waits until cancelled (the deadline) */
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    assert_int_equal(crpc_call_on_cancel(c, on_cancel, &w), 0);
    pthread_mutex_lock(&w.mu);
    while (!w.cancelled)
      pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    crpc_call_on_cancel(c, NULL, NULL);
    return CRPC_CANCELLED;
  }
  ((Rep *)resp)->text = crpc_call_arena_strdup(c, r->text);
  return CRPC_OK;
}

/* One reply (the response headers go with it), then UNAVAILABLE. */
static crpc_code h_sstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  note_attempt(c);
  Rep rep = CRPC__ITEST__ECHO_REPLY__INIT;
  rep.text = "one";
  crpc_call_write(c, &rep.base);
  return CRPC_UNAVAILABLE;
}

/* Reads every message; the reply says what arrived. */
static crpc_code h_cstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  ProtobufCMessage *m;
  char buf[256] = "";
  int n = 0;
  while (crpc_call_read(c, &m)) {
    Req *r = (Req *)m;
    strncat(buf, r->text, sizeof buf - strlen(buf) - 1);
    n++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  if (note_attempt(c))
    return CRPC_UNAVAILABLE;
  Rep *out = (Rep *)resp;
  out->text = crpc_call_arena_strdup(c, buf);
  out->index = n;
  return CRPC_OK;
}

static crpc_server *server;
static char target[64];

static int setup(void **state) {
  int port;
  assert_int_equal(crpc_server_new(&server, NULL), 0);
  assert_int_equal(crpc_server_register(server, &m_unary, h_unary, 0, NULL),
                   0);
  assert_int_equal(
      crpc_server_register(server, &m_sstream, h_sstream, 0, NULL), 0);
  assert_int_equal(
      crpc_server_register(server, &m_cstream, h_cstream, 0, NULL), 0);
  assert_int_equal(crpc_server_listen(server, "127.0.0.1:0", NULL, &port), 0);
  assert_int_equal(crpc_server_start(server), 0);
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  return 0;
}

static int teardown(void **state) {
  crpc_server_shutdown(server, 1000);
  crpc_server_free(server);
  return 0;
}

#define RETRY_CFG(attempts, extra)                                             \
  "{\"methodConfig\":[{\"name\":[{\"service\":\"crpc.itest.Echo\"}],"          \
  "\"retryPolicy\":{\"maxAttempts\":" #attempts ","                            \
  "\"initialBackoff\":\"0.001s\",\"maxBackoff\":\"0.01s\","                    \
  "\"backoffMultiplier\":2,\"retryableStatusCodes\":[\"UNAVAILABLE\"]}}]"      \
  extra "}"

static crpc_channel *chan(const char *cfg) {
  crpc_channel *ch;
  char err[256];
  crpc_channel_opts o = {.service_config_json = cfg, .error_buf = err,
                         .error_buf_size = sizeof err};
  int rv = crpc_channel_new(&ch, target, &o);
  if (rv != 0)
    fail_msg("crpc_channel_new: %d %s", rv, err);
  assert_string_equal(err, "");
  return ch;
}

static crpc_code unary(crpc_channel *ch, const char *text, int sleep_ms,
                       crpc_status *st) {
  Req req = REQ_INIT;
  req.text = (char *)text;
  req.sleep_ms = sleep_ms;
  ProtobufCMessage *resp = NULL;
  crpc_code code = crpc_unary(ch, &m_unary, NULL, &req.base, &resp, st);
  if (resp) {
    assert_string_equal(((Rep *)resp)->text, text);
    protobuf_c_message_free_unpacked(resp, NULL);
  }
  return code;
}

static void test_bad_config_fails_channel(void **state) {
  crpc_channel *ch = NULL;
  char err[256] = "x";
  crpc_channel_opts o = {
      .service_config_json = "{\"methodConfig\":[{\"timeout\":\"1x\"}]}",
      .error_buf = err,
      .error_buf_size = sizeof err};
  assert_int_equal(crpc_channel_new(&ch, target, &o), CRPC_EINVAL);
  assert_null(ch);
  assert_string_equal(err, "service config: methodConfig[0].timeout: "
                           "\"1x\" is not a duration (want a string such "
                           "as \"1.5s\")");
  o.service_config_json = "{";
  assert_int_equal(crpc_channel_new(&ch, target, &o), CRPC_EINVAL);
  assert_non_null(strstr(err, "malformed JSON"));
  o.error_buf = NULL; /* no buffer: still fails */
  assert_int_equal(crpc_channel_new(&ch, target, &o), CRPC_EINVAL);
}

static void test_retry_then_ok(void **state) {
  crpc_channel *ch = chan(RETRY_CFG(4, ""));
  crpc_status st = {0};
  reset(2);
  assert_int_equal(unary(ch, "hi", 0, &st), CRPC_OK);
  assert_int_equal(count(), 3);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
}

/* gRFC A66 with retries: one attempt record per try, each with its own
 * status; one call record. */
static void test_metrics_per_attempt(void **state) {
  crpc_metrics *mx;
  assert_int_equal(crpc_metrics_new(&mx, NULL), 0);
  crpc_channel *ch;
  crpc_channel_opts o = {.service_config_json = RETRY_CFG(4, ""),
                         .metrics = mx};
  assert_int_equal(crpc_channel_new(&ch, target, &o), 0);
  reset(2);
  assert_int_equal(unary(ch, "hi", 0, NULL), CRPC_OK);
  assert_int_equal(count(), 3);
  const char *meth = "crpc.itest.Echo/Unary";
  assert_int_equal(
      crpc_metrics_counter(mx, "grpc.client.attempt.started", meth), 3);
  uint64_t n = 0;
  assert_int_equal(crpc_metrics_histogram(mx, "grpc.client.attempt.duration",
                                          meth, CRPC_UNAVAILABLE, &n, NULL),
                   0);
  assert_int_equal(n, 2);
  assert_int_equal(crpc_metrics_histogram(mx, "grpc.client.attempt.duration",
                                          meth, CRPC_OK, &n, NULL),
                   0);
  assert_int_equal(n, 1);
  assert_int_equal(crpc_metrics_histogram(mx, "grpc.client.call.duration",
                                          meth, CRPC_OK, &n, NULL),
                   0);
  assert_int_equal(n, 1);
  assert_int_equal(crpc_metrics_histogram(mx, "grpc.client.call.duration",
                                          meth, CRPC_UNAVAILABLE, &n, NULL),
                   0);
  assert_int_equal(n, 0);
  crpc_channel_free(ch);
  crpc_metrics_free(mx);
}

static void test_retries_stop_at_max_attempts(void **state) {
  crpc_channel *ch = chan(RETRY_CFG(3, ""));
  crpc_status st = {0};
  reset(1000);
  assert_int_equal(unary(ch, "hi", 0, &st), CRPC_UNAVAILABLE);
  assert_int_equal(count(), 3);
  crpc_status_clear(&st);
  /* 1000 is capped at 5 (gRFC A6) */
  crpc_channel_free(ch);
  ch = chan(RETRY_CFG(1000, ""));
  reset(1000);
  assert_int_equal(unary(ch, "hi", 0, &st), CRPC_UNAVAILABLE);
  assert_int_equal(count(), 5);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
}

static void test_no_retry_without_policy_or_code(void **state) {
  crpc_channel *ch = chan(NULL);
  crpc_status st = {0};
  reset(1000);
  assert_int_equal(unary(ch, "hi", 0, &st), CRPC_UNAVAILABLE);
  assert_int_equal(count(), 1);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
}

static void test_throttle(void **state) {
  /* 10 tokens, a retry only while more than 5 are left: the first call
   * spends 5 on its 5 attempts, the second fails once and stops */
  crpc_channel *ch = chan(RETRY_CFG(
      5, ",\"retryThrottling\":{\"maxTokens\":10,\"tokenRatio\":0.1}"));
  crpc_status st = {0};
  reset(1000);
  assert_int_equal(unary(ch, "hi", 0, &st), CRPC_UNAVAILABLE);
  assert_int_equal(count(), 5);
  assert_int_equal(unary(ch, "hi", 0, &st), CRPC_UNAVAILABLE);
  assert_int_equal(count(), 6);
  assert_int_equal(unary(ch, "hi", 0, &st), CRPC_UNAVAILABLE);
  assert_int_equal(count(), 7);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
}

static void test_no_retry_after_headers(void **state) {
  crpc_channel *ch = chan(RETRY_CFG(5, ""));
  crpc_call *c;
  Req req = REQ_INIT;
  ProtobufCMessage *m;
  reset(0);
  assert_int_equal(crpc_call_start(&c, ch, &m_sstream, NULL), 0);
  assert_true(crpc_call_write(c, &req.base));
  assert_true(crpc_call_writes_done(c));
  assert_true(crpc_call_read(c, &m));
  protobuf_c_message_free_unpacked(m, NULL);
  assert_false(crpc_call_read(c, &m));
  assert_int_equal(crpc_call_finish(c, NULL), CRPC_UNAVAILABLE);
  assert_int_equal(count(), 1);
  crpc_call_free(c);
  crpc_channel_free(ch);
}

static crpc_code client_stream(crpc_channel *ch, int n, size_t payload,
                               Rep **out) {
  crpc_call *c;
  const char *texts[] = {"a", "b", "c", "d"};
  assert_int_equal(crpc_call_start(&c, ch, &m_cstream, NULL), 0);
  uint8_t *buf = calloc(1, payload + 1);
  for (int i = 0; i < n; i++) {
    Req req = REQ_INIT;
    req.text = (char *)texts[i % 4];
    req.payload.data = buf;
    req.payload.len = payload;
    assert_true(crpc_call_write(c, &req.base));
  }
  free(buf);
  ProtobufCMessage *resp = NULL;
  crpc_code code = crpc_call_finish_with_response(c, &resp, NULL);
  *out = (Rep *)resp;
  crpc_call_free(c);
  return code;
}

static void test_stream_replayed(void **state) {
  crpc_channel *ch = chan(RETRY_CFG(3, ""));
  Rep *rep;
  reset(1);
  assert_int_equal(client_stream(ch, 3, 10, &rep), CRPC_OK);
  assert_int_equal(count(), 2);
  assert_string_equal(rep->text, "abc");
  assert_int_equal(rep->index, 3);
  protobuf_c_message_free_unpacked(&rep->base, NULL);
  crpc_channel_free(ch);
}

static void test_buffer_limit_no_retry(void **state) {
  /* three 100 KiB messages: past the 256 KiB retry buffer */
  crpc_channel *ch = chan(RETRY_CFG(3, ""));
  Rep *rep;
  reset(1);
  assert_int_equal(client_stream(ch, 3, 100 * 1024, &rep), CRPC_UNAVAILABLE);
  assert_null(rep);
  assert_int_equal(count(), 1);
  crpc_channel_free(ch);
}

static void test_method_timeout(void **state) {
  crpc_channel *ch =
      chan("{\"methodConfig\":[{\"name\":[{\"service\":\"crpc.itest.Echo\","
           "\"method\":\"Unary\"}],\"timeout\":\"0.2s\"}]}");
  crpc_status st = {0};
  reset(0);
  assert_int_equal(unary(ch, "hi", 60000, &st), CRPC_DEADLINE_EXCEEDED);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
}

static void test_wait_for_ready(void **state) {
  /* nobody listens: without waitForReady UNAVAILABLE at once, with it the
   * call waits until its (config) deadline */
  char dead[64];
  crpc_server *s;
  int p;
  assert_int_equal(crpc_server_new(&s, NULL), 0);
  assert_int_equal(crpc_server_listen(s, "127.0.0.1:0", NULL, &p), 0);
  crpc_server_free(s);
  snprintf(dead, sizeof dead, "127.0.0.1:%d", p);
  const char *cfgs[] = {
      "{\"methodConfig\":[{\"name\":[{}],\"timeout\":\"0.3s\"}]}",
      "{\"methodConfig\":[{\"name\":[{}],\"timeout\":\"0.3s\","
      "\"waitForReady\":true}]}"};
  crpc_code want[] = {CRPC_UNAVAILABLE, CRPC_DEADLINE_EXCEEDED};
  for (int i = 0; i < 2; i++) {
    crpc_channel *ch;
    crpc_channel_opts o = {.service_config_json = cfgs[i]};
    assert_int_equal(crpc_channel_new(&ch, dead, &o), 0);
    crpc_status st = {0};
    assert_int_equal(unary(ch, "hi", 0, &st), want[i]);
    crpc_status_clear(&st);
    crpc_channel_free(ch);
  }
}

static void test_max_request_bytes(void **state) {
  crpc_channel *ch = chan("{\"methodConfig\":[{\"name\":[{}],"
                          "\"maxRequestMessageBytes\":8}]}");
  crpc_status st = {0};
  reset(0);
  assert_int_equal(unary(ch, "a much longer text", 0, &st),
                   CRPC_RESOURCE_EXHAUSTED);
  assert_int_equal(count(), 0);
  assert_int_equal(unary(ch, "ok", 0, &st), CRPC_OK);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
}

/* ---- a raw HTTP/2 server: headers crpc's server keeps to itself ---- */

static int raw_mode;     /* 0: refuse the first stream; 1: UNAVAILABLE
                            twice, then OK */
static int raw_streams;  /* [mu] requests seen */
static char raw_prev[8][8]; /* [mu] grpc-previous-rpc-attempts each */
static const char *raw_pushback; /* [mu] grpc-retry-pushback-ms to send */

static void on_raw(rawh2_stream *s, void *ud) {
  if (!s->remote_closed)
    return; /* answer once the request is complete */
  const char *prev = rawh2_header(s, "grpc-previous-rpc-attempts");
  pthread_mutex_lock(&mu);
  int n = raw_streams++;
  if (n < 8)
    snprintf(raw_prev[n], sizeof raw_prev[n], "%s", prev ? prev : "-");
  const char *pb = raw_pushback;
  pthread_mutex_unlock(&mu);
  if (raw_mode == 0 && n == 0) {
    rawh2_rst(s, NGHTTP2_REFUSED_STREAM);
  } else if (raw_mode == 0) {
    nghttp2_nv nv[4] = {RAWH2_NV(":status", "200"),
                        RAWH2_NV("content-type", "application/grpc"),
                        RAWH2_NV("grpc-status", "5"),
                        RAWH2_NV("grpc-message", "second")};
    rawh2_respond(s, nv, 4, true);
  } else if (n < 2) {
    nghttp2_nv nv[4] = {RAWH2_NV(":status", "200"),
                        RAWH2_NV("content-type", "application/grpc"),
                        RAWH2_NV("grpc-status", "14"),
                        RAWH2_NV("grpc-retry-pushback-ms", pb ? pb : "")};
    rawh2_respond(s, nv, pb ? 4 : 3, true);
  } else {
    nghttp2_nv nv[2] = {RAWH2_NV(":status", "200"),
                        RAWH2_NV("content-type", "application/grpc")};
    rawh2_respond(s, nv, 2, false);
    rawh2_write(s, "\0\0\0\0\0", 5, false); /* an empty reply */
    nghttp2_nv tr[1] = {RAWH2_NV("grpc-status", "0")};
    rawh2_trailers(s, tr, 1);
  }
}

static rawh2_server *raw_start(int mode, const char *pushback_ms, char *t,
                               size_t tlen) {
  raw_mode = mode;
  raw_streams = 0;
  raw_pushback = pushback_ms;
  memset(raw_prev, 0, sizeof raw_prev);
  rawh2_server *raw = rawh2_server_start(on_raw, NULL);
  assert_non_null(raw);
  snprintf(t, tlen, "127.0.0.1:%d", rawh2_server_port(raw));
  return raw;
}

static crpc_code raw_call(const char *t, const char *cfg, crpc_status *st) {
  crpc_channel *ch;
  crpc_channel_opts o = {.service_config_json = cfg};
  assert_int_equal(crpc_channel_new(&ch, t, &o), 0);
  Req req = REQ_INIT;
  req.text = "x";
  ProtobufCMessage *resp = NULL;
  crpc_code code = crpc_unary(ch, &m_unary, NULL, &req.base, &resp, st);
  if (resp)
    protobuf_c_message_free_unpacked(resp, NULL);
  crpc_channel_free(ch);
  return code;
}

static void test_transparent_retry(void **state) {
  char t[64];
  rawh2_server *raw = raw_start(0, NULL, t, sizeof t);
  crpc_status st = {0};
  /* no retry policy: the refused stream is retried once all the same */
  assert_int_equal(raw_call(t, NULL, &st), CRPC_NOT_FOUND);
  assert_string_equal(st.message, "second");
  crpc_status_clear(&st);
  rawh2_server_stop(raw);
  assert_int_equal(raw_streams, 2);
}

static void test_previous_attempts_header(void **state) {
  char t[64];
  rawh2_server *raw = raw_start(1, NULL, t, sizeof t);
  crpc_status st = {0};
  assert_int_equal(raw_call(t, RETRY_CFG(3, ""), &st), CRPC_OK);
  rawh2_server_stop(raw);
  assert_int_equal(raw_streams, 3);
  assert_string_equal(raw_prev[0], "-");
  assert_string_equal(raw_prev[1], "1");
  assert_string_equal(raw_prev[2], "2");
  crpc_status_clear(&st);
}

static void test_pushback(void **state) {
  char t[64];
  crpc_status st = {0};
  /* a negative (or malformed) pushback: do not retry */
  const char *stop[] = {"-1", "x1", ""};
  for (int i = 0; i < 3; i++) {
    rawh2_server *raw = raw_start(1, stop[i], t, sizeof t);
    assert_int_equal(raw_call(t, RETRY_CFG(5, ""), &st), CRPC_UNAVAILABLE);
    rawh2_server_stop(raw);
    assert_int_equal(raw_streams, 1);
    crpc_status_clear(&st);
  }
  /* a delay: retried after it */
  rawh2_server *raw = raw_start(1, "1", t, sizeof t);
  assert_int_equal(raw_call(t, RETRY_CFG(5, ""), &st), CRPC_OK);
  rawh2_server_stop(raw);
  assert_int_equal(raw_streams, 3);
  crpc_status_clear(&st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_config_fails_channel),
      cmocka_unit_test(test_retry_then_ok),
      cmocka_unit_test(test_retries_stop_at_max_attempts),
      cmocka_unit_test(test_metrics_per_attempt),
      cmocka_unit_test(test_no_retry_without_policy_or_code),
      cmocka_unit_test(test_throttle),
      cmocka_unit_test(test_pushback),
      cmocka_unit_test(test_no_retry_after_headers),
      cmocka_unit_test(test_stream_replayed),
      cmocka_unit_test(test_buffer_limit_no_retry),
      cmocka_unit_test(test_method_timeout),
      cmocka_unit_test(test_wait_for_ready),
      cmocka_unit_test(test_max_request_bytes),
      cmocka_unit_test(test_transparent_retry),
      cmocka_unit_test(test_previous_attempts_header),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
