/*
 * interop_core_client.c: crpc's client side of the crpc.test.Echo interop
 * checks (interop_core.proto); py_client.py runs the same checks from
 * Python grpcio.
 *
 *   interop-core-client --target=HOST:PORT [--check=NAME]...
 *
 * Prints "PASS name" or "FAIL name: why" per check and a last line
 * "N passed, M failed"; exits 1 if any check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "interop_core.crpc.h"

#define CALL_TIMEOUT_MS 20000

typedef struct ctx {
  crpc_channel *ch;
  char why[1024];
} ctx;

static void failf(ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void failf(ctx *c, const char *fmt, ...) {
  if (c->why[0] != '\0') {
    return; /* keep the first reason */
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->why, sizeof(c->why), fmt, ap);
  va_end(ap);
}

/* Records the failure and jumps to the check's clean-up label "out". */
#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      failf(c, __VA_ARGS__);                                                   \
      goto out;                                                                \
    }                                                                          \
  } while (0)

#define EXPECT_CODE(got, st, want)                                             \
  EXPECT((got) == (want), "status %s (%s), want %s", crpc_code_name(got),      \
         crpc_status_message(st), crpc_code_name(want))

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_tag(char *out, size_t n, const char *name) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(out, n, "%s-%ld-%lld%09ld", name, (long)getpid(),
           (long long)ts.tv_sec, ts.tv_nsec);
}

static void fill_pattern(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)((i * 7 + 3) & 0xFF);
  }
}

static void fill_random(uint8_t *p, size_t n, unsigned *seed) {
  for (size_t i = 0; i < n; i++) {
    *seed = *seed * 1103515245u + 12345u;
    p[i] = (uint8_t)(*seed >> 16);
  }
}

static bool bytes_eq(ProtobufCBinaryData b, const void *p, size_t n) {
  return b.len == n && (n == 0 || memcmp(b.data, p, n) == 0);
}

static crpc_call_opts default_opts(void) {
  crpc_call_opts o = {0};
  o.timeout_ms = CALL_TIMEOUT_MS;
  return o;
}

/* What the server's handler saw for a tagged call. */
static crpc_code get_outcome(ctx *c, const char *tag, Crpc__Test__Outcome **out,
                             crpc_status *st) {
  Crpc__Test__OutcomeRequest req = CRPC__TEST__OUTCOME_REQUEST__INIT;
  req.tag = (char *)tag;
  req.wait_ms = 10000;
  crpc_call_opts o = default_opts();
  return crpc__test__echo__get_outcome__call(c->ch, &o, &req, out, st);
}

/* ---------------------------------------------------------- unary ---- */

