/*
 * interop_client_async.c: crpc-interop-client --async. The same cases as
 * interop_client.c, with the same checks, through crpc's callback API: the
 * generated __call_async for unary methods, crpc_call_start_cb with
 * crpc_call_write_async / crpc_call_writes_done / crpc_call_cancel for the
 * streaming ones. The channel lives on a crpc_loop in one-descriptor mode
 * that this thread drives (drive() below): crpc starts no thread, and
 * every callback runs from inside our crpc_loop_run_once().
 *
 * The cases read as sequences (start, write, wait for the write, ...)
 * because each step waits by turning the loop until a callback has set
 * the flag it waits for; ping_pong and cancel_after_first_response act
 * from inside the callbacks instead (the next ping from on_message /
 * on_write_done, the cancel from on_message), and every call is freed
 * from inside its on_done, which the callback API allows.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interop_client.h"

/* How long one step may wait for its callback before the case fails: a
 * lost callback then fails with what it waited for, before the matrix's
 * own 60 s limit kills us without a word. */
#define STEP_LIMIT_MS 30000

static const crpc_method *method(const char *name) {
  const crpc_service *svc = &grpc__testing__test_service__crpc_service;
  for (size_t i = 0; i < svc->n_methods; i++) {
    const char *slash = strrchr(svc->methods[i].path, '/');
    if (slash != NULL && strcmp(slash + 1, name) == 0)
      return &svc->methods[i];
  }
  return NULL;
}

/* ---- the loop ---- */

/*
 * Turns the loop until *cond is true, or until |until_ms| (a now_ms()
 * time; 0: STEP_LIMIT_MS from now) when cond is NULL: soak pacing, which
 * keeps the loop running meanwhile. A program with a loop of its own
 * would put crpc_loop_fd() into its poll set the same way.
 */
static bool drive_until(env *e, const bool *cond, int64_t until_ms,
                        const char *what) {
  int64_t limit = until_ms ? until_ms : now_ms() + STEP_LIMIT_MS;
  while (cond == NULL || !*cond) {
    int64_t left = limit - now_ms();
    if (left <= 0)
      return cond == NULL ||
             fail("%s: no callback within %d ms", what, STEP_LIMIT_MS);
    int64_t t = crpc_loop_timeout_ms(e->loop); /* -1: no timer of crpc's */
    if (t < 0 || t > left)
      t = left;
    struct pollfd p = {.fd = crpc_loop_fd(e->loop), .events = POLLIN};
    if (poll(&p, 1, (int)t) < 0 && errno != EINTR)
      return fail("%s: poll: %s", what, strerror(errno));
    int rv = crpc_loop_run_once(e->loop, 0); /* never blocks */
    if (rv != 0)
      return fail("%s: crpc_loop_run_once: %s", what, crpc_strerror(rv));
  }
  return true;
}

static bool drive(env *e, const bool *cond, const char *what) {
  return drive_until(e, cond, 0, what);
}

/* ---- unary calls: the generated __call_async ---- */

/* What one async unary call ended with, copied out of its callback. */
typedef struct unary_result {
  bool done;
  crpc_status st; /* code and message, ours */
  bool has_resp;
  size_t want_size; /* SimpleResponse: the payload size checked */
  bool payload_ok;  /* check_payload passed in the callback */
  bool compressed;  /* the response arrived compressed */
} unary_result;

static void copy_status(crpc_status *to, const crpc_status *st) {
  to->code = st->code;
  to->message = st->message ? strdup(st->message) : NULL;
}

static void simple_done(crpc_call *call, const crpc_status *st,
                        const SimpleResponse *resp, void *user_data) {
  unary_result *r = user_data;
  copy_status(&r->st, st);
  r->has_resp = resp != NULL;
  /* the response is lent for the callback: check it here */
  r->payload_ok =
      resp != NULL && check_payload(resp->payload, r->want_size, "UnaryCall");
  r->compressed = crpc_call_last_read_compressed(call);
  r->done = true;
}

static void empty_done(crpc_call *call, const crpc_status *st,
                       const Empty *resp, void *user_data) {
  (void)call;
  unary_result *r = user_data;
  copy_status(&r->st, st);
  r->has_resp = resp != NULL;
  r->done = true;
}

