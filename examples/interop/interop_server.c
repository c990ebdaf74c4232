/*
 * crpc-interop-server: gRPC's interop test server (grpc.testing.TestService,
 * doc/interop-test-descriptions.md, "Server") on crpc.
 *
 *   crpc-interop-server --port=0        # prints the port it got
 *   crpc-interop-server --port=50051 --use_tls \
 *       --tls_cert_file=server1.pem --tls_key_file=server1.key
 *
 * Every TestService method is served, UnimplementedCall excepted (it must
 * answer UNIMPLEMENTED). Runs until SIGTERM or SIGINT, then shuts down
 * gracefully and exits 0.
 *
 * --async serves every method with NONBLOCKING (async) handlers on a
 * crpc_loop the main thread drives: no crpc thread at all
 * (interop_server_async.c). The default is crpc's reactor threads and
 * blocking handlers on its workers.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "flags.h"
#include "metrics_file.h"
#include "interop_server.h"

/* Larger payloads than this are refused (a test asks for 314159 bytes). */
#define MAX_PAYLOAD (16 * 1024 * 1024)

void log_rv(const char *what, int rv) {
  if (rv != 0)
    fprintf(stderr, "interop server: %s: %s\n", what, crpc_strerror(rv));
}

/* Echo Metadata: the two test keys come back, the first in the response
 * headers, the second in the trailers. */
void echo_metadata(crpc_call *call) {
  const crpc_metadata *md = crpc_call_request_metadata(call);
  size_t len;
  const uint8_t *v = crpc_metadata_get(md, ECHO_INITIAL, &len);
  if (v != NULL)
    log_rv("echo initial metadata",
           crpc_call_add_initial_metadata(call, ECHO_INITIAL, v, len));
  v = crpc_metadata_get(md, ECHO_TRAILING, &len);
  if (v != NULL)
    log_rv("echo trailing metadata",
           crpc_call_add_trailing_metadata(call, ECHO_TRAILING, v, len));
}

/* Echo Status: a non-zero response_status ends the call with it. */
bool echo_status(crpc_call *call, const Grpc__Testing__EchoStatus *es,
                 crpc_code *code) {
  if (es == NULL || es->code == 0)
    return false;
  crpc_call_set_status_message(call, es->message);
  *code = es->code > 0 && es->code <= CRPC_UNAUTHENTICATED ? (crpc_code)es->code
                                                           : CRPC_UNKNOWN;
  return true;
}

/*
 * CompressedRequest: a request whose expect_compressed is present and true
 * must have arrived with the compressed flag set, or the call fails
 * INVALID_ARGUMENT (the description's client_compressed_* probes rely on
 * that). An absent field asks for no check, and neither does a false one:
 * clients that compress every message (grpc-go, grpc-js, a channel with a
 * default encoding) send compressed requests to every method, and the
 * description fails none of them. gRPC's C++ interop server also rejects
 * a compressed request whose field is absent or false; we follow the
 * description instead.
 */
crpc_code check_compression(crpc_call *call,
                            const Grpc__Testing__BoolValue *expect) {
  if (expect == NULL || !expect->value)
    return CRPC_OK;
  if (!crpc_call_last_read_compressed(call)) {
    crpc_call_set_status_message(call, "expected a compressed request");
    return CRPC_INVALID_ARGUMENT;
  }
  return CRPC_OK;
}

/* CompressedResponse: the encoding of the call's responses. Only before the
 * first message (the encoding goes out in the response headers). */
crpc_code set_response_compression(crpc_call *call, bool compress) {
  int rv = crpc_call_set_compression(call, compress ? "gzip" : "identity");
  if (rv != 0) {
    crpc_call_set_status_message(call, crpc_strerror(rv));
    return CRPC_INTERNAL;
  }
  return CRPC_OK;
}

bool payload_size_ok(crpc_call *call, int32_t size) {
  if (size >= 0 && size <= MAX_PAYLOAD)
    return true;
  crpc_call_set_status_message(call, "payload size out of range");
  return false;
}

crpc_code empty_call(crpc_call *call, const Grpc__Testing__Empty *req,
                     Grpc__Testing__Empty *resp, void *user_data) {
  echo_metadata(call);
  return CRPC_OK;
}