static bool unary_basic(ctx *c) {
  static const uint8_t payload[] = {0x00, 0x01, 0xfe, 0xff};
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.message = "hello crpc";
  req.payload.data = (uint8_t *)payload;
  req.payload.len = sizeof(payload);
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  bool ok = false;
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(strcmp(resp->message, "hello crpc") == 0, "message %s", resp->message);
  EXPECT(bytes_eq(resp->payload, payload, sizeof(payload)), "payload");
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

static bool unary_empty(ctx *c) {
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  bool ok = false;
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(resp->message[0] == '\0' && resp->payload.len == 0 &&
             resp->index == 0 && resp->count == 0,
         "response not empty");
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

static bool unary_large_request(ctx *c) {
  size_t n = 1024 * 1024;
  unsigned seed = 42;
  uint8_t *payload = malloc(n);
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  bool ok = false;
  EXPECT(payload != NULL, "out of memory");
  fill_random(payload, n, &seed);
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.payload.data = payload;
  req.payload.len = n;
  crpc_call_opts o = default_opts();
  o.timeout_ms = 10000; /* a stall fails fast */
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(bytes_eq(resp->payload, payload, n), "1 MiB payload not intact");
  ok = true;
out:
  free(payload);
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

static bool unary_large_response(ctx *c) {
  size_t n = 3 * 1024 * 1024;
  uint8_t *want = malloc(n);
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  bool ok = false;
  EXPECT(want != NULL, "out of memory");
  fill_pattern(want, n);
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.response_size = (int32_t)n;
  crpc_call_opts o = default_opts();
  o.timeout_ms = 10000; /* a stall fails fast */
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(bytes_eq(resp->payload, want, n), "3 MiB payload corrupt");
  ok = true;
out:
  free(want);
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

/* The deadline as the server's handler saw it (|timeout_ms| 0: none). */
static bool time_left_check(ctx *c, int64_t timeout_ms) {
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = {0};
  o.timeout_ms = timeout_ms;
  bool ok = false;
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  if (timeout_ms > 0) {
    EXPECT(resp->time_left_ms > 0 && resp->time_left_ms <= timeout_ms,
           "server saw time_left_ms=%lld for %lld ms",
           (long long)resp->time_left_ms, (long long)timeout_ms);
  } else {
    EXPECT(resp->time_left_ms == -1, "server saw time_left_ms=%lld, want -1",
           (long long)resp->time_left_ms);
  }
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

static bool unary_time_left(ctx *c) { return time_left_check(c, 30000); }

static bool unary_no_deadline(ctx *c) { return time_left_check(c, 0); }

/* ---------------------------------------------------- server stream ---- */

/* Runs ServerStream(req) to the end; counts responses; checks each one's
 * index and message (and payload if |payload| is set). */
static crpc_code server_stream_run(ctx *c, const Crpc__Test__EchoRequest *req,
                                   const crpc_call_opts *o,
                                   const uint8_t *payload, size_t payload_len,
                                   int *count, crpc_status *st) {
  crpc_call *call = NULL;
  int rv = crpc__test__echo__server_stream__start(&call, c->ch, o, req);
  if (rv != 0) {
    failf(c, "start: %s", crpc_strerror(rv));
    return CRPC_UNKNOWN;
  }
  Crpc__Test__EchoResponse *r;
  *count = 0;
  while (crpc__test__echo__server_stream__read(call, &r)) {
    if (r->index != *count || strcmp(r->message, req->message) != 0) {
      failf(c, "response %d: index %d message '%s'", *count, r->index,
            r->message);
    }
    if (payload != NULL && !bytes_eq(r->payload, payload, payload_len)) {
      failf(c, "response %d: payload differs", *count);
    }
    (*count)++;
    crpc__test__echo_response__free_unpacked(r, NULL);
  }
  crpc_code code = crpc__test__echo__server_stream__finish(call, st);
  crpc_call_free(call);
  return code;
}

static bool server_stream(ctx *c) {
  static const uint8_t p[] = {'p'};
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.message = "s";
  req.payload.data = (uint8_t *)p;
  req.payload.len = 1;
  req.response_count = 10;
  crpc_call_opts o = default_opts();
  crpc_status st = {0};
  int n = 0;
  bool ok = false;
  crpc_code code = server_stream_run(c, &req, &o, p, 1, &n, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(n == 10, "%d responses, want 10", n);
  ok = c->why[0] == '\0';
out:
  crpc_status_clear(&st);
  return ok;
}

static bool server_stream_large(ctx *c) {
  size_t size = 256 * 1024;
  uint8_t *want = malloc(size);
  crpc_status st = {0};
  int n = 0;
  bool ok = false;
  EXPECT(want != NULL, "out of memory");
  fill_pattern(want, size);
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.response_count = 16;
  req.response_size = (int32_t)size;
  crpc_call_opts o = default_opts();
  crpc_code code = server_stream_run(c, &req, &o, want, size, &n, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(n == 16, "%d responses, want 16", n);
  ok = c->why[0] == '\0';
out:
  free(want);
  crpc_status_clear(&st);
  return ok;
}

static bool server_stream_empty(ctx *c) {
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  crpc_call_opts o = default_opts();
  crpc_status st = {0};
  int n = -1;
  bool ok = false;
  crpc_code code = server_stream_run(c, &req, &o, NULL, 0, &n, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(n == 0, "%d responses, want 0", n);
  ok = c->why[0] == '\0';
out:
  crpc_status_clear(&st);
  return ok;
}

static bool server_stream_status_after(ctx *c) {
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.response_count = 3;
  req.status_code = CRPC_ABORTED;
  req.status_message = "aborted after three";
  crpc_call_opts o = default_opts();
  crpc_status st = {0};
  int n = 0;
  bool ok = false;
  crpc_code code = server_stream_run(c, &req, &o, NULL, 0, &n, &st);
  EXPECT_CODE(code, &st, CRPC_ABORTED);
  EXPECT(n == 3, "%d responses before the status, want 3", n);
  EXPECT(st.message != NULL && strcmp(st.message, "aborted after three") == 0,
         "status message '%s'", crpc_status_message(&st));
  ok = c->why[0] == '\0';
out:
  crpc_status_clear(&st);
  return ok;
}

/* ---------------------------------------------------- client stream ---- */

static bool client_stream(ctx *c) {
  crpc_call *call = NULL;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  uint8_t want[10 * 1000];
  bool ok = false;
  int rv = crpc__test__echo__client_stream__start(&call, c->ch, &o);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  for (int i = 0; i < 10; i++) {
    char msg[32];
    uint8_t payload[1000];
    snprintf(msg, sizeof(msg), "%d", i);
    memset(payload, i, sizeof(payload));
    memcpy(want + i * 1000, payload, sizeof(payload));
    Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
    req.message = msg;
    req.payload.data = payload;
    req.payload.len = sizeof(payload);
    EXPECT(crpc__test__echo__client_stream__write(call, &req),
           "write %d failed", i);
  }
  crpc_code code = crpc__test__echo__client_stream__finish(call, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(resp->count == 10, "count %d", resp->count);
  EXPECT(strcmp(resp->message, "0123456789") == 0, "messages '%s'",
         resp->message);
  EXPECT(bytes_eq(resp->payload, want, sizeof(want)), "payloads differ");
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_call_free(call);
  crpc_status_clear(&st);
  return ok;
}

static bool client_stream_empty(ctx *c) {
  crpc_call *call = NULL;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  bool ok = false;
  int rv = crpc__test__echo__client_stream__start(&call, c->ch, &o);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  crpc_code code = crpc__test__echo__client_stream__finish(call, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(resp->count == 0, "count %d", resp->count);
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_call_free(call);
  crpc_status_clear(&st);
  return ok;
}

static bool client_stream_early_status(ctx *c) {
  crpc_call *call = NULL;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  bool ok = false;
  int rv = crpc__test__echo__client_stream__start(&call, c->ch, &o);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  Crpc__Test__EchoRequest a = CRPC__TEST__ECHO_REQUEST__INIT;
  a.message = "a";
  EXPECT(crpc__test__echo__client_stream__write(call, &a), "first write");
  Crpc__Test__EchoRequest b = CRPC__TEST__ECHO_REQUEST__INIT;
  b.status_code = CRPC_FAILED_PRECONDITION;
  b.status_message = "stop here";
  /* The server may already have ended the call: a false write is fine. */
  (void)crpc__test__echo__client_stream__write(call, &b);
  crpc_code code = crpc__test__echo__client_stream__finish(call, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_FAILED_PRECONDITION);
  EXPECT(resp == NULL, "a response with an error status");
  EXPECT(st.message != NULL && strcmp(st.message, "stop here") == 0,
         "status message '%s'", crpc_status_message(&st));
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_call_free(call);
  crpc_status_clear(&st);
  return ok;
}

/* ------------------------------------------------------------- bidi ---- */

static bool bidi_ping_pong(ctx *c) {
  crpc_call *call = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  Crpc__Test__EchoResponse *r = NULL;
  bool ok = false;
  int rv = crpc__test__echo__bidi__start(&call, c->ch, &o);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  for (int i = 0; i < 10; i++) {
    char msg[32];
    snprintf(msg, sizeof(msg), "ping %d", i);
    Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
    req.message = msg;
    EXPECT(crpc__test__echo__bidi__write(call, &req), "write %d", i);
    EXPECT(crpc__test__echo__bidi__read(call, &r), "no response %d", i);
    EXPECT(strcmp(r->message, msg) == 0 && r->index == i,
           "response %d: '%s' index %d", i, r->message, r->index);
    crpc__test__echo_response__free_unpacked(r, NULL);
    r = NULL;
  }
  EXPECT(crpc__test__echo__bidi__writes_done(call), "writes_done");
  EXPECT(!crpc__test__echo__bidi__read(call, &r), "a response after the end");
  crpc_code code = crpc__test__echo__bidi__finish(call, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  ok = true;
out:
  if (r != NULL) {
    crpc__test__echo_response__free_unpacked(r, NULL);
  }
  crpc_call_free(call);
  crpc_status_clear(&st);
  return ok;
}

static bool bidi_batch(ctx *c) {
  enum { N = 50 };
  crpc_call *call = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  Crpc__Test__EchoResponse *r = NULL;
  static uint8_t payloads[N][20 * N];
  unsigned seed = 7;
  int got = 0;
  bool ok = false;
  int rv = crpc__test__echo__bidi__start(&call, c->ch, &o);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  /* Everything is written before anything is read, so keep the total
   * well under the flow control windows (this thread is both sides). */
  for (int i = 0; i < N; i++) {
    char msg[32];
    snprintf(msg, sizeof(msg), "m%d", i);
    fill_random(payloads[i], (size_t)(20 * i), &seed);
    Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
    req.message = msg;
    req.payload.data = payloads[i];
    req.payload.len = (size_t)(20 * i);
    EXPECT(crpc__test__echo__bidi__write(call, &req), "write %d", i);
  }
  EXPECT(crpc__test__echo__bidi__writes_done(call), "writes_done");
  while (crpc__test__echo__bidi__read(call, &r)) {
    char msg[32];
    snprintf(msg, sizeof(msg), "m%d", got);
    EXPECT(got < N && strcmp(r->message, msg) == 0 &&
               bytes_eq(r->payload, payloads[got], (size_t)(20 * got)),
           "response %d differs", got);
    crpc__test__echo_response__free_unpacked(r, NULL);
    r = NULL;
    got++;
  }
  crpc_code code = crpc__test__echo__bidi__finish(call, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(got == N, "%d responses, want %d", got, N);
  ok = true;
out:
  if (r != NULL) {
    crpc__test__echo_response__free_unpacked(r, NULL);
  }
  crpc_call_free(call);
  crpc_status_clear(&st);
  return ok;
}

static bool bidi_status(ctx *c) {
  crpc_call *call = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  Crpc__Test__EchoResponse *r = NULL;
  int got = 0;
  bool ok = false;
  int rv = crpc__test__echo__bidi__start(&call, c->ch, &o);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.message = "1";
  EXPECT(crpc__test__echo__bidi__write(call, &req), "write 1");
  req.message = "2";
  EXPECT(crpc__test__echo__bidi__write(call, &req), "write 2");
  req.message = "";
  req.status_code = CRPC_RESOURCE_EXHAUSTED;
  req.status_message = "enough";
  (void)crpc__test__echo__bidi__write(call, &req);
  (void)crpc__test__echo__bidi__writes_done(call);
  while (crpc__test__echo__bidi__read(call, &r)) {
    EXPECT(got < 2 && strcmp(r->message, got == 0 ? "1" : "2") == 0,
           "response %d: '%s'", got, r->message);
    crpc__test__echo_response__free_unpacked(r, NULL);
    r = NULL;
    got++;
  }
  crpc_code code = crpc__test__echo__bidi__finish(call, &st);
  EXPECT_CODE(code, &st, CRPC_RESOURCE_EXHAUSTED);
  EXPECT(got == 2, "%d responses, want 2", got);
  EXPECT(st.message != NULL && strcmp(st.message, "enough") == 0,
         "status message '%s'", crpc_status_message(&st));
  ok = true;
out:
  if (r != NULL) {
    crpc__test__echo_response__free_unpacked(r, NULL);
  }
  crpc_call_free(call);
  crpc_status_clear(&st);
  return ok;
}

/* --------------------------------------------------------- metadata ---- */

static const uint8_t blob[] = {0x00, 0x01, 0x80, 0xff, ' ',  'b', 'i',
                               'n',  'a',  'r',  'y',  '\r', '\n'};

static int echo_md_new(crpc_metadata **out) {
  crpc_metadata *md = NULL;
  int rv = crpc_metadata_new(&md);
  if (rv == 0) {
    rv = crpc_metadata_add_str(md, "x-echo-ascii", "Hello, metadata! ~ 0123");
  }
  if (rv == 0) {
    rv = crpc_metadata_add(md, "x-echo-blob-bin", blob, sizeof(blob));
  }
  if (rv == 0) {
    rv = crpc_metadata_add_str(md, "x-echo-twice", "one");
  }
  if (rv == 0) {
    rv = crpc_metadata_add_str(md, "x-echo-twice", "two");
  }
  if (rv == 0) {
    rv = crpc_metadata_add_str(md, "x-not-echoed", "must not come back");
  }
  if (rv != 0) {
    crpc_metadata_free(md);
    md = NULL;
  }
  *out = md;
  return rv;
}

/* The values of |key| in up to two lists, in order. */
static size_t md_values(const crpc_metadata *a, const crpc_metadata *b,
                        const char *key, const uint8_t **vals, size_t *lens,
                        size_t max) {
  size_t n = 0;
  const crpc_metadata *lists[2] = {a, b};
  for (int l = 0; l < 2; l++) {
    size_t count = lists[l] != NULL ? crpc_metadata_count(lists[l]) : 0;
    for (size_t i = 0; i < count; i++) {
      const char *k;
      const uint8_t *v;
      size_t len;
      if (crpc_metadata_at(lists[l], i, &k, &v, &len) == 0 &&
          strcmp(k, key) == 0 && n < max) {
        vals[n] = v;
        lens[n] = len;
        n++;
      }
    }
  }
  return n;
}

static bool value_is(const uint8_t *v, size_t len, const void *want,
                     size_t want_len) {
  return len == want_len && memcmp(v, want, len) == 0;
}

/* Checks the echo of echo_md_new()'s list in |md| (and |md2|, for errors
 * where headers and trailers may arrive together). |exact|: each value
 * exactly once; otherwise at least once. */
static bool check_echoed(ctx *c, const crpc_metadata *md,
                         const crpc_metadata *md2, bool exact,
                         const char *where) {
  const uint8_t *v[8];
  size_t len[8];
  size_t n = md_values(md, md2, "x-echo-ascii", v, len, 8);
  const char *ascii = "Hello, metadata! ~ 0123";
  if (n < 1 || (exact && n != 1) ||
      !value_is(v[0], len[0], ascii, strlen(ascii))) {
    failf(c, "%s: x-echo-ascii missing or wrong (%zu values)", where, n);
    return false;
  }
  n = md_values(md, md2, "x-echo-blob-bin", v, len, 8);
  if (n < 1 || (exact && n != 1) ||
      !value_is(v[0], len[0], blob, sizeof(blob))) {
    failf(c, "%s: x-echo-blob-bin missing or wrong (%zu values)", where, n);
    return false;
  }
  n = md_values(md, md2, "x-echo-twice", v, len, 8);
  if (n < 2 || (exact && n != 2) || !value_is(v[0], len[0], "one", 3) ||
      !value_is(v[1], len[1], "two", 3)) {
    failf(c, "%s: x-echo-twice missing or wrong (%zu values)", where, n);
    return false;
  }
  if (md_values(md, md2, "x-not-echoed", v, len, 8) != 0) {
    failf(c, "%s: x-not-echoed came back", where);
    return false;
  }
  return true;
}

static bool metadata_unary(ctx *c) {
  crpc_metadata *md = NULL, *headers = NULL, *trailers = NULL;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  bool ok = false;
  EXPECT(echo_md_new(&md) == 0 && crpc_metadata_new(&headers) == 0 &&
             crpc_metadata_new(&trailers) == 0,
         "metadata set-up failed");
  crpc_call_opts o = default_opts();
  o.metadata = md;
  o.initial_metadata_out = headers;
  o.trailing_metadata_out = trailers;
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.message = "md";
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(strcmp(resp->message, "md") == 0, "message");
  EXPECT(check_echoed(c, headers, NULL, true, "headers"), "headers");
  EXPECT(check_echoed(c, trailers, NULL, true, "trailers"), "trailers");
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_metadata_free(md);
  crpc_metadata_free(headers);
  crpc_metadata_free(trailers);
  crpc_status_clear(&st);
  return ok;
}

static bool metadata_server_stream(ctx *c) {
  crpc_metadata *md = NULL;
  crpc_call *call = NULL;
  Crpc__Test__EchoResponse *r = NULL;
  crpc_status st = {0};
  int n = 0;
  bool ok = false;
  EXPECT(echo_md_new(&md) == 0, "metadata set-up failed");
  crpc_call_opts o = default_opts();
  o.metadata = md;
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.response_count = 2;
  int rv = crpc__test__echo__server_stream__start(&call, c->ch, &o, &req);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  EXPECT(
      check_echoed(c, crpc_call_initial_metadata(call), NULL, true, "headers"),
      "headers");
  while (crpc__test__echo__server_stream__read(call, &r)) {
    crpc__test__echo_response__free_unpacked(r, NULL);
    r = NULL;
    n++;
  }
  crpc_code code = crpc__test__echo__server_stream__finish(call, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(n == 2, "%d responses", n);
  EXPECT(check_echoed(c, crpc_call_trailing_metadata(call), NULL, true,
                      "trailers"),
         "trailers");
  ok = true;
out:
  crpc_call_free(call);
  crpc_metadata_free(md);
  crpc_status_clear(&st);
  return ok;
}

static bool metadata_bidi(ctx *c) {
  crpc_metadata *md = NULL, *headers = NULL, *trailers = NULL;
  crpc_call *call = NULL;
  Crpc__Test__EchoResponse *r = NULL;
  crpc_status st = {0};
  int n = 0;
  bool ok = false;
  EXPECT(echo_md_new(&md) == 0 && crpc_metadata_new(&headers) == 0 &&
             crpc_metadata_new(&trailers) == 0,
         "metadata set-up failed");
  /* Streaming calls fill the opts' lists too. */
  crpc_call_opts o = default_opts();
  o.metadata = md;
  o.initial_metadata_out = headers;
  o.trailing_metadata_out = trailers;
  int rv = crpc__test__echo__bidi__start(&call, c->ch, &o);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  for (int i = 0; i < 3; i++) {
    Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
    req.message = "x";
    EXPECT(crpc__test__echo__bidi__write(call, &req), "write");
  }
  EXPECT(crpc__test__echo__bidi__writes_done(call), "writes_done");
  while (crpc__test__echo__bidi__read(call, &r)) {
    crpc__test__echo_response__free_unpacked(r, NULL);
    r = NULL;
    n++;
  }
  crpc_code code = crpc__test__echo__bidi__finish(call, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(n == 3, "%d responses", n);
  EXPECT(check_echoed(c, headers, NULL, true, "headers"), "headers");
  EXPECT(check_echoed(c, trailers, NULL, true, "trailers"), "trailers");
  ok = true;
out:
  crpc_call_free(call);
  crpc_metadata_free(md);
  crpc_metadata_free(headers);
  crpc_metadata_free(trailers);
  crpc_status_clear(&st);
  return ok;
}

static bool metadata_error_trailers(ctx *c) {
  crpc_metadata *md = NULL, *headers = NULL, *trailers = NULL;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  bool ok = false;
  EXPECT(echo_md_new(&md) == 0 && crpc_metadata_new(&headers) == 0 &&
             crpc_metadata_new(&trailers) == 0,
         "metadata set-up failed");
  crpc_call_opts o = default_opts();
  o.metadata = md;
  o.initial_metadata_out = headers;
  o.trailing_metadata_out = trailers;
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.status_code = CRPC_NOT_FOUND;
  req.status_message = "nope";
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_NOT_FOUND);
  /* Without a message, headers may travel with the trailers. */
  EXPECT(check_echoed(c, headers, trailers, false, "headers+trailers"),
         "metadata");
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_metadata_free(md);
  crpc_metadata_free(headers);
  crpc_metadata_free(trailers);
  crpc_status_clear(&st);
  return ok;
}

static bool metadata_bin_all_bytes(ctx *c) {
  crpc_metadata *md = NULL, *headers = NULL, *trailers = NULL;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  uint8_t value[1024];
  bool ok = false;
  for (size_t i = 0; i < sizeof(value); i++) {
    value[i] = (uint8_t)i;
  }
  EXPECT(crpc_metadata_new(&md) == 0 && crpc_metadata_new(&headers) == 0 &&
             crpc_metadata_new(&trailers) == 0 &&
             crpc_metadata_add(md, "x-echo-all-bin", value, sizeof(value)) == 0,
         "metadata set-up failed");
  crpc_call_opts o = default_opts();
  o.metadata = md;
  o.initial_metadata_out = headers;
  o.trailing_metadata_out = trailers;
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  const uint8_t *v[2];
  size_t len[2];
  EXPECT(md_values(headers, NULL, "x-echo-all-bin", v, len, 2) == 1 &&
             value_is(v[0], len[0], value, sizeof(value)),
         "header value differs");
  EXPECT(md_values(trailers, NULL, "x-echo-all-bin", v, len, 2) == 1 &&
             value_is(v[0], len[0], value, sizeof(value)),
         "trailer value differs");
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_metadata_free(md);
  crpc_metadata_free(headers);
  crpc_metadata_free(trailers);
  crpc_status_clear(&st);
  return ok;
}

/* ----------------------------------------------------------- status ---- */

/* Needs percent-encoding on the wire: non-ASCII UTF-8, '%' (also before
 * hex digits and at the end), a newline and a tab. */
static const char status_text[] =
    "100% sure: \xc3\xbcn\xc3\xaf"
    "c\xc3\xb6"
    "d\xc3\xa9 \xe2\x9c\x93 "
    "\xe2\x80\x94 \xe2\x98\x83 \xf0\x9f\x98\x80\nsecond line\ttab %41 %zz %";

static bool status_message_encoding(ctx *c) {
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  bool ok = false;
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.status_code = CRPC_INVALID_ARGUMENT;
  req.status_message = (char *)status_text;
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_INVALID_ARGUMENT);
  EXPECT(st.message != NULL && strcmp(st.message, status_text) == 0,
         "status message arrived as '%s'", crpc_status_message(&st));
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

static bool status_all_codes(ctx *c) {
  bool ok = false;
  crpc_status st = {0};
  Crpc__Test__EchoResponse *resp = NULL;
  for (int code = 1; code <= 16; code++) {
    char msg[64];
    snprintf(msg, sizeof(msg), "code %s", crpc_code_name((crpc_code)code));
    Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
    req.status_code = code;
    req.status_message = msg;
    crpc_call_opts o = default_opts();
    crpc_code got = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
    EXPECT_CODE(got, &st, (crpc_code)code);
    EXPECT(st.message != NULL && strcmp(st.message, msg) == 0,
           "%s: message '%s'", msg, crpc_status_message(&st));
    crpc_status_clear(&st);
  }
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

/* ---------------------------------------------------------- deadline ---- */

static bool deadline_exceeded(ctx *c) {
  char tag[96];
  make_tag(tag, sizeof(tag), "deadline");
  Crpc__Test__EchoResponse *resp = NULL;
  Crpc__Test__Outcome *oc = NULL;
  crpc_status st = {0};
  bool ok = false;
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.sleep_ms = 20000;
  req.tag = tag;
  crpc_call_opts o = {0};
  o.timeout_ms = 300;
  int64_t t0 = now_ms();
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  int64_t took = now_ms() - t0;
  EXPECT_CODE(code, &st, CRPC_DEADLINE_EXCEEDED);
  EXPECT(took >= 250 && took < 10000, "a 300 ms deadline fired after %lld ms",
         (long long)took);
  crpc_status_clear(&st);
  code = get_outcome(c, tag, &oc, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(oc->found, "the server recorded no outcome");
  EXPECT(oc->cancelled, "the server handler did not see the deadline pass");
  EXPECT(oc->time_left_ms > 0 && oc->time_left_ms <= 300,
         "server saw time_left_ms=%lld for 300 ms",
         (long long)oc->time_left_ms);
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  if (oc != NULL) {
    crpc__test__outcome__free_unpacked(oc, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

static bool deadline_server_stream(ctx *c) {
  char tag[96];
  make_tag(tag, sizeof(tag), "deadline-stream");
  Crpc__Test__Outcome *oc = NULL;
  crpc_status st = {0};
  int n = 0;
  bool ok = false;
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.response_count = 1000;
  req.sleep_ms = 20;
  req.tag = tag;
  crpc_call_opts o = {0};
  o.timeout_ms = 500;
  crpc_code code = server_stream_run(c, &req, &o, NULL, 0, &n, &st);
  EXPECT_CODE(code, &st, CRPC_DEADLINE_EXCEEDED);
  EXPECT(n > 0 && n < 1000, "%d responses before the deadline", n);
  crpc_status_clear(&st);
  code = get_outcome(c, tag, &oc, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(oc->found && oc->cancelled,
         "the server handler did not see the deadline pass (found %d, "
         "cancelled %d, %d messages)",
         oc->found, oc->cancelled, oc->messages);
  ok = c->why[0] == '\0';
out:
  if (oc != NULL) {
    crpc__test__outcome__free_unpacked(oc, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

/* ---------------------------------------------------- unimplemented ---- */

static bool unimplemented_method(ctx *c) {
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  bool ok = false;
  crpc_code code =
      crpc__test__echo__unimplemented__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_UNIMPLEMENTED);
  EXPECT(resp == NULL, "a response with UNIMPLEMENTED");
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

static bool unknown_service(ctx *c) {
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  bool ok = false;
  crpc_code code =
      crpc__test__not_served__nothing__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_UNIMPLEMENTED);
  ok = true;
out:
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

static bool unknown_method_path(ctx *c) {
  static const crpc_method nosuch = {"/crpc.test.Echo/NoSuchMethod", CRPC_UNARY,
                                     &crpc__test__echo_request__descriptor,
                                     &crpc__test__echo_response__descriptor};
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  Crpc__Test__EchoResponse *r2 = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  bool ok = false;
  crpc_code code = crpc_unary(c->ch, &nosuch, &o, &req.base, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_UNIMPLEMENTED);
  crpc_status_clear(&st);
  /* The connection is still good for the next call. */
  req.message = "ok";
  code = crpc__test__echo__unary__call(c->ch, &o, &req, &r2, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(strcmp(r2->message, "ok") == 0, "next call's message");
  ok = true;
out:
  if (resp != NULL) {
    protobuf_c_message_free_unpacked(resp, NULL);
  }
  if (r2 != NULL) {
    crpc__test__echo_response__free_unpacked(r2, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

/* ----------------------------------------------------- cancellation ---- */

static bool cancel_server_stream(ctx *c) {
  char tag[96];
  make_tag(tag, sizeof(tag), "cancel-stream");
  crpc_call *call = NULL;
  Crpc__Test__EchoResponse *r = NULL;
  Crpc__Test__Outcome *oc = NULL;
  crpc_status st = {0};
  bool ok = false;
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.response_count = 5000;
  req.sleep_ms = 2;
  req.tag = tag;
  crpc_call_opts o = {0};
  o.timeout_ms = 30000;
  int rv = crpc__test__echo__server_stream__start(&call, c->ch, &o, &req);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  for (int i = 0; i < 3; i++) {
    EXPECT(crpc__test__echo__server_stream__read(call, &r), "read %d", i);
    crpc__test__echo_response__free_unpacked(r, NULL);
    r = NULL;
  }
  crpc_call_cancel(call);
  crpc_code code = crpc__test__echo__server_stream__finish(call, &st);
  EXPECT_CODE(code, &st, CRPC_CANCELLED);
  crpc_status_clear(&st);
  code = get_outcome(c, tag, &oc, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(oc->found && oc->cancelled,
         "the server handler did not see the cancellation (found %d, "
         "cancelled %d, %d messages)",
         oc->found, oc->cancelled, oc->messages);
  EXPECT(oc->messages >= 3 && oc->messages < 5000, "server wrote %d messages",
         oc->messages);
  ok = true;
out:
  crpc_call_free(call);
  if (oc != NULL) {
    crpc__test__outcome__free_unpacked(oc, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

static bool cancel_bidi(ctx *c) {
  char tag[96];
  make_tag(tag, sizeof(tag), "cancel-bidi");
  crpc_call *call = NULL;
  Crpc__Test__EchoResponse *r = NULL;
  Crpc__Test__Outcome *oc = NULL;
  crpc_status st = {0};
  bool ok = false;
  crpc_call_opts o = {0};
  o.timeout_ms = 30000;
  int rv = crpc__test__echo__bidi__start(&call, c->ch, &o);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  for (int i = 0; i < 2; i++) {
    Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
    req.message = i == 0 ? "1" : "2";
    req.tag = i == 0 ? tag : "";
    EXPECT(crpc__test__echo__bidi__write(call, &req), "write %d", i);
    EXPECT(crpc__test__echo__bidi__read(call, &r), "read %d", i);
    EXPECT(strcmp(r->message, req.message) == 0, "response %d", i);
    crpc__test__echo_response__free_unpacked(r, NULL);
    r = NULL;
  }
  crpc_call_cancel(call); /* the server handler is blocked reading */
  crpc_code code = crpc__test__echo__bidi__finish(call, &st);
  EXPECT_CODE(code, &st, CRPC_CANCELLED);
  crpc_status_clear(&st);
  code = get_outcome(c, tag, &oc, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(oc->found && oc->cancelled,
         "the server handler did not see the cancellation (found %d, "
         "cancelled %d, %d messages)",
         oc->found, oc->cancelled, oc->messages);
  EXPECT(oc->messages == 2, "server wrote %d messages, want 2", oc->messages);
  ok = true;
out:
  if (r != NULL) {
    crpc__test__echo_response__free_unpacked(r, NULL);
  }
  crpc_call_free(call);
  if (oc != NULL) {
    crpc__test__outcome__free_unpacked(oc, NULL);
  }
  crpc_status_clear(&st);
  return ok;
}

/* ------------------------------------------------------ concurrency ---- */

enum { ASYNC_CALLS = 100 };

typedef struct async_batch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pending;
  int failures;
  char why[256];
} async_batch;

typedef struct async_slot {
  async_batch *batch;
  int i;
} async_slot;

/* Runs on the channel's reactor thread: record and signal, never block. */
static void on_unary_done(crpc_call *call, const crpc_status *st,
                          const Crpc__Test__EchoResponse *resp,
                          void *user_data) {
  async_slot *slot = user_data;
  async_batch *b = slot->batch;
  char want[32];
  snprintf(want, sizeof(want), "c%d", slot->i);
  pthread_mutex_lock(&b->mu);
  if (st->code != CRPC_OK || resp == NULL || strcmp(resp->message, want)) {
    if (b->failures++ == 0) {
      snprintf(b->why, sizeof(b->why), "call %d: %s: %s", slot->i,
               crpc_code_name(st->code), crpc_status_message(st));
    }
  }
  if (--b->pending == 0) {
    pthread_cond_signal(&b->cv);
  }
  pthread_mutex_unlock(&b->mu);
}

static bool concurrent_unary(ctx *c) {
  async_batch b = {.mu = PTHREAD_MUTEX_INITIALIZER,
                   .cv = PTHREAD_COND_INITIALIZER};
  async_slot slots[ASYNC_CALLS];
  static uint8_t payload[ASYNC_CALLS * 100];
  bool ok = false;
  memset(payload, 'z', sizeof(payload));
  crpc_call_opts o = default_opts();
  pthread_mutex_lock(&b.mu);
  for (int i = 0; i < ASYNC_CALLS; i++) {
    char msg[32];
    snprintf(msg, sizeof(msg), "c%d", i);
    slots[i].batch = &b;
    slots[i].i = i;
    Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
    req.message = msg;
    req.payload.data = payload;
    req.payload.len = (size_t)i * 100;
    /* The request is packed before call_async returns: stack is fine. */
    int rv = crpc__test__echo__unary__call_async(c->ch, &o, &req, on_unary_done,
                                                 &slots[i]);
    if (rv != 0) {
      failf(c, "call_async %d: %s", i, crpc_strerror(rv));
      break;
    }
    b.pending++;
  }
  /* Wait for the started calls even after a failure: the callbacks use
   * this stack frame. */
  while (b.pending > 0) {
    pthread_cond_wait(&b.cv, &b.mu);
  }
  pthread_mutex_unlock(&b.mu);
  EXPECT(c->why[0] == '\0', "%s", c->why);
  EXPECT(b.failures == 0, "%d calls failed, first: %s", b.failures, b.why);
  ok = true;
out:
  pthread_mutex_destroy(&b.mu);
  pthread_cond_destroy(&b.cv);
  return ok;
}

typedef struct stream_job {
  crpc_channel *ch;
  int id;
  bool ok;
  char why[256];
} stream_job;

static void *stream_thread(void *arg) {
  stream_job *j = arg;
  crpc_call *call = NULL;
  crpc_status st = {0};
  crpc_call_opts o = default_opts();
  Crpc__Test__EchoResponse *r;
  int got = 0;
  j->ok = false;
  if (crpc__test__echo__bidi__start(&call, j->ch, &o) != 0) {
    snprintf(j->why, sizeof(j->why), "stream %d: start failed", j->id);
    return NULL;
  }
  for (int i = 0; i < 20; i++) {
    char msg[32];
    snprintf(msg, sizeof(msg), "%d.%d", j->id, i);
    Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
    req.message = msg;
    if (!crpc__test__echo__bidi__write(call, &req)) {
      break;
    }
  }
  crpc__test__echo__bidi__writes_done(call);
  while (crpc__test__echo__bidi__read(call, &r)) {
    char want[32];
    snprintf(want, sizeof(want), "%d.%d", j->id, got);
    if (strcmp(r->message, want) != 0 && j->why[0] == '\0') {
      snprintf(j->why, sizeof(j->why), "stream %d: got '%s', want '%s'", j->id,
               r->message, want);
    }
    got++;
    crpc__test__echo_response__free_unpacked(r, NULL);
  }
  crpc_code code = crpc__test__echo__bidi__finish(call, &st);
  if (code != CRPC_OK && j->why[0] == '\0') {
    snprintf(j->why, sizeof(j->why), "stream %d: %s: %s", j->id,
             crpc_code_name(code), crpc_status_message(&st));
  } else if (got != 20 && j->why[0] == '\0') {
    snprintf(j->why, sizeof(j->why), "stream %d: %d responses", j->id, got);
  }
  crpc_status_clear(&st);
  crpc_call_free(call);
  j->ok = j->why[0] == '\0';
  return NULL;
}

static bool concurrent_streams(ctx *c) {
  enum { THREADS = 8 };
  pthread_t t[THREADS];
  stream_job jobs[THREADS];
  int started = 0;
  bool ok = true;
  for (int i = 0; i < THREADS; i++) {
    memset(&jobs[i], 0, sizeof(jobs[i]));
    jobs[i].ch = c->ch;
    jobs[i].id = i;
    if (pthread_create(&t[i], NULL, stream_thread, &jobs[i]) != 0) {
      failf(c, "pthread_create failed");
      ok = false;
      break;
    }
    started++;
  }
  for (int i = 0; i < started; i++) {
    pthread_join(t[i], NULL);
    if (!jobs[i].ok) {
      failf(c, "%s", jobs[i].why);
      ok = false;
    }
  }
  return ok;
}

/* ------------------------------------------------------- compression ---- */

static bool compression_gzip(ctx *c) {
  enum { N = 10000 };
  static const char word[] = "compressible ";
  size_t n = (sizeof(word) - 1) * N;
  uint8_t *payload = malloc(n);
  Crpc__Test__EchoResponse *resp = NULL;
  crpc_call *call = NULL;
  crpc_status st = {0};
  bool ok = false;
  EXPECT(payload != NULL, "out of memory");
  for (size_t i = 0; i < N; i++) {
    memcpy(payload + i * (sizeof(word) - 1), word, sizeof(word) - 1);
  }
  crpc_call_opts o = default_opts();
  o.compression = "gzip";
  Crpc__Test__EchoRequest req = CRPC__TEST__ECHO_REQUEST__INIT;
  req.payload.data = payload;
  req.payload.len = n;
  crpc_code code = crpc__test__echo__unary__call(c->ch, &o, &req, &resp, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  EXPECT(bytes_eq(resp->payload, payload, n), "gzip unary payload corrupt");
  crpc__test__echo_response__free_unpacked(resp, NULL);
  resp = NULL;
  int rv = crpc__test__echo__bidi__start(&call, c->ch, &o);
  EXPECT(rv == 0, "start: %s", crpc_strerror(rv));
  for (int i = 0; i < 3; i++) {
    EXPECT(crpc__test__echo__bidi__write(call, &req), "write %d", i);
    EXPECT(crpc__test__echo__bidi__read(call, &resp), "read %d", i);
    EXPECT(bytes_eq(resp->payload, payload, n), "gzip stream payload corrupt");
    crpc__test__echo_response__free_unpacked(resp, NULL);
    resp = NULL;
  }
  EXPECT(crpc__test__echo__bidi__writes_done(call), "writes_done");
  code = crpc__test__echo__bidi__finish(call, &st);
  EXPECT_CODE(code, &st, CRPC_OK);
  ok = true;
out:
  free(payload);
  if (resp != NULL) {
    crpc__test__echo_response__free_unpacked(resp, NULL);
  }
  crpc_call_free(call);
  crpc_status_clear(&st);
  return ok;
}

/* -------------------------------------------------------------- main ---- */

typedef struct check {
  const char *name;
  bool (*fn)(ctx *c);
} check;

#define CHECK(name)                                                            \
  { #name, name }

static const check checks[] = {
    CHECK(unary_basic),
    CHECK(unary_empty),
    CHECK(unary_large_request),
    CHECK(unary_large_response),
    CHECK(unary_time_left),
    CHECK(unary_no_deadline),
    CHECK(server_stream),
    CHECK(server_stream_large),
    CHECK(server_stream_empty),
    CHECK(server_stream_status_after),
    CHECK(client_stream),
    CHECK(client_stream_empty),
    CHECK(client_stream_early_status),
    CHECK(bidi_ping_pong),
    CHECK(bidi_batch),
    CHECK(bidi_status),
    CHECK(metadata_unary),
    CHECK(metadata_server_stream),
    CHECK(metadata_bidi),
    CHECK(metadata_error_trailers),
    CHECK(metadata_bin_all_bytes),
    CHECK(status_message_encoding),
    CHECK(status_all_codes),
    CHECK(deadline_exceeded),
    CHECK(deadline_server_stream),
    CHECK(unimplemented_method),
    CHECK(unknown_service),
    CHECK(unknown_method_path),
    CHECK(cancel_server_stream),
    CHECK(cancel_bidi),
    CHECK(concurrent_unary),
    CHECK(concurrent_streams),
    CHECK(compression_gzip),
};

int main(int argc, char **argv) {
  const char *target = NULL;
  const char *only[64];
  size_t n_only = 0;
  size_t n_checks = sizeof(checks) / sizeof(checks[0]);
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--target=", 9) == 0) {
      target = argv[i] + 9;
    } else if (strncmp(argv[i], "--check=", 8) == 0 && n_only < 64) {
      const char *name = argv[i] + 8;
      bool known = false;
      for (size_t k = 0; k < n_checks; k++) {
        known = known || strcmp(checks[k].name, name) == 0;
      }
      if (!known) {
        fprintf(stderr, "unknown check %s\n", name);
        return 2;
      }
      only[n_only++] = name;
    } else {
      fprintf(stderr, "usage: interop-core-client --target=HOST:PORT "
                      "[--check=NAME]...\n");
      return 2;
    }
  }
  if (target == NULL) {
    fprintf(stderr, "--target is required\n");
    return 2;
  }

  /* Up to 16 MiB in and out, as the Python peer allows. */
  crpc_channel_opts co = {0};
  co.max_recv_msg_size = 16 * 1024 * 1024;
  ctx c = {0};
  int rv = crpc_channel_new(&c.ch, target, &co);
  if (rv != 0) {
    fprintf(stderr, "crpc_channel_new(%s): %s\n", target, crpc_strerror(rv));
    return 1;
  }
  int passed = 0, failed = 0;
  for (size_t k = 0; k < n_checks; k++) {
    bool selected = n_only == 0;
    for (size_t j = 0; j < n_only; j++) {
      selected = selected || strcmp(only[j], checks[k].name) == 0;
    }
    if (!selected) {
      continue;
    }
    c.why[0] = '\0';
    bool ok = checks[k].fn(&c);
    if (ok && c.why[0] == '\0') {
      passed++;
      printf("PASS %s\n", checks[k].name);
    } else {
      failed++;
      printf("FAIL %s: %s\n", checks[k].name,
             c.why[0] != '\0' ? c.why : "failed");
    }
    fflush(stdout);
  }
  printf("%d passed, %d failed\n", passed, failed);
  crpc_channel_free(c.ch);
  return failed > 0 || passed == 0 ? 1 : 0;
}
