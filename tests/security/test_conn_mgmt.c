#define _POSIX_C_SOURCE 200809L
/*
 * test_conn_mgmt.c: server connection management (gRFC A9) and keepalive
 * enforcement, seen from a crpc client and from a raw HTTP/2 client:
 *
 *   max_connection_age       GOAWAY(2^31-1) + PING, then the final GOAWAY
 *                            once the PING is answered; the call in flight
 *                            finishes, new calls go on a new connection
 *                            (also on a program-driven crpc_loop)
 *   max_connection_age_grace a call longer than the grace is cancelled
 *   max_connection_idle      an idle connection gets GOAWAY and is closed
 *   too many PINGs           GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings")
 *
 * Short ages (200 ms), and every wait is for an event, bounded by WAIT.
 *
 *   test_conn_mgmt CERT_DIR
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h2raw.h"
#include "sec_util.h"

#define WAIT 10000 /* ms, the bound on every wait */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The auth hook records the peer address of the last call (its client
 * port tells the connections apart). */
static pthread_mutex_t peer_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_peer[128];

static crpc_code record_peer(crpc_call *call, void *ud) {
  (void)ud;
  pthread_mutex_lock(&peer_mu);
  snprintf(last_peer, sizeof last_peer, "%s", crpc_call_peer(call));
  pthread_mutex_unlock(&peer_mu);
  return CRPC_OK;
}

static void peer_copy(char *out, size_t n) {
  pthread_mutex_lock(&peer_mu);
  snprintf(out, n, "%s", last_peer);
  pthread_mutex_unlock(&peer_mu);
}

static crpc_call *bidi_start(crpc_channel *ch) {
  crpc_call *call;
  assert_int_equal(crpc_call_start(&call, ch, &sec_bidi_method, NULL), 0);
  return call;
}

/* One echo round trip on the bidi call; false when the call is over. */
static bool echo(crpc_call *call, const char *name) {
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = (char *)name;
  if (!crpc_call_write(call, &req.base))
    return false;
  ProtobufCMessage *m;
  if (!crpc_call_read(call, &m))
    return false;
  Helloworld__HelloReply *r = (Helloworld__HelloReply *)m;
  char want[300];
  snprintf(want, sizeof want, "echo:%s", name);
  assert_string_equal(r->message, want);
  protobuf_c_message_free_unpacked(m, NULL);
  return true;
}

/* max_connection_age: a bidi call opened on the first connection goes on
 * after its GOAWAY; unary calls meanwhile all succeed, and soon arrive
 * from another client port (a new connection, made by the channel on its
 * own). */
static void age_reconnects_with(bool tls) {
  sec_server s;
  crpc_server_opts o = {.max_connection_age_ms = 200,
                        .max_connection_age_grace_ms = 60000};
  crpc_tls_server_opts st_tls = {.cert_file = sec_path("server.pem"),
                                 .key_file = sec_path("server.key")};
  assert_int_equal(sec_server_start(&s, &o, tls ? &st_tls : NULL,
                                    record_peer, NULL), 0);
  crpc_tls_opts ct = {.ca_file = sec_path("ca.pem")};
  crpc_channel_opts co = {.tls = tls ? &ct : NULL};
  crpc_channel *ch;
  assert_int_equal(crpc_channel_new(&ch, sec_target("localhost", s.port),
                                    &co), 0);
  crpc_call *call = bidi_start(ch);
  assert_true(echo(call, "first"));
  char first[128], cur[128];
  peer_copy(first, sizeof first);
  int calls = 0;
  int64_t end = now_ms() + WAIT;
  do {
    crpc_status st = {0};
    crpc_code code = sec_hello(ch, NULL, "x", NULL, &st);
    if (code != CRPC_OK)
      fprintf(stderr, "call %d: %s: %s\n", calls, crpc_code_name(code),
              crpc_status_message(&st));
    assert_int_equal(code, CRPC_OK); /* the switch loses no call */
    crpc_status_clear(&st);
    calls++;
    peer_copy(cur, sizeof cur);
  } while (strcmp(cur, first) == 0 && now_ms() < end);
  fprintf(stderr, "age%s: %d calls until one came on a new connection "
                  "(%s, then %s)\n", tls ? " (TLS)" : "", calls, first, cur);
  assert_string_not_equal(cur, first);
  /* the call opened before the GOAWAY is still served, to its end */
  assert_true(echo(call, "second"));
  assert_true(crpc_call_writes_done(call));
  crpc_status st = {0};
  assert_int_equal(crpc_call_finish(call, &st), CRPC_OK);
  crpc_status_clear(&st);
  crpc_call_free(call);
  crpc_channel_free(ch);
  sec_server_stop(&s);
}

