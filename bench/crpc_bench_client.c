/*
 * crpc-bench-client: closed-loop load on grpc.testing.BenchmarkService.
 *
 * C channels (one HTTP/2 connection each), K calls or ping-pong streams in
 * flight on each. Unary calls use the async API: the completion callback, on
 * the channel's reactor thread, records the latency and starts the next
 * call, so no thread hop is measured that the runtime does not itself take.
 * --sync uses blocking calls, one thread per call in flight; streaming uses
 * the (blocking) streaming API, one thread per stream.
 *
 * --async is the callback API on program-driven loops: --threads=T threads
 * of ours each create a crpc_loop, put their share of the channels on it
 * and drive it, so crpc starts no thread at all. Unary calls go through the
 * generated __call_async (the completion starts the next call), streams
 * through crpc_call_start_cb and crpc_call_write_async (each response,
 * once its write is done too, sends the next ping).
 *
 * Every response's status and payload size is checked; the first wrong one
 * fails the run.
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
  struct loop_thread *lt; /* --async: the thread whose loop it is on */
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

/* ---- --async: the callback API on loops our own threads drive ---- */

typedef struct loop_thread {
  pthread_t tid;
  crpc_loop *loop;
  conn **conns; /* the channels on this loop */
  size_t n_conns;
  long running; /* calls or streams of this loop not yet over [loop] */
} loop_thread;

/* Set up, every channel connected, before any clock starts. */
static pthread_mutex_t ready_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cv = PTHREAD_COND_INITIALIZER;
static unsigned loops_ready;

static void ended_one(loop_thread *lt) {
  lt->running--;
  done_one();
}

/* Unary: the same slot and completion as the reactor-thread mode, on our
 * loop: unary_done runs from inside crpc_loop_run_once() below. Only the
 * count of this loop's calls is new. */
static void async_unary_done(crpc_call *call, const crpc_status *st,
                             const Grpc__Testing__SimpleResponse *resp,
                             void *user_data);

static void async_unary_start(slot *s) {
  s->start_ns = bench_now_ns();
  int rv = grpc__testing__benchmark_service__unary_call__call_async(
      s->c->ch, NULL, &request, async_unary_done, s);
  if (rv != 0)
    bench_fail("unary call_async: %s", crpc_strerror(rv));
}

static void async_unary_done(crpc_call *call, const crpc_status *st,
                             const Grpc__Testing__SimpleResponse *resp,
                             void *user_data) {
  slot *s = user_data;
  (void)call;
  check_response(st->code, st, resp);
  record(&s->c->st, s->start_ns);
  if (atomic_load_explicit(&phase, memory_order_relaxed) == PHASE_STOP)
    ended_one(s->c->lt);
  else
    async_unary_start(s);
}

/* Streaming ping-pong: the next ping goes out once the pong has come back
 * and the previous write's on_write_done has run (one write in flight is
 * the API's rule; which of the two comes first is not ours to assume). */
typedef struct astream {
  conn *c;
  crpc_call *call;
  uint64_t start_ns;
  bool write_idle, pong_in, closing;
  stats st;
} astream;

static void astream_ping(astream *a) {
  a->write_idle = a->pong_in = false;
  a->start_ns = bench_now_ns();
  int rv = crpc_call_write_async(a->call, &request.base, 0);
  if (rv != 0)
    bench_fail("crpc_call_write_async: %s", crpc_strerror(rv));
}

static void astream_next(astream *a) {
  if (!a->write_idle || !a->pong_in || a->closing)
    return;
  if (atomic_load_explicit(&phase, memory_order_relaxed) != PHASE_STOP) {
    astream_ping(a);
    return;
  }
  a->closing = true; /* on_done ends it */
  if (!crpc_call_writes_done(a->call))
    bench_fail("stream ended before writes_done");
}

