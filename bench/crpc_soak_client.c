/*
 * crpc-soak-client: the load half of bench/soak.py. Runs mixed load against
 * a grpc.testing.TestService server (crpc-interop-server) until told to
 * stop, and reports what happened to every call.
 *
 *   crpc-soak-client --target=127.0.0.1:PORT [--threads=4] [--seed=1]
 *
 * The load, on purpose hostile to the server's bookkeeping:
 * - worker threads making all four kinds of call (EmptyCall and UnaryCall,
 *   blocking, generic and async; StreamingOutputCall; StreamingInputCall;
 *   FullDuplexCall), each with a plan: normal, a deadline (often short
 *   enough to expire mid-call, the server sleeping between responses),
 *   a cancel at a random step, or an error status echoed by the server;
 * - channels coming and going: each worker drops its channel after a random
 *   number of calls, sometimes with async calls still in flight; a third
 *   of the calls go over one channel shared by every worker;
 * - a canceller thread that cancels whatever call a random worker has in
 *   flight, from another thread, at random moments;
 * - one client that never reads: it asks for large unary responses and
 *   server streams of 1 MiB messages and leaves them unread (crpc then
 *   withholds HTTP/2 window, so the server's output stays queued), holding
 *   the calls either shorter or longer than the server's write-stall
 *   timeout (30 s by default; held more than twice that, since the server
 *   checks for progress once per timeout period, so it may take up to two
 *   periods to notice).
 *
 * Control is over stdin/stdout, so that soak.py needs no timing guesses: a
 * line "s" prints one JSON line of counters; "q" or end of input stops the
 * load, waits up to 30 s for every thread, and prints the final JSON line
 * (with "stuck": the threads that did not stop). Exit 0, or 3 when a
 * thread was stuck.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "grpc/testing/test.crpc.h"

typedef Grpc__Testing__Empty Empty;
typedef Grpc__Testing__Payload Payload;
typedef Grpc__Testing__EchoStatus EchoStatus;
typedef Grpc__Testing__SimpleRequest SimpleRequest;
typedef Grpc__Testing__SimpleResponse SimpleResponse;
typedef Grpc__Testing__StreamingOutputCallRequest StreamingOutputCallRequest;
typedef Grpc__Testing__StreamingOutputCallResponse StreamingOutputCallResponse;
typedef Grpc__Testing__StreamingInputCallRequest StreamingInputCallRequest;
typedef Grpc__Testing__StreamingInputCallResponse StreamingInputCallResponse;
typedef Grpc__Testing__ResponseParameters ResponseParameters;

/* The server's write-stall timeout (crpc_server_opts' default): a
 * never-read call held longer than this should see its connection
 * closed by the server. */
#define SERVER_WRITE_STALL_MS 30000
#define NEVER_READ_SHORT_MS 12000
#define NEVER_READ_LONG_MS (2 * SERVER_WRITE_STALL_MS + 10000)
#define STOP_GRACE_S 30
#define MAX_THREADS 64
#define NCODES 17

enum kind {
  K_EMPTY,
  K_UNARY,
  K_UNARY_ASYNC,
  K_SERVER_STREAM,
  K_CLIENT_STREAM,
  K_BIDI,
  K_NEVER_READ,
  K_COUNT
};
static const char *const kind_names[K_COUNT] = {
    "empty",         "unary", "unary_async", "server_stream",
    "client_stream", "bidi",  "never_read"};

/* What a call is expected to end with, so that the report can tell the
 * failures we asked for from the ones we did not. */
enum plan { P_NORMAL, P_DEADLINE, P_CANCEL, P_ECHO };
static const char *const plan_names[] = {"normal", "deadline", "cancel",
                                         "echo"};

/* ---- counters (any thread, reactor callbacks included) ---- */

static atomic_ullong n_started[K_COUNT];
static atomic_ullong n_done[K_COUNT][NCODES];
static atomic_ullong n_unexpected[NCODES];
static atomic_ullong n_bad_payload, n_channels, n_start_errors;

/* Unexpected outcomes, verbatim, with how often each occurred (the first
 * MAX_SAMPLES distinct ones), for the report. */
#define MAX_SAMPLES 32
static pthread_mutex_t samples_mu = PTHREAD_MUTEX_INITIALIZER;
static char *samples[MAX_SAMPLES];
static unsigned long long sample_count[MAX_SAMPLES];
static size_t n_samples;

