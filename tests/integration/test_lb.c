#define _GNU_SOURCE
/*
 * test_lb.c: name resolution and load balancing (issue 10): three crpc
 * servers on 127.0.0.1, .2 and .3 behind ipv4: lists, a DNS name served by
 * a fake DNS server of the test's (UDP and TCP on loopback, with hostile
 * answers), a hosts file, and a program's own resolver; pick_first and
 * round_robin, failover and recovery, the connectivity state and its
 * watchers, and the bad inputs the issue lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "echo.pb-c.h"

static const crpc_method m_unary = {"/crpc.itest.Echo/Unary", CRPC_UNARY,
                                    &crpc__itest__echo_request__descriptor,
                                    &crpc__itest__echo_reply__descriptor};

#define WAIT_MS 10000

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- three servers that count their calls ---- */

typedef struct backend {
  crpc_server *srv;
  char ip[24];
  int port;
  atomic_int calls;
} backend;

static backend be[3];

static crpc_code h_unary(crpc_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage *resp, void *ud) {
  backend *b = ud;
  atomic_fetch_add(&b->calls, 1);
  ((Crpc__Itest__EchoReply *)resp)->text = b->ip;
  return CRPC_OK;
}

static void backend_start(backend *b, int i, int port) {
  snprintf(b->ip, sizeof b->ip, "127.0.0.%d", i + 1);
  char addr[32];
  snprintf(addr, sizeof addr, "%s:%d", b->ip, port);
  assert_int_equal(crpc_server_new(&b->srv, NULL), 0);
  assert_int_equal(
      crpc_server_register(b->srv, &m_unary, h_unary, CRPC_HANDLER_NONBLOCKING,
                           b),
      0);
  assert_int_equal(crpc_server_listen(b->srv, addr, NULL, &b->port), 0);
  assert_int_equal(crpc_server_start(b->srv), 0);
}

static void backend_stop(backend *b) {
  crpc_server_shutdown(b->srv, 1000);
  crpc_server_free(b->srv);
  b->srv = NULL;
}

/* Three servers; with |same_port| all on the first one's port (a DNS
 * name carries no port). */
static void backends_start(bool same_port) {
  for (int i = 0; i < 3; i++) {
    atomic_store(&be[i].calls, 0);
    backend_start(&be[i], i, same_port && i ? be[0].port : 0);
  }
}

static void backends_stop(void) {
  for (int i = 0; i < 3; i++)
    if (be[i].srv)
      backend_stop(&be[i]);
}

static void reset_counts(void) {
  for (int i = 0; i < 3; i++)
    atomic_store(&be[i].calls, 0);
}

static void ipv4_list(char *buf, size_t len) {
  snprintf(buf, len, "ipv4:127.0.0.1:%d,127.0.0.2:%d,127.0.0.3:%d",
           be[0].port, be[1].port, be[2].port);
}

static crpc_channel *chan(const char *target, const char *policy) {
  crpc_channel *ch;
  char err[256];
  crpc_channel_opts o = {.lb_policy = policy,
                         .initial_backoff_ms = 50,
                         .max_backoff_ms = 200,
                         .handshake_timeout_ms = 500,
                         .error_buf = err,
                         .error_buf_size = sizeof err};
  int rv = crpc_channel_new(&ch, target, &o);
  if (rv != 0)
    fail_msg("crpc_channel_new(%s): %d %s", target, rv, err);
  return ch;
}

/* One call; |from| gets the serving backend's address. */
static crpc_code call(crpc_channel *ch, unsigned flags, char *from,
                      size_t len, crpc_status *st) {
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  crpc_call_opts o = {.timeout_ms = WAIT_MS, .flags = flags};
  ProtobufCMessage *resp = NULL;
  crpc_code code = crpc_unary(ch, &m_unary, &o, &req.base, &resp, st);
  if (from)
    snprintf(from, len, "%s",
             resp ? ((Crpc__Itest__EchoReply *)resp)->text : "");
  if (resp)
    protobuf_c_message_free_unpacked(resp, NULL);
  return code;
}