static void astream_on_message(crpc_call *call, const ProtobufCMessage *msg,
                               void *user_data) {
  astream *a = user_data;
  (void)call;
  if (a->pong_in || a->closing)
    bench_fail("server sent a response nobody asked for");
  check_response(CRPC_OK, NULL, (const Grpc__Testing__SimpleResponse *)msg);
  record(&a->st, a->start_ns);
  a->pong_in = true;
  astream_next(a);
}

static void astream_on_write_done(crpc_call *call, bool ok, void *user_data) {
  astream *a = user_data;
  (void)call;
  if (!ok)
    bench_fail("stream broke: a write did not go out");
  a->write_idle = true;
  astream_next(a);
}

static void astream_on_done(crpc_call *call, const crpc_status *st,
                            void *user_data) {
  astream *a = user_data;
  if (!a->closing || st->code != CRPC_OK)
    bench_fail("stream %s with %s: %s",
               a->closing ? "finished" : "broke", crpc_code_name(st->code),
               crpc_status_message(st));
  crpc_call_free(call); /* allowed here: nothing follows */
  a->call = NULL;
  ended_one(a->c->lt);
}

static const crpc_call_callbacks astream_cbs = {
    .on_message = astream_on_message,
    .on_write_done = astream_on_write_done,
    .on_done = astream_on_done,
};

static const crpc_method *streaming_method(void) {
  const crpc_service *svc = &grpc__testing__benchmark_service__crpc_service;
  for (size_t i = 0; i < svc->n_methods; i++)
    if (strcmp(svc->methods[i].path,
               "/grpc.testing.BenchmarkService/StreamingCall") == 0)
      return &svc->methods[i];
  bench_fail("generated service lacks StreamingCall");
}

/* One turn of our loop. This thread has nothing else to watch, so crpc's
 * own wait (epoll_wait inside crpc_loop_run_once, bounded by crpc's
 * timers) is the whole turn: a poll() of crpc_loop_fd() first would add a
 * system call to every wake-up. 100 ms bounds the wait so that a stop is
 * never missed. */
static void turn(loop_thread *lt) {
  int rv = crpc_loop_run_once(lt->loop, 100);
  if (rv != 0)
    bench_fail("crpc_loop_run_once: %s", crpc_strerror(rv));
}

typedef struct first_result {
  bool done;
} first_result;

static void first_done(crpc_call *call, const crpc_status *st,
                       const Grpc__Testing__SimpleResponse *resp,
                       void *user_data) {
  (void)call;
  check_response(st->code, st, resp);
  ((first_result *)user_data)->done = true;
}

static void *loop_main(void *arg) {
  loop_thread *lt = arg;
  int rv = crpc_loop_new(&lt->loop, NULL); /* this thread drives it */
  if (rv != 0)
    bench_fail("crpc_loop_new: %s", crpc_strerror(rv));
  crpc_channel_opts chopts = {0};
  crpc_tls_opts tls = {0};
  if (opts.tls_ca) {
    tls.ca_file = opts.tls_ca;
    tls.server_name_override = opts.tls_server_name;
    chopts.tls = &tls;
  }
  chopts.loop = lt->loop;
  chopts.lb_policy = opts.lb_policy;
  for (size_t i = 0; i < lt->n_conns; i++) {
    conn *c = lt->conns[i];
    rv = crpc_channel_new(&c->ch, opts.target, &chopts);
    if (rv != 0)
      bench_fail("crpc_channel_new(%s): %s", opts.target, crpc_strerror(rv));
    /* As first_call(), through the loop: connect before any clock. */
    first_result fr = {false};
    crpc_call_opts co = {0};
    co.timeout_ms = 10000;
    rv = grpc__testing__benchmark_service__unary_call__call_async(
        c->ch, &co, &request, first_done, &fr);
    if (rv != 0)
      bench_fail("unary call_async: %s", crpc_strerror(rv));
    while (!fr.done)
      turn(lt);
  }

  /* Everything in flight is this loop's: slots and streams of its own. */
  size_t n = lt->n_conns * opts.inflight;
  slot *slots = NULL;
  astream *streams = NULL;
  if (opts.rpc == BENCH_RPC_STREAMING)
    streams = calloc(n ? n : 1, sizeof *streams);
  else
    slots = calloc(n ? n : 1, sizeof *slots);
  if (!slots && !streams)
    bench_fail("out of memory");

  pthread_mutex_lock(&ready_mu);
  loops_ready++;
  pthread_cond_broadcast(&ready_cv);
  pthread_mutex_unlock(&ready_mu);

  const crpc_method *sm = streaming_method();
  lt->running = (long)n;
  for (size_t i = 0; i < n; i++) {
    conn *c = lt->conns[i / opts.inflight];
    if (slots) {
      slots[i].c = c;
      async_unary_start(&slots[i]);
    } else {
      astream *a = &streams[i];
      a->c = c;
      bench_hist_init(&a->st.hist);
      rv = crpc_call_start_cb(&a->call, c->ch, sm, NULL, &astream_cbs, a);
      if (rv != 0)
        bench_fail("crpc_call_start_cb: %s", crpc_strerror(rv));
      astream_ping(a);
    }
  }
  while (lt->running > 0)
    turn(lt);

  /* Streams' statistics go to their connection: one thread, no race. */
  for (size_t i = 0; streams && i < n; i++) {
    conn *c = lt->conns[i / opts.inflight];
    c->st.calls += streams[i].st.calls;
    bench_hist_merge(&c->st.hist, &streams[i].st.hist);
  }
  free(slots);
  free(streams);
  for (size_t i = 0; i < lt->n_conns; i++) {
    crpc_channel_free(lt->conns[i]->ch);
    lt->conns[i]->ch = NULL;
  }
  crpc_loop_free(lt->loop);
  return NULL;
}