static void sample(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sample(const char *fmt, ...) {
  char buf[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&samples_mu);
  size_t i = 0;
  while (i < n_samples && strcmp(samples[i], buf) != 0)
    i++;
  if (i < n_samples)
    sample_count[i]++;
  else if (n_samples < MAX_SAMPLES && (samples[i] = strdup(buf)) != NULL) {
    sample_count[i] = 1;
    n_samples++;
  }
  pthread_mutex_unlock(&samples_mu);
}

/* Counts one finished call; |expected| says whether its plan allowed the
 * code it got. */
static void record(enum kind k, enum plan p, crpc_code code,
                   const crpc_status *st, bool expected) {
  unsigned c = (unsigned)code < NCODES ? (unsigned)code : CRPC_UNKNOWN;
  atomic_fetch_add(&n_done[k][c], 1);
  if (expected)
    return;
  atomic_fetch_add(&n_unexpected[c], 1);
  sample("%s/%s: %s: %s", kind_names[k], plan_names[p], crpc_code_name(code),
         st ? crpc_status_message(st) : "");
}

static void bad_payload(enum kind k, size_t got, size_t want) {
  atomic_fetch_add(&n_bad_payload, 1);
  sample("%s: payload of %zu bytes, want %zu", kind_names[k], got, want);
}

/* ---- stopping ---- */

static atomic_bool stopping;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv;

/* Waits up to |ms| for the stop; true when stopping. This is the pacing of
 * the canceller and the never-read client's hold, not synchronisation:
 * nothing else they wait for could signal them. */
static bool wait_stop_ms(int64_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&stop_mu);
  while (!atomic_load(&stopping) &&
         pthread_cond_timedwait(&stop_cv, &stop_mu, &ts) != ETIMEDOUT)
    ;
  pthread_mutex_unlock(&stop_mu);
  return atomic_load(&stopping);
}

/* ---- per-thread state ---- */

typedef struct worker {
  pthread_t tid;
  int index;
  uint64_t rng;
  crpc_channel *ch;   /* own channel, dropped now and then */
  int calls_left;     /* on ch before it is dropped */
  /* The call in flight, for the canceller: set and cleared under |mu|,
   * so the canceller never touches a freed call. */
  pthread_mutex_t mu;
  crpc_call *current;
  bool cancelled_by_other;
  /* What the thread is doing, for the "stuck" report. */
  _Atomic int doing_kind;
  _Atomic int doing_plan;
} worker;

static const char *target;
static crpc_channel *shared_ch;
static worker workers[MAX_THREADS];
static int n_workers;

static uint64_t rnd(worker *w) {
  /* xorshift64*: cheap, per thread, reproducible from --seed */
  w->rng ^= w->rng >> 12;
  w->rng ^= w->rng << 25;
  w->rng ^= w->rng >> 27;
  return w->rng * 2685821657736338717ull;
}
static int64_t between(worker *w, int64_t lo, int64_t hi) {
  return lo + (int64_t)(rnd(w) % (uint64_t)(hi - lo + 1));
}
static bool chance(worker *w, int percent) {
  return (int)(rnd(w) % 100) < percent;
}
/* Message sizes: mostly small, a tail up to |max| (log-uniform-ish). */
static size_t msg_size(worker *w, size_t max) {
  size_t cap = (size_t)1 << between(w, 0, 20);
  if (cap > max)
    cap = max;
  return (size_t)between(w, 0, (int64_t)cap);
}

static void publish(worker *w, crpc_call *call) {
  pthread_mutex_lock(&w->mu);
  w->current = call;
  w->cancelled_by_other = false;
  pthread_mutex_unlock(&w->mu);
}
/* Clears the published call; whether the canceller got to it. */
static bool unpublish(worker *w) {
  pthread_mutex_lock(&w->mu);
  w->current = NULL;
  bool by_other = w->cancelled_by_other;
  pthread_mutex_unlock(&w->mu);
  return by_other;
}

static crpc_channel *new_channel(void) {
  crpc_channel *ch = NULL;
  int rv = crpc_channel_new(&ch, target, NULL);
  if (rv != 0) {
    atomic_fetch_add(&n_start_errors, 1);
    sample("crpc_channel_new: %s", crpc_strerror(rv));
    return NULL;
  }
  atomic_fetch_add(&n_channels, 1);
  return ch;
}

static const crpc_method *method(const char *name) {
  const crpc_service *svc = &grpc__testing__test_service__crpc_service;
  for (size_t i = 0; i < svc->n_methods; i++) {
    const char *slash = strrchr(svc->methods[i].path, '/');
    if (slash && strcmp(slash + 1, name) == 0)
      return &svc->methods[i];
  }
  fprintf(stderr, "soak: no method %s\n", name);
  exit(2);
}

/* A zero-filled payload of |n| bytes (the server checks nothing; the
 * responses it sends are zeros as well). */
