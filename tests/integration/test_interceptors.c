#define _POSIX_C_SOURCE 200809L
/*
 * test_interceptors.c: client and server interceptor chains
 * (crpc/interceptor.h) over every RPC kind, the blocking and callback
 * APIs, NONBLOCKING and deferred handlers: order, metadata both ways, a
 * replaced message, ending calls early, failing hooks, and that the
 * chain allocates nothing per call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>

#include "echo.pb-c.h"

typedef Crpc__Itest__EchoRequest Req;
typedef Crpc__Itest__EchoReply Rep;
#define REQ_D &crpc__itest__echo_request__descriptor
#define REP_D &crpc__itest__echo_reply__descriptor

static const crpc_method m_unary = {"/crpc.itest.Echo/Unary", CRPC_UNARY,
                                    REQ_D, REP_D};
static const crpc_method m_sstream = {"/crpc.itest.Echo/ServerStream",
                                      CRPC_SERVER_STREAMING, REQ_D, REP_D};
static const crpc_method m_cstream = {"/crpc.itest.Echo/ClientStream",
                                      CRPC_CLIENT_STREAMING, REQ_D, REP_D};
static const crpc_method m_bidi = {"/crpc.itest.Echo/Bidi",
                                   CRPC_BIDI_STREAMING, REQ_D, REP_D};
static const crpc_method m_unary_nb = {"/crpc.itest.Echo/UnaryNB",
                                       CRPC_UNARY, REQ_D, REP_D};
static const crpc_method m_bidi_nb = {"/crpc.itest.Echo/BidiNB",
                                      CRPC_BIDI_STREAMING, REQ_D, REP_D};
static const crpc_method m_defer = {"/crpc.itest.Echo/Deferred", CRPC_UNARY,
                                    REQ_D, REP_D};
static const crpc_method *const kinds[] = {&m_unary, &m_sstream, &m_cstream,
                                           &m_bidi};

/* ---- what the hooks saw: one buffer per hook, the interceptors' ids in
 * the order they ran ---- */
enum { H_CSTART, H_CSEND, H_CHDR, H_CRECV, H_CDONE,
       H_SSTART, H_SRECV, H_SSEND, H_SFIN, NHOOKS };
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static char rec[NHOOKS][64];
static atomic_int handler_runs;
static char seen_md[64];       /* the handler's x-client-ic */
static char seen_hdr[64];      /* client on_headers: x-server-hdr */
static char seen_trl[64];      /* client on_done: x-server-trl */
static crpc_code seen_done_code = -1;
static char seen_done_msg[128];

static void note(int hook, char id) {
  pthread_mutex_lock(&rec_mu);
  size_t n = strlen(rec[hook]);
  if (n + 1 < sizeof rec[hook])
    rec[hook][n] = id;
  pthread_mutex_unlock(&rec_mu);
}

static void rec_reset(void) {
  pthread_mutex_lock(&rec_mu);
  memset(rec, 0, sizeof rec);
  seen_md[0] = seen_hdr[0] = seen_trl[0] = seen_done_msg[0] = 0;
  seen_done_code = -1;
  pthread_mutex_unlock(&rec_mu);
  atomic_store(&handler_runs, 0);
}

static void rec_expect(int hook, const char *want) {
  pthread_mutex_lock(&rec_mu);
  char got[64];
  memcpy(got, rec[hook], sizeof got);
  pthread_mutex_unlock(&rec_mu);
  if (strcmp(got, want) != 0)
    fprintf(stderr, "hook %d: got \"%s\", want \"%s\"\n", hook, got, want);
  assert_string_equal(got, want);
}

static void md_get(const crpc_metadata *md, const char *key, char *out,
                   size_t cap) {
  size_t len;
  const uint8_t *v = md ? crpc_metadata_get(md, key, &len) : NULL;
  if (v)
    snprintf(out, cap, "%.*s", (int)len, (const char *)v);
}

/* A configurable interceptor: |id| in the records; the mode fields end
 * calls early or fail hooks. */