static void calls_ok(crpc_channel *ch, int n) {
  for (int i = 0; i < n; i++)
    assert_int_equal(call(ch, CRPC_CALL_WAIT_FOR_READY, NULL, 0, NULL),
                     CRPC_OK);
}

/* Every server got a third of |n| calls, +-10 %. */
static void assert_spread(int n) {
  for (int i = 0; i < 3; i++) {
    int c = atomic_load(&be[i].calls);
    print_message("  %s: %d of %d calls\n", be[i].ip, c, n);
    assert_true(c >= n / 3 - n / 30 && c <= n / 3 + n / 30);
  }
}

/* Calls until every backend has served one, within WAIT_MS: round_robin
 * picks among connected subchannels only, so until then how the calls
 * spread depends on how fast each connection came up. */
static void until_all_served(crpc_channel *ch) {
  int64_t end = now_ms() + WAIT_MS;
  for (int i = 0; i < 3; i++) {
    while (atomic_load(&be[i].calls) == 0 && now_ms() < end)
      assert_int_equal(call(ch, CRPC_CALL_WAIT_FOR_READY, NULL, 0, NULL),
                       CRPC_OK);
    assert_true(atomic_load(&be[i].calls) > 0);
  }
}

/* Calls until |b| has served one (it came back), within WAIT_MS. */
static void until_served_by(crpc_channel *ch, backend *b) {
  int64_t end = now_ms() + WAIT_MS;
  while (atomic_load(&b->calls) == 0 && now_ms() < end)
    assert_int_equal(call(ch, CRPC_CALL_WAIT_FOR_READY, NULL, 0, NULL),
                     CRPC_OK);
  assert_true(atomic_load(&b->calls) > 0);
}

/* ---- pick_first and round_robin over an ipv4: list ---- */

static void test_pick_first_sticks_then_fails_over(void **state) {
  backends_start(false);
  char target[128];
  ipv4_list(target, sizeof target);
  crpc_channel *ch = chan(target, NULL); /* the default */
  calls_ok(ch, 30);
  assert_int_equal(atomic_load(&be[0].calls), 30);
  assert_int_equal(atomic_load(&be[1].calls) + atomic_load(&be[2].calls), 0);
  backend_stop(&be[0]); /* the first goes: the next address takes over */
  calls_ok(ch, 30);
  assert_int_equal(atomic_load(&be[1].calls), 30);
  assert_int_equal(atomic_load(&be[2].calls), 0);
  crpc_channel_free(ch);
  backends_stop();
}

static void test_round_robin_spreads(void **state) {
  backends_start(false);
  char target[128];
  ipv4_list(target, sizeof target);
  crpc_channel *ch = chan(target, "round_robin");
  until_all_served(ch);
  reset_counts();
  calls_ok(ch, 300);
  assert_spread(300);
  crpc_channel_free(ch);
  backends_stop();
}

/* One server killed: no wait-for-ready call fails and it gets none; back
 * on its address and port: it gets calls again. */
static void test_round_robin_failover_and_back(void **state) {
  backends_start(false);
  char target[128];
  ipv4_list(target, sizeof target);
  crpc_channel *ch = chan(target, "round_robin");
  calls_ok(ch, 30);
  int port = be[1].port;
  backend_stop(&be[1]);
  reset_counts();
  calls_ok(ch, 100);
  assert_int_equal(atomic_load(&be[0].calls) + atomic_load(&be[2].calls),
                   100);
  backend_start(&be[1], 1, port);
  until_served_by(ch, &be[1]);
  crpc_channel_free(ch);
  backends_stop();
}

/* The service config's loadBalancingConfig picks the policy. */
static void test_service_config_policy(void **state) {
  backends_start(false);
  char target[128];
  ipv4_list(target, sizeof target);
  crpc_channel *ch;
  crpc_channel_opts o = {
      .service_config_json =
          "{\"loadBalancingConfig\":[{\"round_robin\":{}}]}"};
  assert_int_equal(crpc_channel_new(&ch, target, &o), 0);
  until_all_served(ch);
  reset_counts();
  calls_ok(ch, 90);
  assert_spread(90);
  crpc_channel_free(ch);
  backends_stop();
}

/* ---- bad inputs ---- */

