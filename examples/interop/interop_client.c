/*
 * crpc-interop-client: runs one of gRPC's interop test cases
 * (doc/interop-test-descriptions.md, "Client") against a
 * grpc.testing.TestService server, with crpc.
 *
 *   crpc-interop-client --server_host=127.0.0.1 --server_port=50051 \
 *       --test_case=large_unary [--use_tls --use_test_ca --ca_file=ca.pem \
 *       --server_host_override=foo.test.google.fr] \
 *       [--default_compression=gzip] [--async]
 *
 * --async runs the case through the callback API (crpc_call_start_cb,
 * crpc_call_write_async, the generated __call_async) on a crpc_loop this
 * program drives itself (interop_client_async.c); the default is the
 * blocking API. Both modes check the same things.
 *
 * Exits 0 when the case passed; 1, with what went wrong on stderr, when it
 * failed; 2 on a usage error or a case it does not run (cacheable_unary
 * needs a caching proxy in front of the server).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <crpc/crpc.h>

#include "interop_client.h"

static const uint8_t echo_trailing_value[] = {0xab, 0xab, 0xab};

#define UNARY_CALL_PATH "/grpc.testing.TestService/UnaryCall"

/* ---- failing with a message ---- */

static char failure[1024];

bool fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(failure, sizeof(failure), fmt, ap);
  va_end(ap);
  return false;
}

bool expect_code(crpc_code got, const crpc_status *st, crpc_code want,
                 const char *what) {
  if (got == want)
    return true;
  return fail("%s: status %s (%s), want %s", what, crpc_code_name(got),
              crpc_status_message(st), crpc_code_name(want));
}

/* ---- messages ---- */

/* A payload of |n| zero bytes; free the body with free(). */
bool zeros(Payload *p, size_t n) {
  grpc__testing__payload__init(p);
  p->body.len = n;
  p->body.data = calloc(1, n + 1);
  return p->body.data != NULL || fail("out of memory");
}

bool check_payload(const Payload *p, size_t size, const char *what) {
  size_t len = p ? p->body.len : 0;
  if (len != size)
    return fail("%s: payload of %zu bytes, want %zu", what, len, size);
  for (size_t i = 0; i < len; i++)
    if (p->body.data[i] != 0)
      return fail("%s: payload byte %zu is not zero", what, i);
  return true;
}

/* large_unary's request: 271828 bytes out, 314159 back. */
bool large_request(SimpleRequest *req, Payload *payload) {
  grpc__testing__simple_request__init(req);
  req->response_size = 314159;
  req->payload = payload;
  return zeros(payload, 271828);
}

bool stream_request(StreamingOutputCallRequest *req, ResponseParameters *rp,
                    ResponseParameters **rpp, Payload *payload,
                    int32_t resp_size, size_t req_size) {
  grpc__testing__streaming_output_call_request__init(req);
  grpc__testing__response_parameters__init(rp);
  rp->size = resp_size;
  *rpp = rp;
  req->n_response_parameters = 1;
  req->response_parameters = rpp;
  req->payload = payload;
  return zeros(payload, req_size);
}

/* ---- compression flag of received messages ---- */

bool check_compressed(crpc_call *call, bool want, const char *what) {
  bool got = crpc_call_last_read_compressed(call);
  if (got != want)
    return fail("%s: the response %s the compressed flag", what,
                got ? "has" : "lacks");
  return true;
}

static const crpc_method *find_method(const crpc_service *svc,
                                      const char *path) {
  for (size_t i = 0; i < svc->n_methods; i++)
    if (strcmp(svc->methods[i].path, path) == 0)
      return &svc->methods[i];
  return NULL;
}

/*
 * UnaryCall through the generic call API, which (unlike the one-shot
 * __call) leaves a call to ask whether the response came compressed.
 */
