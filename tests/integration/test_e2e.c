#define _POSIX_C_SOURCE 200809L
/*
 * test_e2e.c: an in-process crpc server and client over loopback: every RPC
 * kind, metadata, status, deadlines, cancellation, limits.
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
#include <time.h>

#include <crpc/crpc.h>

#include "echo.pb-c.h"

static const crpc_method m_unary = {"/crpc.itest.Echo/Unary", CRPC_UNARY,
                                    &crpc__itest__echo_request__descriptor,
                                    &crpc__itest__echo_reply__descriptor};
static const crpc_method m_unary_inline = {
    "/crpc.itest.Echo/UnaryInline", CRPC_UNARY,
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
static const crpc_method m_bidi_inline = {
    "/crpc.itest.Echo/BidiInline", CRPC_BIDI_STREAMING,
    &crpc__itest__echo_request__descriptor,
    &crpc__itest__echo_reply__descriptor};
static const crpc_method m_cstream_inline = {
    "/crpc.itest.Echo/ClientStreamInline", CRPC_CLIENT_STREAMING,
    &crpc__itest__echo_request__descriptor,
    &crpc__itest__echo_reply__descriptor};
static const crpc_method m_sstream_inline = {
    "/crpc.itest.Echo/ServerStreamInline", CRPC_SERVER_STREAMING,
    &crpc__itest__echo_request__descriptor,
    &crpc__itest__echo_reply__descriptor};
static const crpc_method m_missing = {"/crpc.itest.Echo/Missing", CRPC_UNARY,
                                      &crpc__itest__echo_request__descriptor,
                                      &crpc__itest__echo_reply__descriptor};

typedef Crpc__Itest__EchoRequest Req;
typedef Crpc__Itest__EchoReply Rep;

/* What handlers observed, for assertions; guarded by obs_mu. */
static pthread_mutex_t obs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t obs_cv = PTHREAD_COND_INITIALIZER;
static int obs_cancelled_seen;

static void note_cancelled(void) {
  pthread_mutex_lock(&obs_mu);
  obs_cancelled_seen++;
  pthread_cond_broadcast(&obs_cv);
  pthread_mutex_unlock(&obs_mu);
}

static void wait_cancelled(int n) {
  pthread_mutex_lock(&obs_mu);
  while (obs_cancelled_seen < n)
    pthread_cond_wait(&obs_cv, &obs_mu);
  pthread_mutex_unlock(&obs_mu);
}

/* A handler that waits for its deadline or cancellation, woken by
 * crpc_call_on_cancel (state on the handler's stack). */
typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool cancelled;
} waiter;