static void test_bad_targets_and_policy(void **state) {
  crpc_channel *ch;
  const char *bad[] = {"ipv4:127.0.0.1:1,", "ipv4:127.0.0.1:1,nothost:2",
                       "ipv4:127.0.0.1", "ipv4:127.0.0.1:70000",
                       "ipv6:127.0.0.1:80", "ipv6:[::1]:1,,[::1]:2",
                       "dns://127.0.0.1", "name.only"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rv = crpc_channel_new(&ch, bad[i], NULL);
    if (rv != CRPC_ETARGET)
      fail_msg("%s: %d, not CRPC_ETARGET", bad[i], rv);
  }
  char err[200];
  crpc_channel_opts o = {.lb_policy = "weighted_random",
                         .error_buf = err,
                         .error_buf_size = sizeof err};
  assert_int_equal(crpc_channel_new(&ch, "127.0.0.1:1", &o), CRPC_EINVAL);
  assert_non_null(strstr(err, "weighted_random"));
}

/* Nothing listens: a call that does not wait fails UNAVAILABLE naming the
 * target; the state is TRANSIENT_FAILURE. */
static void test_all_dead(void **state) {
  int fd = socket(AF_INET, SOCK_STREAM, 0); /* a port nobody listens on */
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  getsockname(fd, (struct sockaddr *)&a, &al);
  char target[96];
  snprintf(target, sizeof target, "ipv4:127.0.0.1:%d,127.0.0.2:%d",
           ntohs(a.sin_port), ntohs(a.sin_port));
  for (int p = 0; p < 2; p++) {
    crpc_channel *ch = chan(target, p ? "round_robin" : "pick_first");
    crpc_status st = {0};
    assert_int_equal(call(ch, 0, NULL, 0, &st), CRPC_UNAVAILABLE);
    assert_non_null(strstr(crpc_status_message(&st), target));
    crpc_status_clear(&st);
    assert_int_equal(crpc_channel_state(ch, 0),
                     CRPC_CHANNEL_TRANSIENT_FAILURE);
    crpc_channel_free(ch);
  }
  close(fd);
}

/* A backend that accepts TCP but never speaks HTTP/2: its subchannel
 * fails on the handshake deadline; pick_first moves on to the next
 * address, round_robin uses the others. */
static void test_silent_backend(void **state) {
  backends_start(false);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.4", &a.sin_addr);
  socklen_t al = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 16), 0); /* the kernel accepts; we never read */
  getsockname(fd, (struct sockaddr *)&a, &al);
  char target[160];
  snprintf(target, sizeof target, "ipv4:127.0.0.4:%d,127.0.0.1:%d,127.0.0.2:%d",
           ntohs(a.sin_port), be[0].port, be[1].port);
  crpc_channel *pf = chan(target, "pick_first");
  calls_ok(pf, 10);
  assert_int_equal(atomic_load(&be[0].calls), 10);
  crpc_channel_free(pf);
  reset_counts();
  crpc_channel *rr = chan(target, "round_robin");
  calls_ok(rr, 40);
  assert_int_equal(atomic_load(&be[0].calls) + atomic_load(&be[1].calls), 40);
  crpc_channel_free(rr);
  close(fd);
  backends_stop();
}

/* ---- the connectivity state ---- */

typedef struct watched {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  crpc_connectivity_state seen[16];
  int n;
} watched;

static void on_state(crpc_channel *ch, crpc_connectivity_state s, void *ud) {
  watched *w = ud;
  pthread_mutex_lock(&w->mu);
  if (w->n < 16)
    w->seen[w->n++] = s;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (s != CRPC_CHANNEL_SHUTDOWN && s != CRPC_CHANNEL_READY)
    crpc_channel_watch_state(ch, s, on_state, w); /* follow on */
}

