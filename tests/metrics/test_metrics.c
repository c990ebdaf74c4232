#define _POSIX_C_SOURCE 200809L
/*
 * test_metrics.c: gRFC A66 metrics, the stats callback and the access log,
 * checked exactly against a known mix of calls over loopback: unary OK,
 * NOT_FOUND from a handler, an unregistered method ("other" on the
 * server, UNIMPLEMENTED), client-, server- and bidi-streaming; and a
 * client calling 100 000 distinct paths without growing the recorder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "echo.pb-c.h"

typedef Crpc__Itest__EchoRequest Req;
typedef Crpc__Itest__EchoReply Rep;
#define REQ_INIT CRPC__ITEST__ECHO_REQUEST__INIT
#define REP_INIT CRPC__ITEST__ECHO_REPLY__INIT

#define D_REQ &crpc__itest__echo_request__descriptor
#define D_REP &crpc__itest__echo_reply__descriptor
static const crpc_method m_unary = {"/crpc.itest.Echo/Unary", CRPC_UNARY,
                                    D_REQ, D_REP};
static const crpc_method m_sstream = {"/crpc.itest.Echo/ServerStream",
                                      CRPC_SERVER_STREAMING, D_REQ, D_REP};
static const crpc_method m_cstream = {"/crpc.itest.Echo/ClientStream",
                                      CRPC_CLIENT_STREAMING, D_REQ, D_REP};
static const crpc_method m_bidi = {"/crpc.itest.Echo/Bidi",
                                   CRPC_BIDI_STREAMING, D_REQ, D_REP};
static const crpc_method m_missing = {"/crpc.itest.Echo/Missing", CRPC_UNARY,
                                      D_REQ, D_REP};

static size_t packed(const void *msg) {
  return protobuf_c_message_get_packed_size((const ProtobufCMessage *)msg);
}

/* ---- handlers: replies are "echo:" + the request's text ---- */

static char *echo_text(crpc_call *c, const char *text) {
  size_t n = strlen(text) + 6;
  char *t = crpc_call_arena_alloc(c, n);
  snprintf(t, n, "echo:%s", text);
  return t;
}

static crpc_code h_unary(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  const Req *r = (const Req *)req;
  if (r->status)
    return (crpc_code)r->status;
  ((Rep *)resp)->text = echo_text(c, r->text);
  return CRPC_OK;
}