/* Starts --threads loop threads, the connections dealt out among them, and
 * returns once every channel has answered its first call. */
static loop_thread *start_loops(conn *conns, unsigned *n_out) {
  unsigned t = opts.threads < opts.connections ? opts.threads
                                               : opts.connections;
  loop_thread *lts = calloc(t, sizeof *lts);
  conn **byloop = calloc(opts.connections, sizeof *byloop);
  if (!lts || !byloop)
    bench_fail("out of memory");
  size_t k = 0;
  for (unsigned i = 0; i < t; i++) {
    lts[i].conns = &byloop[k];
    for (unsigned j = i; j < opts.connections; j += t) {
      conns[j].lt = &lts[i];
      byloop[k++] = &conns[j];
      lts[i].n_conns++;
    }
  }
  for (unsigned i = 0; i < t; i++)
    if (pthread_create(&lts[i].tid, NULL, loop_main, &lts[i]) != 0)
      bench_fail("pthread_create failed");
  pthread_mutex_lock(&ready_mu);
  while (loops_ready < t)
    pthread_cond_wait(&ready_cv, &ready_mu);
  pthread_mutex_unlock(&ready_mu);
  *n_out = t;
  return lts;
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
  chopts.lb_policy = opts.lb_policy;
  conn *conns = calloc(opts.connections, sizeof *conns);
  if (!conns)
    bench_fail("out of memory");
  for (unsigned i = 0; i < opts.connections; i++)
    bench_hist_init(&conns[i].st.hist);
  size_t n = (size_t)opts.connections * opts.inflight;
  atomic_store(&outstanding, (long)n);
  loop_thread *lts = NULL;
  unsigned n_loops = 0;
  if (opts.async && opts.rpc != BENCH_RPC_IDLE)
    lts = start_loops(conns, &n_loops);
  for (unsigned i = 0; !lts && i < opts.connections; i++) {
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

  bool threaded =
      !lts && (opts.sync || opts.rpc == BENCH_RPC_STREAMING);
  slot *slots = NULL;
  worker *workers = NULL;
  if (lts) {
    /* the loops' threads have started their calls already */
  } else if (threaded) {
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
  for (unsigned i = 0; i < n_loops; i++)
    pthread_join(lts[i].tid, NULL);
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
  if (lts)
    free(lts[0].conns); /* the array start_loops() dealt out */
  free(lts);
  free(conns);
  return 0;
}