typedef struct ic_cfg {
  char id;
  crpc_code refuse_start; /* on_start answers this */
  crpc_code refuse_send;  /* client on_send answers this */
  bool replace;           /* client on_send swaps the request */
  bool add_md;            /* client: x-client-ic; server: header+trailer */
} ic_cfg;

static Req replacement = CRPC__ITEST__ECHO_REQUEST__INIT;

static crpc_code c_start(crpc_call *call, const crpc_method *m,
                         crpc_metadata *md, void *ud) {
  ic_cfg *cfg = ud;
  note(H_CSTART, cfg->id);
  assert_string_equal(m->path, crpc_call_method(call));
  if (cfg->add_md)
    assert_int_equal(crpc_metadata_add_str(md, "x-client-ic", "from-c"), 0);
  return cfg->refuse_start;
}

static crpc_code c_send(crpc_call *call, const ProtobufCMessage **msg,
                        void *ud) {
  ic_cfg *cfg = ud;
  note(H_CSEND, cfg->id);
  if (cfg->replace)
    *msg = &replacement.base;
  return cfg->refuse_send;
}

static void c_headers(crpc_call *call, const crpc_metadata *md, void *ud) {
  ic_cfg *cfg = ud;
  note(H_CHDR, cfg->id);
  pthread_mutex_lock(&rec_mu);
  md_get(md, "x-server-hdr", seen_hdr, sizeof seen_hdr);
  pthread_mutex_unlock(&rec_mu);
}

static void c_recv(crpc_call *call, const uint8_t *data, size_t len,
                   bool compressed, void *ud) {
  ic_cfg *cfg = ud;
  note(H_CRECV, cfg->id);
  Rep *r = crpc__itest__echo_reply__unpack(NULL, len, data);
  assert_non_null(r); /* the packed bytes are the message */
  crpc__itest__echo_reply__free_unpacked(r, NULL);
}

static void c_done(crpc_call *call, const crpc_status *st,
                   const crpc_metadata *trailers, void *ud) {
  ic_cfg *cfg = ud;
  note(H_CDONE, cfg->id);
  pthread_mutex_lock(&rec_mu);
  md_get(trailers, "x-server-trl", seen_trl, sizeof seen_trl);
  seen_done_code = st->code;
  snprintf(seen_done_msg, sizeof seen_done_msg, "%s",
           st->message ? st->message : "");
  pthread_mutex_unlock(&rec_mu);
}

static const crpc_client_interceptor client_ic = {
    c_start, c_send, c_headers, c_recv, c_done};

static crpc_code s_start(crpc_call *call, const crpc_method *m, void *ud) {
  ic_cfg *cfg = ud;
  note(H_SSTART, cfg->id);
  assert_string_equal(m->path, crpc_call_method(call));
  if (cfg->add_md)
    assert_int_equal(
        crpc_call_add_initial_metadata(call, "x-server-hdr", "h", 1), 0);
  if (cfg->refuse_start != CRPC_OK)
    crpc_call_set_status_message(call, "refused by the test interceptor");
  return cfg->refuse_start;
}

static void s_recv(crpc_call *call, const uint8_t *data, size_t len,
                   bool compressed, void *ud) {
  note(H_SRECV, ((ic_cfg *)ud)->id);
}

static void s_send(crpc_call *call, const ProtobufCMessage *msg, void *ud) {
  note(H_SSEND, ((ic_cfg *)ud)->id);
  assert_ptr_equal(msg->descriptor, REP_D);
}

static void s_finish(crpc_call *call, crpc_code code, void *ud) {
  ic_cfg *cfg = ud;
  note(H_SFIN, cfg->id);
  if (cfg->add_md)
    assert_int_equal(
        crpc_call_add_trailing_metadata(call, "x-server-trl", "t", 1), 0);
}

static const crpc_server_interceptor server_ic = {s_start, s_recv, s_send,
                                                  s_finish};

/* ---- handlers ---- */

static void note_md(crpc_call *c) {
  pthread_mutex_lock(&rec_mu);
  md_get(crpc_call_request_metadata(c), "x-client-ic", seen_md,
         sizeof seen_md);
  pthread_mutex_unlock(&rec_mu);
}