static void test_state_watch(void **state) {
  backends_start(false);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", be[0].port);
  crpc_channel *ch = chan(target, NULL);
  watched w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0};
  assert_int_equal(crpc_channel_state(ch, 0), CRPC_CHANNEL_IDLE);
  assert_int_equal(
      crpc_channel_watch_state(ch, CRPC_CHANNEL_IDLE, on_state, &w), 0);
  crpc_channel_state(ch, 1); /* connect without a call */
  pthread_mutex_lock(&w.mu);
  while (w.n == 0 || w.seen[w.n - 1] != CRPC_CHANNEL_READY)
    pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  assert_int_equal(w.seen[0], CRPC_CHANNEL_CONNECTING);
  assert_int_equal(crpc_channel_state(ch, 0), CRPC_CHANNEL_READY);
  assert_int_equal(
      crpc_channel_watch_state(ch, CRPC_CHANNEL_READY, on_state, &w), 0);
  int before = w.n;
  crpc_channel_free(ch); /* the waiting watcher hears SHUTDOWN */
  assert_int_equal(w.n, before + 1);
  assert_int_equal(w.seen[w.n - 1], CRPC_CHANNEL_SHUTDOWN);
  assert_string_equal(crpc_connectivity_state_name(CRPC_CHANNEL_READY),
                      "READY");
  backends_stop();
}

/* ---- a fake DNS server (UDP and TCP on 127.0.0.1) ---- */

typedef enum { DNS_ANSWER, DNS_NXDOMAIN, DNS_SILENT, DNS_GARBAGE } dns_mode;

typedef struct fake_dns {
  int udp, tcp, port;
  pthread_t tid;
  atomic_int mode;
  int naddrs;     /* A records: 127.0.0.1.. (wrapping past .254) */
  atomic_int stop;
  atomic_int queries;
} fake_dns;

static fake_dns dns;

/* The answer to |q| (a query of |qlen| bytes) in |out|; its length. */
static size_t dns_answer(const uint8_t *q, size_t qlen, uint8_t *out,
                         size_t cap, bool tcp) {
  int mode = atomic_load(&dns.mode);
  if (qlen < 12 + 5)
    return 0;
  if (mode == DNS_GARBAGE) { /* the id, then nonsense; a pointer loop */
    static const uint8_t junk[] = {0x81, 0x80, 0x00, 0x01, 0x00, 0x05, 0x00,
                                   0x00, 0x00, 0x00, 0xc0, 0x0c, 0x00, 0x01,
                                   0x00, 0x01, 0xc0, 0x0c, 0xc0, 0x0c, 0xff};
    memcpy(out, q, 2);
    memcpy(out + 2, junk, sizeof junk);
    return 2 + sizeof junk;
  }
  size_t qend = 12; /* the question: name, type, class */
  while (qend < qlen && q[qend])
    qend += q[qend] + 1;
  qend += 5;
  if (qend > qlen || qend > cap)
    return 0;
  uint16_t qtype = (uint16_t)(q[qend - 4] << 8 | q[qend - 3]);
  memcpy(out, q, qend);
  out[2] = 0x81; /* response, recursion desired */
  out[3] = mode == DNS_NXDOMAIN ? 0x83 : 0x80;
  int n = (mode == DNS_ANSWER && qtype == 1) ? dns.naddrs : 0;
  size_t len = qend;
  int put = 0;
  for (int i = 0; i < n; i++) {
    if (len + 16 > cap)
      break;
    if (!tcp && len + 16 > 512) { /* too big for UDP: truncated */
      out[2] |= 0x02;
      break;
    }
    uint8_t rr[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4,
                      127,  0,    0, (uint8_t)(1 + i % 254)};
    memcpy(out + len, rr, 16);
    len += 16;
    put++;
  }
  out[6] = (uint8_t)(put >> 8);
  out[7] = (uint8_t)put;
  memset(out + 8, 0, 4);
  return len;
}