/* UnaryCall of |req| with |opts|; waits for its callback into |r|. */
static bool unary(env *e, const crpc_call_opts *opts, const SimpleRequest *req,
                  unary_result *r, const char *what) {
  memset(r, 0, sizeof(*r));
  r->want_size = (size_t)req->response_size;
  int rv = grpc__testing__test_service__unary_call__call_async(e->ch, opts, req,
                                                               simple_done, r);
  if (rv != 0)
    return fail("%s: __call_async: %s", what, crpc_strerror(rv));
  return drive(e, &r->done, what);
}

/* One UnaryCall of |req| with |opts|, which must answer OK with 314159
 * zero bytes. */
static bool large_unary_call(env *e, const crpc_call_opts *opts,
                             const SimpleRequest *req, const char *what) {
  unary_result r;
  bool ok = unary(e, opts, req, &r, what) &&
            expect_code(r.st.code, &r.st, CRPC_OK, what) &&
            (r.has_resp || fail("%s: no response", what)) && r.payload_ok;
  crpc_status_clear(&r.st);
  return ok;
}

/* An Empty -> Empty method through its __call_async, expecting |want|. */
typedef int (*empty_async_fn)(
    crpc_channel *, const crpc_call_opts *, const Empty *,
    void (*)(crpc_call *, const crpc_status *, const Empty *, void *), void *);

static bool empty_method(env *e, empty_async_fn start, crpc_code want,
                         const char *what) {
  Empty req = GRPC__TESTING__EMPTY__INIT;
  unary_result r = {0};
  int rv = start(e->ch, NULL, &req, empty_done, &r);
  if (rv != 0)
    return fail("%s: __call_async: %s", what, crpc_strerror(rv));
  bool ok = drive(e, &r.done, what) &&
            expect_code(r.st.code, &r.st, want, what) &&
            (want != CRPC_OK || r.has_resp || fail("%s: no response", what));
  crpc_status_clear(&r.st);
  return ok;
}

/* ---- streaming calls: crpc_call_start_cb ---- */

typedef struct stream stream;
struct stream {
  env *e;
  crpc_call *call; /* NULL once on_done freed it */
  const char *what;
  bool write_idle; /* no write in flight */
  bool write_ok;   /* the last write's on_write_done */
  bool done;
  crpc_status st; /* on_done's, copied */
  /* responses: counted, and checked in on_message (lent to it) */
  size_t n;
  size_t want_n;         /* responses expected (more fail) */
  const int32_t *sizes;  /* payload size of each, or NULL */
  const int *compressed; /* compressed flag of each, or NULL */
  int32_t aggregated;    /* StreamingInputCallResponse */
  bool bad;              /* a check in a callback failed: see failure */
  /* custom_metadata */
  bool check_echo;
  bool echo_initial_ok, echo_trailing_ok;
  /* called after each response is checked (ping_pong, cancels), and
   * after each on_write_done (ping_pong) */
  void (*after_message)(stream *s);
  void (*after_write)(stream *s);
  /* ping_pong: pings sent so far */
  size_t sent;
};

static void on_headers(crpc_call *call, const crpc_metadata *md, void *ud) {
  (void)call;
  stream *s = ud;
  if (s->check_echo)
    s->echo_initial_ok = check_echoed_initial(md, s->what);
}

static void on_message(crpc_call *call, const ProtobufCMessage *msg, void *ud) {
  stream *s = ud;
  size_t i = s->n++;
  if (s->bad)
    return;
  if (msg->descriptor ==
      &grpc__testing__streaming_input_call_response__descriptor) {
    s->aggregated =
        ((const StreamingInputCallResponse *)msg)->aggregated_payload_size;
  } else if (i >= s->want_n) {
    s->bad = !fail("%s: more than %zu responses", s->what, s->want_n);
  } else {
    const StreamingOutputCallResponse *r = (const void *)msg;
    s->bad =
        (s->sizes &&
         !check_payload(r->payload, (size_t)s->sizes[i], s->what)) ||
        (s->compressed && !check_compressed(call, s->compressed[i], s->what));
  }
  if (s->bad) /* the case has failed: end the call rather than wait */
    crpc_call_cancel(call);
  else if (s->after_message)
    s->after_message(s);
}