static crpc_code h_unary(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  atomic_fetch_add(&handler_runs, 1);
  note_md(c);
  ((Rep *)resp)->text = crpc_call_arena_strdup(c, ((const Req *)req)->text);
  return CRPC_OK;
}

static crpc_code h_sstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  atomic_fetch_add(&handler_runs, 1);
  Rep r = CRPC__ITEST__ECHO_REPLY__INIT;
  r.text = ((const Req *)req)->text;
  for (int i = 0; i < 2; i++)
    crpc_call_write(c, &r.base);
  return CRPC_OK;
}

static crpc_code h_cstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  atomic_fetch_add(&handler_runs, 1);
  ProtobufCMessage *m;
  char *last = NULL;
  while (crpc_call_read(c, &m)) {
    last = crpc_call_arena_strdup(c, ((Req *)m)->text);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  ((Rep *)resp)->text = last;
  return CRPC_OK;
}

static crpc_code h_bidi(crpc_call *c, const ProtobufCMessage *req,
                        ProtobufCMessage *resp, void *ud) {
  atomic_fetch_add(&handler_runs, 1);
  ProtobufCMessage *m;
  while (crpc_call_read(c, &m)) {
    Rep r = CRPC__ITEST__ECHO_REPLY__INIT;
    r.text = ((Req *)m)->text;
    crpc_call_write(c, &r.base);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  return CRPC_OK;
}

/* NONBLOCKING bidi: once per message, then once with req NULL. */
static crpc_code h_bidi_nb(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  if (!req) {
    atomic_fetch_add(&handler_runs, 1);
    return CRPC_OK;
  }
  Rep r = CRPC__ITEST__ECHO_REPLY__INIT;
  r.text = ((const Req *)req)->text;
  crpc_call_write(c, &r.base);
  return CRPC_OK;
}

/* Deferred: answered from a thread of its own. */
static void *answer_later(void *arg) {
  /* crpc_call_answer() says ESTATE until the handler has returned on the
   * loop (nothing tells another thread when): retry until it takes it */
  while (crpc_call_answer(arg, CRPC_OK) == CRPC_ESTATE)
    sched_yield();
  return NULL;
}

static crpc_code h_defer(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  atomic_fetch_add(&handler_runs, 1);
  ((Rep *)resp)->text = crpc_call_arena_strdup(c, ((const Req *)req)->text);
  assert_int_equal(crpc_call_defer(c), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, answer_later, c), 0);
  pthread_detach(t);
  return CRPC_OK;
}

/* ---- fixtures ---- */

typedef struct fix {
  crpc_server *srv;
  crpc_channel *ch;
} fix;