static bool unary_check_compressed(env *e, const SimpleRequest *req,
                                   bool want_compressed, const char *what) {
  const crpc_method *m =
      find_method(&grpc__testing__test_service__crpc_service, UNARY_CALL_PATH);
  if (m == NULL)
    return fail("no %s in the generated method table", UNARY_CALL_PATH);
  crpc_call *call;
  int rv = crpc_call_start(&call, e->ch, m, NULL);
  if (rv != 0)
    return fail("%s: crpc_call_start: %s", what, crpc_strerror(rv));
  /* The server may answer (and end the call) as soon as it has the
   * request: the half-close can then fail, and the status tells. */
  ProtobufCMessage *msg = NULL;
  bool ok = crpc_call_write(call, &req->base) ||
            fail("%s: cannot send the request", what);
  crpc_call_writes_done(call);
  ok = ok && (crpc_call_read(call, &msg) || fail("%s: no response", what));
  bool compressed_ok = ok && check_compressed(call, want_compressed, what);
  crpc_status st = {0};
  crpc_code code = crpc_call_finish(call, &st);
  ok = expect_code(code, &st, CRPC_OK, what) && ok &&
       check_payload(((SimpleResponse *)msg)->payload, 314159, what) &&
       compressed_ok;
  if (msg != NULL)
    protobuf_c_message_free_unpacked(msg, NULL);
  crpc_status_clear(&st);
  crpc_call_free(call);
  return ok;
}

/* ---- the cases ---- */

static bool empty_unary(env *e) {
  Empty req = GRPC__TESTING__EMPTY__INIT, *resp = NULL;
  crpc_status st = {0};
  crpc_code code = grpc__testing__test_service__empty_call__call(
      e->ch, NULL, &req, &resp, &st);
  bool ok = expect_code(code, &st, CRPC_OK, "EmptyCall") &&
            (resp != NULL || fail("EmptyCall: no response"));
  if (resp)
    grpc__testing__empty__free_unpacked(resp, NULL);
  crpc_status_clear(&st);
  return ok;
}

/* One UnaryCall of |req| with |opts|, which must answer OK with 314159
 * zero bytes. */
static bool large_unary_call(env *e, const crpc_call_opts *opts,
                             const SimpleRequest *req, const char *what) {
  SimpleResponse *resp = NULL;
  crpc_status st = {0};
  crpc_code code = grpc__testing__test_service__unary_call__call(
      e->ch, opts, req, &resp, &st);
  bool ok = expect_code(code, &st, CRPC_OK, what) &&
            (resp != NULL || fail("%s: no response", what)) &&
            check_payload(resp->payload, 314159, what);
  if (resp)
    grpc__testing__simple_response__free_unpacked(resp, NULL);
  crpc_status_clear(&st);
  return ok;
}

static bool large_unary(env *e) {
  SimpleRequest req;
  Payload payload;
  bool ok = large_request(&req, &payload) &&
            large_unary_call(e, NULL, &req, "UnaryCall");
  free(payload.body.data);
  return ok;
}

static bool client_compressed_unary(env *e) {
  SimpleRequest req;
  Payload payload;
  Grpc__Testing__BoolValue yes = GRPC__TESTING__BOOL_VALUE__INIT;
  Grpc__Testing__BoolValue no = GRPC__TESTING__BOOL_VALUE__INIT;
  yes.value = 1;
  if (!large_request(&req, &payload))
    return false;
  req.expect_compressed = &yes;

  /* The probe: an uncompressed request that says it is compressed. The
   * uncompressed calls name identity, which overrides a channel's
   * --default_compression. */
  crpc_call_opts identity = {.compression = "identity"};
  SimpleResponse *resp = NULL;
  crpc_status st = {0};
  crpc_code code = grpc__testing__test_service__unary_call__call(
      e->ch, &identity, &req, &resp, &st);
  bool ok = expect_code(code, &st, CRPC_INVALID_ARGUMENT, "probe");
  if (resp)
    grpc__testing__simple_response__free_unpacked(resp, NULL);
  crpc_status_clear(&st);

  crpc_call_opts gzip = {.compression = "gzip"};
  ok = ok && large_unary_call(e, &gzip, &req, "compressed UnaryCall");
  req.expect_compressed = &no;
  ok = ok && large_unary_call(e, &identity, &req, "uncompressed UnaryCall");
  free(payload.body.data);
  return ok;
}

static bool server_compressed_unary(env *e) {
  SimpleRequest req;
  Payload payload;
  Grpc__Testing__BoolValue flag = GRPC__TESTING__BOOL_VALUE__INIT;
  if (!large_request(&req, &payload))
    return false;
  req.response_compressed = &flag;
  flag.value = 1;
  bool ok = unary_check_compressed(e, &req, true, "compressed UnaryCall");
  flag.value = 0;
  ok = ok && unary_check_compressed(e, &req, false, "uncompressed UnaryCall");
  free(payload.body.data);
  return ok;
}