static void on_write_done(crpc_call *call, bool ok, void *ud) {
  (void)call;
  stream *s = ud;
  s->write_ok = ok;
  s->write_idle = true;
  if (s->after_write) /* ping_pong waits for both pong and write */
    s->after_write(s);
}

static void on_done(crpc_call *call, const crpc_status *st, void *ud) {
  stream *s = ud;
  copy_status(&s->st, st);
  if (s->check_echo)
    s->echo_trailing_ok =
        check_echoed_trailing(crpc_call_trailing_metadata(call), s->what);
  s->done = true;
  s->call = NULL;
  crpc_call_free(call); /* allowed here; nothing follows */
}

static const crpc_call_callbacks stream_cbs = {
    .on_headers = on_headers,
    .on_message = on_message,
    .on_write_done = on_write_done,
    .on_done = on_done,
};

static bool stream_start(stream *s, env *e, const char *method_name,
                         const crpc_call_opts *opts, const char *what) {
  const crpc_method *m = method(method_name);
  s->e = e;
  s->what = what;
  s->write_idle = true;
  if (m == NULL)
    return fail("%s: no %s in the generated method table", what, method_name);
  int rv = crpc_call_start_cb(&s->call, e->ch, m, opts, &stream_cbs, s);
  return rv == 0 || fail("%s: crpc_call_start_cb: %s", what, crpc_strerror(rv));
}

/* Writes |msg| and waits for its on_write_done. False when the call has
 * ended first (its status tells why). */
static bool stream_write(stream *s, const ProtobufCMessage *msg,
                         unsigned flags) {
  if (s->done)
    return false;
  int rv = crpc_call_write_async(s->call, msg, flags);
  if (rv != 0)
    return false; /* CRPC_ESTATE: ended meanwhile */
  s->write_idle = false;
  return drive(s->e, &s->write_idle, s->what) && s->write_ok;
}

static void stream_writes_done(stream *s) {
  if (!s->done)
    crpc_call_writes_done(s->call); /* false: ended already */
}

/* Waits for on_done; true when it came and no callback check failed. */
static bool stream_wait(stream *s) {
  return drive(s->e, &s->done, s->what) && !s->bad;
}

/* After a failed step the call may still run: cancel it and wait for its
 * on_done (which frees it), so nothing is left on the loop. */
static void stream_end(stream *s) {
  if (!s->done && s->call != NULL) {
    crpc_call_cancel(s->call);
    drive(s->e, &s->done, s->what);
  }
  if (!s->done && s->call != NULL)
    crpc_call_free(s->call); /* its on_done never came */
  crpc_status_clear(&s->st);
}

/* ---- the cases ---- */

static bool empty_unary(env *e) {
  return empty_method(e, grpc__testing__test_service__empty_call__call_async,
                      CRPC_OK, "EmptyCall");
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
  /* The probe: an uncompressed request that says it is compressed. */
  crpc_call_opts identity = {.compression = "identity"};
  unary_result r;
  bool ok = unary(e, &identity, &req, &r, "probe") &&
            expect_code(r.st.code, &r.st, CRPC_INVALID_ARGUMENT, "probe");
  crpc_status_clear(&r.st);
  crpc_call_opts gzip = {.compression = "gzip"};
  ok = ok && large_unary_call(e, &gzip, &req, "compressed UnaryCall");
  req.expect_compressed = &no;
  ok = ok && large_unary_call(e, &identity, &req, "uncompressed UnaryCall");
  free(payload.body.data);
  return ok;
}

/* UnaryCall whose response must come compressed or not as |want| says:
 * the callback asks its call (crpc_call_last_read_compressed). */