static crpc_code h_sstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  const Req *r = (const Req *)req;
  for (int i = 0; i < r->count; i++) {
    Rep rep = REP_INIT;
    rep.text = echo_text(c, r->text);
    rep.index = i;
    if (!crpc_call_write(c, &rep.base))
      return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

static crpc_code h_cstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  ProtobufCMessage *m;
  int n = 0;
  while (crpc_call_read(c, &m)) {
    n++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  ((Rep *)resp)->index = n;
  ((Rep *)resp)->text = "done";
  return CRPC_OK;
}

static crpc_code h_bidi(crpc_call *c, const ProtobufCMessage *req,
                        ProtobufCMessage *resp, void *ud) {
  ProtobufCMessage *m;
  while (crpc_call_read(c, &m)) {
    Rep rep = REP_INIT;
    rep.text = echo_text(c, ((Req *)m)->text);
    bool ok = crpc_call_write(c, &rep.base);
    protobuf_c_message_free_unpacked(m, NULL);
    if (!ok)
      return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

/* ---- the stats callback: counts records by kind ---- */

static atomic_int n_records[3];
static atomic_ullong rec_sent[3], rec_rcvd[3];

static void on_stats(const crpc_call_stats *st, void *ud) {
  assert_non_null(st->method);
  assert_non_null(st->path);
  assert_non_null(st->peer);
  assert_true(st->duration_s >= 0);
  atomic_fetch_add(&n_records[st->kind], 1);
  atomic_fetch_add(&rec_sent[st->kind], st->sent_bytes);
  atomic_fetch_add(&rec_rcvd[st->kind], st->rcvd_bytes);
}

/* ---- the access log: lines kept for the test ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_lines[8][512];
static int n_log;

static void on_access(const crpc_call_stats *st, const char *line, void *ud) {
  pthread_mutex_lock(&log_mu);
  if (n_log < 8)
    snprintf(log_lines[n_log], sizeof log_lines[0], "%s", line);
  n_log++;
  pthread_mutex_unlock(&log_mu);
}

typedef struct env {
  crpc_metrics *m;
  crpc_server *srv;
  crpc_channel *ch;
} env;

static void env_up(env *e, crpc_metrics *m, bool access) {
  crpc_server_opts so = {.metrics = m};
  int port = 0;
  char target[64];
  e->m = m;
  assert_int_equal(crpc_server_new(&e->srv, &so), 0);
  assert_int_equal(crpc_server_register(e->srv, &m_unary, h_unary, 0, NULL), 0);
  assert_int_equal(
      crpc_server_register(e->srv, &m_sstream, h_sstream, 0, NULL), 0);
  assert_int_equal(
      crpc_server_register(e->srv, &m_cstream, h_cstream, 0, NULL), 0);
  assert_int_equal(crpc_server_register(e->srv, &m_bidi, h_bidi, 0, NULL), 0);
  if (access)
    assert_int_equal(crpc_server_set_access_log(e->srv, on_access, NULL), 0);
  assert_int_equal(crpc_server_listen(e->srv, "127.0.0.1:0", NULL, &port), 0);
  assert_int_equal(crpc_server_start(e->srv), 0);
  assert_int_equal(crpc_server_set_access_log(e->srv, on_access, NULL),
                   CRPC_ESTATE);
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  crpc_channel_opts co = {.metrics = m};
  assert_int_equal(crpc_channel_new(&e->ch, target, &co), 0);
}

static void env_down(env *e) {
  crpc_channel_free(e->ch);
  crpc_server_shutdown(e->srv, 1000);
  crpc_server_free(e->srv);
}

static uint64_t hcount(crpc_metrics *m, const char *name, const char *method,
                       crpc_code code, double *sum) {
  uint64_t n = 0;
  assert_int_equal(crpc_metrics_histogram(m, name, method, code, &n, sum), 0);
  return n;
}

static void promtool_check(const crpc_metrics *m);

#define UNARY "crpc.itest.Echo/Unary"
#define OTHER "other"

static void test_mix(void **state) {
  crpc_metrics *m;
  assert_int_equal(crpc_metrics_new(&m, NULL), 0);
  assert_int_equal(crpc_metrics_set_callback(m, on_stats, NULL), 0);
  env e;
  env_up(&e, m, false);

  /* 3 unary OK */
  Req req = REQ_INIT;
  req.text = "hello";
  Rep want = REP_INIT;
  want.text = "echo:hello";
  size_t q = packed(&req), r = packed(&want);
  for (int i = 0; i < 3; i++) {
    ProtobufCMessage *resp = NULL;
    crpc_status st = {0};
    assert_int_equal(crpc_unary(e.ch, &m_unary, NULL, &req.base, &resp, &st),
                     CRPC_OK);
    protobuf_c_message_free_unpacked(resp, NULL);
    crpc_status_clear(&st);
  }
  /* 2 NOT_FOUND from the handler: no response message */
  Req nf = REQ_INIT;
  nf.text = "x";
  nf.status = CRPC_NOT_FOUND;
  size_t qnf = packed(&nf);
  for (int i = 0; i < 2; i++) {
    crpc_status st = {0};
    assert_int_equal(crpc_unary(e.ch, &m_unary, NULL, &nf.base, NULL, &st),
                     CRPC_NOT_FOUND);
    crpc_status_clear(&st);
  }
  /* 1 unregistered method */
  {
    crpc_status st = {0};
    assert_int_equal(crpc_unary(e.ch, &m_missing, NULL, &req.base, NULL, &st),
                     CRPC_UNIMPLEMENTED);
    crpc_status_clear(&st);
  }
  /* server streaming: 1 request, 4 replies */
  Req ss = REQ_INIT;
  ss.text = "s";
  ss.count = 4;
  size_t qss = packed(&ss), rss = 0;
  {
    crpc_call *c;
    assert_int_equal(crpc_call_start(&c, e.ch, &m_sstream, NULL), 0);
    assert_true(crpc_call_write(c, &ss.base));
    assert_true(crpc_call_writes_done(c));
    ProtobufCMessage *msg;
    int got = 0;
    while (crpc_call_read(c, &msg)) {
      rss += packed(msg);
      got++;
      protobuf_c_message_free_unpacked(msg, NULL);
    }
    assert_int_equal(got, 4);
    assert_int_equal(crpc_call_finish(c, NULL), CRPC_OK);
    crpc_call_free(c);
  }
  /* client streaming: 5 requests, 1 reply */
  size_t qcs = 0, rcs;
  {
    crpc_call *c;
    assert_int_equal(crpc_call_start(&c, e.ch, &m_cstream, NULL), 0);
    for (int i = 0; i < 5; i++) {
      Req one = REQ_INIT;
      one.text = "abc";
      one.count = i;
      qcs += packed(&one);
      assert_true(crpc_call_write(c, &one.base));
    }
    ProtobufCMessage *resp = NULL;
    assert_int_equal(crpc_call_finish_with_response(c, &resp, NULL), CRPC_OK);
    assert_int_equal(((Rep *)resp)->index, 5);
    rcs = packed(resp);
    protobuf_c_message_free_unpacked(resp, NULL);
    crpc_call_free(c);
  }
  /* bidi: 3 requests, 3 replies */
  size_t qbd = 0, rbd = 0;
  {
    crpc_call *c;
    assert_int_equal(crpc_call_start(&c, e.ch, &m_bidi, NULL), 0);
    for (int i = 0; i < 3; i++) {
      Req one = REQ_INIT;
      one.text = "bidi";
      qbd += packed(&one);
      assert_true(crpc_call_write(c, &one.base));
      ProtobufCMessage *msg;
      assert_true(crpc_call_read(c, &msg));
      rbd += packed(msg);
      protobuf_c_message_free_unpacked(msg, NULL);
    }
    assert_true(crpc_call_writes_done(c));
    ProtobufCMessage *msg;
    assert_false(crpc_call_read(c, &msg));
    assert_int_equal(crpc_call_finish(c, NULL), CRPC_OK);
    crpc_call_free(c);
  }

  double sum;
  /* server: started counters (grpc.method only) */
  assert_int_equal(crpc_metrics_counter(m, "grpc.server.call.started", UNARY),
                   5);
  assert_int_equal(crpc_metrics_counter(m, "grpc.server.call.started", OTHER),
                   1);
  assert_int_equal(crpc_metrics_counter(m, "grpc.server.call.started",
                                        "crpc.itest.Echo/Missing"),
                   0); /* never a row of its own on the server */
  assert_int_equal(crpc_metrics_counter(m, "grpc.server.call.started",
                                        "crpc.itest.Echo/Bidi"),
                   1);
  /* server: durations per status, sizes exact */
  assert_int_equal(hcount(m, "grpc.server.call.duration", UNARY, CRPC_OK, NULL),
                   3);
  assert_int_equal(
      hcount(m, "grpc.server.call.duration", UNARY, CRPC_NOT_FOUND, NULL), 2);
  assert_int_equal(hcount(m, "grpc.server.call.duration", OTHER,
                          CRPC_UNIMPLEMENTED, NULL),
                   1);
  assert_int_equal(hcount(m, "grpc.server.call.rcvd_total_compressed_message_size",
                          UNARY, CRPC_OK, &sum),
                   3);
  assert_true(sum == (double)(3 * q));
  assert_int_equal(hcount(m, "grpc.server.call.sent_total_compressed_message_size",
                          UNARY, CRPC_OK, &sum),
                   3);
  assert_true(sum == (double)(3 * r));
  hcount(m, "grpc.server.call.rcvd_total_compressed_message_size", UNARY,
         CRPC_NOT_FOUND, &sum);
  assert_true(sum == (double)(2 * qnf));
  hcount(m, "grpc.server.call.sent_total_compressed_message_size", UNARY,
         CRPC_NOT_FOUND, &sum);
  assert_true(sum == 0);
  hcount(m, "grpc.server.call.sent_total_compressed_message_size", OTHER,
         CRPC_UNIMPLEMENTED, &sum);
  assert_true(sum == 0);
  hcount(m, "grpc.server.call.sent_total_compressed_message_size",
         "crpc.itest.Echo/ServerStream", CRPC_OK, &sum);
  assert_true(sum == (double)rss);
  hcount(m, "grpc.server.call.rcvd_total_compressed_message_size",
         "crpc.itest.Echo/ServerStream", CRPC_OK, &sum);
  assert_true(sum == (double)qss);
  hcount(m, "grpc.server.call.rcvd_total_compressed_message_size",
         "crpc.itest.Echo/ClientStream", CRPC_OK, &sum);
  assert_true(sum == (double)qcs);
  hcount(m, "grpc.server.call.sent_total_compressed_message_size",
         "crpc.itest.Echo/ClientStream", CRPC_OK, &sum);
  assert_true(sum == (double)rcs);
  hcount(m, "grpc.server.call.rcvd_total_compressed_message_size",
         "crpc.itest.Echo/Bidi", CRPC_OK, &sum);
  assert_true(sum == (double)qbd);
  hcount(m, "grpc.server.call.sent_total_compressed_message_size",
         "crpc.itest.Echo/Bidi", CRPC_OK, &sum);
  assert_true(sum == (double)rbd);

  /* client: the method it called, every attempt and call */
  assert_int_equal(
      crpc_metrics_counter(m, "grpc.client.attempt.started", UNARY), 5);
  assert_int_equal(crpc_metrics_counter(m, "grpc.client.attempt.started",
                                        "crpc.itest.Echo/Missing"),
                   1);
  assert_int_equal(
      crpc_metrics_counter(m, "grpc.client.attempt.started", OTHER), 0);
  assert_int_equal(
      hcount(m, "grpc.client.attempt.duration", UNARY, CRPC_OK, NULL), 3);
  assert_int_equal(hcount(m, "grpc.client.call.duration", UNARY, CRPC_OK, NULL),
                   3);
  assert_int_equal(
      hcount(m, "grpc.client.call.duration", UNARY, CRPC_NOT_FOUND, NULL), 2);
  assert_int_equal(hcount(m, "grpc.client.call.duration",
                          "crpc.itest.Echo/Missing", CRPC_UNIMPLEMENTED, NULL),
                   1);
  hcount(m, "grpc.client.attempt.sent_total_compressed_message_size", UNARY,
         CRPC_OK, &sum);
  assert_true(sum == (double)(3 * q));
  hcount(m, "grpc.client.attempt.rcvd_total_compressed_message_size", UNARY,
         CRPC_OK, &sum);
  assert_true(sum == (double)(3 * r));
  hcount(m, "grpc.client.attempt.rcvd_total_compressed_message_size",
         "crpc.itest.Echo/ServerStream", CRPC_OK, &sum);
  assert_true(sum == (double)rss);
  hcount(m, "grpc.client.attempt.sent_total_compressed_message_size",
         "crpc.itest.Echo/ClientStream", CRPC_OK, &sum);
  assert_true(sum == (double)qcs);
  hcount(m, "grpc.client.attempt.sent_total_compressed_message_size",
         "crpc.itest.Echo/Bidi", CRPC_OK, &sum);
  assert_true(sum == (double)qbd);
  hcount(m, "grpc.client.attempt.rcvd_total_compressed_message_size",
         "crpc.itest.Echo/Bidi", CRPC_OK, &sum);
  assert_true(sum == (double)rbd);
  /* statuses that never happened have no observations */
  assert_int_equal(
      hcount(m, "grpc.server.call.duration", UNARY, CRPC_INTERNAL, NULL), 0);
  uint64_t n;
  assert_int_equal(crpc_metrics_histogram(m, "grpc.server.bogus", UNARY,
                                          CRPC_OK, &n, NULL),
                   CRPC_EINVAL);

  /* the callback: one record per server call, two per client call */
  assert_int_equal(atomic_load(&n_records[CRPC_STATS_SERVER_CALL]), 9);
  assert_int_equal(atomic_load(&n_records[CRPC_STATS_CLIENT_ATTEMPT]), 9);
  assert_int_equal(atomic_load(&n_records[CRPC_STATS_CLIENT_CALL]), 9);
  unsigned long long srv_rcvd = 3 * q + 2 * qnf + qss + qcs + qbd;
  assert_int_equal(atomic_load(&rec_rcvd[CRPC_STATS_SERVER_CALL]), srv_rcvd);
  assert_int_equal(atomic_load(&rec_sent[CRPC_STATS_SERVER_CALL]),
                   3 * r + rss + rcs + rbd);

  /* the Prometheus text: the sample the README shows */
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  assert_int_equal(crpc_metrics_write_prometheus(m, f), 0);
  fclose(f);
  assert_non_null(strstr(text, "# TYPE grpc_server_call_duration_seconds "
                               "histogram\n"));
  assert_non_null(strstr(text, "# TYPE grpc_server_call_started_total "
                               "counter\n"));
  assert_non_null(strstr(
      text, "grpc_server_call_started_total{grpc_method=\"" UNARY "\"} 5\n"));
  assert_non_null(strstr(text, "grpc_server_call_duration_seconds_count{"
                               "grpc_method=\"" UNARY
                               "\",grpc_status=\"NOT_FOUND\"} 2\n"));
  assert_non_null(strstr(text, "grpc_server_call_duration_seconds_bucket{"
                               "grpc_method=\"other\",grpc_status="
                               "\"UNIMPLEMENTED\",le=\"+Inf\"} 1\n"));
  assert_non_null(strstr(text, "grpc_client_attempt_started_total{"
                               "grpc_method=\"crpc.itest.Echo/Missing\"} 1\n"));
  free(text);
  promtool_check(m); /* client and server families, every status seen */

  env_down(&e);
  crpc_metrics_free(m);
}

/* A counting allocator for the recorder: live allocations and bytes. */
static atomic_long live_allocs;
static void *c_malloc(size_t n, void *ud) {
  atomic_fetch_add(&live_allocs, 1);
  return malloc(n);
}
static void c_free(void *p, void *ud) {
  if (p)
    atomic_fetch_sub(&live_allocs, 1);
  free(p);
}
static void *c_realloc(void *p, size_t n, void *ud) {
  if (!p)
    atomic_fetch_add(&live_allocs, 1);
  return realloc(p, n);
}

static void test_many_paths_bounded(void **state) {
  crpc_mem mem = {NULL, c_malloc, c_free, NULL, c_realloc};
  crpc_metrics_opts mo = {.mem = &mem, .max_methods = 64};
  crpc_metrics *m;
  assert_int_equal(crpc_metrics_new(&m, &mo), 0);
  env e;
  env_up(&e, m, false);
  Req req = REQ_INIT;
  req.text = "";
  size_t mem_after = 0;
  long allocs_after = 0;
  const int total = 100000;
  for (int i = 0; i < total; i++) {
    char path[64];
    snprintf(path, sizeof path, "/crpc.itest.Nope/M%d", i);
    crpc_method mm = {path, CRPC_UNARY, D_REQ, D_REP};
    assert_int_equal(crpc_unary(e.ch, &mm, NULL, &req.base, NULL, NULL),
                     CRPC_UNIMPLEMENTED);
    if (i == 999) { /* the table filled long ago */
      mem_after = crpc_metrics_memory(m);
      allocs_after = atomic_load(&live_allocs);
    }
  }
  assert_int_equal(crpc_metrics_memory(m), mem_after);
  assert_int_equal(atomic_load(&live_allocs), allocs_after);
  /* 64 paths kept their name, everything else is "other" */
  assert_int_equal(
      crpc_metrics_counter(m, "grpc.client.attempt.started", "other"),
      total - 64);
  assert_int_equal(crpc_metrics_counter(m, "grpc.client.attempt.started",
                                        "crpc.itest.Nope/M0"),
                   1);
  assert_int_equal(
      crpc_metrics_counter(m, "grpc.server.call.started", "other"), total);
  env_down(&e);
  crpc_metrics_free(m);
  assert_int_equal(atomic_load(&live_allocs), 0);
}

/* crpc_metrics_write_file() into a fresh directory: the file is there,
 * no temporary is left, and promtool (when installed) accepts it. */
static void promtool_check(const crpc_metrics *m) {
  char dir[] = "/tmp/crpc-metrics-XXXXXX", path[64], cmd[160];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/m.prom", dir);
  assert_int_equal(crpc_metrics_write_file(m, path), 0);
  assert_int_equal(crpc_metrics_write_file(m, path), 0); /* replaces it */
  snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) = 1", dir);
  assert_int_equal(system(cmd), 0);
  if (system("command -v promtool >/dev/null 2>&1") == 0) {
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
    assert_int_equal(system(cmd), 0);
  }
  unlink(path);
  rmdir(dir);
}

/* A path a log or a scraper could trip on: escaped in both. */
static void test_hostile_path(void **state) {
  crpc_metrics *m;
  assert_int_equal(crpc_metrics_new(&m, NULL), 0);
  env e;
  pthread_mutex_lock(&log_mu);
  n_log = 0;
  pthread_mutex_unlock(&log_mu);
  env_up(&e, m, true);
  char path[400];
  snprintf(path, sizeof path, "/a\"b\\c/%0300d", 7);
  crpc_method mm = {path, CRPC_UNARY, D_REQ, D_REP};
  Req req = REQ_INIT;
  req.text = "";
  assert_int_equal(crpc_unary(e.ch, &mm, NULL, &req.base, NULL, NULL),
                   CRPC_UNIMPLEMENTED);
  pthread_mutex_lock(&log_mu);
  assert_int_equal(n_log, 1);
  assert_non_null(strstr(log_lines[0], " method=/a\\x22b\\x5cc/000"));
  assert_non_null(strstr(log_lines[0], "... status=UNIMPLEMENTED "));
  pthread_mutex_unlock(&log_mu);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_int_equal(crpc_metrics_write_prometheus(m, f), 0);
  fclose(f);
  assert_non_null(strstr(text, "grpc_client_attempt_started_total{"
                               "grpc_method=\"a\\\"b\\\\c/000"));
  free(text);
  promtool_check(m);
  env_down(&e);
  crpc_metrics_free(m);
}

static void test_access_log(void **state) {
  env e;
  pthread_mutex_lock(&log_mu);
  n_log = 0;
  pthread_mutex_unlock(&log_mu);
  env_up(&e, NULL, true); /* an access log needs no recorder */
  Req req = REQ_INIT;
  req.text = "hello";
  Rep want = REP_INIT;
  want.text = "echo:hello";
  ProtobufCMessage *resp = NULL;
  assert_int_equal(crpc_unary(e.ch, &m_unary, NULL, &req.base, &resp, NULL),
                   CRPC_OK);
  protobuf_c_message_free_unpacked(resp, NULL);
  assert_int_equal(crpc_unary(e.ch, &m_missing, NULL, &req.base, NULL, NULL),
                   CRPC_UNIMPLEMENTED);
  pthread_mutex_lock(&log_mu);
  assert_int_equal(n_log, 2);
  char want_tail[128];
  snprintf(want_tail, sizeof want_tail, " req_bytes=%zu resp_bytes=%zu",
           packed(&req), packed(&want));
  assert_true(strncmp(log_lines[0], "peer=ipv4:127.0.0.1:", 20) == 0);
  assert_non_null(
      strstr(log_lines[0], " method=/crpc.itest.Echo/Unary status=OK "));
  assert_non_null(strstr(log_lines[0], " duration_ms="));
  assert_non_null(strstr(log_lines[0], want_tail));
  assert_non_null(strstr(log_lines[1], " method=/crpc.itest.Echo/Missing "
                                       "status=UNIMPLEMENTED "));
  pthread_mutex_unlock(&log_mu);
  env_down(&e);
}

static void test_args(void **state) {
  crpc_metrics *m = NULL;
  crpc_metrics_opts bad = {.max_methods = 70000};
  assert_int_equal(crpc_metrics_new(NULL, NULL), CRPC_EINVAL);
  assert_int_equal(crpc_metrics_new(&m, &bad), CRPC_EINVAL);
  assert_int_equal(crpc_metrics_new(&m, NULL), 0);
  assert_int_equal(crpc_metrics_write_prometheus(NULL, stdout), CRPC_EINVAL);
  assert_int_equal(crpc_metrics_write_file(m, "/nonexistent-dir/x.prom"),
                   CRPC_ESYS);
  assert_int_equal(crpc_metrics_counter(m, "nope", "x"), 0);
  assert_int_equal(crpc_server_set_access_log(NULL, NULL, NULL), CRPC_EINVAL);
  crpc_metrics_free(m);
  crpc_metrics_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_args),
      cmocka_unit_test(test_mix),
      cmocka_unit_test(test_access_log),
      cmocka_unit_test(test_hostile_path),
      cmocka_unit_test(test_many_paths_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