/* StreamingInputCall with one request per entry of |sizes| (each marked
 * with |expect| and written with |flags|), expecting |want| and, when OK,
 * the sum of the sizes. */
static bool streaming_input(env *e, const crpc_call_opts *opts,
                            const size_t *sizes, const int *expect,
                            const unsigned *flags, size_t n, crpc_code want,
                            const char *what) {
  crpc_call *call;
  int rv = grpc__testing__test_service__streaming_input_call__start(
      &call, e->ch, opts);
  if (rv != 0)
    return fail("%s: start: %s", what, crpc_strerror(rv));
  Grpc__Testing__BoolValue yes = GRPC__TESTING__BOOL_VALUE__INIT;
  Grpc__Testing__BoolValue no = GRPC__TESTING__BOOL_VALUE__INIT;
  yes.value = 1;
  size_t total = 0;
  bool ok = true;
  for (size_t i = 0; i < n && ok; i++) {
    StreamingInputCallRequest req =
        GRPC__TESTING__STREAMING_INPUT_CALL_REQUEST__INIT;
    Payload payload;
    if (!zeros(&payload, sizes[i])) {
      ok = false;
      break;
    }
    req.payload = &payload;
    if (expect != NULL)
      req.expect_compressed = expect[i] ? &yes : &no;
    /* A write may fail once the server has already answered (the probe):
     * the status tells. */
    if (!crpc_call_write2(call, &req.base, flags ? flags[i] : 0) &&
        want == CRPC_OK)
      ok = fail("%s: write %zu failed", what, i);
    free(payload.body.data);
    total += sizes[i];
  }
  StreamingInputCallResponse *resp = NULL;
  crpc_status st = {0};
  crpc_code code = grpc__testing__test_service__streaming_input_call__finish(
      call, &resp, &st);
  ok = expect_code(code, &st, want, what) && ok;
  if (ok && want == CRPC_OK &&
      (resp == NULL || resp->aggregated_payload_size != (int32_t)total))
    ok = fail("%s: aggregated_payload_size %d, want %zu", what,
              resp ? resp->aggregated_payload_size : -1, total);
  if (resp)
    grpc__testing__streaming_input_call_response__free_unpacked(resp, NULL);
  crpc_status_clear(&st);
  crpc_call_free(call);
  return ok;
}

static bool client_streaming(env *e) {
  static const size_t sizes[] = {27182, 8, 1828, 45904};
  return streaming_input(e, NULL, sizes, NULL, NULL, 4, CRPC_OK,
                         "StreamingInputCall");
}

static bool client_compressed_streaming(env *e) {
  static const size_t probe[] = {27182};
  static const int probe_expect[] = {1};
  static const size_t sizes[] = {27182, 45904};
  static const int expect[] = {1, 0};
  static const unsigned flags[] = {0, CRPC_WRITE_NO_COMPRESS};
  crpc_call_opts gzip = {.compression = "gzip"};
  crpc_call_opts identity = {.compression = "identity"};
  return streaming_input(e, &identity, probe, probe_expect, NULL, 1,
                         CRPC_INVALID_ARGUMENT, "probe") &&
         streaming_input(e, &gzip, sizes, expect, flags, 2, CRPC_OK,
                         "compressed StreamingInputCall");
}

/* StreamingOutputCall asking for |n| responses of |sizes|, each compressed
 * or not as |compressed| says (NULL: no compression asked, none checked). */
