#define _POSIX_C_SOURCE 200809L
/*
 * test_failmalloc.c: whole scenarios (an in-process server and client over
 * loopback, one call of each kind, clear text and mutual TLS) rerun with
 * the 1st, 2nd, ... allocation failing, until a run completes without
 * reaching the failing one (nghttp2's failmalloc_test, curl's torture).
 * Server and channel share one counting allocator (crpc_mem), so N counts
 * over both, whichever thread allocates.
 *
 * Each run must end without a crash, a hang or a leak, and the failure
 * must surface as one of the outcomes allowed here:
 * - a setup function (crpc_server_new/register/listen/start,
 *   crpc_channel_new, crpc_call_start) returns CRPC_ENOMEM;
 * - the call ends RESOURCE_EXHAUSTED (crpc could not allocate for it),
 *   UNAVAILABLE (the connection could not be set up or was closed,
 *   e.g. nghttp2 ran out of memory: a clean connection error) or INTERNAL
 *   (the peer reset the stream with INTERNAL_ERROR, which is what nghttp2
 *   does when a stream callback fails);
 * - or nothing visible: the failed allocation was retried or not needed
 *   (a timer spilled out of the heap) or came after the call had ended
 *   (shutdown). Then the call's result must be complete and correct.
 * DEADLINE_EXCEEDED is not allowed: every call has a deadline, and one
 * that passes means something waited for an event that a failed
 * allocation had lost (a hang). Each run also has an alarm() watchdog.
 * No leak: after everything is freed the allocator's live blocks and
 * bytes are 0 (ASan would miss blocks that the engine still points at).
 *
 * Every call carries request metadata (one ASCII, one -bin value) that the
 * handler echoes as a response header and a trailer, and messages are
 * gzip-compressed both ways, so metadata lists, base64 and zlib are in
 * the count too; a call that ends OK must have all of it.
 *
 * Figures (Debian 12, 2 cores): 190-250 allocations per scenario, about
 * 2,600 runs in all; ~18 s under ASan+UBSan, ~45 s under TSan. The only
 * failures seen absorbed (FM_VERBOSE=1 prints their stacks) are timer heap
 * growths, whose timers wait in the loop's spill list instead. N is
 * counted across threads, so the allocation a given N hits may differ
 * slightly from run to run; the totals vary by a few. The scenarios are
 * kept small (one call each) to bound the time, rather than sampling N.
 *
 * Debugging: FM_TEST=<scenario> runs one scenario, FM_N=<n> only that N
 * (printing the outcome and, under ASan, the failing allocation's stack).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "echo.pb-c.h"
#include "failmalloc.h"

typedef Crpc__Itest__EchoRequest Req;
typedef Crpc__Itest__EchoReply Rep;

#define MSGS 3          /* messages each way in a streaming call */
#define CALL_TMO 5000   /* ms; reaching it is a failure (a hang) */
#define RUN_ALARM_S 60  /* a run that takes longer than this hangs */

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
static const crpc_method m_bidi = {"/crpc.itest.Echo/Bidi",
                                   CRPC_BIDI_STREAMING,
                                   &crpc__itest__echo_request__descriptor,
                                   &crpc__itest__echo_reply__descriptor};
/* The same four, served by NONBLOCKING handlers on the reactor. */
static const crpc_method m_unary_nb = {"/crpc.itest.Echo/UnaryNb", CRPC_UNARY,
                                       &crpc__itest__echo_request__descriptor,
                                       &crpc__itest__echo_reply__descriptor};
static const crpc_method m_sstream_nb = {
    "/crpc.itest.Echo/ServerStreamNb", CRPC_SERVER_STREAMING,
    &crpc__itest__echo_request__descriptor,
    &crpc__itest__echo_reply__descriptor};
static const crpc_method m_cstream_nb = {
    "/crpc.itest.Echo/ClientStreamNb", CRPC_CLIENT_STREAMING,
    &crpc__itest__echo_request__descriptor,
    &crpc__itest__echo_reply__descriptor};