static void payload(Payload *p, size_t n) {
  grpc__testing__payload__init(p);
  p->body.len = n;
  p->body.data = calloc(1, n + 1);
  if (!p->body.data) {
    fprintf(stderr, "soak: out of memory\n");
    exit(1);
  }
}

/* Deadlines: DEADLINE plans get one short enough that it often passes
 * mid-call; some NORMAL calls get a generous one that never should. */
static void call_opts(worker *w, enum plan p, crpc_call_opts *o,
                      int64_t short_ms) {
  memset(o, 0, sizeof(*o));
  if (p == P_DEADLINE)
    o->timeout_ms = short_ms;
  else if (chance(w, 30))
    o->timeout_ms = 20000;
}

static bool allowed(enum plan p, crpc_code code, crpc_code echo, bool cut) {
  if (cut && code == CRPC_CANCELLED)
    return true; /* cancelled by the canceller, or its channel dropped */
  switch (p) {
  case P_NORMAL:
    return code == CRPC_OK;
  case P_DEADLINE:
    return code == CRPC_OK || code == CRPC_DEADLINE_EXCEEDED;
  case P_CANCEL:
    return code == CRPC_OK || code == CRPC_CANCELLED;
  case P_ECHO:
    return code == echo;
  }
  return false;
}

static void start_failed(enum kind k, int rv) {
  atomic_fetch_add(&n_start_errors, 1);
  sample("%s: start: %s", kind_names[k], crpc_strerror(rv));
}

/* ---- the calls ---- */

static void do_empty(worker *w, crpc_channel *ch, enum plan p) {
  if (p == P_CANCEL || p == P_ECHO)
    p = P_NORMAL; /* a blocking one-shot call has neither */
  crpc_call_opts o;
  call_opts(w, p, &o, between(w, 0, 2));
  Empty req = GRPC__TESTING__EMPTY__INIT, *resp = NULL;
  crpc_status st = {0};
  atomic_fetch_add(&n_started[K_EMPTY], 1);
  crpc_code code =
      grpc__testing__test_service__empty_call__call(ch, &o, &req, &resp, &st);
  record(K_EMPTY, p, code, &st, allowed(p, code, 0, false));
  if (resp)
    grpc__testing__empty__free_unpacked(resp, NULL);
  crpc_status_clear(&st);
}

static void unary_request(worker *w, enum plan p, SimpleRequest *req,
                          Payload *pl, EchoStatus *es, crpc_code *echo) {
  grpc__testing__simple_request__init(req);
  req->response_size = (int32_t)msg_size(w, 512 * 1024);
  payload(pl, msg_size(w, 128 * 1024));
  req->payload = pl;
  *echo = CRPC_OK;
  if (p == P_ECHO) {
    grpc__testing__echo_status__init(es);
    *echo = (crpc_code)between(w, 1, 16);
    es->code = (int32_t)*echo;
    es->message = "soak: echoed status";
    req->response_status = es;
  }
}

static void check_unary(const SimpleResponse *r, const SimpleRequest *req) {
  size_t got = r && r->payload ? r->payload->body.len : 0;
  if (got != (size_t)req->response_size)
    bad_payload(K_UNARY, got, (size_t)req->response_size);
}

/* UnaryCall, blocking: through the generated one-shot call, or (CANCEL
 * plans, and half of the others) through the generic call API, which
 * leaves a call to cancel. */
static void do_unary(worker *w, crpc_channel *ch, enum plan p) {
  SimpleRequest req;
  Payload pl;
  EchoStatus es;
  crpc_code echo;
  unary_request(w, p, &req, &pl, &es, &echo);
  crpc_call_opts o;
  call_opts(w, p, &o, between(w, 0, 3));
  crpc_status st = {0};
  crpc_code code;
  bool cut = false;
  atomic_fetch_add(&n_started[K_UNARY], 1);
  if (p != P_CANCEL && chance(w, 50)) {
    SimpleResponse *resp = NULL;
    code = grpc__testing__test_service__unary_call__call(ch, &o, &req, &resp,
                                                         &st);
    if (code == CRPC_OK)
      check_unary(resp, &req);
    if (resp)
      grpc__testing__simple_response__free_unpacked(resp, NULL);
  } else {
    crpc_call *call;
    int rv = crpc_call_start(&call, ch, method("UnaryCall"), &o);
    if (rv != 0) {
      start_failed(K_UNARY, rv);
      free(pl.body.data);
      return;
    }
    publish(w, call);
    ProtobufCMessage *msg = NULL;
    /* The server may answer before the half-close: the write and the
     * writes_done may fail, and the status tells. */
    crpc_call_write(call, &req.base);
    crpc_call_writes_done(call);
    /* A cancel races the response: before it arrives, or after. */
    if (p == P_CANCEL)
      crpc_call_cancel(call);
    bool got = crpc_call_read(call, &msg);
    code = crpc_call_finish(call, &st);
    cut = unpublish(w);
    if (code == CRPC_OK && got)
      check_unary((SimpleResponse *)msg, &req);
    else if (code == CRPC_OK)
      bad_payload(K_UNARY, 0, (size_t)req.response_size);
    if (msg)
      protobuf_c_message_free_unpacked(msg, NULL);
    crpc_call_free(call);
  }
  record(K_UNARY, p, code, &st, allowed(p, code, echo, cut));
  crpc_status_clear(&st);
  free(pl.body.data);
}