static void age_reconnects(void **state) {
  (void)state;
  age_reconnects_with(false);
}

/* ... and over TLS (the age timer waits for the handshake). */
static void age_reconnects_tls(void **state) {
  (void)state;
  age_reconnects_with(true);
}

/* The frames: notice (2^31-1), PING, final GOAWAY with the last stream
 * processed once the PING is answered; the stream below it goes on and
 * the connection closes when it ends. */
static bool two_goaways(h2raw *r, void *arg) {
  (void)arg;
  return r->goaway_count >= 2;
}

static void age_frames(void **state) {
  (void)state;
  sec_server s;
  crpc_server_opts o = {.max_connection_age_ms = 200};
  assert_int_equal(sec_server_start(&s, &o, NULL, NULL, NULL), 0);
  h2raw r = {0};
  assert_int_equal(h2raw_connect(&r, s.port), 0);
  r.ack_pings = true;
  h2raw_preface(&r);
  int32_t sid = h2raw_request(&r, "/sec.Test/Bidi", NULL, 0, false);
  assert_true(h2raw_run(&r, two_goaways, NULL, WAIT));
  fprintf(stderr, "age: %d GOAWAYs, last stream %d, code %u\n",
          r.goaway_count, r.goaway_last_sid, r.goaway_code);
  assert_int_equal(r.goaway_code, NGHTTP2_NO_ERROR);
  assert_int_equal(r.goaway_last_sid, sid); /* our stream is kept */
  assert_false(r.dead);
  /* the stream still works: end it, the server answers and closes */
  h2raw_message(&r, sid, NULL, 0, true);
  assert_int_equal(h2raw_wait_status(&r, sid, WAIT), CRPC_OK);
  assert_true(h2raw_wait_closed(&r, WAIT));
  h2raw_close(&r);
  sec_server_stop(&s);
}

/* The same on a server on a program-driven crpc_loop: the timers run on
 * it (this thread runs it; the raw client is another thread). */
typedef struct loop_client {
  int port;
  crpc_loop *loop;
  int goaways, status;
  int32_t last_sid, sid;
  bool closed;
} loop_client;

static void *loop_client_run(void *arg) {
  loop_client *lc = arg;
  h2raw r = {0};
  if (h2raw_connect(&r, lc->port) == 0) {
    r.ack_pings = true;
    h2raw_preface(&r);
    lc->sid = h2raw_request(&r, "/sec.Test/Bidi", NULL, 0, false);
    h2raw_run(&r, two_goaways, NULL, WAIT);
    lc->goaways = r.goaway_count;
    lc->last_sid = r.goaway_last_sid;
    h2raw_message(&r, lc->sid, NULL, 0, true);
    lc->status = h2raw_wait_status(&r, lc->sid, WAIT);
    lc->closed = h2raw_wait_closed(&r, WAIT);
    h2raw_close(&r);
  }
  crpc_loop_stop(lc->loop);
  return NULL;
}

static void age_on_user_loop(void **state) {
  (void)state;
  crpc_loop *loop;
  assert_int_equal(crpc_loop_new(&loop, NULL), 0);
  sec_server s;
  crpc_server_opts o = {.loop = loop, .max_connection_age_ms = 200};
  assert_int_equal(sec_server_start(&s, &o, NULL, NULL, NULL), 0);
  loop_client lc = {.port = s.port, .loop = loop};
  pthread_t t;
  pthread_create(&t, NULL, loop_client_run, &lc);
  assert_int_equal(crpc_loop_run(loop), 0);
  pthread_join(t, NULL);
  assert_int_equal(lc.goaways, 2);
  assert_int_equal(lc.last_sid, lc.sid);
  assert_int_equal(lc.status, CRPC_OK);
  assert_true(lc.closed);
  sec_server_stop(&s);
  crpc_loop_free(loop);
}

/* A call that outlasts max_connection_age_grace is cancelled: the client
 * sees UNAVAILABLE, the handler returns. */
