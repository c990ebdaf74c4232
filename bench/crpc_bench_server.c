/*
 * crpc-bench-server: grpc.testing.BenchmarkService on crpc.
 *
 * Both methods are registered CRPC_HANDLER_NONBLOCKING, so they run inline
 * on the reactor thread (the fastest path, as gRPC's callback API):
 * UnaryCall once per call, StreamingCall once per received message.
 * Responses carry response_size zero bytes, as gRPC's own benchmark server
 * sends.
 *
 * --async serves on a crpc_loop the main thread drives (one-descriptor
 * mode): crpc starts no thread, and the same handlers run from inside our
 * crpc_loop_run_once(). --threads is ignored.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>

#include "bench_common.h"
#include "grpc/testing/benchmark_service.crpc.h"

/* Response bodies point here: never written, so it stays on the zero page
 * and costs no memory however large a response is asked for. */
static uint8_t zeros[4u * 1024u * 1024u];

static uint32_t response_len(const Grpc__Testing__SimpleRequest *req) {
  if (req->response_size < 0)
    return 0;
  if ((uint32_t)req->response_size > sizeof zeros)
    return sizeof zeros;
  return (uint32_t)req->response_size;
}

static crpc_code unary_call(crpc_call *call, const ProtobufCMessage *msg,
                            ProtobufCMessage *out, void *user_data) {
  const Grpc__Testing__SimpleRequest *req =
      (const Grpc__Testing__SimpleRequest *)msg;
  Grpc__Testing__SimpleResponse *resp = (Grpc__Testing__SimpleResponse *)out;
  uint32_t n = response_len(req);
  if (n == 0)
    return CRPC_OK;
  Grpc__Testing__Payload *p = crpc_call_arena_alloc(call, sizeof *p);
  if (!p) {
    crpc_call_set_status_message(call, "out of memory");
    return CRPC_RESOURCE_EXHAUSTED;
  }
  grpc__testing__payload__init(p);
  p->body.data = zeros;
  p->body.len = n;
  resp->payload = p;
  return CRPC_OK;
}

/* Ping-pong on the reactor: one invocation per request message, each
 * answered at once, and a closing one with msg NULL. */
static crpc_code streaming_call_inline(crpc_call *call,
                                       const ProtobufCMessage *msg,
                                       ProtobufCMessage *out,
                                       void *user_data) {
  if (!msg)
    return CRPC_OK; /* the client half-closed (or cancelled) */
  Grpc__Testing__SimpleResponse resp = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
  Grpc__Testing__Payload p = GRPC__TESTING__PAYLOAD__INIT;
  uint32_t n = response_len((const Grpc__Testing__SimpleRequest *)msg);
  if (n > 0) {
    p.body.data = zeros;
    p.body.len = n;
    resp.payload = &p;
  }
  return grpc__testing__benchmark_service__streaming_call__server_write(
             call, &resp)
             ? CRPC_OK
             : CRPC_CANCELLED;
}

static const crpc_method *find_method(const char *path) {
  const crpc_service *svc = &grpc__testing__benchmark_service__crpc_service;
  for (size_t i = 0; i < svc->n_methods; i++)
    if (strcmp(svc->methods[i].path, path) == 0)
      return &svc->methods[i];
  fprintf(stderr, "crpc-bench-server: generated service lacks %s\n", path);
  exit(1);
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void check(int rv, const char *what) {
  if (rv != 0) {
    fprintf(stderr, "crpc-bench-server: %s: %s\n", what, crpc_strerror(rv));
    exit(1);
  }
}

int main(int argc, char **argv) {
  bench_server_opts o;
  bench_server_parse(&o, argc, argv, "crpc-bench-server", false);
  bench_raise_nofile();

  /* SIGINT/SIGTERM are taken by sigwait() below: block them before any
   * crpc thread exists so that every thread inherits the mask. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  crpc_server_opts so = {0};
  so.reactor_threads = o.threads;
  crpc_metrics *metrics = NULL;
  if (o.metrics) { /* what metrics cost on the hot path */
    check(crpc_metrics_new(&metrics, NULL), "crpc_metrics_new");
    so.metrics = metrics;
  }
  crpc_loop *loop = NULL;
  if (o.async) {
    check(crpc_loop_new(&loop, NULL), "crpc_loop_new");
    so.loop = loop;
  }
  crpc_server *s;
  check(crpc_server_new(&s, &so), "crpc_server_new");
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", o.port);
  int port = 0;
  crpc_tls_server_opts tls = {0};
  tls.cert_file = o.tls_cert;
  tls.key_file = o.tls_key;
  check(crpc_server_listen(s, addr, o.tls_cert ? &tls : NULL, &port), addr);
  check(crpc_server_register(
            s, find_method("/grpc.testing.BenchmarkService/UnaryCall"),
            unary_call, CRPC_HANDLER_NONBLOCKING, NULL),
        "register UnaryCall");
  check(crpc_server_register(
            s, find_method("/grpc.testing.BenchmarkService/StreamingCall"),
            streaming_call_inline, CRPC_HANDLER_NONBLOCKING, NULL),
        "register StreamingCall");
  check(crpc_server_start(s), "crpc_server_start");
  if (o.port == 0)
    printf("%d\n", port);
  fflush(stdout);

  if (!loop) {
    int sig;
    sigwait(&sigs, &sig);
  } else {
    /* crpc's wait is the whole turn (no poll() of crpc_loop_fd() in front
     * of it: one system call per wake-up, not two). A signal handler that
     * only sets a flag ends it: the signal interrupts epoll_wait, or the
     * 100 ms bound notices it. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
    while (!stop_requested)
      check(crpc_loop_run_once(loop, 100), "crpc_loop_run_once");
  }
  /* On a loop, shutdown turns it itself until the calls are over. */
  crpc_server_shutdown(s, 0);
  crpc_server_free(s);
  crpc_loop_free(loop);
  crpc_metrics_free(metrics);
  return 0;
}