/* A burst of async unary calls, waited for together. */
typedef struct burst {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pending;
  bool channel_dropped;
  enum plan plan;
  crpc_code echo;
  int32_t want_size;
} burst;

static void on_unary_done(crpc_call *call, const crpc_status *st,
                          const SimpleResponse *resp, void *user_data) {
  burst *b = user_data;
  (void)call;
  if (st->code == CRPC_OK) {
    size_t got = resp && resp->payload ? resp->payload->body.len : 0;
    if (got != (size_t)b->want_size)
      bad_payload(K_UNARY_ASYNC, got, (size_t)b->want_size);
  }
  pthread_mutex_lock(&b->mu);
  bool dropped = b->channel_dropped;
  pthread_mutex_unlock(&b->mu);
  record(K_UNARY_ASYNC, b->plan, st->code, st,
         allowed(b->plan, st->code, b->echo, dropped));
  pthread_mutex_lock(&b->mu);
  if (--b->pending == 0)
    pthread_cond_signal(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

/* Returns true when it freed |w|'s channel under its calls. */
static bool do_unary_async(worker *w, crpc_channel *ch, enum plan p) {
  if (p == P_CANCEL)
    p = P_NORMAL; /* no call handle to cancel: dropping the channel is the
                     cancel of this kind */
  burst b = {.pending = 0, .plan = p};
  pthread_mutex_init(&b.mu, NULL);
  pthread_cond_init(&b.cv, NULL);
  SimpleRequest req;
  Payload pl;
  EchoStatus es;
  unary_request(w, p, &req, &pl, &es, &b.echo);
  b.want_size = req.response_size;
  crpc_call_opts o;
  call_opts(w, p, &o, between(w, 0, 5));
  /* Only a worker's own channel is dropped: the shared one outlives all. */
  bool drop = ch == w->ch && chance(w, 20);
  int n = (int)between(w, 1, 16);
  for (int i = 0; i < n; i++) {
    pthread_mutex_lock(&b.mu);
    b.pending++;
    pthread_mutex_unlock(&b.mu);
    atomic_fetch_add(&n_started[K_UNARY_ASYNC], 1);
    int rv = grpc__testing__test_service__unary_call__call_async(
        ch, &o, &req, on_unary_done, &b);
    if (rv != 0) {
      start_failed(K_UNARY_ASYNC, rv);
      pthread_mutex_lock(&b.mu);
      b.pending--;
      pthread_mutex_unlock(&b.mu);
    }
  }
  free(pl.body.data);
  if (drop) {
    /* Connections going away under calls: they end CANCELLED, their
     * callbacks run before crpc_channel_free() returns. */
    pthread_mutex_lock(&b.mu);
    b.channel_dropped = true;
    pthread_mutex_unlock(&b.mu);
    crpc_channel_free(w->ch);
    w->ch = NULL;
  }
  pthread_mutex_lock(&b.mu);
  while (b.pending > 0)
    pthread_cond_wait(&b.cv, &b.mu);
  pthread_mutex_unlock(&b.mu);
  pthread_mutex_destroy(&b.mu);
  pthread_cond_destroy(&b.cv);
  return drop;
}

/* StreamingOutputCall: DEADLINE plans make the server sleep between
 * responses and set a deadline about half way through. */
static void do_server_stream(worker *w, crpc_channel *ch, enum plan p) {
  if (p == P_ECHO)
    p = P_NORMAL;
  int n = (int)between(w, 1, 20);
  int32_t interval = p == P_DEADLINE ? (int32_t)between(w, 1000, 5000) : 0;
  ResponseParameters rps[20], *rpp[20];
  StreamingOutputCallRequest req;
  grpc__testing__streaming_output_call_request__init(&req);
  for (int i = 0; i < n; i++) {
    grpc__testing__response_parameters__init(&rps[i]);
    rps[i].size = (int32_t)msg_size(w, 256 * 1024);
    rps[i].interval_us = interval;
    rpp[i] = &rps[i];
  }
  req.n_response_parameters = (size_t)n;
  req.response_parameters = rpp;
  crpc_call_opts o;
  call_opts(w, p, &o, (int64_t)n * interval / 2000 + 1);
  int cancel_at = p == P_CANCEL ? (int)between(w, 0, n - 1) : -1;
  crpc_call *call;
  atomic_fetch_add(&n_started[K_SERVER_STREAM], 1);
  int rv = grpc__testing__test_service__streaming_output_call__start(
      &call, ch, &o, &req);
  if (rv != 0) {
    start_failed(K_SERVER_STREAM, rv);
    return;
  }
  publish(w, call);
  int got = 0;
  StreamingOutputCallResponse *resp;
  for (;;) {
    if (got == cancel_at)
      crpc_call_cancel(call);
    if (!grpc__testing__test_service__streaming_output_call__read(call, &resp))
      break;
    size_t len = resp->payload ? resp->payload->body.len : 0;
    if (got < n && len != (size_t)rps[got].size)
      bad_payload(K_SERVER_STREAM, len, (size_t)rps[got].size);
    got++;
    grpc__testing__streaming_output_call_response__free_unpacked(resp, NULL);
  }
  crpc_status st = {0};
  crpc_code code =
      grpc__testing__test_service__streaming_output_call__finish(call, &st);
  bool cut = unpublish(w);
  if (code == CRPC_OK && got != n)
    bad_payload(K_SERVER_STREAM, (size_t)got, (size_t)n); /* message count */
  record(K_SERVER_STREAM, p, code, &st, allowed(p, code, 0, cut));
  crpc_status_clear(&st);
  crpc_call_free(call);
}

/* StreamingInputCall: the server adds up what it received. */
static void do_client_stream(worker *w, crpc_channel *ch, enum plan p) {
  if (p == P_ECHO)
    p = P_NORMAL;
  int n = (int)between(w, 0, 50);
  int cancel_at = p == P_CANCEL ? (int)between(w, 0, n) : -1;
  crpc_call_opts o;
  call_opts(w, p, &o, between(w, 0, 5));
  crpc_call *call;
  atomic_fetch_add(&n_started[K_CLIENT_STREAM], 1);
  int rv = grpc__testing__test_service__streaming_input_call__start(&call, ch,
                                                                    &o);
  if (rv != 0) {
    start_failed(K_CLIENT_STREAM, rv);
    return;
  }
  publish(w, call);
  int64_t sent = 0;
  int write_failed = -1;
  for (int i = 0; i < n; i++) {
    if (i == cancel_at)
      crpc_call_cancel(call);
    StreamingInputCallRequest req;
    Payload pl;
    grpc__testing__streaming_input_call_request__init(&req);
    payload(&pl, msg_size(w, 64 * 1024));
    req.payload = &pl;
    bool ok = grpc__testing__test_service__streaming_input_call__write(call,
                                                                       &req);
    free(pl.body.data);
    if (!ok) {
      write_failed = i;
      break;
    }
    sent += (int64_t)pl.body.len;
  }
  if (cancel_at == n)
    crpc_call_cancel(call);
  StreamingInputCallResponse *resp = NULL;
  crpc_status st = {0};
  crpc_code code =
      grpc__testing__test_service__streaming_input_call__finish(call, &resp,
                                                                &st);
  bool cut = unpublish(w);
  if (code == CRPC_OK &&
      (!resp || resp->aggregated_payload_size != (int32_t)sent)) {
    /* The server acknowledged fewer bytes than crpc_call_write() said it
     * sent, and still answered OK: lost messages. */
    atomic_fetch_add(&n_bad_payload, 1);
    sample("client_stream/%s: OK, but the server counted %d bytes of the "
           "%lld sent in %d messages (write %d failed, cancel at %d, "
           "canceller %s)",
           plan_names[p], resp ? resp->aggregated_payload_size : -1,
           (long long)sent, n, write_failed, cancel_at,
           cut ? "yes" : "no");
  }
  if (resp)
    grpc__testing__streaming_input_call_response__free_unpacked(resp, NULL);
  record(K_CLIENT_STREAM, p, code, &st, allowed(p, code, 0, cut));
  crpc_status_clear(&st);
  crpc_call_free(call);
}

/* FullDuplexCall, ping-pong: one request, one response, n times. ECHO
 * plans end with a request whose response_status the server returns. */
static void do_bidi(worker *w, crpc_channel *ch, enum plan p) {
  int n = (int)between(w, 1, 20);
  int32_t interval = p == P_DEADLINE ? (int32_t)between(w, 1000, 5000) : 0;
  int cancel_at = p == P_CANCEL ? (int)between(w, 0, n - 1) : -1;
  crpc_code echo = p == P_ECHO ? (crpc_code)between(w, 1, 16) : CRPC_OK;
  crpc_call_opts o;
  call_opts(w, p, &o, (int64_t)n * interval / 2000 + 1);
  crpc_call *call;
  atomic_fetch_add(&n_started[K_BIDI], 1);
  int rv = grpc__testing__test_service__full_duplex_call__start(&call, ch, &o);
  if (rv != 0) {
    start_failed(K_BIDI, rv);
    return;
  }
  publish(w, call);
  for (int i = 0; i < n; i++) {
    if (i == cancel_at)
      crpc_call_cancel(call);
    ResponseParameters rp, *rpp = &rp;
    StreamingOutputCallRequest req;
    Payload pl;
    EchoStatus es;
    grpc__testing__response_parameters__init(&rp);
    rp.size = (int32_t)msg_size(w, 128 * 1024);
    rp.interval_us = interval;
    grpc__testing__streaming_output_call_request__init(&req);
    req.n_response_parameters = 1;
    req.response_parameters = &rpp;
    payload(&pl, msg_size(w, 64 * 1024));
    req.payload = &pl;
    bool last_echo = p == P_ECHO && i == n - 1;
    if (last_echo) {
      grpc__testing__echo_status__init(&es);
      es.code = (int32_t)echo;
      es.message = "soak: echoed status";
      req.response_status = &es;
    }
    bool ok = grpc__testing__test_service__full_duplex_call__write(call, &req);
    free(pl.body.data);
    if (!ok || last_echo)
      break;
    StreamingOutputCallResponse *resp;
    if (!grpc__testing__test_service__full_duplex_call__read(call, &resp))
      break;
    size_t len = resp->payload ? resp->payload->body.len : 0;
    if (len != (size_t)rp.size)
      bad_payload(K_BIDI, len, (size_t)rp.size);
    grpc__testing__streaming_output_call_response__free_unpacked(resp, NULL);
  }
  grpc__testing__test_service__full_duplex_call__writes_done(call);
  crpc_status st = {0};
  crpc_code code = grpc__testing__test_service__full_duplex_call__finish(call,
                                                                         &st);
  bool cut = unpublish(w);
  record(K_BIDI, p, code, &st, allowed(p, code, echo, cut));
  crpc_status_clear(&st);
  crpc_call_free(call);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  while (!atomic_load(&stopping)) {
    if (w->ch == NULL || w->calls_left-- <= 0) {
      crpc_channel_free(w->ch);
      w->ch = new_channel();
      w->calls_left = (int)between(w, 1, 200);
      if (w->ch == NULL)
        break;
    }
    crpc_channel *ch = chance(w, 33) ? shared_ch : w->ch;
    int r = (int)(rnd(w) % 100);
    enum plan p = r < 70 ? P_NORMAL
                  : r < 80 ? P_DEADLINE
                  : r < 92 ? P_CANCEL
                           : P_ECHO;
    int k = (int)(rnd(w) % 100);
    enum kind kind = k < 10   ? K_EMPTY
                     : k < 30 ? K_UNARY
                     : k < 40 ? K_UNARY_ASYNC
                     : k < 60 ? K_SERVER_STREAM
                     : k < 80 ? K_CLIENT_STREAM
                              : K_BIDI;
    atomic_store(&w->doing_kind, kind);
    atomic_store(&w->doing_plan, p);
    switch (kind) {
    case K_EMPTY:
      do_empty(w, ch, p);
      break;
    case K_UNARY:
      do_unary(w, ch, p);
      break;
    case K_UNARY_ASYNC:
      do_unary_async(w, ch, p);
      break;
    case K_SERVER_STREAM:
      do_server_stream(w, ch, p);
      break;
    case K_CLIENT_STREAM:
      do_client_stream(w, ch, p);
      break;
    default:
      do_bidi(w, ch, p);
      break;
    }
    atomic_store(&w->doing_kind, -1);
  }
  crpc_channel_free(w->ch);
  w->ch = NULL;
  return NULL;
}

/* ---- the client that never reads ---- */

/* Holds a few calls whose large responses it never reads, on a channel of
 * its own, then cancels them and starts over with a new channel. Long
 * holds outlast the server's write-stall timeout: the server should have
 * closed the connection by then (the calls end UNAVAILABLE or CANCELLED by
 * the server, not OK); short holds end with our cancel. */
static void *never_read_main(void *arg) {
  worker *w = arg;
  bool long_hold = false;
  while (!atomic_load(&stopping)) {
    crpc_channel *ch = new_channel();
    if (!ch)
      break;
    long_hold = !long_hold;
    atomic_store(&w->doing_kind, K_NEVER_READ);
    atomic_store(&w->doing_plan, long_hold ? P_DEADLINE : P_CANCEL);
    crpc_call *calls[4];
    int n = 0;
    /* Two server streams of 32 x 1 MiB. */
    ResponseParameters rps[32], *rpp[32];
    for (int i = 0; i < 32; i++) {
      grpc__testing__response_parameters__init(&rps[i]);
      rps[i].size = 1 << 20;
      rpp[i] = &rps[i];
    }
    StreamingOutputCallRequest sreq;
    grpc__testing__streaming_output_call_request__init(&sreq);
    sreq.n_response_parameters = 32;
    sreq.response_parameters = rpp;
    for (int i = 0; i < 2; i++) {
      atomic_fetch_add(&n_started[K_NEVER_READ], 1);
      int rv = grpc__testing__test_service__streaming_output_call__start(
          &calls[n], ch, NULL, &sreq);
      if (rv == 0)
        n++;
      else
        start_failed(K_NEVER_READ, rv);
    }
    int n_streams = n;
    /* Two unary calls for 3 MiB responses (under the 4 MiB receive
     * limit), half-closed and never read. */
    SimpleRequest ureq;
    grpc__testing__simple_request__init(&ureq);
    ureq.response_size = 3 << 20;
    for (int i = 0; i < 2; i++) {
      atomic_fetch_add(&n_started[K_NEVER_READ], 1);
      int rv = crpc_call_start(&calls[n], ch, method("UnaryCall"), NULL);
      if (rv != 0) {
        start_failed(K_NEVER_READ, rv);
        continue;
      }
      crpc_call_write(calls[n], &ureq.base);
      crpc_call_writes_done(calls[n]);
      n++;
    }
    bool stopped =
        wait_stop_ms(long_hold ? NEVER_READ_LONG_MS : NEVER_READ_SHORT_MS);
    for (int i = 0; i < n; i++) {
      crpc_call_cancel(calls[i]);
      crpc_status st = {0};
      crpc_code code = crpc_call_finish(calls[i], &st);
      /* Short holds (and a stop) end with our cancel. A long-held stream
       * must have been ended by the server's write-stall timeout (neither
       * OK, which would mean responses went missing, nor our CANCELLED,
       * which would mean the server kept the stalled stream). A unary
       * response is one message, which crpc's client takes in whole even
       * unread (its window is credited until a message completes), so
       * it may well have ended OK. */
      bool stream = i < n_streams;
      bool expected =
          !stream ? code == CRPC_OK || code == CRPC_CANCELLED
          : long_hold && !stopped
              ? code != CRPC_OK && code != CRPC_CANCELLED
              : code == CRPC_CANCELLED;
      record(K_NEVER_READ, long_hold ? P_DEADLINE : P_CANCEL, code, &st,
             expected);
      crpc_status_clear(&st);
      crpc_call_free(calls[i]);
    }
    crpc_channel_free(ch);
    atomic_store(&w->doing_kind, -1);
  }
  return NULL;
}

/* ---- the canceller ---- */

static void *canceller_main(void *arg) {
  worker *self = arg;
  while (!wait_stop_ms(between(self, 2, 40)) && n_workers > 0) {
    worker *w = &workers[between(self, 0, n_workers - 1)];
    pthread_mutex_lock(&w->mu);
    if (w->current) {
      w->cancelled_by_other = true;
      crpc_call_cancel(w->current);
    }
    pthread_mutex_unlock(&w->mu);
  }
  return NULL;
}

/* ---- reporting ---- */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static void report(FILE *f, const char *stuck) {
  fputs("{\"started\":{", f);
  for (int k = 0; k < K_COUNT; k++)
    fprintf(f, "%s\"%s\":%llu", k ? "," : "", kind_names[k],
            (unsigned long long)atomic_load(&n_started[k]));
  fputs("},\"done\":{", f);
  for (int k = 0; k < K_COUNT; k++) {
    fprintf(f, "%s\"%s\":{", k ? "," : "", kind_names[k]);
    bool first = true;
    for (int c = 0; c < NCODES; c++) {
      unsigned long long v = atomic_load(&n_done[k][c]);
      if (!v)
        continue;
      fprintf(f, "%s\"%s\":%llu", first ? "" : ",",
              crpc_code_name((crpc_code)c), v);
      first = false;
    }
    fputc('}', f);
  }
  fputs("},\"unexpected\":{", f);
  bool first = true;
  for (int c = 0; c < NCODES; c++) {
    unsigned long long v = atomic_load(&n_unexpected[c]);
    if (!v)
      continue;
    fprintf(f, "%s\"%s\":%llu", first ? "" : ",", crpc_code_name((crpc_code)c),
            v);
    first = false;
  }
  fprintf(f,
          "},\"bad_payload\":%llu,\"channels\":%llu,\"start_errors\":%llu,"
          "\"samples\":[",
          (unsigned long long)atomic_load(&n_bad_payload),
          (unsigned long long)atomic_load(&n_channels),
          (unsigned long long)atomic_load(&n_start_errors));
  pthread_mutex_lock(&samples_mu);
  for (size_t i = 0; i < n_samples; i++) {
    fprintf(f, "%s{\"n\":%llu,\"what\":", i ? "," : "", sample_count[i]);
    json_str(f, samples[i]);
    fputc('}', f);
  }
  pthread_mutex_unlock(&samples_mu);
  fputs("],\"stuck\":[", f);
  if (stuck)
    fputs(stuck, f);
  fputs("]}\n", f);
  fflush(f);
}

/* ---- main ---- */

static const char *flag(int argc, char **argv, const char *name,
                        const char *def) {
  size_t len = strlen(name);
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], "--", 2) == 0 &&
        strncmp(argv[i] + 2, name, len) == 0 && argv[i][2 + len] == '=')
      return argv[i] + 3 + len;
  return def;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], "--target=", 9) != 0 &&
        strncmp(argv[i], "--threads=", 10) != 0 &&
        strncmp(argv[i], "--seed=", 7) != 0) {
      fprintf(stderr,
              "usage: %s --target=HOST:PORT [--threads=N] [--seed=N]\n"
              "  then, on stdin: \"s\" prints counters (JSON), \"q\" or EOF "
              "stops\n",
              argv[0]);
      return 2;
    }
  target = flag(argc, argv, "target", NULL);
  n_workers = atoi(flag(argc, argv, "threads", "4"));
  uint64_t seed = strtoull(flag(argc, argv, "seed", "1"), NULL, 10);
  if (!target || n_workers < 0 || n_workers > MAX_THREADS - 2) {
    fprintf(stderr, "soak: --target needed, --threads in 0..%d\n",
            MAX_THREADS - 2);
    return 2;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&stop_cv, &ca);

  shared_ch = new_channel();
  if (!shared_ch)
    return 1;
  /* workers[0..n_workers) make calls; then the never-read client and the
   * canceller, which only uses its rng. */
  int n_threads = n_workers + 2;
  for (int i = 0; i < n_threads; i++) {
    worker *w = &workers[i];
    w->index = i;
    w->rng = (seed + 1) * 0x9e3779b97f4a7c15ull + (uint64_t)i * 7919 + 1;
    pthread_mutex_init(&w->mu, NULL);
    atomic_store(&w->doing_kind, -1);
    void *(*fn)(void *) = i < n_workers       ? worker_main
                          : i == n_workers    ? never_read_main
                                              : canceller_main;
    if (pthread_create(&w->tid, NULL, fn, w) != 0) {
      fprintf(stderr, "soak: pthread_create failed\n");
      return 1;
    }
  }

  char line[64];
  while (fgets(line, sizeof(line), stdin) && line[0] != 'q')
    if (line[0] == 's')
      report(stdout, NULL);

  pthread_mutex_lock(&stop_mu);
  atomic_store(&stopping, true);
  pthread_cond_broadcast(&stop_cv);
  pthread_mutex_unlock(&stop_mu);

  /* Every thread finishes its call in progress; one that does not within
   * the grace period is a hang worth reporting (which call it was in). */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += STOP_GRACE_S;
  char stuck[2048] = "";
  size_t used = 0;
  for (int i = 0; i < n_threads; i++) {
    if (pthread_timedjoin_np(workers[i].tid, NULL, &until) == 0)
      continue;
    int k = atomic_load(&workers[i].doing_kind);
    int p = atomic_load(&workers[i].doing_plan);
    used += (size_t)snprintf(
        stuck + used, sizeof(stuck) - used, "%s\"thread %d (%s) in %s/%s\"",
        used ? "," : "", i,
        i < n_workers ? "worker" : i == n_workers ? "never_read" : "canceller",
        k >= 0 ? kind_names[k] : "-", k >= 0 ? plan_names[p] : "-");
    if (used >= sizeof(stuck) - 64)
      break;
  }
  report(stdout, used ? stuck : NULL);
  if (used)
    _exit(3); /* stuck threads still use the channels: no clean-up */
  crpc_channel_free(shared_ch);
  return 0;
}