static bool unary_check_compressed(env *e, const SimpleRequest *req, bool want,
                                   const char *what) {
  unary_result r;
  bool ok =
      unary(e, NULL, req, &r, what) &&
      expect_code(r.st.code, &r.st, CRPC_OK, what) &&
      (r.has_resp || fail("%s: no response", what)) && r.payload_ok &&
      (r.compressed == want || fail("%s: the response %s the compressed flag",
                                    what, r.compressed ? "has" : "lacks"));
  crpc_status_clear(&r.st);
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

/* StreamingInputCall with one request per entry of |sizes|, as the
 * blocking streaming_input(): each marked with |expect|, written with
 * |flags|; |want| and, when OK, the sum of the sizes. */
static bool streaming_input(env *e, const crpc_call_opts *opts,
                            const size_t *sizes, const int *expect,
                            const unsigned *flags, size_t n, crpc_code want,
                            const char *what) {
  stream s = {0};
  if (!stream_start(&s, e, "StreamingInputCall", opts, what))
    return false;
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
    if (!stream_write(&s, &req.base, flags ? flags[i] : 0) && want == CRPC_OK)
      ok = fail("%s: write %zu failed", what, i);
    free(payload.body.data);
    total += sizes[i];
  }
  stream_writes_done(&s);
  ok = ok && stream_wait(&s) && expect_code(s.st.code, &s.st, want, what);
  /* as crpc_call_finish_with_response: one response, or INTERNAL */
  if (ok && want == CRPC_OK && s.n != 1)
    ok = fail("%s: %zu responses, want 1", what, s.n);
  if (ok && want == CRPC_OK && s.aggregated != (int32_t)total)
    ok = fail("%s: aggregated_payload_size %d, want %zu", what, s.aggregated,
              total);
  stream_end(&s);
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
 * or not as |compressed| says (NULL: no compression asked, none checked);
 * on_message checks each. */
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

  stream s = {.want_n = n, .sizes = sizes, .compressed = compressed};
  if (!stream_start(&s, e, "StreamingOutputCall", NULL, what))
    return false;
  bool ok = stream_write(&s, &req.base, 0) ||
            fail("%s: cannot send the request", what);
  stream_writes_done(&s);
  ok = stream_wait(&s) && expect_code(s.st.code, &s.st, CRPC_OK, what) && ok &&
       (s.n == n || fail("%s: %zu responses, want %zu", what, s.n, n));
  stream_end(&s);
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

/* Starts writing one FullDuplexCall request (one response of |resp_size|
 * asked, a payload of |req_size|) without waiting. */
static bool duplex_write_async(stream *s, int32_t resp_size, size_t req_size) {
  StreamingOutputCallRequest req;
  ResponseParameters rp, *rpp;
  Payload payload;
  if (!stream_request(&req, &rp, &rpp, &payload, resp_size, req_size))
    return false;
  int rv = crpc_call_write_async(s->call, &req.base, 0); /* packed now */
  free(payload.body.data);
  if (rv != 0)
    return fail("%s: crpc_call_write_async: %s", s->what, crpc_strerror(rv));
  s->write_idle = false;
  return true;
}

static bool duplex_write(stream *s, int32_t resp_size, size_t req_size) {
  return duplex_write_async(s, resp_size, req_size) &&
         drive(s->e, &s->write_idle, s->what) &&
         (s->write_ok || fail("%s: write failed", s->what));
}

static const int32_t pong_sizes[] = {31415, 9, 2653, 58979};
static const size_t ping_sizes[] = {27182, 8, 1828, 45904};

/*
 * ping_pong, all from inside the callbacks: the next ping goes once the
 * last pong has arrived and the last ping's write is done (the two come
 * in either order), and after the fourth pong the half-close.
 */
static void ping_next(stream *s) {
  if (s->bad || s->done || !s->write_idle || s->n != s->sent)
    return;
  if (s->sent == 4) {
    s->after_message = s->after_write = NULL;
    crpc_call_writes_done(s->call);
    return;
  }
  if (!duplex_write_async(s, pong_sizes[s->sent], ping_sizes[s->sent])) {
    s->bad = true;
    crpc_call_cancel(s->call);
    return;
  }
  s->sent++;
}

static bool ping_pong(env *e) {
  stream s = {.want_n = 4,
              .sizes = pong_sizes,
              .after_message = ping_next,
              .after_write = ping_next};
  if (!stream_start(&s, e, "FullDuplexCall", NULL, "FullDuplexCall"))
    return false;
  ping_next(&s);
  bool ok = stream_wait(&s) &&
            expect_code(s.st.code, &s.st, CRPC_OK, "FullDuplexCall") &&
            (s.n == 4 || fail("FullDuplexCall: %zu pongs, want 4", s.n));
  stream_end(&s);
  return ok;
}

static bool empty_stream(env *e) {
  stream s = {0};
  if (!stream_start(&s, e, "FullDuplexCall", NULL, "FullDuplexCall"))
    return false;
  stream_writes_done(&s);
  bool ok = stream_wait(&s) &&
            expect_code(s.st.code, &s.st, CRPC_OK, "FullDuplexCall") &&
            (s.n == 0 || fail("FullDuplexCall: a response too many"));
  stream_end(&s);
  return ok;
}

static bool custom_metadata(env *e) {
  static const uint8_t trailing_value[] = {0xab, 0xab, 0xab};
  crpc_metadata *md = NULL, *initial = NULL, *trailing = NULL;
  bool ok = crpc_metadata_new(&md) == 0 && crpc_metadata_new(&initial) == 0 &&
            crpc_metadata_new(&trailing) == 0 &&
            crpc_metadata_add_str(md, ECHO_INITIAL, ECHO_INITIAL_VALUE) == 0 &&
            crpc_metadata_add(md, ECHO_TRAILING, trailing_value,
                              sizeof(trailing_value)) == 0;
  if (!ok) {
    fail("cannot build the metadata");
    goto done;
  }
  /* Unary: the metadata lands in the lists the options name. */
  crpc_call_opts opts = {.metadata = md,
                         .initial_metadata_out = initial,
                         .trailing_metadata_out = trailing};
  SimpleRequest req;
  Payload payload;
  ok = large_request(&req, &payload) &&
       large_unary_call(e, &opts, &req, "UnaryCall") &&
       check_echoed_initial(initial, "UnaryCall") &&
       check_echoed_trailing(trailing, "UnaryCall");
  free(payload.body.data);
  if (!ok)
    goto done;

  /* Full duplex: on_headers and on_done check what came back. */
  static const int32_t sizes[] = {314159};
  crpc_call_opts dopts = {.metadata = md};
  stream s = {.want_n = 1, .sizes = sizes, .check_echo = true};
  if (!stream_start(&s, e, "FullDuplexCall", &dopts, "FullDuplexCall")) {
    ok = false;
    goto done;
  }
  ok = duplex_write(&s, 314159, 271828);
  stream_writes_done(&s);
  ok = stream_wait(&s) &&
       expect_code(s.st.code, &s.st, CRPC_OK, "FullDuplexCall") && ok &&
       (s.n == 1 || fail("FullDuplexCall: %zu responses, want 1", s.n)) &&
       s.echo_initial_ok && s.echo_trailing_ok;
  stream_end(&s);
done:
  crpc_metadata_free(md);
  crpc_metadata_free(initial);
  crpc_metadata_free(trailing);
  return ok;
}

/* Echo Status: UnaryCall (and FullDuplexCall when |duplex|) must end with
 * code 2 and exactly |message|. */
static bool status_echo(env *e, const char *message, bool duplex) {
  Grpc__Testing__EchoStatus es = GRPC__TESTING__ECHO_STATUS__INIT;
  es.code = 2;
  es.message = (char *)message;
  SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  req.response_status = &es;
  unary_result r;
  bool ok = unary(e, NULL, &req, &r, "UnaryCall") &&
            check_status(r.st.code, &r.st, message, "UnaryCall");
  crpc_status_clear(&r.st);
  if (!ok || !duplex)
    return ok;

  StreamingOutputCallRequest sreq =
      GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
  sreq.response_status = &es;
  stream s = {0};
  if (!stream_start(&s, e, "FullDuplexCall", NULL, "FullDuplexCall"))
    return false;
  /* The write and half-close may fail if the server answered first. */
  stream_write(&s, &sreq.base, 0);
  stream_writes_done(&s);
  ok = stream_wait(&s) &&
       (s.n == 0 || fail("FullDuplexCall: a response too many")) &&
       check_status(s.st.code, &s.st, message, "FullDuplexCall");
  stream_end(&s);
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
  return empty_method(
      e, grpc__testing__test_service__unimplemented_call__call_async,
      CRPC_UNIMPLEMENTED, "UnimplementedCall");
}

static bool unimplemented_service(env *e) {
  return empty_method(
      e, grpc__testing__unimplemented_service__unimplemented_call__call_async,
      CRPC_UNIMPLEMENTED, "UnimplementedService/UnimplementedCall");
}

static bool cancel_after_begin(env *e) {
  stream s = {0};
  if (!stream_start(&s, e, "StreamingInputCall", NULL, "StreamingInputCall"))
    return false;
  crpc_call_cancel(s.call);
  bool ok = stream_wait(&s) &&
            expect_code(s.st.code, &s.st, CRPC_CANCELLED, "StreamingInputCall");
  stream_end(&s);
  return ok;
}

/* cancel_after_first_response: the cancel comes from inside on_message. */
static void cancel_now(stream *s) {
  s->after_message = NULL;
  crpc_call_cancel(s->call);
}

static bool cancel_after_first_response(env *e) {
  static const int32_t sizes[] = {31415};
  stream s = {.want_n = 1, .sizes = sizes, .after_message = cancel_now};
  if (!stream_start(&s, e, "FullDuplexCall", NULL, "FullDuplexCall"))
    return false;
  bool ok = duplex_write_async(&s, 31415, 27182);
  ok = stream_wait(&s) &&
       expect_code(s.st.code, &s.st, CRPC_CANCELLED, "FullDuplexCall") && ok &&
       (s.n == 1 || fail("first response: %zu responses, want 1", s.n));
  stream_end(&s);
  return ok;
}

static bool timeout_on_sleeping_server(env *e) {
  crpc_call_opts opts = {.timeout_ms = 1};
  stream s = {0};
  if (!stream_start(&s, e, "FullDuplexCall", &opts, "FullDuplexCall"))
    return false;
  StreamingOutputCallRequest req =
      GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
  Payload payload;
  bool ok = zeros(&payload, 27182);
  if (ok) {
    req.payload = &payload;
    /* May fail: the deadline can pass before the write. */
    stream_write(&s, &req.base, 0);
    free(payload.body.data);
  }
  ok =
      stream_wait(&s) &&
      expect_code(s.st.code, &s.st, CRPC_DEADLINE_EXCEEDED, "FullDuplexCall") &&
      ok;
  stream_end(&s);
  return ok;
}

/* rpc_soak / channel_soak: large_unary over and over, on one channel or on
 * a new channel (on the same loop) each time, freed between loop turns:
 * never from inside a callback, which crpc_channel_free() forbids. */
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
  crpc_channel *shared = e->ch;
  long failures = 0, i;
  for (i = 0; i < iterations; i++) {
    int64_t start = now_ms();
    if (start > deadline)
      break;
    if (new_channel) {
      int rv = crpc_channel_new(&e->ch, e->target, &e->chopts);
      if (rv != 0) {
        e->ch = shared;
        free(payload.body.data);
        return fail("soak: crpc_channel_new: %s", crpc_strerror(rv));
      }
    }
    unary_result r;
    bool called = unary(e, NULL, &req, &r, "soak");
    int64_t took = now_ms() - start;
    bool ok = called && r.st.code == CRPC_OK && r.has_resp && r.payload_ok &&
              took <= max_ms;
    if (!ok) {
      failures++;
      fprintf(stderr, "soak iteration %ld failed: %s (%s), %lld ms\n", i,
              crpc_code_name(r.st.code), crpc_status_message(&r.st),
              (long long)took);
    }
    crpc_status_clear(&r.st);
    if (new_channel) {
      crpc_channel_free(e->ch);
      e->ch = shared;
    }
    if (gap_ms > 0)
      drive_until(e, NULL, start + gap_ms, "soak");
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

const interop_case interop_async_cases[] = {
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