crpc_code unary_call(crpc_call *call, const SimpleRequest *req,
                     SimpleResponse *resp, void *user_data) {
  crpc_code code;
  echo_metadata(call);
  if (echo_status(call, req->response_status, &code))
    return code;
  code = check_compression(call, req->expect_compressed);
  if (code != CRPC_OK)
    return code;
  if (req->response_type != GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE) {
    crpc_call_set_status_message(call, "unsupported response_type");
    return CRPC_INVALID_ARGUMENT;
  }
  if (!payload_size_ok(call, req->response_size))
    return CRPC_INVALID_ARGUMENT;
  if (req->response_compressed != NULL) {
    code = set_response_compression(call, req->response_compressed->value);
    if (code != CRPC_OK)
      return code;
  }
  /* The response is packed after we return: arena memory lives until then. */
  Grpc__Testing__Payload *p = crpc_call_arena_alloc(call, sizeof(*p));
  uint8_t *body = crpc_call_arena_alloc(call, (size_t)req->response_size + 1);
  if (p == NULL || body == NULL)
    return CRPC_RESOURCE_EXHAUSTED;
  grpc__testing__payload__init(p);
  memset(body, 0, (size_t)req->response_size);
  p->body.data = body;
  p->body.len = (size_t)req->response_size;
  resp->payload = p;
  return CRPC_OK;
}

/* CacheableUnaryCall: a payload that differs on every call, and headers
 * that let a caching proxy keep the response. */