static void *dns_main(void *arg) {
  static uint8_t q[4096], a[65536];
  while (!atomic_load(&dns.stop)) {
    struct pollfd p[2] = {{dns.udp, POLLIN, 0}, {dns.tcp, POLLIN, 0}};
    if (poll(p, 2, 50) <= 0)
      continue;
    atomic_fetch_add(&dns.queries, 1);
    bool silent = atomic_load(&dns.mode) == DNS_SILENT;
    if (p[0].revents & POLLIN) {
      struct sockaddr_storage from;
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(dns.udp, q, sizeof q, 0, (void *)&from, &fl);
      size_t len = n > 0 && !silent ? dns_answer(q, (size_t)n, a, sizeof a,
                                                 false)
                                    : 0;
      if (len)
        sendto(dns.udp, a, len, 0, (void *)&from, fl);
    }
    if (p[1].revents & POLLIN) {
      int c = accept(dns.tcp, NULL, NULL);
      if (c < 0)
        continue;
      uint8_t hdr[2];
      if (recv(c, hdr, 2, MSG_WAITALL) == 2) {
        size_t ql = (size_t)(hdr[0] << 8 | hdr[1]);
        if (ql <= sizeof q && recv(c, q, ql, MSG_WAITALL) == (ssize_t)ql &&
            !silent) {
          size_t len = dns_answer(q, ql, a + 2, sizeof a - 2, true);
          a[0] = (uint8_t)(len >> 8);
          a[1] = (uint8_t)len;
          if (len)
            send(c, a, len + 2, MSG_NOSIGNAL);
        }
      }
      close(c);
    }
  }
  return NULL;
}

static void dns_start(int naddrs, dns_mode mode) {
  memset(&dns, 0, sizeof dns);
  dns.naddrs = naddrs;
  atomic_store(&dns.mode, mode);
  /* the TCP port first, then UDP on the same number (c-ares uses both);
   * another port if that one is taken for UDP */
  for (int tries = 0;; tries++) {
    assert_true(tries < 20);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    dns.tcp = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(dns.tcp, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(dns.tcp, 8), 0);
    getsockname(dns.tcp, (struct sockaddr *)&a, &al);
    dns.port = ntohs(a.sin_port);
    dns.udp = socket(AF_INET, SOCK_DGRAM, 0);
    if (bind(dns.udp, (struct sockaddr *)&a, sizeof a) == 0)
      break;
    close(dns.udp);
    close(dns.tcp);
  }
  pthread_create(&dns.tid, NULL, dns_main, NULL);
}

static void dns_stop(void) {
  atomic_store(&dns.stop, 1);
  pthread_join(dns.tid, NULL);
  close(dns.udp);
  close(dns.tcp);
}

static void dns_target(char *buf, size_t len, const char *name, int port) {
  snprintf(buf, len, "dns://127.0.0.1:%d/%s:%d", dns.port, name, port);
}

/* A name with three addresses, round_robin over them. */
static void test_dns_name_round_robin(void **state) {
  backends_start(true);
  dns_start(3, DNS_ANSWER);
  char target[128];
  dns_target(target, sizeof target, "three.crpc.test", be[0].port);
  crpc_channel *ch = chan(target, "round_robin");
  until_all_served(ch);
  reset_counts();
  calls_ok(ch, 300);
  assert_spread(300);
  assert_true(atomic_load(&dns.queries) > 0);
  crpc_channel_free(ch);
  dns_stop();
  backends_stop();
}

/* NXDOMAIN, a silent server, garbage: UNAVAILABLE naming the target, and
 * the loop never blocks (another channel on the same loop keeps
 * working meanwhile). */
static void test_dns_failures(void **state) {
  backends_start(false);
  char good[64];
  snprintf(good, sizeof good, "127.0.0.1:%d", be[0].port);
  crpc_channel *ok = chan(good, NULL);
  calls_ok(ok, 1);
  const dns_mode modes[] = {DNS_NXDOMAIN, DNS_SILENT, DNS_GARBAGE};
  const char *words[] = {"NXDOMAIN", "", ""};
  for (int i = 0; i < 3; i++) {
    dns_start(3, modes[i]);
    char target[128];
    dns_target(target, sizeof target, "nothing.crpc.test", be[0].port);
    crpc_channel *ch = chan(target, NULL);
    crpc_status st = {0};
    assert_int_equal(call(ch, 0, NULL, 0, &st), CRPC_UNAVAILABLE);
    print_message("  %s\n", crpc_status_message(&st));
    assert_non_null(strstr(crpc_status_message(&st), target));
    assert_non_null(strstr(crpc_status_message(&st), words[i]));
    crpc_status_clear(&st);
    calls_ok(ok, 1);
    crpc_channel_free(ch);
    dns_stop();
  }
  crpc_channel_free(ok);
  backends_stop();
}