static bool streaming_output(env *e, const int32_t *sizes,
                             const int *compressed, size_t n,
                             const char *what) {
  ResponseParameters rp[8], *rpp[8];
  Grpc__Testing__BoolValue flag[8];
  StreamingOutputCallRequest req =
      GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
  for (size_t i = 0; i < n; i++) {
    grpc__testing__response_parameters__init(&rp[i]);
    rp[i].size = sizes[i];
    if (compressed != NULL) {
      grpc__testing__bool_value__init(&flag[i]);
      flag[i].value = compressed[i];
      rp[i].compressed = &flag[i];
    }
    rpp[i] = &rp[i];
  }
  req.n_response_parameters = n;
  req.response_parameters = rpp;

  crpc_call *call;
  int rv = grpc__testing__test_service__streaming_output_call__start(
      &call, e->ch, NULL, &req);
  if (rv != 0)
    return fail("%s: start: %s", what, crpc_strerror(rv));
  StreamingOutputCallResponse *resp;
  size_t got = 0;
  bool ok = true;
  while (
      grpc__testing__test_service__streaming_output_call__read(call, &resp)) {
    if (ok && got >= n)
      ok = fail("%s: more than %zu responses", what, n);
    else if (ok) {
      ok =
          check_payload(resp->payload, (size_t)sizes[got], what) &&
          (compressed == NULL || check_compressed(call, compressed[got], what));
    }
    got++;
    grpc__testing__streaming_output_call_response__free_unpacked(resp, NULL);
  }
  crpc_status st = {0};
  crpc_code code =
      grpc__testing__test_service__streaming_output_call__finish(call, &st);
  ok = expect_code(code, &st, CRPC_OK, what) && ok &&
       (got == n || fail("%s: %zu responses, want %zu", what, got, n));
  crpc_status_clear(&st);
  crpc_call_free(call);
  return ok;
}

static bool server_streaming(env *e) {
  static const int32_t sizes[] = {31415, 9, 2653, 58979};
  return streaming_output(e, sizes, NULL, 4, "StreamingOutputCall");
}

static bool server_compressed_streaming(env *e) {
  static const int32_t sizes[] = {31415, 92653};
  static const int compressed[] = {1, 0};
  return streaming_output(e, sizes, compressed, 2, "StreamingOutputCall");
}

/* Writes one FullDuplexCall request (one response of |resp_size| asked, a
 * payload of |req_size|). */
static bool duplex_write(crpc_call *call, int32_t resp_size, size_t req_size,
                         const char *what) {
  StreamingOutputCallRequest req;
  ResponseParameters rp, *rpp;
  Payload payload;
  if (!stream_request(&req, &rp, &rpp, &payload, resp_size, req_size))
    return false;
  bool ok = grpc__testing__test_service__full_duplex_call__write(call, &req);
  free(payload.body.data);
  return ok || fail("%s: write failed", what);
}

static bool duplex_read(crpc_call *call, size_t size, const char *what) {
  StreamingOutputCallResponse *resp;
  if (!grpc__testing__test_service__full_duplex_call__read(call, &resp))
    return fail("%s: no response", what);
  bool ok = check_payload(resp->payload, size, what);
  grpc__testing__streaming_output_call_response__free_unpacked(resp, NULL);
  return ok;
}

static bool duplex_read_end(crpc_call *call, const char *what) {
  StreamingOutputCallResponse *resp;
  if (!grpc__testing__test_service__full_duplex_call__read(call, &resp))
    return true;
  grpc__testing__streaming_output_call_response__free_unpacked(resp, NULL);
  return fail("%s: a response too many", what);
}

static bool duplex_finish(crpc_call *call, crpc_code want, const char *what) {
  crpc_status st = {0};
  crpc_code code =
      grpc__testing__test_service__full_duplex_call__finish(call, &st);
  bool ok = expect_code(code, &st, want, what);
  crpc_status_clear(&st);
  return ok;
}

static bool ping_pong(env *e) {
  static const int32_t resp_sizes[] = {31415, 9, 2653, 58979};
  static const size_t req_sizes[] = {27182, 8, 1828, 45904};
  crpc_call *call;
  int rv =
      grpc__testing__test_service__full_duplex_call__start(&call, e->ch, NULL);
  if (rv != 0)
    return fail("FullDuplexCall: start: %s", crpc_strerror(rv));
  bool ok = true;
  for (size_t i = 0; i < 4 && ok; i++)
    ok = duplex_write(call, resp_sizes[i], req_sizes[i], "ping") &&
         duplex_read(call, (size_t)resp_sizes[i], "pong");
  ok = ok &&
       (grpc__testing__test_service__full_duplex_call__writes_done(call) ||
        fail("writes_done failed")) &&
       duplex_read_end(call, "FullDuplexCall");
  ok = duplex_finish(call, CRPC_OK, "FullDuplexCall") && ok;
  crpc_call_free(call);
  return ok;
}

static bool empty_stream(env *e) {
  crpc_call *call;
  int rv =
      grpc__testing__test_service__full_duplex_call__start(&call, e->ch, NULL);
  if (rv != 0)
    return fail("FullDuplexCall: start: %s", crpc_strerror(rv));
  bool ok = (grpc__testing__test_service__full_duplex_call__writes_done(call) ||
             fail("writes_done failed")) &&
            duplex_read_end(call, "FullDuplexCall");
  ok = duplex_finish(call, CRPC_OK, "FullDuplexCall") && ok;
  crpc_call_free(call);
  return ok;
}

