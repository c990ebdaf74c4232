#define _POSIX_C_SOURCE 200809L
/*
 * test_defences.c: attacks on a crpc server over loopback, each mounted by
 * a raw HTTP/2 client (h2raw) while a well-behaved crpc client checks it is
 * still served. The server runs one reactor thread, so an attack that
 * stalled the reactor would starve the good client too.
 *
 *   header list too large      RESOURCE_EXHAUSTED on that stream; a block
 *                              past nghttp2's CONTINUATION limit: GOAWAY
 *   more streams than allowed  REFUSED_STREAM beyond the limit, and no
 *                              more handlers than the limit
 *   rapid reset                GOAWAY, handlers bounded (also for streams
 *                              the server itself is made to reset)
 *   PING / SETTINGS flood      GOAWAY(ENHANCE_YOUR_CALM), closed
 *   slow-loris                 TLS handshake / preface never finished:
 *                              closed after handshake_timeout_ms
 *   idle connections           max_connections evicts the oldest idle
 *                              one; idle_timeout_ms closes with GOAWAY
 *   a client that never reads  the handler is held back by flow control;
 *                              what the server buffers stays bounded
 *
 *   test_defences CERT_DIR
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "h2raw.h"
#include "sec_util.h"

#define WAIT 10000 /* ms, the bound on every wait */

static void good_client_served(int port) {
  crpc_channel *ch;
  assert_int_equal(crpc_channel_new(&ch, sec_target("127.0.0.1", port), NULL),
                   0);
  crpc_status st = {0};
  crpc_code code = sec_hello(ch, NULL, "good", NULL, &st);
  if (code != CRPC_OK)
    fprintf(stderr, "good client: %s: %s\n", crpc_code_name(code),
            crpc_status_message(&st));
  assert_int_equal(code, CRPC_OK);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
}

static void start(sec_server *s, crpc_server_opts *o) {
  assert_int_equal(sec_server_start(s, o, NULL, NULL, NULL), 0);
}

static h2raw *attacker(int port) {
  h2raw *r = calloc(1, sizeof *r);
  assert_int_equal(h2raw_connect(r, port), 0);
  h2raw_preface(r);
  return r;
}

static void attacker_free(h2raw *r) {
  h2raw_close(r);
  free(r);
}

/* A request the server answers at once (trailers-only UNIMPLEMENTED): a
 * round trip showing the server has processed all we sent before it. */
static bool ping_roundtrip(h2raw *r) {
  int32_t sid = h2raw_request(r, "/no.Such/Method", NULL, 0, true);
  return h2raw_wait_status(r, sid, WAIT) == CRPC_UNIMPLEMENTED;
}

/* A client with the largest windows that asks /sec.Test/Stream for 10000
 * replies of 10 KB (100 MB) and then never reads. */
static h2raw *open_window_hog(int port) {
  h2raw *r = calloc(1, sizeof *r);
  assert_int_equal(h2raw_connect(r, port), 0);
  static const char magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  h2raw_send(r, magic, sizeof magic - 1);
  uint8_t set[6] = {0, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0x7f, 0xff, 0xff,
                    0xff};
  h2raw_frame(r, NGHTTP2_SETTINGS, 0, 0, set, 6);
  uint8_t wu[4] = {0x7f, 0xff, 0x00, 0x00};
  h2raw_frame(r, NGHTTP2_WINDOW_UPDATE, 0, 0, wu, 4);
  int32_t sid = h2raw_request(r, "/sec.Test/Stream", NULL, 0, false);
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = "10000:10000";
  uint8_t buf[64];
  size_t n = helloworld__hello_request__pack(&req, buf);
  h2raw_message(r, sid, buf, n, true);
  return r;
}

/* ---- header lists ---- */