/* 1000 A records (UDP truncates, c-ares asks again over TCP): every one
 * becomes an address; the channel works over them. */
static void test_dns_thousand_addresses(void **state) {
  backends_start(true);
  dns_start(1000, DNS_ANSWER);
  char target[128];
  dns_target(target, sizeof target, "many.crpc.test", be[0].port);
  crpc_channel *ch = chan(target, NULL);
  calls_ok(ch, 5); /* pick_first: 127.0.0.1 first */
  assert_int_equal(atomic_load(&be[0].calls), 5);
  crpc_channel_free(ch);
  dns_stop();
  backends_stop();
}

/* A name in the hosts file (run by hosts_file.sh in a mount namespace of
 * its own, where /etc/hosts is a file of the test's: c-ares 1.18 reads no
 * other path). */
static void test_hosts_file(void **state) {
  backends_start(true);
  char target[96];
  snprintf(target, sizeof target, "dns:///hosts.crpc.test:%d", be[0].port);
  crpc_channel *ch = chan(target, "round_robin");
  until_all_served(ch);
  reset_counts();
  calls_ok(ch, 90);
  assert_spread(90);
  crpc_channel_free(ch);
  backends_stop();
}

/* ---- a program's own resolver ---- */

static atomic_int asked;
static void *answer_later(void *arg) {
  crpc_channel *ch = arg;
  char a[3][32];
  const char *v[3];
  for (int i = 0; i < 3; i++) {
    snprintf(a[i], sizeof a[i], "127.0.0.%d:%d", i + 1, be[i].port);
    v[i] = a[i];
  }
  assert_int_equal(crpc_channel_set_addresses(ch, v, 3, NULL), 0);
  return NULL;
}

static void my_resolve(crpc_channel *ch, const char *target, void *ud) {
  (void)target;
  (void)ud;
  if (atomic_fetch_add(&asked, 1) == 0) { /* the first: from a thread */
    pthread_t t;
    pthread_create(&t, NULL, answer_later, ch);
    pthread_detach(t);
  }
}

static void test_custom_resolver(void **state) {
  backends_start(false);
  atomic_store(&asked, 0);
  crpc_resolver r = {.resolve = my_resolve};
  crpc_channel *ch;
  crpc_channel_opts o = {.resolver = &r, .lb_policy = "round_robin"};
  assert_int_equal(crpc_channel_new(&ch, "my-service", &o), 0);
  const char *bad[] = {"not an address"};
  assert_int_equal(crpc_channel_set_addresses(ch, bad, 1, NULL),
                   CRPC_ETARGET);
  until_all_served(ch);
  reset_counts();
  calls_ok(ch, 90);
  assert_spread(90);
  assert_true(atomic_load(&asked) >= 1);
  crpc_channel_free(ch);
  crpc_channel *plain;
  assert_int_equal(crpc_channel_new(&plain, "127.0.0.1:1", NULL), 0);
  assert_int_equal(crpc_channel_set_addresses(plain, bad, 0, "x"),
                   CRPC_EINVAL); /* not a channel with a resolver */
  crpc_channel_free(plain);
  backends_stop();
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "hosts") == 0) {
    const struct CMUnitTest hosts[] = {cmocka_unit_test(test_hosts_file)};
    return cmocka_run_group_tests(hosts, NULL, NULL);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pick_first_sticks_then_fails_over),
      cmocka_unit_test(test_round_robin_spreads),
      cmocka_unit_test(test_round_robin_failover_and_back),
      cmocka_unit_test(test_service_config_policy),
      cmocka_unit_test(test_bad_targets_and_policy),
      cmocka_unit_test(test_all_dead),
      cmocka_unit_test(test_silent_backend),
      cmocka_unit_test(test_state_watch),
      cmocka_unit_test(test_dns_name_round_robin),
      cmocka_unit_test(test_dns_failures),
      cmocka_unit_test(test_dns_thousand_addresses),
      cmocka_unit_test(test_custom_resolver),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