static const crpc_method m_bidi_nb = {"/crpc.itest.Echo/BidiNb",
                                      CRPC_BIDI_STREAMING,
                                      &crpc__itest__echo_request__descriptor,
                                      &crpc__itest__echo_reply__descriptor};

static const char *certs; /* argv[1] */

/* ---- handlers (the user's code: messages from crpc_call_read() are the
 * user's and are freed with protobuf-c's default allocator) ---- */

/* Every handler starts here: the request's metadata comes back as a
 * response header (x-a) and a binary trailer (x-b-bin), and replies are
 * gzip-compressed, so that the scenarios allocate for metadata lists,
 * base64 and zlib too. False when an allocation failed (the handler then
 * ends RESOURCE_EXHAUSTED, as a careful user's would). */
static bool echo_md(crpc_call *c) {
  const crpc_metadata *md = crpc_call_request_metadata(c);
  size_t alen = 0, blen = 0;
  const uint8_t *a = crpc_metadata_get(md, "x-a", &alen);
  const uint8_t *b = crpc_metadata_get(md, "x-b-bin", &blen);
  if (crpc_call_set_compression(c, "gzip") != 0)
    return false;
  if (a && crpc_call_add_initial_metadata(c, "x-a", a, alen) != 0)
    return false;
  if (b && crpc_call_add_trailing_metadata(c, "x-b-bin", b, blen) != 0)
    return false;
  return true;
}

static crpc_code h_unary(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  (void)ud;
  if (!echo_md(c))
    return CRPC_RESOURCE_EXHAUSTED;
  /* the request is freed before a NONBLOCKING handler's response is
   * packed: copy what the reply keeps */
  ((Rep *)resp)->text = crpc_call_arena_strdup(c, ((const Req *)req)->text);
  return ((Rep *)resp)->text ? CRPC_OK : CRPC_RESOURCE_EXHAUSTED;
}

static crpc_code h_sstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  (void)resp;
  (void)ud;
  if (!echo_md(c))
    return CRPC_RESOURCE_EXHAUSTED;
  for (int i = 0; i < ((const Req *)req)->count; i++) {
    Rep r = CRPC__ITEST__ECHO_REPLY__INIT;
    r.text = ((const Req *)req)->text;
    r.index = i;
    if (!crpc_call_write(c, &r.base))
      return CRPC_CANCELLED; /* ignored: the call has ended */
  }
  return CRPC_OK;
}

static crpc_code h_cstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  ProtobufCMessage *m;
  int n = 0;
  (void)req;
  (void)ud;
  if (!echo_md(c))
    return CRPC_RESOURCE_EXHAUSTED;
  while (crpc_call_read(c, &m)) {
    n++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  if (crpc_call_is_cancelled(c))
    return CRPC_CANCELLED;
  ((Rep *)resp)->index = n;
  return CRPC_OK;
}