static void header_list_too_large(void **state) {
  (void)state;
  sec_server s;
  crpc_server_opts o = {.max_header_list_size = 8192};
  start(&s, &o);
  h2raw *r = attacker(s.port);
  char *big = malloc(20001);
  memset(big, 'a', 20000);
  big[20000] = '\0';
  nghttp2_nv nv = {(uint8_t *)"x-big", (uint8_t *)big, 5, 20000, 0};
  int32_t sid = h2raw_request(r, "/helloworld.Greeter/SayHello", &nv, 1,
                              false);
  h2raw_message(r, sid, NULL, 0, true);
  assert_int_equal(h2raw_wait_status(r, sid, WAIT), CRPC_RESOURCE_EXHAUSTED);
  /* the connection is still good for a normal request */
  sid = h2raw_request(r, "/helloworld.Greeter/SayHello", NULL, 0, false);
  h2raw_message(r, sid, NULL, 0, true);
  assert_int_equal(h2raw_wait_status(r, sid, WAIT), CRPC_OK);
  /* many small headers add up the same way */
  nghttp2_nv many[400];
  char names[400][16];
  for (int i = 0; i < 400; i++) {
    snprintf(names[i], sizeof names[i], "x-h%d", i);
    many[i] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)"0123456789",
                           strlen(names[i]), 10, 0};
  }
  sid = h2raw_request(r, "/helloworld.Greeter/SayHello", many, 400, false);
  h2raw_message(r, sid, NULL, 0, true);
  assert_int_equal(h2raw_wait_status(r, sid, WAIT), CRPC_RESOURCE_EXHAUSTED);
  attacker_free(r);

  /* a header block of 200 KB: more CONTINUATION frames than nghttp2
   * accepts (CVE-2024-28182): the connection goes */
  r = attacker(s.port);
  char *huge = malloc(200001);
  memset(huge, 'b', 200000);
  huge[200000] = '\0';
  nghttp2_nv hv = {(uint8_t *)"x-huge", (uint8_t *)huge, 6, 200000,
                   NGHTTP2_NV_FLAG_NO_INDEX};
  h2raw_request(r, "/helloworld.Greeter/SayHello", &hv, 1, true);
  assert_true(h2raw_wait_closed(r, WAIT));
  attacker_free(r);
  assert_int_equal(atomic_load(&s.calls), 1);

  /* a crpc client sending too much metadata gets the status too */
  crpc_channel *ch;
  assert_int_equal(
      crpc_channel_new(&ch, sec_target("127.0.0.1", s.port), NULL), 0);
  crpc_metadata *md;
  crpc_metadata_new(&md);
  crpc_metadata_add(md, "x-big", big, 10000);
  crpc_call_opts co = {.metadata = md};
  crpc_status st = {0};
  assert_int_equal(sec_hello(ch, &co, "x", NULL, &st),
                   CRPC_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(crpc_status_message(&st), "headers larger"));
  crpc_status_clear(&st);
  crpc_metadata_free(md);
  crpc_channel_free(ch);
  free(big);
  free(huge);
  good_client_served(s.port);
  sec_server_stop(&s);
}

/* ---- streams ---- */

static bool refused_n(h2raw *r, void *arg) {
  return r->rst_refused >= *(int *)arg;
}

/* Waits for the peer to reset (or close) the socket, reading nothing. */
static bool wait_reset(int fd, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = 0}; /* errors and hang-ups only */
  return poll(&p, 1, timeout_ms) == 1 &&
         (p.revents & (POLLERR | POLLHUP));
}

static void too_many_streams(void **state) {
  (void)state;
  sec_server s;
  crpc_server_opts o = {.max_concurrent_streams = 8};
  start(&s, &o);
  h2raw *r = attacker(s.port);
  for (int i = 0; i < 40; i++)
    h2raw_request(r, "/sec.Test/Bidi", NULL, 0, false);
  int want = 32;
  assert_true(h2raw_run(r, refused_n, &want, WAIT));
  assert_false(r->dead);
  good_client_served(s.port);
  /* the bidi handlers of the 8 admitted streams are waiting: no more */
  assert_int_equal(atomic_load(&s.calls), 8 + 1);
  attacker_free(r); /* their calls are cancelled; the handlers return */
  good_client_served(s.port);
  sec_server_stop(&s);

  /* the same while never reading: once its receive window is full of a
   * response, each refused stream queues an RST_STREAM nghttp2 cannot
   * send; the queue must not grow without bound */
  o.max_concurrent_streams = 2;
  start(&s, &o);
  r = open_window_hog(s.port);
  sec_wait_stall(&s, 500, 60000); /* its receive window is full now */
  int sent = 0;
  for (; sent < 200000 && !r->wdead; sent++)
    h2raw_request(r, "/sec.Test/Bidi", NULL, 0, true);
  /* On a loaded machine the kernel may take every request before the
   * server has read 10000 of them; it then closes with requests unread,
   * which resets the socket: wait for that without reading (reading would
   * let the queue drain). */
  bool cut = r->wdead || wait_reset(r->fd, WAIT);
  fprintf(stderr, "refused streams, not reading: cut off after %d sent%s\n",
          sent, r->wdead ? "" : " (then reset)");
  assert_true(cut);
  attacker_free(r);
  good_client_served(s.port);
  sec_server_stop(&s);
}