static void grace_cancels(void **state) {
  (void)state;
  sec_server s;
  crpc_server_opts o = {.max_connection_age_ms = 200,
                        .max_connection_age_grace_ms = 300};
  assert_int_equal(sec_server_start(&s, &o, NULL, NULL, NULL), 0);
  crpc_channel *ch;
  assert_int_equal(crpc_channel_new(&ch, sec_target("127.0.0.1", s.port),
                                    NULL), 0);
  crpc_call *call = bidi_start(ch);
  assert_true(echo(call, "one"));
  /* the handler waits for our next message, which never comes: the read
   * ends when the server cuts the connection */
  ProtobufCMessage *m = NULL;
  int64_t t0 = now_ms();
  assert_false(crpc_call_read(call, &m));
  crpc_status st = {0};
  crpc_code code = crpc_call_finish(call, &st);
  fprintf(stderr, "grace: call ended after %lld ms: %s: %s\n",
          (long long)(now_ms() - t0), crpc_code_name(code),
          crpc_status_message(&st));
  assert_int_equal(code, CRPC_UNAVAILABLE);
  crpc_status_clear(&st);
  crpc_call_free(call);
  /* the channel goes on with a new connection */
  assert_int_equal(sec_hello(ch, NULL, "after", NULL, &st), CRPC_OK);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
  sec_server_stop(&s);
}

/* max_connection_idle_ms (gRPC's name for idle_timeout_ms). */
static void idle_closes(void **state) {
  (void)state;
  sec_server s;
  crpc_server_opts o = {.max_connection_idle_ms = 200};
  assert_int_equal(sec_server_start(&s, &o, NULL, NULL, NULL), 0);
  h2raw r = {0};
  assert_int_equal(h2raw_connect(&r, s.port), 0);
  r.ack_pings = true;
  h2raw_preface(&r);
  /* one call, then nothing: idle from its end */
  int32_t sid = h2raw_request(&r, "/no.Such/Method", NULL, 0, true);
  assert_int_equal(h2raw_wait_status(&r, sid, WAIT), CRPC_UNIMPLEMENTED);
  assert_true(h2raw_wait_closed(&r, WAIT));
  assert_true(r.got_goaway);
  assert_int_equal(r.goaway_code, NGHTTP2_NO_ERROR);
  h2raw_close(&r);
  sec_server_stop(&s);
}

/* PINGs sooner than keepalive_min_time_ms (default 5 min) with nothing
 * sent in between: strikes, then GOAWAY(ENHANCE_YOUR_CALM) with gRPC's
 * debug data. The first PING is never a strike. */
static void too_many_pings(void **state) {
  (void)state;
  sec_server s;
  crpc_server_opts o = {.max_ping_strikes = 2};
  assert_int_equal(sec_server_start(&s, &o, NULL, NULL, NULL), 0);
  h2raw r = {0};
  assert_int_equal(h2raw_connect(&r, s.port), 0);
  h2raw_preface(&r);
  uint8_t payload[8] = {0};
  int sent = 0;
  for (; sent < 10 && !r.wdead; sent++)
    h2raw_frame(&r, NGHTTP2_PING, 0, 0, payload, 8);
  assert_true(h2raw_wait_closed(&r, WAIT));
  fprintf(stderr, "pings: %d sent, %d acks, GOAWAY code %u '%s'\n", sent,
          r.ping_acks, r.goaway_code, r.goaway_debug);
  assert_true(r.got_goaway);
  assert_int_equal(r.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  assert_string_equal(r.goaway_debug, "too_many_pings");
  h2raw_close(&r);

  /* the same pings, each after a response from the server, are fine
   * (gRPC resets the strikes when it sends HEADERS or DATA) */
  assert_int_equal(h2raw_connect(&r, s.port), 0);
  h2raw_preface(&r);
  for (int i = 0; i < 10; i++) {
    h2raw_frame(&r, NGHTTP2_PING, 0, 0, payload, 8);
    int32_t sid = h2raw_request(&r, "/no.Such/Method", NULL, 0, true);
    assert_int_equal(h2raw_wait_status(&r, sid, WAIT), CRPC_UNIMPLEMENTED);
  }
  assert_false(r.dead);
  h2raw_close(&r);
  sec_server_stop(&s);
}

int main(int argc, char **argv) {
  sec_init(argc, argv);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(age_reconnects), cmocka_unit_test(age_frames),
      cmocka_unit_test(age_reconnects_tls),
      cmocka_unit_test(age_on_user_loop),
      cmocka_unit_test(grace_cancels),  cmocka_unit_test(idle_closes),
      cmocka_unit_test(too_many_pings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