bool check_echoed_initial(const crpc_metadata *initial, const char *what) {
  size_t len;
  const uint8_t *v = crpc_metadata_get(initial, ECHO_INITIAL, &len);
  if (v == NULL || len != strlen(ECHO_INITIAL_VALUE) ||
      memcmp(v, ECHO_INITIAL_VALUE, len) != 0)
    return fail("%s: %s not echoed in the initial metadata", what,
                ECHO_INITIAL);
  return true;
}

bool check_echoed_trailing(const crpc_metadata *trailing, const char *what) {
  size_t len;
  const uint8_t *v = crpc_metadata_get(trailing, ECHO_TRAILING, &len);
  if (v == NULL || len != sizeof(echo_trailing_value) ||
      memcmp(v, echo_trailing_value, len) != 0)
    return fail("%s: %s not echoed in the trailing metadata", what,
                ECHO_TRAILING);
  return true;
}

static bool check_echoed(const crpc_metadata *initial,
                         const crpc_metadata *trailing, const char *what) {
  return check_echoed_initial(initial, what) &&
         check_echoed_trailing(trailing, what);
}

static bool custom_metadata(env *e) {
  crpc_metadata *md = NULL, *initial = NULL, *trailing = NULL;
  bool ok = crpc_metadata_new(&md) == 0 && crpc_metadata_new(&initial) == 0 &&
            crpc_metadata_new(&trailing) == 0 &&
            crpc_metadata_add_str(md, ECHO_INITIAL, ECHO_INITIAL_VALUE) == 0 &&
            crpc_metadata_add(md, ECHO_TRAILING, echo_trailing_value,
                              sizeof(echo_trailing_value)) == 0;
  if (!ok) {
    fail("cannot build the metadata");
    goto done;
  }
  /* Unary. */
  crpc_call_opts opts = {.metadata = md,
                         .initial_metadata_out = initial,
                         .trailing_metadata_out = trailing};
  SimpleRequest req;
  Payload payload;
  ok = large_request(&req, &payload) &&
       large_unary_call(e, &opts, &req, "UnaryCall") &&
       check_echoed(initial, trailing, "UnaryCall");
  free(payload.body.data);
  if (!ok)
    goto done;

  /* Full duplex. */
  crpc_call_opts dopts = {.metadata = md};
  crpc_call *call;
  int rv = grpc__testing__test_service__full_duplex_call__start(&call, e->ch,
                                                                &dopts);
  if (rv != 0) {
    ok = fail("FullDuplexCall: start: %s", crpc_strerror(rv));
    goto done;
  }
  ok = duplex_write(call, 314159, 271828, "FullDuplexCall") &&
       (grpc__testing__test_service__full_duplex_call__writes_done(call) ||
        fail("writes_done failed")) &&
       duplex_read(call, 314159, "FullDuplexCall") &&
       duplex_read_end(call, "FullDuplexCall");
  ok = duplex_finish(call, CRPC_OK, "FullDuplexCall") && ok &&
       check_echoed(crpc_call_initial_metadata(call),
                    crpc_call_trailing_metadata(call), "FullDuplexCall");
  crpc_call_free(call);
done:
  crpc_metadata_free(md);
  crpc_metadata_free(initial);
  crpc_metadata_free(trailing);
  return ok;
}

bool check_status(crpc_code code, const crpc_status *st, const char *message,
                  const char *what) {
  if (!expect_code(code, st, CRPC_UNKNOWN, what))
    return false;
  const char *got = st->message ? st->message : "";
  if (strcmp(got, message) != 0)
    return fail("%s: status message \"%s\", want \"%s\"", what, got, message);
  return true;
}

/* Echo Status: UnaryCall (and FullDuplexCall when |duplex|) must end with
 * code 2 and exactly |message|. */