static crpc_code h_bidi(crpc_call *c, const ProtobufCMessage *req,
                        ProtobufCMessage *resp, void *ud) {
  ProtobufCMessage *m;
  int n = 0;
  (void)req;
  (void)resp;
  (void)ud;
  if (!echo_md(c))
    return CRPC_RESOURCE_EXHAUSTED;
  while (crpc_call_read(c, &m)) {
    Rep r = CRPC__ITEST__ECHO_REPLY__INIT;
    r.text = ((Req *)m)->text;
    r.index = n++;
    bool ok = crpc_call_write(c, &r.base);
    protobuf_c_message_free_unpacked(m, NULL);
    if (!ok)
      return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

/* NONBLOCKING client streaming: once per message, then once at the end;
 * the count lives in the call's user data (a pointer-sized integer). */
static crpc_code h_cstream_nb(crpc_call *c, const ProtobufCMessage *req,
                              ProtobufCMessage *resp, void *ud) {
  intptr_t n = (intptr_t)crpc_call_user_data(c);
  (void)ud;
  if (req) {
    if (n == 0 && !echo_md(c))
      return CRPC_RESOURCE_EXHAUSTED;
    crpc_call_set_user_data(c, (void *)(n + 1));
    return CRPC_OK;
  }
  if (resp)
    ((Rep *)resp)->index = (int32_t)n;
  return CRPC_OK;
}

static crpc_code h_bidi_nb(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  intptr_t n = (intptr_t)crpc_call_user_data(c);
  (void)resp;
  (void)ud;
  if (!req)
    return CRPC_OK;
  if (n == 0 && !echo_md(c))
    return CRPC_RESOURCE_EXHAUSTED;
  Rep r = CRPC__ITEST__ECHO_REPLY__INIT;
  r.text = ((const Req *)req)->text;
  r.index = (int32_t)n;
  crpc_call_set_user_data(c, (void *)(n + 1));
  /* false when the call is over: then the closing invocation follows */
  crpc_call_write(c, &r.base);
  return CRPC_OK;
}

/* ---- the allocator ---- */

static failmalloc fm;

/* Debugging a failing N: FM_N=<n> runs only that N, FM_TEST=<scenario>
 * only that scenario; under ASan the failing allocation's stack is
 * printed. */
static long only_n;
static bool verbose; /* FM_VERBOSE: also stacks and absorbed Ns */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define PRINT_STACK() __sanitizer_print_stack_trace()
#else
#define PRINT_STACK() ((void)0)
#endif

static void *fm_malloc(size_t n, void *ud) {
  void *p = failmalloc_malloc_in(ud, n);
  if ((only_n || verbose) && !p) /* only the failing one is NULL */
    PRINT_STACK();
  return p;
}
static void *fm_calloc(size_t nmemb, size_t n, void *ud) {
  void *p = failmalloc_calloc_in(ud, nmemb, n);
  if ((only_n || verbose) && !p) /* only the failing one is NULL */
    PRINT_STACK();
  return p;
}
static void *fm_realloc(void *q, size_t n, void *ud) {
  void *p = failmalloc_realloc_in(ud, q, n);
  if ((only_n || verbose) && !p) /* only the failing one is NULL */
    PRINT_STACK();
  return p;
}

/* ---- one run ---- */

typedef enum kind { K_UNARY, K_SSTREAM, K_CSTREAM, K_BIDI } kind;

typedef struct scenario {
  const char *name;
  kind kind;
  bool nonblocking; /* the server's handler runs on the reactor */
  bool tls;         /* mutual TLS */
} scenario;

/* What a run ended with. */
typedef struct outcome {
  int setup_rv;   /* 0, or the negative CRPC_E* a setup function returned */
  const char *setup_fn;
  crpc_code code; /* the call's status (when setup_rv == 0) */
  char msg[160];
  const char *wrong; /* what was wrong with a call that ended OK */
} outcome;

/* Checks inside a run record and go on: a cmocka assertion would jump
 * out and leave the server and channel running into the next run. */
#define CHECK(o, cond)                                                         \
  do {                                                                         \
    if (!(cond) && !(o)->wrong)                                                \
      (o)->wrong = #cond;                                                      \
  } while (0)

static bool code_allowed(crpc_code code) {
  return code == CRPC_OK || code == CRPC_RESOURCE_EXHAUSTED ||
         code == CRPC_UNAVAILABLE || code == CRPC_INTERNAL;
}

static const crpc_method *method_of(const scenario *sc) {
  switch (sc->kind) {
  case K_UNARY:
    return sc->nonblocking ? &m_unary_nb : &m_unary;
  case K_SSTREAM:
    return sc->nonblocking ? &m_sstream_nb : &m_sstream;
  case K_CSTREAM:
    return sc->nonblocking ? &m_cstream_nb : &m_cstream;
  case K_BIDI:
    return sc->nonblocking ? &m_bidi_nb : &m_bidi;
  }
  return NULL;
}

static void set_status(outcome *o, crpc_code code, const crpc_status *st) {
  o->code = code;
  snprintf(o->msg, sizeof o->msg, "%s", crpc_status_message(st));
}

/* The client's side of the call: sets o->code, checks a successful
 * call's messages (a wrong count with OK is a failure of its own). */
/* The metadata of a call that ended OK came back whole. */
static void check_md(outcome *o, const crpc_metadata *hdrs,
                     const crpc_metadata *trailers) {
  size_t len = 0;
  const uint8_t *v = crpc_metadata_get(hdrs, "x-a", &len);
  CHECK(o, v && len == 5 && memcmp(v, "value", 5) == 0);
  v = crpc_metadata_get(trailers, "x-b-bin", &len);
  CHECK(o, v && len == 3 && memcmp(v, "\x00\xff\x01", 3) == 0);
}

static void do_call(crpc_channel *ch, const scenario *sc, outcome *o,
                    const crpc_metadata *md, crpc_metadata *hdrs,
                    crpc_metadata *trailers) {
  crpc_call_opts co = {.timeout_ms = CALL_TMO,
                       .metadata = md,
                       .initial_metadata_out = hdrs,
                       .trailing_metadata_out = trailers};
  crpc_status st = {0};
  const crpc_method *m = method_of(sc);
  Req req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = "hello";
  req.count = MSGS;
  if (sc->kind == K_UNARY) {
    ProtobufCMessage *resp = NULL;
    crpc_code code = crpc_unary(ch, m, &co, &req.base, &resp, &st);
    set_status(o, code, &st);
    if (code == CRPC_OK) {
      check_md(o, hdrs, trailers);
      CHECK(o, resp != NULL);
      CHECK(o, resp && strcmp(((Rep *)resp)->text, "hello") == 0);
      if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    crpc_status_clear(&st);
    return;
  }
  crpc_call *c;
  int rv = crpc_call_start(&c, ch, m, &co);
  if (rv != 0) {
    o->setup_rv = rv;
    o->setup_fn = "crpc_call_start";
    return;
  }
  int got = 0;
  bool ok = true;
  ProtobufCMessage *msg;
  if (sc->kind == K_SSTREAM) {
    ok = crpc_call_write(c, &req.base);
    /* false when the call is over already: the server may finish (after
     * its three replies) before we half-close, and its replies are still
     * there to read */
    if (ok)
      crpc_call_writes_done(c);
    while (ok && crpc_call_read(c, &msg)) {
      CHECK(o, ((Rep *)msg)->index == got);
      got++;
      protobuf_c_message_free_unpacked(msg, NULL);
    }
  } else if (sc->kind == K_CSTREAM) {
    for (int i = 0; ok && i < MSGS; i++)
      ok = crpc_call_write(c, &req.base);
    ProtobufCMessage *resp = NULL;
    crpc_code code = crpc_call_finish_with_response(c, &resp, &st);
    if (code == CRPC_OK) {
      check_md(o, hdrs, trailers);
      CHECK(o, ok);
      CHECK(o, ((Rep *)resp)->index == MSGS);
      protobuf_c_message_free_unpacked(resp, NULL);
    }
    set_status(o, code, &st);
    crpc_status_clear(&st);
    crpc_call_free(c);
    return;
  } else { /* bidi: ping-pong */
    for (int i = 0; ok && i < MSGS; i++) {
      ok = crpc_call_write(c, &req.base) && crpc_call_read(c, &msg);
      if (ok) {
        CHECK(o, ((Rep *)msg)->index == got);
        got++;
        protobuf_c_message_free_unpacked(msg, NULL);
      }
    }
    if (ok && crpc_call_writes_done(c) && crpc_call_read(c, &msg)) {
      protobuf_c_message_free_unpacked(msg, NULL);
      CHECK(o, !"a reply after writes_done");
    }
  }
  crpc_code code = crpc_call_finish(c, &st);
  set_status(o, code, &st);
  if (code == CRPC_OK) {
    check_md(o, hdrs, trailers);
    CHECK(o, got == MSGS);
  }
  crpc_status_clear(&st);
  crpc_call_free(c);
}

#define SETUP(fn, call)                                                        \
  do {                                                                         \
    int rv_ = (call);                                                          \
    if (rv_ != 0) {                                                            \
      o->setup_rv = rv_;                                                       \
      o->setup_fn = fn;                                                        \
      goto out;                                                                \
    }                                                                          \
  } while (0)

static char cert_path[4][512];

static const char *cert(int i, const char *file) {
  snprintf(cert_path[i], sizeof cert_path[i], "%s/%s", certs, file);
  return cert_path[i];
}

/* One whole scenario with the allocator as it is armed. */
static void run(const scenario *sc, outcome *o) {
  crpc_mem mem = {&fm, fm_malloc, failmalloc_mem_free, fm_calloc,
                  fm_realloc};
  crpc_server_opts so = {.reactor_threads = 1, .max_workers = 4, .mem = &mem};
  crpc_server *srv = NULL;
  crpc_channel *ch = NULL;
  crpc_metadata *md = NULL, *hdrs = NULL, *trailers = NULL;
  char target[64];
  int port = 0;
  memset(o, 0, sizeof *o);
  SETUP("crpc_server_new", crpc_server_new(&srv, &so));
  SETUP("crpc_server_register",
        crpc_server_register(srv, method_of(sc),
                             sc->kind == K_UNARY     ? h_unary
                             : sc->kind == K_SSTREAM ? h_sstream
                             : sc->nonblocking
                                 ? (sc->kind == K_CSTREAM ? h_cstream_nb
                                                          : h_bidi_nb)
                             : sc->kind == K_CSTREAM ? h_cstream
                                                     : h_bidi,
                             sc->nonblocking ? CRPC_HANDLER_NONBLOCKING : 0,
                             NULL));
  crpc_tls_server_opts tso = {.cert_file = cert(0, "server.pem"),
                              .key_file = cert(1, "server.key"),
                              .ca_file = cert(2, "ca.pem"),
                              .client_auth = CRPC_CLIENT_AUTH_REQUIRE};
  SETUP("crpc_server_listen",
        crpc_server_listen(srv, "127.0.0.1:0", sc->tls ? &tso : NULL,
                           &port));
  SETUP("crpc_server_start", crpc_server_start(srv));
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  char ca[512], crt[512], key[512];
  snprintf(ca, sizeof ca, "%s/ca.pem", certs);
  snprintf(crt, sizeof crt, "%s/client.pem", certs);
  snprintf(key, sizeof key, "%s/client.key", certs);
  crpc_tls_opts to = {.ca_file = ca, .cert_file = crt, .key_file = key,
                      .server_name_override = "localhost"};
  crpc_channel_opts co = {.mem = &mem, .tls = sc->tls ? &to : NULL,
                          .compression = "gzip"};
  SETUP("crpc_channel_new", crpc_channel_new(&ch, target, &co));
  /* the user's lists: libc's, outside the counted allocator */
  SETUP("crpc_metadata_new", crpc_metadata_new(&md));
  SETUP("crpc_metadata_new", crpc_metadata_new(&hdrs));
  SETUP("crpc_metadata_new", crpc_metadata_new(&trailers));
  SETUP("crpc_metadata_add", crpc_metadata_add_str(md, "x-a", "value"));
  SETUP("crpc_metadata_add", crpc_metadata_add(md, "x-b-bin", "\x00\xff\x01",
                                               3));
  do_call(ch, sc, o, md, hdrs, trailers);
out:
  crpc_metadata_free(md);
  crpc_metadata_free(hdrs);
  crpc_metadata_free(trailers);
  crpc_channel_free(ch);
  crpc_server_free(srv);
}

static volatile sig_atomic_t alarm_n;

static void on_alarm(int sig) {
  char buf[96];
  (void)sig;
  int n = snprintf(buf, sizeof buf,
                   "failmalloc: run with allocation %ld failing hangs\n",
                   (long)alarm_n);
  if (n > 0)
    (void)!write(2, buf, (size_t)n);
  _exit(3);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fails allocation 1, 2, ... until a run that never reached it. */
static void fail_every_n(const scenario *sc) {
  outcome o;
  long n, absorbed = 0, surfaced = 0;
  double t0 = now_s();
  signal(SIGALRM, on_alarm);
  for (n = only_n ? only_n : 1;; n++) {
    alarm_n = n;
    alarm(RUN_ALARM_S);
    failmalloc_reset(&fm, n);
    run(sc, &o);
    alarm(0);
    long failures = atomic_load(&fm.failures);
    if (atomic_load(&fm.blocks) != 0 || atomic_load(&fm.live) != 0)
      fail_msg("%s: allocation %ld failing: %ld blocks (%zu bytes) leaked",
               sc->name, n, (long)atomic_load(&fm.blocks),
               (size_t)atomic_load(&fm.live));
    if (o.setup_rv != 0) {
      if (failures == 0 || o.setup_rv != CRPC_ENOMEM)
        fail_msg("%s: allocation %ld failing: %s returned %s", sc->name, n,
                 o.setup_fn, crpc_err_name(o.setup_rv));
      surfaced++;
      if (only_n)
        return;
      continue;
    }
    if (o.code == CRPC_OK && o.wrong)
      fail_msg("%s: allocation %ld failing: OK, but not %s", sc->name, n,
               o.wrong);
    if (failures == 0) { /* the whole scenario fit below N */
      if (o.code != CRPC_OK)
        fail_msg("%s: without a failure: %s: %s", sc->name,
                 crpc_code_name(o.code), o.msg);
      break;
    }
    if (!code_allowed(o.code))
      fail_msg("%s: allocation %ld failing: the call ended %s: %s",
               sc->name, n, crpc_code_name(o.code), o.msg);
    if (o.code == CRPC_OK) {
      absorbed++;
      if (verbose)
        print_message("%s: allocation %ld failing: absorbed\n", sc->name, n);
    } else {
      surfaced++;
    }
    if (only_n) {
      print_message("%s: allocation %ld failing: %s: %s\n", sc->name, n,
                    crpc_code_name(o.code), o.msg);
      return;
    }
  }
  print_message("%-22s %4ld allocations, %4ld surfaced, %4ld absorbed, "
                "%.1f s\n",
                sc->name, n - 1, surfaced, absorbed, now_s() - t0);
}

#define SCENARIO(fn, k, nb, t)                                                 \
  static void fn(void **state) {                                               \
    static const scenario sc = {#fn, k, nb, t};                                \
    (void)state;                                                               \
    fail_every_n(&sc);                                                         \
  }
SCENARIO(unary, K_UNARY, false, false)
SCENARIO(server_stream, K_SSTREAM, false, false)
SCENARIO(client_stream, K_CSTREAM, false, false)
SCENARIO(bidi, K_BIDI, false, false)
SCENARIO(unary_nonblocking, K_UNARY, true, false)
SCENARIO(server_stream_nonblocking, K_SSTREAM, true, false)
SCENARIO(client_stream_nonblocking, K_CSTREAM, true, false)
SCENARIO(bidi_nonblocking, K_BIDI, true, false)
SCENARIO(unary_tls, K_UNARY, false, true)
SCENARIO(server_stream_tls, K_SSTREAM, false, true)
SCENARIO(client_stream_tls, K_CSTREAM, false, true)
SCENARIO(bidi_tls, K_BIDI, false, true)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(unary),
      cmocka_unit_test(server_stream),
      cmocka_unit_test(client_stream),
      cmocka_unit_test(bidi),
      cmocka_unit_test(unary_nonblocking),
      cmocka_unit_test(server_stream_nonblocking),
      cmocka_unit_test(client_stream_nonblocking),
      cmocka_unit_test(bidi_nonblocking),
      cmocka_unit_test(unary_tls),
      cmocka_unit_test(server_stream_tls),
      cmocka_unit_test(client_stream_tls),
      cmocka_unit_test(bidi_tls),
  };
  if (getenv("FM_N"))
    only_n = atol(getenv("FM_N"));
  verbose = getenv("FM_VERBOSE") != NULL;
  if (getenv("FM_TEST"))
    cmocka_set_test_filter(getenv("FM_TEST"));
  certs = argc > 1 ? argv[1] : getenv("CRPC_TEST_CERTS");
  if (!certs) {
    fprintf(stderr, "usage: %s CERT_DIR (tests/security's certificates)\n",
            argv[0]);
    return 2;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