crpc_code cacheable_unary_call(crpc_call *call, const SimpleRequest *req,
                               SimpleResponse *resp, void *user_data) {
  static const char cache_control[] = "max-age=60, public";
  log_rv("cache-control",
         crpc_call_add_initial_metadata(call, "cache-control", cache_control,
                                        sizeof(cache_control) - 1));
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char stamp[32];
  int n = snprintf(stamp, sizeof(stamp), "%" PRId64,
                   (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
  Grpc__Testing__Payload *p = crpc_call_arena_alloc(call, sizeof(*p));
  char *body = crpc_call_arena_strdup(call, stamp);
  if (p == NULL || body == NULL)
    return CRPC_RESOURCE_EXHAUSTED;
  grpc__testing__payload__init(p);
  p->body.data = (uint8_t *)body;
  p->body.len = (size_t)n;
  resp->payload = p;
  return CRPC_OK;
}

static void sleep_us(int32_t us) {
  struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/*
 * Writes one response per ResponseParameters of |req|. The call's encoding
 * is chosen before its first message (*first_write): gzip if any response
 * of that request asks for compression; the others then opt out one by
 * one.
 */
static crpc_code write_responses(crpc_call *call,
                                 const StreamingOutputCallRequest *req,
                                 bool *first_write) {
  bool compress = false;
  for (size_t i = 0; i < req->n_response_parameters; i++) {
    const ResponseParameters *rp = req->response_parameters[i];
    if (!payload_size_ok(call, rp->size))
      return CRPC_INVALID_ARGUMENT;
    if (rp->compressed != NULL && rp->compressed->value)
      compress = true;
  }
  if (*first_write && compress) {
    crpc_code code = set_response_compression(call, true);
    if (code != CRPC_OK)
      return code;
  }
  for (size_t i = 0; i < req->n_response_parameters; i++) {
    const ResponseParameters *rp = req->response_parameters[i];
    if (rp->interval_us > 0)
      sleep_us(rp->interval_us);
    Grpc__Testing__Payload payload = GRPC__TESTING__PAYLOAD__INIT;
    StreamingOutputCallResponse resp =
        GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
    payload.body.len = (size_t)rp->size;
    payload.body.data = calloc(1, payload.body.len + 1);
    if (payload.body.data == NULL)
      return CRPC_RESOURCE_EXHAUSTED;
    resp.payload = &payload;
    bool plain = rp->compressed == NULL || !rp->compressed->value;
    bool ok =
        crpc_call_write2(call, &resp.base, plain ? CRPC_WRITE_NO_COMPRESS : 0);
    free(payload.body.data);
    if (!ok)
      return CRPC_CANCELLED; /* the client is gone */
    *first_write = false;
  }
  return CRPC_OK;
}

static crpc_code streaming_output_call(crpc_call *call,
                                       const StreamingOutputCallRequest *req,
                                       void *user_data) {
  crpc_code code;
  echo_metadata(call);
  if (echo_status(call, req->response_status, &code))
    return code;
  bool first = true;
  return write_responses(call, req, &first);
}

static crpc_code streaming_input_call(crpc_call *call,
                                      StreamingInputCallResponse *resp,
                                      void *user_data) {
  echo_metadata(call);
  StreamingInputCallRequest *req;
  int64_t total = 0;
  while (grpc__testing__test_service__streaming_input_call__server_read(call,
                                                                        &req)) {
    crpc_code code = check_compression(call, req->expect_compressed);
    if (req->payload != NULL)
      total += (int64_t)req->payload->body.len;
    grpc__testing__streaming_input_call_request__free_unpacked(req, NULL);
    if (code != CRPC_OK)
      return code;
  }
  if (crpc_call_is_cancelled(call))
    return CRPC_CANCELLED;
  if (total > INT32_MAX) {
    crpc_call_set_status_message(call, "aggregated payload too large");
    return CRPC_OUT_OF_RANGE;
  }
  resp->aggregated_payload_size = (int32_t)total;
  return CRPC_OK;
}

static crpc_code full_duplex_call(crpc_call *call, void *user_data) {
  echo_metadata(call);
  StreamingOutputCallRequest *req;
  bool first = true;
  while (
      grpc__testing__test_service__full_duplex_call__server_read(call, &req)) {
    crpc_code code;
    if (!echo_status(call, req->response_status, &code))
      code = write_responses(call, req, &first);
    grpc__testing__streaming_output_call_request__free_unpacked(req, NULL);
    if (code != CRPC_OK)
      return code;
  }
  return crpc_call_is_cancelled(call) ? CRPC_CANCELLED : CRPC_OK;
}

/* HalfDuplexCall: every request first, then every response. */
static crpc_code half_duplex_call(crpc_call *call, void *user_data) {
  echo_metadata(call);
  StreamingOutputCallRequest **reqs = NULL, *req;
  size_t n = 0;
  crpc_code code = CRPC_OK;
  while (
      grpc__testing__test_service__half_duplex_call__server_read(call, &req)) {
    StreamingOutputCallRequest **grown = realloc(reqs, (n + 1) * sizeof(*reqs));
    if (grown == NULL) {
      grpc__testing__streaming_output_call_request__free_unpacked(req, NULL);
      code = CRPC_RESOURCE_EXHAUSTED;
      break;
    }
    reqs = grown;
    reqs[n++] = req;
  }
  if (code == CRPC_OK && crpc_call_is_cancelled(call))
    code = CRPC_CANCELLED;
  bool first = true;
  for (size_t i = 0; i < n && code == CRPC_OK; i++)
    if (!echo_status(call, reqs[i]->response_status, &code))
      code = write_responses(call, reqs[i], &first);
  for (size_t i = 0; i < n; i++)
    grpc__testing__streaming_output_call_request__free_unpacked(reqs[i], NULL);
  free(reqs);
  return code;
}

/* Calls received, printed at exit ("calls served: N"): deployment tests
 * behind proxies count which backend served how many. */
static atomic_long calls_served;

static crpc_code count_call(crpc_call *call, void *ud) {
  (void)call;
  (void)ud;
  atomic_fetch_add(&calls_served, 1);
  return CRPC_OK;
}

int main(int argc, char **argv) {
  interop_flag flags[] = {
      {"port", "0", "port to listen on; 0 picks one and prints it"},
      {"host", "127.0.0.1", "address to listen on"},
      {"use_tls", "false", "serve TLS"},
      {"tls_cert_file", "", "PEM certificate chain (with --use_tls)"},
      {"tls_key_file", "", "PEM private key (with --use_tls)"},
      {"async", "false",
       "async handlers on a loop the main thread drives (no crpc thread)"},
      {"reflection", "true", "serve server reflection (v1 and v1alpha)"},
      {"metrics_file", "",
       "rewrite this file every second with the metrics (Prometheus text)"},
      {"access_log", "false", "one line per call to stderr"},
      {"max_connection_age_ms", "0",
       "drain connections older than this (GOAWAY); 0: never"},
      {"max_connection_age_grace_ms", "0",
       "then cancel calls still running after this; 0: no limit"},
      {"keepalive_min_time_ms", "0",
       "client PINGs closer than this are strikes; 0: 5 min"},
      {"permit_keepalive_without_calls", "false",
       "allow client PINGs on a connection without calls"},
      {"max_ping_strikes", "0", "strikes before too_many_pings; 0: 10"},
      {NULL, NULL, NULL}};
  if (!interop_flags_parse(flags, "crpc-interop-server", argc, argv))
    return 2;
  long port = interop_flag_long(flags, "port");
  if (port < 0 || port > 65535) {
    fprintf(stderr, "--port=%ld: out of range\n", port);
    return 2;
  }
  crpc_tls_server_opts tls = {0};
  bool use_tls = interop_flag_bool(flags, "use_tls");
  if (use_tls) {
    tls.cert_file = interop_flag_str(flags, "tls_cert_file");
    tls.key_file = interop_flag_str(flags, "tls_key_file");
    if (!*tls.cert_file || !*tls.key_file) {
      fprintf(stderr, "--use_tls needs --tls_cert_file and --tls_key_file\n");
      return 2;
    }
  }

  /* Every thread crpc starts inherits this mask, so the stop signals are
   * left to sigwait() below. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  /* --async: the stop signals come through a signalfd in the loop's
   * epoll set instead of sigwait(). */
  bool async = interop_flag_bool(flags, "async");
  int sigfd = async ? signalfd(-1, &stop, SFD_CLOEXEC) : -1;
  crpc_loop *loop = NULL;
  int rv = async && sigfd < 0 ? CRPC_ESYS : 0;
  if (rv == 0 && async)
    rv = crpc_loop_new(&loop, NULL); /* this thread drives it */
  const char *metrics_path = interop_flag_str(flags, "metrics_file");
  crpc_metrics *metrics = NULL;
  metrics_file *mfile = NULL;
  if (rv == 0 && *metrics_path)
    rv = crpc_metrics_new(&metrics, NULL);
  crpc_server_opts so = {
      .loop = loop,
      .metrics = metrics,
      .max_connection_age_ms = interop_flag_long(flags, "max_connection_age_ms"),
      .max_connection_age_grace_ms =
          interop_flag_long(flags, "max_connection_age_grace_ms"),
      .keepalive_min_time_ms = interop_flag_long(flags, "keepalive_min_time_ms"),
      .permit_keepalive_without_calls =
          interop_flag_bool(flags, "permit_keepalive_without_calls"),
      .max_ping_strikes =
          (uint32_t)interop_flag_long(flags, "max_ping_strikes")};
  crpc_server *server = NULL;
  if (rv == 0)
    rv = crpc_server_new(&server, &so);
  if (rv == 0 && interop_flag_bool(flags, "access_log"))
    rv = crpc_server_set_access_log(server, crpc_access_log_stderr, NULL);
  if (rv != 0) {
    fprintf(stderr, "crpc_server_new: %s\n", crpc_strerror(rv));
    crpc_server_free(server);
    crpc_metrics_free(metrics);
    return 1;
  }
  const char *host = interop_flag_str(flags, "host");
  char addr[300];
  snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%ld" : "%s:%ld", host,
           port);
  int bound = 0;
  rv = crpc_server_listen(server, addr, use_tls ? &tls : NULL, &bound);
  if (rv != 0) {
    fprintf(stderr, "cannot listen on %s%s: %s\n", addr,
            use_tls ? " with TLS" : "", crpc_strerror(rv));
    crpc_server_free(server);
    crpc_loop_free(loop);
    crpc_metrics_free(metrics);
    return 1;
  }
  Grpc__Testing__TestService_CrpcHandlers handlers = {
      .empty_call = empty_call,
      .unary_call = unary_call,
      .cacheable_unary_call = cacheable_unary_call,
      .streaming_output_call = streaming_output_call,
      .streaming_input_call = streaming_input_call,
      .full_duplex_call = full_duplex_call,
      .half_duplex_call = half_duplex_call,
      .unimplemented_call = NULL, /* UNIMPLEMENTED, as the test wants */
  };
  /* Health and reflection too, so that probes and grpcurl work on it
   * (health's handlers block: in --async mode a health call runs on a
   * crpc worker thread). */
  crpc_health *health = NULL;
  rv = async ? interop_register_async(server)
             : grpc__testing__test_service__crpc_register(server, &handlers,
                                                          NULL);
  if (rv == 0)
    rv = crpc_health_new(&health);
  if (rv == 0)
    rv = crpc_health_register(health, server);
  if (rv == 0)
    rv = crpc_server_set_auth_hook(server, count_call, NULL);
  if (rv == 0 && interop_flag_bool(flags, "reflection"))
    rv = crpc_server_enable_reflection(server);
  if (rv == 0)
    rv = crpc_server_start(server);
  if (rv == 0 && metrics)
    rv = metrics_file_start(&mfile, metrics, metrics_path);
  if (rv != 0) {
    fprintf(stderr, "cannot start the server: %s\n", crpc_strerror(rv));
    crpc_server_free(server);
    crpc_loop_free(loop);
    crpc_health_free(health);
    crpc_metrics_free(metrics);
    return 1;
  }
  printf("%d\n", bound);
  fflush(stdout);

  int status = 0;
  if (async) {
    status = interop_run_async(loop, server, sigfd); /* shuts down too */
  } else {
    int sig = 0;
    sigwait(&stop, &sig);
    crpc_health_shutdown(health);
    crpc_server_shutdown(server, 1000);
  }
  metrics_file_stop(mfile); /* last write: every call is in */
  crpc_server_free(server);
  crpc_health_free(health);
  crpc_loop_free(loop);
  crpc_metrics_free(metrics);
  printf("calls served: %ld\n", atomic_load(&calls_served));
  if (sigfd >= 0)
    close(sigfd);
  return status;
}