static bool status_echo(env *e, const char *message, bool duplex) {
  Grpc__Testing__EchoStatus es = GRPC__TESTING__ECHO_STATUS__INIT;
  es.code = 2;
  es.message = (char *)message;
  SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  req.response_status = &es;
  SimpleResponse *resp = NULL;
  crpc_status st = {0};
  crpc_code code = grpc__testing__test_service__unary_call__call(
      e->ch, NULL, &req, &resp, &st);
  bool ok = check_status(code, &st, message, "UnaryCall");
  if (resp)
    grpc__testing__simple_response__free_unpacked(resp, NULL);
  crpc_status_clear(&st);
  if (!ok || !duplex)
    return ok;

  StreamingOutputCallRequest sreq =
      GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
  sreq.response_status = &es;
  crpc_call *call;
  int rv =
      grpc__testing__test_service__full_duplex_call__start(&call, e->ch, NULL);
  if (rv != 0)
    return fail("FullDuplexCall: start: %s", crpc_strerror(rv));
  /* The write and half-close may fail if the server answered first. */
  grpc__testing__test_service__full_duplex_call__write(call, &sreq);
  grpc__testing__test_service__full_duplex_call__writes_done(call);
  ok = duplex_read_end(call, "FullDuplexCall");
  code = grpc__testing__test_service__full_duplex_call__finish(call, &st);
  ok = check_status(code, &st, message, "FullDuplexCall") && ok;
  crpc_status_clear(&st);
  crpc_call_free(call);
  return ok;
}

static bool status_code_and_message(env *e) {
  return status_echo(e, "test status message", true);
}

static bool special_status_message(env *e) {
  return status_echo(e,
                     "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba "
                     "and non-BMP \xf0\x9f\x98\x88\t\n",
                     false);
}

static bool unimplemented_method(env *e) {
  Empty req = GRPC__TESTING__EMPTY__INIT, *resp = NULL;
  crpc_status st = {0};
  crpc_code code = grpc__testing__test_service__unimplemented_call__call(
      e->ch, NULL, &req, &resp, &st);
  bool ok = expect_code(code, &st, CRPC_UNIMPLEMENTED, "UnimplementedCall");
  if (resp)
    grpc__testing__empty__free_unpacked(resp, NULL);
  crpc_status_clear(&st);
  return ok;
}

static bool unimplemented_service(env *e) {
  Empty req = GRPC__TESTING__EMPTY__INIT, *resp = NULL;
  crpc_status st = {0};
  crpc_code code =
      grpc__testing__unimplemented_service__unimplemented_call__call(
          e->ch, NULL, &req, &resp, &st);
  bool ok = expect_code(code, &st, CRPC_UNIMPLEMENTED,
                        "UnimplementedService/UnimplementedCall");
  if (resp)
    grpc__testing__empty__free_unpacked(resp, NULL);
  crpc_status_clear(&st);
  return ok;
}

static bool cancel_after_begin(env *e) {
  crpc_call *call;
  int rv = grpc__testing__test_service__streaming_input_call__start(
      &call, e->ch, NULL);
  if (rv != 0)
    return fail("StreamingInputCall: start: %s", crpc_strerror(rv));
  crpc_call_cancel(call);
  StreamingInputCallResponse *resp = NULL;
  crpc_status st = {0};
  crpc_code code = grpc__testing__test_service__streaming_input_call__finish(
      call, &resp, &st);
  bool ok = expect_code(code, &st, CRPC_CANCELLED, "StreamingInputCall");
  if (resp)
    grpc__testing__streaming_input_call_response__free_unpacked(resp, NULL);
  crpc_status_clear(&st);
  crpc_call_free(call);
  return ok;
}

static bool cancel_after_first_response(env *e) {
  crpc_call *call;
  int rv =
      grpc__testing__test_service__full_duplex_call__start(&call, e->ch, NULL);
  if (rv != 0)
    return fail("FullDuplexCall: start: %s", crpc_strerror(rv));
  bool ok = duplex_write(call, 31415, 27182, "FullDuplexCall") &&
            duplex_read(call, 31415, "first response");
  crpc_call_cancel(call);
  ok = duplex_finish(call, CRPC_CANCELLED, "FullDuplexCall") && ok;
  crpc_call_free(call);
  return ok;
}

static bool timeout_on_sleeping_server(env *e) {
  crpc_call_opts opts = {.timeout_ms = 1};
  crpc_call *call;
  int rv =
      grpc__testing__test_service__full_duplex_call__start(&call, e->ch, &opts);
  if (rv != 0)
    return fail("FullDuplexCall: start: %s", crpc_strerror(rv));
  StreamingOutputCallRequest req =
      GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
  Payload payload;
  bool ok = zeros(&payload, 27182);
  if (ok) {
    req.payload = &payload;
    /* May fail: the deadline can pass before the write. */
    grpc__testing__test_service__full_duplex_call__write(call, &req);
    free(payload.body.data);
  }
  ok = duplex_finish(call, CRPC_DEADLINE_EXCEEDED, "FullDuplexCall") && ok;
  crpc_call_free(call);
  return ok;
}