static void fix_up(fix *f, ic_cfg *scfg, size_t ns, ic_cfg *ccfg, size_t nc,
                   const crpc_mem *mem) {
  crpc_server_opts so = {.reactor_threads = 1, .mem = mem};
  int port;
  assert_int_equal(crpc_server_new(&f->srv, &so), 0);
  assert_int_equal(crpc_server_register(f->srv, &m_unary, h_unary, 0, NULL),
                   0);
  assert_int_equal(
      crpc_server_register(f->srv, &m_sstream, h_sstream, 0, NULL), 0);
  assert_int_equal(
      crpc_server_register(f->srv, &m_cstream, h_cstream, 0, NULL), 0);
  assert_int_equal(crpc_server_register(f->srv, &m_bidi, h_bidi, 0, NULL), 0);
  assert_int_equal(crpc_server_register(f->srv, &m_unary_nb, h_unary,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(f->srv, &m_bidi_nb, h_bidi_nb,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(f->srv, &m_defer, h_defer,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  for (size_t i = 0; i < ns; i++)
    assert_int_equal(crpc_server_add_interceptor(f->srv, &server_ic, &scfg[i]),
                     0);
  assert_int_equal(crpc_server_listen(f->srv, "127.0.0.1:0", NULL, &port), 0);
  assert_int_equal(crpc_server_start(f->srv), 0);
  assert_int_equal(crpc_server_add_interceptor(f->srv, &server_ic, &scfg[0]),
                   CRPC_ESTATE);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  crpc_channel_opts co = {.mem = mem};
  assert_int_equal(crpc_channel_new(&f->ch, target, &co), 0);
  for (size_t i = 0; i < nc; i++)
    assert_int_equal(crpc_channel_add_interceptor(f->ch, &client_ic, &ccfg[i]),
                     0);
}

static void fix_down(fix *f) {
  crpc_channel_free(f->ch);
  crpc_server_free(f->srv);
}

/* One call of |m|'s kind with the blocking API: one request (two for the
 * client-streaming kinds), text |text|. Returns the status; |reply| gets
 * the last reply's text. */
static crpc_code do_call(crpc_channel *ch, const crpc_method *m,
                         const char *text, char *reply, size_t cap,
                         crpc_status *st) {
  Req req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = (char *)text;
  reply[0] = 0;
  if (m->kind == CRPC_UNARY) {
    ProtobufCMessage *resp = NULL;
    crpc_code code = crpc_unary(ch, m, NULL, &req.base, &resp, st);
    if (resp) {
      snprintf(reply, cap, "%s", ((Rep *)resp)->text);
      protobuf_c_message_free_unpacked(resp, NULL);
    }
    return code;
  }
  crpc_call *c;
  assert_int_equal(crpc_call_start(&c, ch, m, NULL), 0);
  int nreq = m->kind == CRPC_SERVER_STREAMING ? 1 : 2;
  for (int i = 0; i < nreq; i++)
    if (!crpc_call_write(c, &req.base))
      break;
  crpc_call_writes_done(c);
  ProtobufCMessage *resp;
  while (crpc_call_read(c, &resp)) {
    snprintf(reply, cap, "%s", ((Rep *)resp)->text);
    protobuf_c_message_free_unpacked(resp, NULL);
  }
  crpc_code code = crpc_call_finish(c, st);
  crpc_call_free(c);
  return code;
}

/* ---- tests ---- */

/* Client: on_start/on_send in registration order, on_headers/on_recv/
 * on_done reversed; server: on_start/on_recv in order, on_send/on_finish
 * reversed; for every kind, blocking API. */
static void test_order_every_kind(void **state) {
  ic_cfg s[2] = {{.id = 'A'}, {.id = 'B'}};
  ic_cfg c[2] = {{.id = '1'}, {.id = '2'}};
  fix f;
  fix_up(&f, s, 2, c, 2, NULL);
  for (size_t k = 0; k < 4; k++) {
    rec_reset();
    char reply[64];
    crpc_status st = {0};
    assert_int_equal(do_call(f.ch, kinds[k], "hi", reply, sizeof reply, &st),
                     CRPC_OK);
    crpc_status_clear(&st);
    assert_string_equal(reply, "hi");
    int nreq = kinds[k]->kind == CRPC_UNARY ||
                       kinds[k]->kind == CRPC_SERVER_STREAMING
                   ? 1
                   : 2;
    int nrep = kinds[k]->kind == CRPC_SERVER_STREAMING ||
                       kinds[k]->kind == CRPC_BIDI_STREAMING
                   ? 2
                   : 1;
    char want_send[16] = "", want_recv_c[16] = "", want_recv_s[16] = "",
         want_send_s[16] = "";
    for (int i = 0; i < nreq; i++) {
      strcat(want_send, "12");
      strcat(want_recv_s, "AB");
    }
    for (int i = 0; i < nrep; i++) {
      strcat(want_recv_c, "21");
      strcat(want_send_s, "BA");
    }
    rec_expect(H_CSTART, "12");
    rec_expect(H_CSEND, want_send);
    rec_expect(H_CHDR, "21");
    rec_expect(H_CRECV, want_recv_c);
    rec_expect(H_CDONE, "21");
    rec_expect(H_SSTART, "AB");
    rec_expect(H_SRECV, want_recv_s);
    rec_expect(H_SSEND, want_send_s);
    rec_expect(H_SFIN, "BA");
  }
  fix_down(&f);
}

/* Metadata a client interceptor adds reaches the handler; headers and
 * trailers a server interceptor adds reach the client's interceptor. */
static void test_metadata_both_ways(void **state) {
  ic_cfg s[1] = {{.id = 'A', .add_md = true}};
  ic_cfg c[1] = {{.id = '1', .add_md = true}};
  fix f;
  fix_up(&f, s, 1, c, 1, NULL);
  for (size_t k = 0; k < 4; k++) {
    rec_reset();
    char reply[64];
    assert_int_equal(do_call(f.ch, kinds[k], "md", reply, sizeof reply, NULL),
                     CRPC_OK);
    pthread_mutex_lock(&rec_mu);
    if (kinds[k] == &m_unary)
      assert_string_equal(seen_md, "from-c");
    assert_string_equal(seen_hdr, "h");
    assert_string_equal(seen_trl, "t");
    pthread_mutex_unlock(&rec_mu);
  }
  fix_down(&f);
}

/* A client on_send replacing the message: the server sees the
 * replacement, in every kind. */
static void test_client_replaces_message(void **state) {
  ic_cfg c[1] = {{.id = '1', .replace = true}};
  ic_cfg s[1] = {{.id = 'A'}};
  replacement.text = "replaced";
  fix f;
  fix_up(&f, s, 1, c, 1, NULL);
  for (size_t k = 0; k < 4; k++) {
    char reply[64];
    assert_int_equal(
        do_call(f.ch, kinds[k], "original", reply, sizeof reply, NULL),
        CRPC_OK);
    assert_string_equal(reply, "replaced");
  }
  fix_down(&f);
}

/* A client on_start ending the call: nothing reaches the server, the
 * status is the interceptor's, every on_done that ran still runs. */
static void test_client_short_circuit(void **state) {
  ic_cfg c[3] = {{.id = '1'},
                 {.id = '2', .refuse_start = CRPC_PERMISSION_DENIED},
                 {.id = '3'}};
  ic_cfg s[1] = {{.id = 'A'}};
  fix f;
  fix_up(&f, s, 1, c, 3, NULL);
  for (size_t k = 0; k < 4; k++) {
    rec_reset();
    char reply[64];
    crpc_status st = {0};
    assert_int_equal(do_call(f.ch, kinds[k], "x", reply, sizeof reply, &st),
                     CRPC_PERMISSION_DENIED);
    assert_non_null(strstr(crpc_status_message(&st), "client interceptor"));
    crpc_status_clear(&st);
    rec_expect(H_CSTART, "12");
    rec_expect(H_CSEND, "");
    rec_expect(H_CDONE, "21");
    rec_expect(H_SSTART, "");
    assert_int_equal(atomic_load(&handler_runs), 0);
    pthread_mutex_lock(&rec_mu);
    assert_int_equal(seen_done_code, CRPC_PERMISSION_DENIED);
    pthread_mutex_unlock(&rec_mu);
  }
  fix_down(&f);
}

/* A client on_send failing: the call ends with its status, the message
 * is not sent. */
static void test_client_send_fails(void **state) {
  ic_cfg c[1] = {{.id = '1', .refuse_send = CRPC_RESOURCE_EXHAUSTED}};
  ic_cfg s[1] = {{.id = 'A'}};
  fix f;
  fix_up(&f, s, 1, c, 1, NULL);
  for (size_t k = 0; k < 4; k++) {
    rec_reset();
    char reply[64];
    crpc_status st = {0};
    assert_int_equal(do_call(f.ch, kinds[k], "x", reply, sizeof reply, &st),
                     CRPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(crpc_status_message(&st), "client interceptor"));
    crpc_status_clear(&st);
    rec_expect(H_SRECV, "");
    rec_expect(H_CDONE, "1");
  }
  fix_down(&f);
}

/* A server on_start ending the call, for every kind and the NONBLOCKING
 * and deferred handlers: the client gets its status and message, the
 * handler never runs, the later interceptors neither, on_finish of those
 * that ran does. */
static void test_server_short_circuit(void **state) {
  ic_cfg s[3] = {{.id = 'A'},
                 {.id = 'B', .refuse_start = CRPC_UNAUTHENTICATED},
                 {.id = 'C'}};
  ic_cfg c[1] = {{.id = '1'}};
  fix f;
  fix_up(&f, s, 3, c, 1, NULL);
  const crpc_method *all[] = {&m_unary, &m_sstream, &m_cstream, &m_bidi,
                              &m_unary_nb, &m_bidi_nb, &m_defer};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) {
    rec_reset();
    char reply[64];
    crpc_status st = {0};
    assert_int_equal(do_call(f.ch, all[k], "x", reply, sizeof reply, &st),
                     CRPC_UNAUTHENTICATED);
    assert_string_equal(crpc_status_message(&st),
                        "refused by the test interceptor");
    crpc_status_clear(&st);
    assert_string_equal(reply, "");
    rec_expect(H_SSTART, "AB");
    rec_expect(H_SSEND, "");
    rec_expect(H_SFIN, "BA");
    assert_int_equal(atomic_load(&handler_runs), 0);
  }
  fix_down(&f);
}

/* NONBLOCKING (inline) and deferred handlers run the chain too. */
static void test_nonblocking_and_deferred(void **state) {
  ic_cfg s[2] = {{.id = 'A'}, {.id = 'B'}};
  ic_cfg c[1] = {{.id = '1'}};
  fix f;
  fix_up(&f, s, 2, c, 1, NULL);
  const crpc_method *all[] = {&m_unary_nb, &m_defer, &m_bidi_nb};
  for (size_t k = 0; k < 3; k++) {
    rec_reset();
    char reply[64];
    assert_int_equal(do_call(f.ch, all[k], "nb", reply, sizeof reply, NULL),
                     CRPC_OK);
    assert_string_equal(reply, "nb");
    rec_expect(H_SSTART, "AB");
    rec_expect(H_SSEND, all[k] == &m_bidi_nb ? "BABA" : "BA");
    rec_expect(H_SFIN, "BA");
    rec_expect(H_CDONE, "1");
  }
  fix_down(&f);
}

/* The callback API: crpc_call_start_cb (bidi) and crpc_unary_async. */
typedef struct cbstate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  crpc_code code;
  int nmsg;
} cbstate;

static void cb_msg(crpc_call *call, const ProtobufCMessage *msg, void *ud) {
  ((cbstate *)ud)->nmsg++;
}

static void cb_done(crpc_call *call, const crpc_status *st, void *ud) {
  cbstate *s = ud;
  pthread_mutex_lock(&s->mu);
  s->code = st->code;
  s->done = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void cb_unary(crpc_call *call, const crpc_status *st,
                     const ProtobufCMessage *resp, void *ud) {
  if (resp)
    ((cbstate *)ud)->nmsg++;
  cb_done(call, st, ud);
}

static void cb_wait(cbstate *s) {
  pthread_mutex_lock(&s->mu);
  while (!s->done)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

static void test_callback_api(void **state) {
  ic_cfg s[1] = {{.id = 'A'}};
  ic_cfg c[2] = {{.id = '1'}, {.id = '2'}};
  fix f;
  fix_up(&f, s, 1, c, 2, NULL);
  Req req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = "cb";

  rec_reset();
  cbstate cs = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, CRPC_OK, 0};
  crpc_call_callbacks cbs = {.on_message = cb_msg, .on_done = cb_done};
  crpc_call *call;
  assert_int_equal(crpc_call_start_cb(&call, f.ch, &m_bidi, NULL, &cbs, &cs),
                   0);
  assert_int_equal(crpc_call_write_async(call, &req.base, 0), 0);
  /* no second write before on_write_done: half-close at once instead */
  crpc_call_writes_done(call);
  cb_wait(&cs);
  assert_int_equal(cs.code, CRPC_OK);
  assert_int_equal(cs.nmsg, 1);
  crpc_call_free(call);
  rec_expect(H_CSTART, "12");
  rec_expect(H_CSEND, "12");
  rec_expect(H_CRECV, "21");
  rec_expect(H_CDONE, "21");

  rec_reset();
  cbstate us = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, CRPC_OK, 0};
  assert_int_equal(
      crpc_unary_async(f.ch, &m_unary, NULL, &req.base, cb_unary, &us), 0);
  cb_wait(&us);
  assert_int_equal(us.code, CRPC_OK);
  assert_int_equal(us.nmsg, 1);
  rec_expect(H_CSTART, "12");
  rec_expect(H_CSEND, "12");
  rec_expect(H_CDONE, "21");

  /* the callback API against a NONBLOCKING (inline) bidi handler */
  rec_reset();
  cbstate ns = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
                CRPC_OK, 0};
  assert_int_equal(
      crpc_call_start_cb(&call, f.ch, &m_bidi_nb, NULL, &cbs, &ns), 0);
  assert_int_equal(crpc_call_write_async(call, &req.base, 0), 0);
  crpc_call_writes_done(call);
  cb_wait(&ns);
  assert_int_equal(ns.code, CRPC_OK);
  assert_int_equal(ns.nmsg, 1);
  crpc_call_free(call);
  rec_expect(H_CSTART, "12");
  rec_expect(H_CRECV, "21");
  rec_expect(H_CDONE, "21");
  rec_expect(H_SSTART, "A");
  rec_expect(H_SRECV, "A");
  rec_expect(H_SSEND, "A");
  rec_expect(H_SFIN, "A");

  /* short-circuit through the callback API: on_done with the status */
  c[1].refuse_start = CRPC_ABORTED;
  rec_reset();
  cbstate xs = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, CRPC_OK, 0};
  assert_int_equal(crpc_call_start_cb(&call, f.ch, &m_bidi, NULL, &cbs, &xs),
                   0);
  cb_wait(&xs);
  assert_int_equal(xs.code, CRPC_ABORTED);
  crpc_call_free(call);
  cbstate ys = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, CRPC_OK, 0};
  assert_int_equal(
      crpc_unary_async(f.ch, &m_unary, NULL, &req.base, cb_unary, &ys), 0);
  cb_wait(&ys);
  assert_int_equal(ys.code, CRPC_ABORTED);
  assert_int_equal(atomic_load(&handler_runs), 0);
  fix_down(&f);
}