static void on_cancel(crpc_call *c, void *ud) {
  waiter *w = ud;
  pthread_mutex_lock(&w->mu);
  w->cancelled = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static bool wait_until_cancelled(crpc_call *c, int max_ms) {
  waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += max_ms / 1000;
  until.tv_nsec += (long)(max_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  assert_int_equal(crpc_call_on_cancel(c, on_cancel, &w), 0);
  pthread_mutex_lock(&w.mu);
  while (!w.cancelled)
    if (pthread_cond_timedwait(&w.cv, &w.mu, &until) != 0)
      break;
  bool r = w.cancelled;
  pthread_mutex_unlock(&w.mu);
  crpc_call_on_cancel(c, NULL, NULL);
  return r;
}

static void echo_metadata(crpc_call *c) {
  const crpc_metadata *md = crpc_call_request_metadata(c);
  for (size_t i = 0; i < crpc_metadata_count(md); i++) {
    const char *k;
    const uint8_t *v;
    size_t n;
    crpc_metadata_at(md, i, &k, &v, &n);
    if (strncmp(k, "x-", 2) == 0) {
      crpc_call_add_initial_metadata(c, k, v, n);
      crpc_call_add_trailing_metadata(c, k, v, n);
    }
  }
}

static crpc_code fill_reply(crpc_call *c, const Req *r, Rep *out) {
  size_t n = strlen(r->text);
  char *t = crpc_call_arena_alloc(c, n + 6);
  snprintf(t, n + 6, "echo:%s", r->text);
  out->text = t;
  if (r->reply_size > 0) {
    out->payload.len = (size_t)r->reply_size;
    out->payload.data = crpc_call_arena_alloc(c, out->payload.len);
    memset(out->payload.data, 'x', out->payload.len);
  }
  if (r->status) {
    crpc_call_set_status_message(c, r->status_message);
    return (crpc_code)r->status;
  }
  return CRPC_OK;
}

static crpc_code h_unary(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  const Req *r = (const Req *)req;
  echo_metadata(c);
  if (r->sleep_ms > 0) {
    if (wait_until_cancelled(c, r->sleep_ms)) {
      note_cancelled();
      return CRPC_CANCELLED;
    }
  }
  return fill_reply(c, r, (Rep *)resp);
}

static crpc_code h_sstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  const Req *r = (const Req *)req;
  echo_metadata(c);
  for (int i = 0; i < r->count; i++) {
    Rep rep = CRPC__ITEST__ECHO_REPLY__INIT;
    rep.text = r->text;
    rep.index = i;
    if (r->reply_size > 0) {
      rep.payload.len = (size_t)r->reply_size;
      rep.payload.data = calloc(1, rep.payload.len);
    }
    bool ok = crpc_call_write(c, &rep.base);
    free(rep.payload.data);
    if (!ok) {
      note_cancelled();
      return CRPC_CANCELLED;
    }
  }
  if (r->status) {
    crpc_call_set_status_message(c, r->status_message);
    return (crpc_code)r->status;
  }
  return CRPC_OK;
}

static crpc_code h_cstream(crpc_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, void *ud) {
  ProtobufCMessage *m;
  char buf[256] = "";
  int n = 0;
  while (crpc_call_read(c, &m)) {
    Req *r = (Req *)m;
    strncat(buf, r->text, sizeof buf - strlen(buf) - 1);
    n++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  if (crpc_call_is_cancelled(c))
    return CRPC_CANCELLED;
  Rep *out = (Rep *)resp;
  out->text = crpc_call_arena_strdup(c, buf);
  out->index = n;
  return CRPC_OK;
}

static crpc_code h_bidi(crpc_call *c, const ProtobufCMessage *req,
                        ProtobufCMessage *resp, void *ud) {
  ProtobufCMessage *m;
  int i = 0;
  echo_metadata(c);
  while (crpc_call_read(c, &m)) {
    Req *r = (Req *)m;
    Rep rep = CRPC__ITEST__ECHO_REPLY__INIT;
    rep.text = r->text;
    rep.index = i++;
    bool ok = crpc_call_write(c, &rep.base);
    protobuf_c_message_free_unpacked(m, NULL);
    if (!ok)
      break;
  }
  if (crpc_call_is_cancelled(c)) {
    note_cancelled();
    return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

/* NONBLOCKING streaming handlers: once per message on the reactor. */
typedef struct inline_state {
  int n;
  char text[256];
} inline_state;

static crpc_code h_bidi_inline(crpc_call *c, const ProtobufCMessage *req,
                               ProtobufCMessage *resp, void *ud) {
  inline_state *st = crpc_call_user_data(c);
  if (!st) {
    st = crpc_call_arena_alloc(c, sizeof *st);
    memset(st, 0, sizeof *st);
    crpc_call_set_user_data(c, st);
  }
  if (!req) { /* closing invocation */
    if (crpc_call_is_cancelled(c))
      note_cancelled();
    return CRPC_OK;
  }
  Rep rep = CRPC__ITEST__ECHO_REPLY__INIT;
  rep.text = ((const Req *)req)->text;
  rep.index = st->n++;
  return crpc_call_write(c, &rep.base) ? CRPC_OK : CRPC_CANCELLED;
}

static crpc_code h_cstream_inline(crpc_call *c, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, void *ud) {
  inline_state *st = crpc_call_user_data(c);
  if (!st) {
    st = crpc_call_arena_alloc(c, sizeof *st);
    memset(st, 0, sizeof *st);
    crpc_call_set_user_data(c, st);
  }
  if (req) {
    const Req *r = (const Req *)req;
    if (r->status)
      return (crpc_code)r->status; /* ends the call early */
    strncat(st->text, r->text, sizeof st->text - strlen(st->text) - 1);
    st->n++;
    return CRPC_OK;
  }
  if (!resp)
    return CRPC_OK; /* cancelled */
  ((Rep *)resp)->text = st->text;
  ((Rep *)resp)->index = st->n;
  return CRPC_OK;
}

static crpc_server *server;
static int port;
static crpc_channel *channel;
static char target[64];

static int setup(void **state) {
  crpc_server_opts so = {0};
  so.max_recv_msg_size = 64 * 1024;
  assert_int_equal(crpc_server_new(&server, &so), 0);
  assert_int_equal(crpc_server_register(server, &m_unary, h_unary, 0, NULL),
                   0);
  assert_int_equal(crpc_server_register(server, &m_unary_inline, h_unary,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(
      crpc_server_register(server, &m_sstream, h_sstream, 0, NULL), 0);
  assert_int_equal(
      crpc_server_register(server, &m_cstream, h_cstream, 0, NULL), 0);
  assert_int_equal(crpc_server_register(server, &m_bidi, h_bidi, 0, NULL), 0);
  assert_int_equal(crpc_server_register(server, &m_bidi, h_bidi, 0, NULL),
                   CRPC_EEXIST);
  assert_int_equal(crpc_server_register(server, &m_bidi_inline, h_bidi_inline,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(server, &m_cstream_inline,
                                        h_cstream_inline,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(server, &m_sstream_inline, h_sstream,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_listen(server, "127.0.0.1:0", NULL, &port), 0);
  assert_true(port > 0);
  assert_int_equal(crpc_server_start(server), 0);
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  crpc_channel_opts co = {0};
  co.max_recv_msg_size = 64 * 1024;
  assert_int_equal(crpc_channel_new(&channel, target, &co), 0);
  return 0;
}

static int teardown(void **state) {
  crpc_channel_free(channel);
  crpc_server_shutdown(server, 1000);
  crpc_server_free(server);
  return 0;
}


#define REQ_INIT CRPC__ITEST__ECHO_REQUEST__INIT
#define REP_INIT CRPC__ITEST__ECHO_REPLY__INIT

static void test_unary(void **state) {
  const crpc_method *ms[] = {&m_unary, &m_unary_inline};
  for (int k = 0; k < 2; k++) {
    Req req = REQ_INIT;
    ProtobufCMessage *resp = NULL;
    crpc_status st = {0};
    crpc_metadata *md, *hdrs, *trl;
    req.text = "hello";
    assert_int_equal(crpc_metadata_new(&md), 0);
    assert_int_equal(crpc_metadata_new(&hdrs), 0);
    assert_int_equal(crpc_metadata_new(&trl), 0);
    assert_int_equal(crpc_metadata_add_str(md, "x-ascii", "v1"), 0);
    assert_int_equal(crpc_metadata_add(md, "x-data-bin", "\0\1\2\377", 4), 0);
    crpc_call_opts o = {.metadata = md,
                        .initial_metadata_out = hdrs,
                        .trailing_metadata_out = trl};
    crpc_code code = crpc_unary(channel, ms[k], &o, &req.base, &resp, &st);
    assert_int_equal(code, CRPC_OK);
    assert_non_null(resp);
    assert_string_equal(((Rep *)resp)->text, "echo:hello");
    size_t n;
    const uint8_t *v = crpc_metadata_get(hdrs, "x-ascii", &n);
    assert_non_null(v);
    assert_memory_equal(v, "v1", 2);
    v = crpc_metadata_get(trl, "x-data-bin", &n);
    assert_non_null(v);
    assert_int_equal(n, 4);
    assert_memory_equal(v, "\0\1\2\377", 4);
    protobuf_c_message_free_unpacked(resp, NULL);
    crpc_status_clear(&st);
    crpc_metadata_free(md);
    crpc_metadata_free(hdrs);
    crpc_metadata_free(trl);
  }
}

static void test_status_message(void **state) {
  Req req = REQ_INIT;
  ProtobufCMessage *resp = NULL;
  crpc_status st = {0};
  const char *msg = "not found: \xc3\xbc 100% \n\"quoted\" \t end";
  req.text = "x";
  req.status = CRPC_NOT_FOUND;
  req.status_message = (char *)msg;
  assert_int_equal(crpc_unary(channel, &m_unary, NULL, &req.base, &resp, &st),
                   CRPC_NOT_FOUND);
  assert_null(resp);
  assert_int_equal(st.code, CRPC_NOT_FOUND);
  assert_string_equal(st.message, msg);
  crpc_status_clear(&st);
}

static void test_unknown_method(void **state) {
  Req req = REQ_INIT;
  ProtobufCMessage *resp = NULL;
  crpc_status st = {0};
  assert_int_equal(
      crpc_unary(channel, &m_missing, NULL, &req.base, &resp, &st),
      CRPC_UNIMPLEMENTED);
  assert_non_null(strstr(crpc_status_message(&st), "/crpc.itest.Echo/Missing"));
  crpc_status_clear(&st);
}

static void test_server_stream(void **state) {
  Req req = REQ_INIT;
  crpc_call *c;
  ProtobufCMessage *m;
  req.text = "s";
  req.count = 50;
  req.reply_size = 3000;
  assert_int_equal(crpc_call_start(&c, channel, &m_sstream, NULL), 0);
  assert_true(crpc_call_write(c, &req.base));
  assert_true(crpc_call_writes_done(c));
  int i = 0;
  while (crpc_call_read(c, &m)) {
    assert_int_equal(((Rep *)m)->index, i);
    assert_int_equal(((Rep *)m)->payload.len, 3000);
    i++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_int_equal(i, 50);
  assert_int_equal(crpc_call_finish(c, NULL), CRPC_OK);
  crpc_call_free(c);
}

static void test_client_stream(void **state) {
  crpc_call *c;
  ProtobufCMessage *resp;
  crpc_status st = {0};
  const char *parts[] = {"a", "b", "c", "d"};
  assert_int_equal(crpc_call_start(&c, channel, &m_cstream, NULL), 0);
  for (int i = 0; i < 4; i++) {
    Req req = REQ_INIT;
    req.text = (char *)parts[i];
    assert_true(crpc_call_write(c, &req.base));
  }
  assert_int_equal(crpc_call_finish_with_response(c, &resp, &st), CRPC_OK);
  assert_string_equal(((Rep *)resp)->text, "abcd");
  assert_int_equal(((Rep *)resp)->index, 4);
  protobuf_c_message_free_unpacked(resp, NULL);
  crpc_status_clear(&st);
  crpc_call_free(c);
}

static void test_bidi(void **state) {
  crpc_call *c;
  ProtobufCMessage *m;
  assert_int_equal(crpc_call_start(&c, channel, &m_bidi, NULL), 0);
  for (int i = 0; i < 20; i++) {
    Req req = REQ_INIT;
    req.text = "ping";
    assert_true(crpc_call_write(c, &req.base));
    assert_true(crpc_call_read(c, &m));
    assert_int_equal(((Rep *)m)->index, i);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_true(crpc_call_writes_done(c));
  assert_false(crpc_call_read(c, &m));
  assert_int_equal(crpc_call_finish(c, NULL), CRPC_OK);
  crpc_call_free(c);
}

/* Large message buffers are the call's to reuse (codec.h's msgpool): a
 * ping-pong of N 48 KiB messages makes as many allocations of 16 KiB or
 * more as one of 4 messages does, not three per message. */
static atomic_long big_allocs;
static void *big_malloc(size_t n, void *ud) {
  (void)ud;
  if (n >= 16 * 1024)
    atomic_fetch_add(&big_allocs, 1);
  return malloc(n);
}
static void big_free(void *p, void *ud) {
  (void)ud;
  free(p);
}
static void *big_calloc(size_t n, size_t m, void *ud) {
  (void)ud;
  if (n * m >= 16 * 1024)
    atomic_fetch_add(&big_allocs, 1);
  return calloc(n, m);
}
static void *big_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  if (n >= 16 * 1024)
    atomic_fetch_add(&big_allocs, 1);
  return realloc(p, n);
}
static const crpc_mem big_counting = {NULL, big_malloc, big_free, big_calloc,
                                      big_realloc};

static long big_allocs_for(int nmsgs) {
  static char text[48 * 1024]; /* under the 64 KiB limits of setup() */
  memset(text, 'x', sizeof text - 1);
  crpc_channel_opts co = {.mem = &big_counting};
  crpc_channel *ch;
  assert_int_equal(crpc_channel_new(&ch, target, &co), 0);
  crpc_call *c;
  ProtobufCMessage *m;
  atomic_store(&big_allocs, 0);
  assert_int_equal(crpc_call_start(&c, ch, &m_bidi, NULL), 0);
  for (int i = 0; i < nmsgs; i++) {
    Req req = REQ_INIT;
    req.text = text;
    assert_true(crpc_call_write(c, &req.base));
    assert_true(crpc_call_read(c, &m));
    assert_int_equal(strlen(((Rep *)m)->text), sizeof text - 1);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_true(crpc_call_writes_done(c));
  assert_false(crpc_call_read(c, &m));
  assert_int_equal(crpc_call_finish(c, NULL), CRPC_OK);
  crpc_call_free(c);
  long n = atomic_load(&big_allocs);
  crpc_channel_free(ch);
  return n;
}

static void test_buffers_reused(void **state) {
  long few = big_allocs_for(4), many = big_allocs_for(40);
  print_message("allocations >= 16 KiB: %ld for 4 messages, %ld for 40\n",
                few, many);
  assert_int_equal(few, many);
}

/* The same streaming checks against NONBLOCKING (reactor) handlers. */
static void test_inline_streams(void **state) {
  crpc_call *c;
  ProtobufCMessage *m;
  /* bidi ping-pong */
  assert_int_equal(crpc_call_start(&c, channel, &m_bidi_inline, NULL), 0);
  for (int i = 0; i < 20; i++) {
    Req req = REQ_INIT;
    req.text = "ping";
    assert_true(crpc_call_write(c, &req.base));
    assert_true(crpc_call_read(c, &m));
    assert_int_equal(((Rep *)m)->index, i);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_true(crpc_call_writes_done(c));
  assert_false(crpc_call_read(c, &m));
  assert_int_equal(crpc_call_finish(c, NULL), CRPC_OK);
  crpc_call_free(c);

  /* client streaming, then one that the handler ends early */
  for (int k = 0; k < 2; k++) {
    crpc_status st = {0};
    ProtobufCMessage *resp = NULL;
    const char *parts[] = {"a", "b", "c", "d"};
    assert_int_equal(crpc_call_start(&c, channel, &m_cstream_inline, NULL), 0);
    for (int i = 0; i < 4; i++) {
      Req req = REQ_INIT;
      req.text = (char *)parts[i];
      req.status = (k == 1 && i == 2) ? CRPC_ABORTED : 0;
      crpc_call_write(c, &req.base); /* may fail once the call ended */
    }
    crpc_code code = crpc_call_finish_with_response(c, &resp, &st);
    if (k == 0) {
      assert_int_equal(code, CRPC_OK);
      assert_string_equal(((Rep *)resp)->text, "abcd");
      assert_int_equal(((Rep *)resp)->index, 4);
      protobuf_c_message_free_unpacked(resp, NULL);
    } else {
      assert_int_equal(code, CRPC_ABORTED);
    }
    crpc_status_clear(&st);
    crpc_call_free(c);
  }

  /* server streaming: 50 x 3000 bytes queued without blocking */
  Req req = REQ_INIT;
  req.text = "s";
  req.count = 50;
  req.reply_size = 3000;
  assert_int_equal(crpc_call_start(&c, channel, &m_sstream_inline, NULL), 0);
  assert_true(crpc_call_write(c, &req.base));
  assert_true(crpc_call_writes_done(c));
  int n = 0;
  while (crpc_call_read(c, &m)) {
    assert_int_equal(((Rep *)m)->index, n++);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_int_equal(n, 50);
  assert_int_equal(crpc_call_finish(c, NULL), CRPC_OK);
  crpc_call_free(c);

  /* 2000 small messages queued before the first flush: one DATA frame
   * carries hundreds of them (more than one sendmsg's iovec batch), and
   * each must arrive whole and in order */
  req.count = 2000;
  req.reply_size = 20;
  assert_int_equal(crpc_call_start(&c, channel, &m_sstream_inline, NULL), 0);
  assert_true(crpc_call_write(c, &req.base));
  assert_true(crpc_call_writes_done(c));
  n = 0;
  while (crpc_call_read(c, &m)) {
    assert_int_equal(((Rep *)m)->index, n++);
    assert_int_equal(((Rep *)m)->payload.len, 20);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_int_equal(n, 2000);
  assert_int_equal(crpc_call_finish(c, NULL), CRPC_OK);
  crpc_call_free(c);

  /* a cancelled inline bidi call gets its closing invocation */
  int before;
  pthread_mutex_lock(&obs_mu);
  before = obs_cancelled_seen;
  pthread_mutex_unlock(&obs_mu);
  assert_int_equal(crpc_call_start(&c, channel, &m_bidi_inline, NULL), 0);
  Req one = REQ_INIT;
  one.text = "one";
  assert_true(crpc_call_write(c, &one.base));
  assert_true(crpc_call_read(c, &m));
  protobuf_c_message_free_unpacked(m, NULL);
  crpc_call_cancel(c);
  assert_int_equal(crpc_call_finish(c, NULL), CRPC_CANCELLED);
  crpc_call_free(c);
  wait_cancelled(before + 1);
}

static void test_deadline(void **state) {
  Req req = REQ_INIT;
  ProtobufCMessage *resp = NULL;
  crpc_status st = {0};
  int before;
  pthread_mutex_lock(&obs_mu);
  before = obs_cancelled_seen;
  pthread_mutex_unlock(&obs_mu);
  req.text = "slow";
  req.sleep_ms = 10000;
  crpc_call_opts o = {.timeout_ms = 50};
  assert_int_equal(crpc_unary(channel, &m_unary, &o, &req.base, &resp, &st),
                   CRPC_DEADLINE_EXCEEDED);
  crpc_status_clear(&st);
  wait_cancelled(before + 1); /* the handler saw it too */
  crpc_call_opts o1 = {.timeout_ms = 1};
  crpc_code code = crpc_unary(channel, &m_unary, &o1, &req.base, &resp, &st);
  assert_int_equal(code, CRPC_DEADLINE_EXCEEDED);
  crpc_status_clear(&st);
}

static void test_cancel_bidi(void **state) {
  crpc_call *c;
  ProtobufCMessage *m;
  int before;
  pthread_mutex_lock(&obs_mu);
  before = obs_cancelled_seen;
  pthread_mutex_unlock(&obs_mu);
  assert_int_equal(crpc_call_start(&c, channel, &m_bidi, NULL), 0);
  Req req = REQ_INIT;
  req.text = "one";
  assert_true(crpc_call_write(c, &req.base));
  assert_true(crpc_call_read(c, &m));
  protobuf_c_message_free_unpacked(m, NULL);
  crpc_call_cancel(c);
  assert_int_equal(crpc_call_finish(c, NULL), CRPC_CANCELLED);
  assert_false(crpc_call_write(c, &req.base));
  crpc_call_free(c);
  wait_cancelled(before + 1);
}

static void test_limits(void **state) {
  Req req = REQ_INIT;
  ProtobufCMessage *resp = NULL;
  crpc_status st = {0};
  /* reply over the client's 64 KiB receive limit */
  req.text = "big";
  req.reply_size = 100 * 1024;
  assert_int_equal(crpc_unary(channel, &m_unary, NULL, &req.base, &resp, &st),
                   CRPC_RESOURCE_EXHAUSTED);
  crpc_status_clear(&st);
  /* request over the server's 64 KiB receive limit */
  Req big = REQ_INIT;
  big.text = "x";
  big.payload.len = 100 * 1024;
  big.payload.data = calloc(1, big.payload.len);
  assert_int_equal(crpc_unary(channel, &m_unary, NULL, &big.base, &resp, &st),
                   CRPC_RESOURCE_EXHAUSTED);
  crpc_status_clear(&st);
  free(big.payload.data);
  /* the connection is still fine */
  req.reply_size = 0;
  assert_int_equal(crpc_unary(channel, &m_unary, NULL, &req.base, &resp, &st),
                   CRPC_OK);
  protobuf_c_message_free_unpacked(resp, NULL);
}

/* A response larger than the HTTP/2 windows must still arrive. */
static void test_large_response(void **state) {
  crpc_channel *ch;
  Req req = REQ_INIT;
  ProtobufCMessage *resp = NULL;
  crpc_status st = {0};
  assert_int_equal(crpc_channel_new(&ch, target, NULL), 0);
  req.text = "large";
  req.reply_size = 3 * 1024 * 1024;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(crpc_unary(ch, &m_unary, NULL, &req.base, &resp, &st),
                     CRPC_OK);
    assert_int_equal(((Rep *)resp)->payload.len, 3 * 1024 * 1024);
    protobuf_c_message_free_unpacked(resp, NULL);
  }
  crpc_channel_free(ch);
}

static void test_unavailable(void **state) {
  crpc_server *s;
  int p;
  char t[64];
  crpc_channel *ch;
  Req req = REQ_INIT;
  ProtobufCMessage *resp = NULL;
  crpc_status st = {0};
  /* a port that was just free: bind, learn it, close */
  assert_int_equal(crpc_server_new(&s, NULL), 0);
  assert_int_equal(crpc_server_listen(s, "127.0.0.1:0", NULL, &p), 0);
  crpc_server_free(s);
  snprintf(t, sizeof t, "127.0.0.1:%d", p);
  assert_int_equal(crpc_channel_new(&ch, t, NULL), 0);
  assert_int_equal(crpc_unary(ch, &m_unary, NULL, &req.base, &resp, &st),
                   CRPC_UNAVAILABLE);
  assert_non_null(strstr(crpc_status_message(&st), "connect"));
  crpc_status_clear(&st);
  crpc_channel_free(ch);
}

typedef struct async_state {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, ok;
} async_state;

static void on_async(crpc_call *c, const crpc_status *st,
                     const ProtobufCMessage *resp, void *ud) {
  async_state *a = ud;
  pthread_mutex_lock(&a->mu);
  a->done++;
  if (st->code == CRPC_OK && resp &&
      strcmp(((const Rep *)resp)->text, "echo:async") == 0)
    a->ok++;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

static void test_async(void **state) {
  async_state a = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  Req req = REQ_INIT;
  req.text = "async";
  /* issued while holding the lock the callback takes: a callback must
   * never run inside crpc_unary_async (or any other call of ours) */
  pthread_mutex_lock(&a.mu);
  for (int i = 0; i < 200; i++)
    assert_int_equal(crpc_unary_async(channel, &m_unary_inline, NULL,
                                      &req.base, on_async, &a),
                     0);
  while (a.done < 200)
    pthread_cond_wait(&a.cv, &a.mu);
  pthread_mutex_unlock(&a.mu);
  assert_int_equal(a.ok, 200);
}

static void *hammer(void *arg) {
  long ok = 0;
  for (int i = 0; i < 200; i++) {
    Req req = REQ_INIT;
    ProtobufCMessage *resp = NULL;
    req.text = "t";
    if (crpc_unary(channel, &m_unary, NULL, &req.base, &resp, NULL) ==
        CRPC_OK)
      ok++;
    protobuf_c_message_free_unpacked(resp, NULL);
  }
  return (void *)ok;
}

static void test_threads(void **state) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, hammer, NULL);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    assert_int_equal((long)r, 200);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary),          cmocka_unit_test(test_status_message),
      cmocka_unit_test(test_unknown_method), cmocka_unit_test(test_server_stream),
      cmocka_unit_test(test_client_stream),  cmocka_unit_test(test_bidi),
      cmocka_unit_test(test_inline_streams),
      cmocka_unit_test(test_buffers_reused),
      cmocka_unit_test(test_deadline),       cmocka_unit_test(test_cancel_bidi),
      cmocka_unit_test(test_limits),         cmocka_unit_test(test_large_response),         cmocka_unit_test(test_unavailable),
      cmocka_unit_test(test_async),          cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