int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* rpc_soak / channel_soak: large_unary over and over, on one channel or on
 * a new channel each time. */
static bool soak(env *e, bool new_channel) {
  long iterations = interop_flag_long(e->flags, "soak_iterations");
  long max_failures = interop_flag_long(e->flags, "soak_max_failures");
  long max_ms = interop_flag_long(
      e->flags, "soak_per_iteration_max_acceptable_latency_ms");
  long gap_ms = interop_flag_long(e->flags, "soak_min_time_ms_between_rpcs");
  int64_t deadline =
      now_ms() +
      interop_flag_long(e->flags, "soak_overall_timeout_seconds") * 1000;
  SimpleRequest req;
  Payload payload;
  if (!large_request(&req, &payload))
    return false;
  long failures = 0, i;
  for (i = 0; i < iterations; i++) {
    int64_t start = now_ms();
    if (start > deadline)
      break;
    crpc_channel *ch = e->ch;
    if (new_channel) {
      int rv = crpc_channel_new(&ch, e->target, &e->chopts);
      if (rv != 0) {
        free(payload.body.data);
        return fail("soak: crpc_channel_new: %s", crpc_strerror(rv));
      }
    }
    SimpleResponse *resp = NULL;
    crpc_status st = {0};
    crpc_code code = grpc__testing__test_service__unary_call__call(
        ch, NULL, &req, &resp, &st);
    int64_t took = now_ms() - start;
    bool ok = code == CRPC_OK && resp != NULL && resp->payload != NULL &&
              resp->payload->body.len == 314159 && took <= max_ms;
    if (!ok) {
      failures++;
      fprintf(stderr, "soak iteration %ld failed: %s (%s), %lld ms\n", i,
              crpc_code_name(code), crpc_status_message(&st), (long long)took);
    }
    if (resp)
      grpc__testing__simple_response__free_unpacked(resp, NULL);
    crpc_status_clear(&st);
    if (new_channel)
      crpc_channel_free(ch);
    int64_t left = start + gap_ms - now_ms();
    if (left > 0)
      sleep_ms(left);
  }
  free(payload.body.data);
  if (i < iterations)
    return fail("soak: overall timeout after %ld of %ld iterations", i,
                iterations);
  if (failures > max_failures)
    return fail("soak: %ld of %ld iterations failed (at most %ld may)",
                failures, iterations, max_failures);
  return true;
}

static bool rpc_soak(env *e) { return soak(e, false); }
static bool channel_soak(env *e) { return soak(e, true); }

static const interop_case cases[] = {
    {"empty_unary", empty_unary},
    {"large_unary", large_unary},
    {"client_compressed_unary", client_compressed_unary},
    {"server_compressed_unary", server_compressed_unary},
    {"client_streaming", client_streaming},
    {"client_compressed_streaming", client_compressed_streaming},
    {"server_streaming", server_streaming},
    {"server_compressed_streaming", server_compressed_streaming},
    {"ping_pong", ping_pong},
    {"empty_stream", empty_stream},
    {"custom_metadata", custom_metadata},
    {"status_code_and_message", status_code_and_message},
    {"special_status_message", special_status_message},
    {"unimplemented_method", unimplemented_method},
    {"unimplemented_service", unimplemented_service},
    {"cancel_after_begin", cancel_after_begin},
    {"cancel_after_first_response", cancel_after_first_response},
    {"timeout_on_sleeping_server", timeout_on_sleeping_server},
    {"rpc_soak", rpc_soak},
    {"channel_soak", channel_soak},
    {NULL, NULL},
};