/* The auth hook, now an interceptor, still works (and in its slot). */
static crpc_code auth(crpc_call *call, void *ud) {
  note(H_SSTART, 'Z');
  return CRPC_PERMISSION_DENIED;
}

static void test_auth_hook_on_chain(void **state) {
  crpc_server *srv;
  crpc_server_opts so = {.reactor_threads = 1};
  int port;
  ic_cfg s[1] = {{.id = 'A'}};
  assert_int_equal(crpc_server_new(&srv, &so), 0);
  assert_int_equal(crpc_server_register(srv, &m_unary, h_unary, 0, NULL), 0);
  assert_int_equal(crpc_server_add_interceptor(srv, &server_ic, &s[0]), 0);
  assert_int_equal(crpc_server_set_auth_hook(srv, auth, NULL), 0);
  assert_int_equal(crpc_server_listen(srv, "127.0.0.1:0", NULL, &port), 0);
  assert_int_equal(crpc_server_start(srv), 0);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  crpc_channel *ch;
  assert_int_equal(crpc_channel_new(&ch, target, NULL), 0);
  rec_reset();
  char reply[64];
  crpc_status st = {0};
  assert_int_equal(do_call(ch, &m_unary, "x", reply, sizeof reply, &st),
                   CRPC_PERMISSION_DENIED);
  assert_non_null(strstr(crpc_status_message(&st), "authorization"));
  crpc_status_clear(&st);
  rec_expect(H_SSTART, "AZ");
  rec_expect(H_SFIN, "A");
  assert_int_equal(atomic_load(&handler_runs), 0);
  crpc_channel_free(ch);
  crpc_server_free(srv);
}