static bool rst_n(h2raw *r, void *arg) { return r->rst_count >= *(int *)arg; }

static void rapid_reset(void **state) {
  (void)state;
  sec_server s;
  start(&s, NULL);
  /* HEADERS + RST_STREAM(CANCEL), as fast as we can (CVE-2023-44487) */
  h2raw *r = attacker(s.port);
  int sent = 0;
  for (; sent < 20000 && !r->wdead; sent++) {
    int32_t sid = h2raw_request(r, "/sec.Test/Bidi", NULL, 0, false);
    if (!h2raw_rst(r, sid, NGHTTP2_CANCEL))
      break;
    if (sent % 16 == 0)
      h2raw_drain(r);
  }
  assert_true(h2raw_wait_closed(r, WAIT));
  assert_true(r->got_goaway);
  fprintf(stderr, "rapid reset: %d streams sent, GOAWAY code %u, %d "
                  "handlers ran\n",
          sent, r->goaway_code, atomic_load(&s.calls));
  assert_true(atomic_load(&s.calls) <= 1100);
  attacker_free(r);
  good_client_served(s.port);

  /* the server made to reset streams itself ("MadeYouReset"): a header
   * name in upper case is a stream error, RST_STREAM(PROTOCOL_ERROR) */
  int before = atomic_load(&s.calls);
  r = attacker(s.port);
  nghttp2_nv bad = {(uint8_t *)"X-Bad", (uint8_t *)"1", 5, 1, 0};
  /* one at a time, each reset seen before the next: nghttp2's limits on
   * concurrent streams never come into play, only crpc's reset budget */
  for (sent = 0; sent < 20000 && !r->wdead && !r->dead; sent++) {
    int want = r->rst_count + 1;
    h2raw_request(r, "/sec.Test/Bidi", &bad, 1, false);
    if (!h2raw_run(r, rst_n, &want, WAIT))
      break;
  }
  assert_true(h2raw_wait_closed(r, WAIT));
  fprintf(stderr, "server-side resets: %d streams sent, %d resets seen, "
                  "GOAWAY code %u '%s', %d handlers ran\n",
          sent, r->rst_count, r->goaway_code, r->goaway_debug,
          atomic_load(&s.calls) - before);
  assert_true(r->got_goaway);
  assert_int_equal(r->goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  assert_true(sent <= 1100);
  assert_int_equal(atomic_load(&s.calls), before);
  attacker_free(r);
  good_client_served(s.port);
  sec_server_stop(&s);
}

/* ---- control frame floods ---- */

/* |count| frames as fast as possible. An attacker that |reads| what the
 * server sends must see GOAWAY(ENHANCE_YOUR_CALM); one that does not read
 * must be cut off all the same. */
static void flood(int port, uint8_t type, size_t len, int count, bool reads) {
  h2raw *r = attacker(port);
  uint8_t payload[8] = {0};
  int sent = 0;
  for (; sent < count && !r->wdead; sent++) {
    if (!h2raw_frame(r, type, 0, 0, payload, len))
      break;
    if (reads && sent % 16 == 0)
      h2raw_drain(r);
  }
  assert_true(h2raw_wait_closed(r, WAIT));
  fprintf(stderr, "flood of frame type %u (%s): %d sent before the close%s\n",
          type, reads ? "reading" : "not reading", sent,
          r->got_goaway ? ", GOAWAY seen" : "");
  if (reads) {
    assert_true(r->got_goaway);
    assert_int_equal(r->goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  }
  attacker_free(r);
}

static void ping_flood(void **state) {
  (void)state;
  sec_server s;
  start(&s, NULL);
  flood(s.port, NGHTTP2_PING, 8, 100000, true);
  flood(s.port, NGHTTP2_PING, 8, 100000, false);
  good_client_served(s.port);
  /* a well-spaced PING now and then is fine: one per request answered */
  h2raw *r = attacker(s.port);
  uint8_t payload[8] = {0};
  for (int i = 0; i < 30; i++) {
    h2raw_frame(r, NGHTTP2_PING, 0, 0, payload, 8);
    assert_true(ping_roundtrip(r));
  }
  assert_false(r->dead);
  attacker_free(r);
  sec_server_stop(&s);
}

static void settings_flood(void **state) {
  (void)state;
  sec_server s;
  start(&s, NULL);
  flood(s.port, NGHTTP2_SETTINGS, 0, 100000, true);
  flood(s.port, NGHTTP2_SETTINGS, 0, 100000, false);
  good_client_served(s.port);
  /* one SETTINGS frame with more entries than nghttp2 accepts */
  h2raw *r = attacker(s.port);
  uint8_t many[6 * 100];
  for (int i = 0; i < 100; i++) {
    uint8_t e[6] = {0, NGHTTP2_SETTINGS_ENABLE_PUSH, 0, 0, 0, 0};
    memcpy(many + 6 * i, e, 6);
  }
  h2raw_frame(r, NGHTTP2_SETTINGS, 0, 0, many, sizeof many);
  assert_true(h2raw_wait_closed(r, WAIT));
  assert_true(r->got_goaway);
  attacker_free(r);
  good_client_served(s.port);
  sec_server_stop(&s);
}

/* ---- slow-loris ---- */

#define LORIS 20

static void slow_loris(void **state) {
  (void)state;
  crpc_server_opts o = {.handshake_timeout_ms = 300};
  sec_server plain, tls;
  start(&plain, &o);
  crpc_tls_server_opts t = {.cert_file = sec_path("server.pem"),
                            .key_file = sec_path("server.key")};
  assert_int_equal(sec_server_start(&tls, &o, &t, NULL, NULL), 0);

  h2raw *r[2 * LORIS];
  for (int i = 0; i < LORIS; i++) {
    /* TLS port: connect and say nothing */
    r[i] = calloc(1, sizeof *r[i]);
    assert_int_equal(h2raw_connect(r[i], tls.port), 0);
    /* TLS port: half a ClientHello record header; clear-text port: half
     * the preface */
    r[LORIS + i] = calloc(1, sizeof *r[i]);
    assert_int_equal(h2raw_connect(r[LORIS + i], plain.port), 0);
    h2raw_send(r[LORIS + i], "PRI * HTTP/2.0\r\n", 16);
    if (i % 2)
      h2raw_send(r[i], "\x16\x03\x01", 3);
  }
  /* good clients on both ports are served meanwhile */
  good_client_served(plain.port);
  crpc_tls_opts to = {.ca_file = sec_path("ca.pem")};
  crpc_channel_opts co = {.tls = &to};
  crpc_channel *ch;
  assert_int_equal(
      crpc_channel_new(&ch, sec_target("localhost", tls.port), &co), 0);
  crpc_status st = {0};
  assert_int_equal(sec_hello(ch, NULL, "tls", NULL, &st), CRPC_OK);
  /* and every loris is closed by the server */
  for (int i = 0; i < 2 * LORIS; i++) {
    assert_true(h2raw_wait_closed(r[i], WAIT));
    attacker_free(r[i]);
  }
  /* the good TLS connection outlived them (it finished its handshake) */
  assert_int_equal(sec_hello(ch, NULL, "tls", NULL, &st), CRPC_OK);
  crpc_channel_free(ch);
  sec_server_stop(&plain);
  sec_server_stop(&tls);
}

/* ---- idle connections ---- */

static void idle_connections(void **state) {
  (void)state;
  sec_server s;
  crpc_server_opts o = {.max_connections = 4};
  start(&s, &o);
  h2raw *r[12];
  for (int i = 0; i < 4; i++) {
    r[i] = attacker(s.port);
    assert_true(ping_roundtrip(r[i]));
  }
  /* at the limit: the good client's connection replaces the oldest idle */
  good_client_served(s.port);
  assert_true(h2raw_wait_closed(r[0], WAIT));
  assert_true(r[0]->got_goaway);
  /* more idle connections keep evicting the oldest ones */
  for (int i = 4; i < 12; i++) {
    r[i] = attacker(s.port);
    assert_true(ping_roundtrip(r[i]));
  }
  for (int i = 0; i < 8; i++)
    assert_true(h2raw_wait_closed(r[i], WAIT));
  for (int i = 8; i < 12; i++)
    assert_true(ping_roundtrip(r[i])); /* the 4 newest are still open */
  for (int i = 0; i < 12; i++)
    attacker_free(r[i]);
  sec_server_stop(&s);

  /* every connection busy: a new one waits (accepted, unread) for one to
   * free up, and is refused after the handshake timeout */
  o.max_connections = 2;
  o.handshake_timeout_ms = 3000;
  start(&s, &o);
  h2raw *busy[2];
  for (int i = 0; i < 2; i++) {
    busy[i] = attacker(s.port);
    h2raw_request(busy[i], "/sec.Test/Bidi", NULL, 0, false);
    assert_true(ping_roundtrip(busy[i]));
  }
  h2raw *extra = attacker(s.port);
  assert_true(h2raw_wait_closed(extra, WAIT));
  assert_false(extra->got_goaway); /* never served at all */
  attacker_free(extra);
  /* the good client arrives just as a busy one leaves: however the
   * server's threads see the two events, the good one is served */
  attacker_free(busy[0]);
  good_client_served(s.port);
  /* both slots busy again (busy2 is served once the good client's
   * departure is seen); one that waits gets the slot that frees next */
  h2raw *busy2 = attacker(s.port);
  h2raw_request(busy2, "/sec.Test/Bidi", NULL, 0, false);
  assert_true(ping_roundtrip(busy2));
  h2raw *waiting = attacker(s.port);
  attacker_free(busy[1]);
  assert_true(ping_roundtrip(waiting));
  attacker_free(waiting);
  attacker_free(busy2);
  sec_server_stop(&s);

  /* idle_timeout_ms: an idle connection gets GOAWAY(NO_ERROR) and is
   * closed; one with a call in progress is not */
  crpc_server_opts io = {.idle_timeout_ms = 200};
  start(&s, &io);
  h2raw *b = attacker(s.port);
  h2raw_request(b, "/sec.Test/Bidi", NULL, 0, false);
  assert_true(ping_roundtrip(b));
  h2raw *idle = attacker(s.port);
  assert_true(ping_roundtrip(idle));
  assert_true(h2raw_wait_closed(idle, WAIT));
  assert_true(idle->got_goaway);
  assert_int_equal(idle->goaway_code, NGHTTP2_NO_ERROR);
  assert_true(ping_roundtrip(b));
  attacker_free(idle);
  attacker_free(b);
  good_client_served(s.port);
  sec_server_stop(&s);
}

/* ---- out of file descriptors ---- */

static int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

static void fd_exhaustion(void **state) {
  (void)state;
  sec_server s;
  start(&s, NULL);
  crpc_channel *ch; /* its loop's descriptors exist before the limit */
  assert_int_equal(crpc_channel_new(&ch, sec_target("127.0.0.1", s.port),
                                    NULL),
                   0);
  h2raw *r[4];
  for (int i = 0; i < 4; i++) {
    r[i] = attacker(s.port);
    assert_true(ping_roundtrip(r[i]));
  }
  /* one descriptor left, for the good client's socket: the server's
   * accept() fails with EMFILE, and it must make room (not spin) */
  struct rlimit old, lim;
  getrlimit(RLIMIT_NOFILE, &old);
  lim = old;
  lim.rlim_cur = (rlim_t)open_fds() + 8;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
  int spare[16], nspare = 0;
  while (nspare < 16 && (spare[nspare] = dup(0)) >= 0)
    nspare++;
  assert_true(nspare > 0 && nspare < 16);
  close(spare[--nspare]);
  crpc_status st = {0};
  crpc_code code = sec_hello(ch, NULL, "fd", NULL, &st);
  while (nspare > 0)
    close(spare[--nspare]);
  setrlimit(RLIMIT_NOFILE, &old);
  if (code != CRPC_OK)
    fprintf(stderr, "fd exhaustion: %s\n", crpc_status_message(&st));
  crpc_status_clear(&st);
  assert_int_equal(code, CRPC_OK);
  assert_true(h2raw_wait_closed(r[0], WAIT)); /* the oldest idle one */
  for (int i = 0; i < 4; i++)
    attacker_free(r[i]);
  crpc_channel_free(ch);
  sec_server_stop(&s);
}

/* ---- a client that never reads ---- */

static void never_reads(void **state) {
  (void)state;
  sec_server s;
  start(&s, NULL);
  h2raw *r = open_window_hog(s.port);
  /* the handler writes until back-pressure holds it */
  long written = sec_wait_stall(&s, 1000, 60000);
  fprintf(stderr, "never reads: the handler wrote %ld of 10000 replies "
                  "(%ld KB) before it was held\n",
          written, written * 10);
  assert_true(written > 0);
  assert_true(written < 2500); /* < 25 MB: socket buffers + crpc's own */
  good_client_served(s.port);
  /* the handler is still held, then released when the client goes */
  assert_int_equal(sec_wait_stall(&s, 200, WAIT), written);
  attacker_free(r);
  assert_true(sec_wait_streams_done(&s, 1, WAIT));
  sec_server_stop(&s);
}

/* ---- output memory (issue 11) ---- */

/* A client that asks for |calls| unary responses of 1 MiB and never reads
 * them: its stream windows stay 0 (|zero_window|), or they are huge and it
 * never reads the socket. */
static h2raw *big_unary_hog(int port, int calls, bool zero_window) {
  h2raw *r = calloc(1, sizeof *r);
  assert_int_equal(h2raw_connect(r, port), 0);
  static const char magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  h2raw_send(r, magic, sizeof magic - 1);
  uint8_t set[6] = {0, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0, 0, 0, 0};
  if (!zero_window)
    set[2] = 0x7f, set[3] = set[4] = set[5] = 0xff;
  h2raw_frame(r, NGHTTP2_SETTINGS, 0, 0, set, 6);
  if (!zero_window) {
    uint8_t wu[4] = {0x7f, 0xff, 0x00, 0x00};
    h2raw_frame(r, NGHTTP2_WINDOW_UPDATE, 0, 0, wu, 4);
  }
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = "1048576";
  uint8_t buf[64];
  size_t n = helloworld__hello_request__pack(&req, buf);
  for (int i = 0; i < calls; i++) {
    int32_t sid = h2raw_request(r, "/sec.Test/Big", NULL, 0, false);
    h2raw_message(r, sid, buf, n, true);
  }
  return r;
}


static void big_call(int port) {
  crpc_channel *ch;
  assert_int_equal(crpc_channel_new(&ch, sec_target("127.0.0.1", port), NULL),
                   0);
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = "1048576";
  ProtobufCMessage *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts co = {.timeout_ms = WAIT};
  crpc_code code = crpc_unary(ch, &sec_big_method, &co, &req.base, &resp, &st);
  if (code != CRPC_OK)
    fprintf(stderr, "big call: %s\n", crpc_status_message(&st));
  assert_int_equal(code, CRPC_OK);
  assert_int_equal(strlen(((Helloworld__HelloReply *)resp)->message),
                   1048576);
  protobuf_c_message_free_unpacked(resp, NULL);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
}

/* Field |i| of a /proc/sys/net/ipv4/tcp_[rw]mem file (min, default, max),
 * or |fallback| when it cannot be read. */
static long tcp_mem_field(const char *path, int i, long fallback) {
  long v[3];
  FILE *f = fopen(path, "r");
  if (!f)
    return fallback;
  int n = fscanf(f, "%ld %ld %ld", &v[0], &v[1], &v[2]);
  fclose(f);
  return n == 3 ? v[i] : fallback;
}

/* 4 connections x 64 calls for 1 MiB responses that are never read: the
 * server holds about a connection budget (4 MiB) of them per connection,
 * not 256 MiB, and serves a good client meanwhile. */
static void unary_never_read(bool zero_window) {
  sec_server s;
  crpc_server_opts o = {.write_stall_timeout_ms = -1};
  start(&s, &o);
  big_call(s.port); /* the method's response size is known from here */
  int base = atomic_load(&s.calls);
  h2raw *r[4];
  for (int i = 0; i < 4; i++)
    r[i] = big_unary_hog(s.port, 64, zero_window);
  /* every connection gets at least its budget's worth of handlers */
  assert_true(sec_wait_calls(&s, base + 4 * 4, WAIT));
  good_client_served(s.port);
  big_call(s.port);
  size_t peak = 0, now = crpc_server_output_bytes(s.srv, &peak);
  int ran = atomic_load(&s.calls) - base - 1;
  fprintf(stderr, "%s: %d of 256 handlers ran; %zu KiB queued, peak %zu "
                  "KiB\n", zero_window ? "zero window" : "TCP unread", ran,
          now >> 10, peak >> 10);
  assert_true(peak <= (size_t)24 << 20); /* 4 x (4 MiB + one response) */
  /* Handlers run while their responses fit the connection's budget
   * (4 MiB) or leave it for the kernel: a client that never reads the
   * socket still takes what the server's send buffer (at most tcp_wmem's
   * max) and its own receive buffer (tcp_rmem's default: it never reads,
   * so the buffer never grows) hold. That many per connection, and far
   * from all 256. */
  long kernel = tcp_mem_field("/proc/sys/net/ipv4/tcp_wmem", 2, 4 << 20) +
                tcp_mem_field("/proc/sys/net/ipv4/tcp_rmem", 1, 128 << 10);
  int per_conn = zero_window ? 4 + 2 : 4 + (int)(kernel >> 20) + 2;
  assert_true(ran <= 4 * per_conn);
  assert_true(ran < 256 / 2);
  for (int i = 0; i < 4; i++)
    attacker_free(r[i]);
  sec_server_stop(&s);
}

static void unary_zero_window(void **state) {
  (void)state;
  unary_never_read(true);
}

static void unary_tcp_unread(void **state) {
  (void)state;
  unary_never_read(false);
}

/* A server stream whose client never reads holds its worker only until the
 * write-stall timeout: GOAWAY, the connection closed, the handler free. */
static void write_stall_timeout(void **state) {
  (void)state;
  sec_server s;
  crpc_server_opts o = {.write_stall_timeout_ms = 300};
  start(&s, &o);
  h2raw *r = open_window_hog(s.port);
  /* not a byte read (reading would be progress): the handler is freed
   * first, then the connection is seen closed */
  assert_true(sec_wait_streams_done(&s, 1, WAIT));
  assert_true(h2raw_wait_closed(r, WAIT));
  assert_true(r->got_goaway || r->dead);
  attacker_free(r);
  good_client_served(s.port);
  sec_server_stop(&s);
}

int main(int argc, char **argv) {
  sec_init(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(header_list_too_large),
      cmocka_unit_test(too_many_streams),
      cmocka_unit_test(rapid_reset),
      cmocka_unit_test(ping_flood),
      cmocka_unit_test(settings_flood),
      cmocka_unit_test(slow_loris),
      cmocka_unit_test(idle_connections),
      cmocka_unit_test(fd_exhaustion),
      cmocka_unit_test(never_reads),
      cmocka_unit_test(unary_zero_window),
      cmocka_unit_test(unary_tcp_unread),
      cmocka_unit_test(write_stall_timeout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