int main(int argc, char **argv) {
  interop_flag flags[] = {
      {"server_host", "localhost", "server host name or address"},
      {"server_port", "0", "server port (required)"},
      {"server_host_override", "", "name for TLS verification and :authority"},
      {"test_case", "large_unary", "the case to run"},
      {"use_tls", "false", "connect with TLS"},
      {"use_test_ca", "false", "trust --ca_file instead of the system CAs"},
      {"ca_file", "", "PEM CA bundle for --use_test_ca"},
      {"default_compression", "",
       "encoding of every request (gzip, deflate); empty: identity"},
      {"soak_iterations", "10", "rpc_soak / channel_soak: calls"},
      {"soak_max_failures", "0", "soak: failed calls allowed"},
      {"soak_per_iteration_max_acceptable_latency_ms", "1000",
       "soak: slower calls count as failed"},
      {"soak_overall_timeout_seconds", "60", "soak: time for all calls"},
      {"soak_min_time_ms_between_rpcs", "0", "soak: pace the calls"},
      {"async", "false",
       "run the case through the callback API on a loop of our own"},
      {"service_config_json", "",
       "the channel's service config (gRPC JSON: retries, timeouts, "
       "loadBalancingConfig)"},
      {NULL, NULL, NULL}};
  if (!interop_flags_parse(flags, "crpc-interop-client", argc, argv))
    return 2;

  const char *name = interop_flag_str(flags, "test_case");
  bool async = interop_flag_bool(flags, "async");
  const interop_case *table = async ? interop_async_cases : cases;
  bool (*run)(env *) = NULL;
  for (const interop_case *c = table; c->name != NULL; c++)
    if (strcmp(c->name, name) == 0)
      run = c->run;
  if (run == NULL) {
    if (strcmp(name, "cacheable_unary") == 0)
      fprintf(stderr, "cacheable_unary is not run: it needs a caching proxy "
                      "in front of the server\n");
    else
      fprintf(stderr, "unknown --test_case=%s\n", name);
    return 2;
  }
  long port = interop_flag_long(flags, "server_port");
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "--server_port is required (1-65535)\n");
    return 2;
  }

  env e = {.flags = flags};
  const char *host = interop_flag_str(flags, "server_host");
  char target[300];
  snprintf(target, sizeof(target), strchr(host, ':') ? "[%s]:%ld" : "%s:%ld",
           host, port);
  e.target = target;
  const char *override_name = interop_flag_str(flags, "server_host_override");
  if (interop_flag_bool(flags, "use_tls")) {
    if (interop_flag_bool(flags, "use_test_ca")) {
      e.tls.ca_file = interop_flag_str(flags, "ca_file");
      if (!*e.tls.ca_file) {
        fprintf(stderr, "--use_test_ca needs --ca_file\n");
        return 2;
      }
    }
    if (*override_name)
      e.tls.server_name_override = override_name;
    e.chopts.tls = &e.tls;
  } else if (*override_name) {
    e.chopts.authority = override_name;
  }
  /* A channel that compresses every request, as grpc-go and grpc-js
   * clients can be set up to; the cases that need an uncompressed message
   * still ask for identity per call or per message. */
  const char *enc = interop_flag_str(flags, "default_compression");
  if (*enc)
    e.chopts.compression = enc;
  const char *svc_cfg = interop_flag_str(flags, "service_config_json");
  char cfg_err[512] = "";
  if (*svc_cfg) {
    e.chopts.service_config_json = svc_cfg;
    e.chopts.error_buf = cfg_err;
    e.chopts.error_buf_size = sizeof cfg_err;
  }
  /* --async: the channel lives on a loop of ours (one-descriptor mode),
   * which the cases drive from this thread: crpc starts no thread. */
  int rv = async ? crpc_loop_new(&e.loop, NULL) : 0;
  if (rv != 0) {
    fprintf(stderr, "crpc_loop_new: %s\n", crpc_strerror(rv));
    return 1;
  }
  e.chopts.loop = e.loop;
  rv = crpc_channel_new(&e.ch, target, &e.chopts);
  if (rv != 0) {
    fprintf(stderr, "crpc_channel_new(%s): %s%s%s\n", target,
            crpc_strerror(rv), cfg_err[0] ? ": " : "", cfg_err);
    crpc_loop_free(e.loop);
    /* a --default_compression typo or a bad --service_config_json */
    return rv == CRPC_EENCODING || rv == CRPC_EINVAL ? 2 : 1;
  }
  bool ok = run(&e);
  crpc_channel_free(e.ch);
  crpc_loop_free(e.loop);
  if (!ok) {
    fprintf(stderr, "%s FAILED: %s\n", name, failure);
    return 1;
  }
  printf("%s: PASS\n", name);
  return 0;
}