/* ---- allocations: a crpc_mem that counts ---- */
static atomic_long nallocs;
static void *cnt_malloc(size_t n, void *ud) {
  atomic_fetch_add(&nallocs, 1);
  return malloc(n);
}
static void cnt_free(void *p, void *ud) { free(p); }
static void *cnt_calloc(size_t n, size_t m, void *ud) {
  atomic_fetch_add(&nallocs, 1);
  return calloc(n, m);
}
static void *cnt_realloc(void *p, size_t n, void *ud) {
  atomic_fetch_add(&nallocs, 1);
  return realloc(p, n);
}
static const crpc_mem counting = {NULL, cnt_malloc, cnt_free, cnt_calloc,
                                  cnt_realloc};

static long allocs_over(size_t nic, int ncalls) {
  ic_cfg s[3] = {{.id = 'A'}, {.id = 'B'}, {.id = 'C'}};
  ic_cfg c[3] = {{.id = '1'}, {.id = '2'}, {.id = '3'}};
  fix f;
  fix_up(&f, s, nic, c, nic, &counting);
  char reply[64];
  for (int i = 0; i < 3; i++) /* warm up: connection, worker threads */
    assert_int_equal(do_call(f.ch, &m_unary, "w", reply, sizeof reply, NULL),
                     CRPC_OK);
  atomic_store(&nallocs, 0);
  for (int i = 0; i < ncalls; i++) {
    rec_reset();
    assert_int_equal(do_call(f.ch, &m_unary, "w", reply, sizeof reply, NULL),
                     CRPC_OK);
  }
  long n = atomic_load(&nallocs);
  fix_down(&f);
  return n;
}

