/*
 * crpc-bench-client: closed-loop load on grpc.testing.BenchmarkService.
 *
 * C channels (one HTTP/2 connection each), K calls or ping-pong streams in
 * flight on each. Unary calls use the async API: the completion callback, on
 * the channel's reactor thread, records the latency and starts the next
 * call, so no thread hop is measured that the runtime does not itself take.
 * --sync uses blocking calls, one thread per call in flight; streaming uses
 * the (blocking) streaming API, one thread per stream. Every response's
 * status and payload size is checked; the first wrong one fails the run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <crpc/crpc.h>

#include "bench_common.h"
#include "grpc/testing/benchmark_service.crpc.h"

enum { PHASE_WARMUP = 0, PHASE_MEASURE = 1, PHASE_STOP = 2 };

static atomic_int phase = PHASE_WARMUP;
static atomic_long outstanding;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;

static bench_client_opts opts;
static Grpc__Testing__SimpleRequest request;
static Grpc__Testing__Payload request_payload;
static uint8_t zeros[4u * 1024u * 1024u]; /* request bodies (bss: free) */

/* Statistics of one thread's (or one connection's) calls: only the thread
 * that completes those calls touches it until the run is over. */
typedef struct stats {
  uint64_t calls;
  bench_hist hist;
} stats;

typedef struct conn {
  crpc_channel *ch;
  stats st;
} conn;

typedef struct slot { /* one unary call in flight */
  conn *c;
  uint64_t start_ns;
} slot;

static void done_one(void) {
  if (atomic_fetch_sub(&outstanding, 1) == 1) {
    pthread_mutex_lock(&done_mu);
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
  }
}

static void check_response(crpc_code code, const crpc_status *st,
                           const Grpc__Testing__SimpleResponse *resp) {
  if (code != CRPC_OK)
    bench_fail("call failed: %s: %s", crpc_code_name(code),
               st ? crpc_status_message(st) : "");
  size_t got = resp && resp->payload ? resp->payload->body.len : 0;
  if (got != opts.resp_size)
    bench_fail("response payload is %zu bytes, want %u", got, opts.resp_size);
}

static void record(stats *st, uint64_t start_ns) {
  if (atomic_load_explicit(&phase, memory_order_relaxed) == PHASE_MEASURE) {
    st->calls++;
    bench_hist_add(&st->hist, bench_now_ns() - start_ns);
  }
}

/* ---- async unary ---- */

static void unary_start(slot *s);

static void unary_done(crpc_call *call, const crpc_status *st,
                       const Grpc__Testing__SimpleResponse *resp,
                       void *user_data) {
  slot *s = user_data;
  check_response(st->code, st, resp);
  record(&s->c->st, s->start_ns);
  if (atomic_load_explicit(&phase, memory_order_relaxed) == PHASE_STOP) {
    done_one();
    return;
  }
  unary_start(s);
}

static void unary_start(slot *s) {
  s->start_ns = bench_now_ns();
  int rv = grpc__testing__benchmark_service__unary_call__call_async(
      s->c->ch, NULL, &request, unary_done, s);
  if (rv != 0)
    bench_fail("unary call_async: %s", crpc_strerror(rv));
}

/* ---- blocking unary and streaming: one thread per call in flight ---- */

typedef struct worker {
  pthread_t tid;
  conn *c;
  stats st;
} worker;

static void *sync_unary_main(void *arg) {
  worker *w = arg;
  while (atomic_load_explicit(&phase, memory_order_relaxed) != PHASE_STOP) {
    Grpc__Testing__SimpleResponse *resp = NULL;
    crpc_status st = {0};
    uint64_t t0 = bench_now_ns();
    crpc_code code = grpc__testing__benchmark_service__unary_call__call(
        w->c->ch, NULL, &request, &resp, &st);
    check_response(code, &st, resp);
    record(&w->st, t0);
    grpc__testing__simple_response__free_unpacked(resp, NULL);
    crpc_status_clear(&st);
  }
  done_one();
  return NULL;
}

static void *stream_main(void *arg) {
  worker *w = arg;
  crpc_call *call;
  int rv = grpc__testing__benchmark_service__streaming_call__start(
      &call, w->c->ch, NULL);
  if (rv != 0)
    bench_fail("streaming_call start: %s", crpc_strerror(rv));
  while (atomic_load_explicit(&phase, memory_order_relaxed) != PHASE_STOP) {
    Grpc__Testing__SimpleResponse *resp = NULL;
    uint64_t t0 = bench_now_ns();
    if (!grpc__testing__benchmark_service__streaming_call__write(call,
                                                                 &request) ||
        !grpc__testing__benchmark_service__streaming_call__read(call, &resp)) {
      crpc_status st = {0};
      crpc_code code =
          grpc__testing__benchmark_service__streaming_call__finish(call, &st);
      bench_fail("stream broke: %s: %s", crpc_code_name(code),
                 crpc_status_message(&st));
    }
    check_response(CRPC_OK, NULL, resp);
    record(&w->st, t0);
    grpc__testing__simple_response__free_unpacked(resp, NULL);
  }
  Grpc__Testing__SimpleResponse *extra = NULL;
  if (!grpc__testing__benchmark_service__streaming_call__writes_done(call))
    bench_fail("stream ended before writes_done");
  if (grpc__testing__benchmark_service__streaming_call__read(call, &extra))
    bench_fail("server sent a response nobody asked for");
  crpc_status st = {0};
  crpc_code code =
      grpc__testing__benchmark_service__streaming_call__finish(call, &st);
  if (code != CRPC_OK)
    bench_fail("stream finished with %s: %s", crpc_code_name(code),
               crpc_status_message(&st));
  crpc_status_clear(&st);
  crpc_call_free(call);
  done_one();
  return NULL;
}

/* ---- setup ---- */

/* One blocking call per channel: connects it and checks the server before
 * any clock starts. No WAIT_FOR_READY: the server is already listening, and
 * a refused connection should fail the run at once. */
static void first_call(conn *c) {
  Grpc__Testing__SimpleResponse *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts co = {0};
  co.timeout_ms = 10000;
  crpc_code code = grpc__testing__benchmark_service__unary_call__call(
      c->ch, &co, &request, &resp, &st);
  check_response(code, &st, resp);
  grpc__testing__simple_response__free_unpacked(resp, NULL);
  crpc_status_clear(&st);
}

static void sleep_s(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int main(int argc, char **argv) {
  bench_client_parse(&opts, argc, argv, "crpc-bench-client");
  bench_raise_nofile();

  grpc__testing__simple_request__init(&request);
  grpc__testing__payload__init(&request_payload);
  request.response_size = (int32_t)opts.resp_size;
  if (opts.req_size > 0) {
    request_payload.body.data = zeros;
    request_payload.body.len = opts.req_size;
    request.payload = &request_payload;
  }

  crpc_channel_opts chopts = {0};
  crpc_tls_opts tls = {0};
  if (opts.tls_ca) {
    tls.ca_file = opts.tls_ca;
    tls.server_name_override = opts.tls_server_name;
    chopts.tls = &tls;
  }
  conn *conns = calloc(opts.connections, sizeof *conns);
  if (!conns)
    bench_fail("out of memory");
  for (unsigned i = 0; i < opts.connections; i++) {
    bench_hist_init(&conns[i].st.hist);
    int rv = crpc_channel_new(&conns[i].ch, opts.target, &chopts);
    if (rv != 0)
      bench_fail("crpc_channel_new(%s): %s", opts.target, crpc_strerror(rv));
    first_call(&conns[i]);
  }

  if (opts.rpc == BENCH_RPC_IDLE) {
    printf("READY %u\n", opts.connections);
    fflush(stdout);
    /* Hold the connections until the driver closes our stdin. */
    char buf[256];
    while (fread(buf, 1, sizeof buf, stdin) > 0) {
    }
    for (unsigned i = 0; i < opts.connections; i++)
      crpc_channel_free(conns[i].ch);
    free(conns);
    return 0;
  }

  size_t n = (size_t)opts.connections * opts.inflight;
  bool threaded = opts.sync || opts.rpc == BENCH_RPC_STREAMING;
  slot *slots = NULL;
  worker *workers = NULL;
  atomic_store(&outstanding, (long)n);
  if (threaded) {
    workers = calloc(n, sizeof *workers);
    if (!workers)
      bench_fail("out of memory");
    for (size_t i = 0; i < n; i++) {
      workers[i].c = &conns[i / opts.inflight];
      bench_hist_init(&workers[i].st.hist);
      void *(*fn)(void *) =
          opts.rpc == BENCH_RPC_STREAMING ? stream_main : sync_unary_main;
      if (pthread_create(&workers[i].tid, NULL, fn, &workers[i]) != 0)
        bench_fail("pthread_create failed");
    }
  } else {
    slots = calloc(n, sizeof *slots);
    if (!slots)
      bench_fail("out of memory");
    for (size_t i = 0; i < n; i++) {
      slots[i].c = &conns[i / opts.inflight];
      unary_start(&slots[i]);
    }
  }

  sleep_s(opts.warmup_s);
  uint64_t t0 = bench_now_ns();
  double cpu0 = bench_cpu_s();
  atomic_store(&phase, PHASE_MEASURE);
  sleep_s(opts.duration_s);
  atomic_store(&phase, PHASE_STOP);
  uint64_t t1 = bench_now_ns();
  double cpu1 = bench_cpu_s();

  /* Wait for every call to come back, but not for ever: a hung call is a
   * failed run. */
  struct timespec limit;
  clock_gettime(CLOCK_REALTIME, &limit);
  limit.tv_sec += 10;
  pthread_mutex_lock(&done_mu);
  while (atomic_load(&outstanding) > 0)
    if (pthread_cond_timedwait(&done_cv, &done_mu, &limit) == ETIMEDOUT)
      bench_fail("%ld calls still running 10 s after the end of the run",
                 (long)atomic_load(&outstanding));
  pthread_mutex_unlock(&done_mu);

  bench_result r;
  r.impl = "crpc";
  r.calls = 0;
  r.cpu_s = cpu1 - cpu0;
  r.elapsed_s = (double)(t1 - t0) / 1e9;
  bench_hist_init(&r.hist);
  if (threaded) {
    for (size_t i = 0; i < n; i++) {
      pthread_join(workers[i].tid, NULL);
      r.calls += workers[i].st.calls;
      bench_hist_merge(&r.hist, &workers[i].st.hist);
    }
  }
  for (unsigned i = 0; i < opts.connections; i++) {
    r.calls += conns[i].st.calls;
    bench_hist_merge(&r.hist, &conns[i].st.hist);
  }
  if (r.calls == 0)
    bench_fail("no call completed in the measured %.2f s", r.elapsed_s);
  bench_report(&opts, &r);

  for (unsigned i = 0; i < opts.connections; i++)
    crpc_channel_free(conns[i].ch);
  free(slots);
  free(workers);
  free(conns);
  return 0;
}