static void test_no_allocation_per_interceptor(void **state) {
  enum { N = 200 };
  long without = allocs_over(0, N);
  long with3 = allocs_over(3, N);
  fprintf(stderr, "allocations over %d unary calls: %ld without, %ld with "
                  "3+3 interceptors\n", N, without, with3);
  /* one allocation per call per interceptor would add 6 * N; allow a few
   * for the connection's own (window updates, buffers) */
  assert_true(with3 <= without + N / 10);
}

/* Registration's bad arguments and the chain's limit. */
static void test_registration_limits(void **state) {
  crpc_channel *ch;
  crpc_server *srv;
  ic_cfg cfg = {.id = 'x'};
  assert_int_equal(crpc_channel_new(&ch, "127.0.0.1:1", NULL), 0);
  assert_int_equal(crpc_channel_add_interceptor(NULL, &client_ic, NULL),
                   CRPC_EINVAL);
  assert_int_equal(crpc_channel_add_interceptor(ch, NULL, NULL), CRPC_EINVAL);
  for (int i = 0; i < CRPC_MAX_INTERCEPTORS; i++)
    assert_int_equal(crpc_channel_add_interceptor(ch, &client_ic, &cfg), 0);
  assert_int_equal(crpc_channel_add_interceptor(ch, &client_ic, &cfg),
                   CRPC_ENOMEM);
  crpc_channel_free(ch);
  assert_int_equal(crpc_server_new(&srv, NULL), 0);
  assert_int_equal(crpc_server_add_interceptor(srv, NULL, NULL), CRPC_EINVAL);
  for (int i = 0; i < CRPC_MAX_INTERCEPTORS; i++)
    assert_int_equal(crpc_server_add_interceptor(srv, &server_ic, &cfg), 0);
  assert_int_equal(crpc_server_add_interceptor(srv, &server_ic, &cfg),
                   CRPC_ENOMEM);
  /* the auth hook needs a slot of its own */
  assert_int_equal(crpc_server_set_auth_hook(srv, auth, NULL), CRPC_ENOMEM);
  assert_int_equal(crpc_server_set_auth_hook(srv, NULL, NULL), 0);
  crpc_server_free(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_every_kind),
      cmocka_unit_test(test_metadata_both_ways),
      cmocka_unit_test(test_client_replaces_message),
      cmocka_unit_test(test_client_short_circuit),
      cmocka_unit_test(test_client_send_fails),
      cmocka_unit_test(test_server_short_circuit),
      cmocka_unit_test(test_nonblocking_and_deferred),
      cmocka_unit_test(test_callback_api),
      cmocka_unit_test(test_auth_hook_on_chain),
      cmocka_unit_test(test_no_allocation_per_interceptor),
      cmocka_unit_test(test_registration_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
