/*
 * A server and a channel on a loop the program drives (crpc/loop.h), in
 * both modes: one descriptor (poll on crpc_loop_fd) and socket callbacks
 * (a small poll-based driver standing in for libuv). crpc must start no
 * thread, deadlines must fire after the program stopped driving for a
 * while, and a plain threaded client must be served by a loop server.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "echo.pb-c.h"

#define WAIT_MS 10000

static const crpc_method m_unary = {"/crpc.itest.Echo/Unary", CRPC_UNARY,
                                    &crpc__itest__echo_request__descriptor,
                                    &crpc__itest__echo_reply__descriptor};
/* An async handler: asks Unary on the same loop, answers with its reply. */
static const crpc_method m_forward = {"/crpc.itest.Echo/Forward", CRPC_UNARY,
                                      &crpc__itest__echo_request__descriptor,
                                      &crpc__itest__echo_reply__descriptor};
/* An async handler that never answers by itself (only when cancelled). */
static const crpc_method m_early = {"/crpc.itest.Echo/Early", CRPC_UNARY,
                                    &crpc__itest__echo_request__descriptor,
                                    &crpc__itest__echo_reply__descriptor};
static const crpc_method m_silent = {"/crpc.itest.Echo/Silent", CRPC_UNARY,
                                     &crpc__itest__echo_request__descriptor,
                                     &crpc__itest__echo_reply__descriptor};

static int count_threads(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* NONBLOCKING: runs on the loop's thread. */
static crpc_code echo(crpc_call *call, const ProtobufCMessage *reqm,
                      ProtobufCMessage *respm, void *ud) {
  const Crpc__Itest__EchoRequest *req = (const void *)reqm;
  Crpc__Itest__EchoReply *resp = (void *)respm;
  (void)ud;
  if (!crpc_loop_is_current(ud))
    return CRPC_INTERNAL; /* not on the loop's thread */
  resp->text = crpc_call_arena_strdup(call, req->text);
  return req->status ? (crpc_code)req->status : CRPC_OK;
}

static crpc_channel *forward_ch; /* to this process's own server */
static int silent_answered;
static int silent_calls; /* handler invocations (the loop's thread) */

typedef struct fwd {
  crpc_call *call;
  Crpc__Itest__EchoReply *resp;
} fwd;

static void forward_done(crpc_call *inner, const crpc_status *st,
                         const ProtobufCMessage *r, void *ud) {
  fwd *f = ud;
  (void)inner;
  if (r) {
    const char *t = ((const Crpc__Itest__EchoReply *)r)->text;
    char *copy = crpc_call_arena_alloc(f->call, strlen(t) + 10);
    sprintf(copy, "forwarded %s", t);
    f->resp->text = copy;
  }
  crpc_call *call = f->call;
  free(f);
  assert_int_equal(crpc_call_answer(call, st->code), 0);
}

static crpc_code forward(crpc_call *call, const ProtobufCMessage *reqm,
                         ProtobufCMessage *respm, void *ud) {
  (void)ud;
  assert_int_equal(crpc_call_defer(call), 0);
  fwd *f = malloc(sizeof *f);
  f->call = call;
  f->resp = (void *)respm;
  if (crpc_unary_async(forward_ch, &m_unary, NULL, reqm, forward_done, f) !=
      0) {
    free(f);
    /* answered inside the handler: it takes effect on return */
    assert_int_equal(crpc_call_answer(call, CRPC_UNAVAILABLE), 0);
    assert_int_equal(crpc_call_answer(call, CRPC_OK), CRPC_ESTATE); /* 2nd */
    return CRPC_INTERNAL; /* ignored: answered */
  }
  return CRPC_UNKNOWN; /* ignored: deferred */
}

/* A deferred handler whose answer comes from another thread before the
 * handler has returned (the thread is joined inside the handler, so the
 * answer is always early): the call must still end with that answer. */
typedef struct early_job {
  crpc_call *call;
  Crpc__Itest__EchoReply *resp;
  int rv;
} early_job;

static void *early_answer(void *arg) {
  early_job *j = arg;
  j->resp->text = crpc_call_arena_strdup(j->call, "answered early");
  j->rv = crpc_call_answer(j->call, CRPC_OK);
  return NULL;
}

static int early_rv = -1;
static crpc_code early(crpc_call *call, const ProtobufCMessage *reqm,
                       ProtobufCMessage *respm, void *ud) {
  (void)ud;
  assert_int_equal(crpc_call_defer(call), 0);
  if (((const Crpc__Itest__EchoRequest *)reqm)->count == 1) {
    /* answered by the handler itself: it takes effect on return */
    early_rv = crpc_call_answer(call, CRPC_NOT_FOUND);
    assert_int_equal(crpc_call_answer(call, CRPC_OK), CRPC_ESTATE);
    return CRPC_INTERNAL; /* ignored: answered */
  }
  early_job j = {call, (void *)respm, -1};
  pthread_t t;
  pthread_create(&t, NULL, early_answer, &j);
  pthread_join(t, NULL);
  early_rv = j.rv;
  return CRPC_INTERNAL; /* ignored: deferred, and answered */
}

static void silent_cancelled(crpc_call *call, void *ud) {
  (void)ud;
  silent_answered++;
  crpc_call_answer(call, CRPC_OK); /* discarded, but it frees the call */
}

static crpc_code silent(crpc_call *call, const ProtobufCMessage *reqm,
                        ProtobufCMessage *respm, void *ud) {
  (void)reqm, (void)respm, (void)ud;
  silent_calls++;
  assert_int_equal(crpc_call_defer(call), 0);
  assert_int_equal(crpc_call_on_cancel(call, silent_cancelled, NULL), 0);
  return CRPC_OK;
}

/* Bidi echo, NONBLOCKING: called once per message (req set) and once at
 * the end (req NULL). */
static const crpc_method m_bidi = {"/crpc.itest.Echo/Bidi",
                                   CRPC_BIDI_STREAMING,
                                   &crpc__itest__echo_request__descriptor,
                                   &crpc__itest__echo_reply__descriptor};

static crpc_code bidi_echo(crpc_call *call, const ProtobufCMessage *reqm,
                           ProtobufCMessage *respm, void *ud) {
  (void)respm, (void)ud;
  if (!reqm)
    return CRPC_OK;
  const Crpc__Itest__EchoRequest *req = (const void *)reqm;
  Crpc__Itest__EchoReply r = CRPC__ITEST__ECHO_REPLY__INIT;
  r.text = req->text;
  for (int i = 0; i < (req->count > 0 ? req->count : 1); i++) {
    r.index = i;
    if (!crpc_call_write(call, &r.base))
      return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

/* Streaming handlers that defer their status from the closing invocation
 * (req NULL) and are answered later by the test: on the loop's thread for
 * bidi (after one more write), from another thread for client streaming. */
static const crpc_method m_bidi_late = {"/crpc.itest.Echo/BidiLate",
                                        CRPC_BIDI_STREAMING,
                                        &crpc__itest__echo_request__descriptor,
                                        &crpc__itest__echo_reply__descriptor};
static const crpc_method m_sum_late = {"/crpc.itest.Echo/SumLate",
                                       CRPC_CLIENT_STREAMING,
                                       &crpc__itest__echo_request__descriptor,
                                       &crpc__itest__echo_reply__descriptor};
static crpc_call *late_call;   /* deferred, waiting for the test's answer */
static ProtobufCMessage *late_resp;
static int late_msgs, late_early_defer;

static crpc_code late_handler(crpc_call *call, const ProtobufCMessage *reqm,
                              ProtobufCMessage *respm, void *ud) {
  (void)ud;
  if (reqm) {
    late_msgs++;
    /* not from a per-message invocation */
    late_early_defer += crpc_call_defer(call) == CRPC_ESTATE;
    if (strcmp(crpc_call_method(call), m_bidi_late.path) == 0) /* echo */
      return bidi_echo(call, reqm, respm, NULL);
    return CRPC_OK;
  }
  assert_int_equal(crpc_call_defer(call), 0);
  late_call = call;
  late_resp = respm;
  return CRPC_INTERNAL; /* ignored: deferred */
}

/* A deferred server-streaming handler that streams through
 * crpc_call_write_async(): the first reply from the handler, each next one
 * from the write-done callback, the answer from the last (or from the
 * callback that says the call ended). */
static const crpc_method m_feed = {"/crpc.itest.Echo/Feed",
                                   CRPC_SERVER_STREAMING,
                                   &crpc__itest__echo_request__descriptor,
                                   &crpc__itest__echo_reply__descriptor};
typedef struct feed {
  int count, sent, size;
  int busy_refused; /* a second write while one is in flight: ESTATE */
} feed;
static int feed_done_ok, feed_done_failed, feed_refused, feed_answered;
static int feed_next_failed; /* the call ended between two writes */
static uint8_t feed_payload[256 * 1024];

static int feed_next(crpc_call *call, feed *f) {
  Crpc__Itest__EchoReply r = CRPC__ITEST__ECHO_REPLY__INIT;
  r.index = f->sent;
  r.payload.data = feed_payload;
  r.payload.len = (size_t)f->size;
  int rv = crpc_call_write_async(call, &r.base, 0);
  if (rv == 0) {
    f->sent++;
    f->busy_refused += crpc_call_write_async(call, &r.base, 0) == CRPC_ESTATE;
  }
  return rv;
}

static void feed_written(crpc_call *call, bool ok, void *ud) {
  feed *f = ud;
  if (ok)
    feed_done_ok++;
  else
    feed_done_failed++;
  if (ok && f->sent < f->count) {
    if (feed_next(call, f) == 0)
      return;
    feed_next_failed++;
  }
  feed_refused += f->busy_refused;
  free(f);
  feed_answered++;
  assert_int_equal(crpc_call_answer(call, ok ? CRPC_OK : CRPC_CANCELLED), 0);
}

static crpc_code feed_handler(crpc_call *call, const ProtobufCMessage *reqm,
                              ProtobufCMessage *respm, void *ud) {
  (void)respm, (void)ud;
  const Crpc__Itest__EchoRequest *req = (const void *)reqm;
  feed *f = calloc(1, sizeof *f);
  f->count = req->count;
  f->size = req->reply_size;
  assert_int_equal(crpc_call_defer(call), 0);
  assert_int_equal(crpc_call_on_write_done(call, feed_written, f), 0);
  assert_int_equal(feed_next(call, f), 0);
  return CRPC_OK; /* ignored: deferred */
}

/* A handler that frees its own server (crpc_server_free from inside a
 * callback of the server's loop). */
static const crpc_method m_quit = {"/crpc.itest.Echo/Quit", CRPC_UNARY,
                                   &crpc__itest__echo_request__descriptor,
                                   &crpc__itest__echo_reply__descriptor};
static crpc_server **quit_srv;
static int quit_calls;

static crpc_code quit_handler(crpc_call *call, const ProtobufCMessage *reqm,
                              ProtobufCMessage *respm, void *ud) {
  (void)call, (void)reqm, (void)respm, (void)ud;
  quit_calls++;
  crpc_server_free(*quit_srv); /* returns at once: freed after we return */
  *quit_srv = NULL;
  return CRPC_OK;
}

/* ---- socket-callback mode: a poll() driver, as an adapter would be ---- */

typedef struct driver {
  struct pollfd fds[64];
  int nfds;
  int64_t timer_ms; /* -1: none; else relative at set time */
  int64_t timer_at;
  int watch_calls, timer_calls;
} driver;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_watch(crpc_loop *loop, int fd, unsigned events, void *ud) {
  driver *d = ud;
  (void)loop;
  d->watch_calls++;
  for (int i = 0; i < d->nfds; i++) {
    if (d->fds[i].fd != fd)
      continue;
    if (!events) {
      d->fds[i] = d->fds[--d->nfds];
      return;
    }
    d->fds[i].events = (short)((events & CRPC_LOOP_READ ? POLLIN : 0) |
                               (events & CRPC_LOOP_WRITE ? POLLOUT : 0));
    return;
  }
  if (!events)
    return;
  assert_true(d->nfds < 64);
  d->fds[d->nfds].fd = fd;
  d->fds[d->nfds].events = (short)((events & CRPC_LOOP_READ ? POLLIN : 0) |
                                   (events & CRPC_LOOP_WRITE ? POLLOUT : 0));
  d->nfds++;
}

static void on_timer(crpc_loop *loop, int64_t ms, void *ud) {
  driver *d = ud;
  (void)loop;
  d->timer_calls++;
  d->timer_ms = ms;
  d->timer_at = ms < 0 ? -1 : now_ms() + ms;
}

/* One turn of the program's loop. */
static void drive(crpc_loop *loop, driver *d, int max_ms) {
  if (!d) { /* one-descriptor mode */
    struct pollfd p = {.fd = crpc_loop_fd(loop), .events = POLLIN};
    int64_t t = crpc_loop_timeout_ms(loop);
    int wait = t < 0 || t > max_ms ? max_ms : (int)t;
    poll(&p, 1, wait);
    assert_int_equal(crpc_loop_run_once(loop, 0), 0);
    return;
  }
  int wait = max_ms;
  if (d->timer_at >= 0) {
    int64_t left = d->timer_at - now_ms();
    wait = left < 0 ? 0 : (left < wait ? (int)left : wait);
  }
  struct pollfd fds[64];
  int n = d->nfds;
  memcpy(fds, d->fds, sizeof fds[0] * (size_t)n);
  poll(fds, (nfds_t)n, wait);
  for (int i = 0; i < n; i++) {
    if (!fds[i].revents)
      continue;
    unsigned ev = 0;
    if (fds[i].revents & (POLLIN | POLLERR | POLLHUP))
      ev |= CRPC_LOOP_READ;
    if (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))
      ev |= CRPC_LOOP_WRITE;
    /* an earlier callback of this turn may have stopped this watch */
    int rv = crpc_loop_fd_ready(loop, fds[i].fd, ev);
    assert_true(rv == 0 || rv == CRPC_EINVAL);
  }
  if (d->timer_at >= 0 && now_ms() >= d->timer_at) {
    d->timer_at = -1;
    assert_int_equal(crpc_loop_timer_expired(loop), 0);
  }
}

typedef struct result {
  bool done;
  crpc_code code;
  char text[64];
} result;

static void on_done(crpc_call *call, const crpc_status *st,
                    const ProtobufCMessage *resp, void *ud) {
  result *r = ud;
  (void)call;
  r->done = true;
  r->code = st->code;
  if (resp)
    snprintf(r->text, sizeof r->text, "%s",
             ((const Crpc__Itest__EchoReply *)resp)->text);
}

static void wait_done(crpc_loop *loop, driver *d, result *r) {
  int64_t end = now_ms() + WAIT_MS;
  while (!r->done && now_ms() < end)
    drive(loop, d, 100);
  assert_true(r->done);
}

typedef struct world {
  crpc_loop *loop;
  driver *d;
  crpc_server *srv;
  crpc_channel *ch;
  int port;
} world;

static void world_start(world *w, driver *d) {
  memset(w, 0, sizeof *w);
  w->d = d;
  crpc_loop_opts lo = {0};
  if (d) {
    memset(d, 0, sizeof *d);
    d->timer_at = -1;
    lo.watch = on_watch;
    lo.timer = on_timer;
    lo.user_data = d;
  }
  assert_int_equal(crpc_loop_new(&w->loop, &lo), 0);
  if (d) {
    assert_int_equal(crpc_loop_fd(w->loop), -1);
    assert_true(d->nfds == 1); /* the wake-up eventfd */
  } else {
    assert_true(crpc_loop_fd(w->loop) >= 0);
  }
  crpc_server_opts so = {.loop = w->loop};
  assert_int_equal(crpc_server_new(&w->srv, &so), 0);
  assert_int_equal(crpc_server_register(w->srv, &m_unary, echo,
                                        CRPC_HANDLER_NONBLOCKING, w->loop),
                   0);
  assert_int_equal(crpc_server_register(w->srv, &m_forward, forward,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(w->srv, &m_feed, feed_handler,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(w->srv, &m_early, early,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(w->srv, &m_silent, silent,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(w->srv, &m_bidi, bidi_echo,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(w->srv, &m_quit, quit_handler,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(w->srv, &m_bidi_late, late_handler,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_register(w->srv, &m_sum_late, late_handler,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_listen(w->srv, "127.0.0.1:0", NULL, &w->port),
                   0);
  assert_int_equal(crpc_server_start(w->srv), 0);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", w->port);
  crpc_channel_opts co = {.loop = w->loop};
  assert_int_equal(crpc_channel_new(&w->ch, target, &co), 0);
}

static void world_stop(world *w) {
  crpc_channel_free(w->ch); /* drives the loop until it is done; NULL-safe */
  crpc_server_free(w->srv);
  crpc_loop_free(w->loop);
}

static void async_call(world *w, const char *text, int64_t timeout_ms,
                       result *r) {
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = (char *)text;
  crpc_call_opts o = {.timeout_ms = timeout_ms};
  memset(r, 0, sizeof *r);
  assert_int_equal(
      crpc_unary_async(w->ch, &m_unary, &o, &req.base, on_done, r), 0);
  assert_false(r->done); /* never from inside the call */
}

/* Many calls in flight on one thread, server and client on one loop. */
static void calls_on_one_thread(driver *d) {
  int before = count_threads();
  world w;
  world_start(&w, d);
  result r[8];
  char text[8][16];
  for (int i = 0; i < 8; i++) {
    snprintf(text[i], sizeof text[i], "hello %d", i);
    async_call(&w, text[i], WAIT_MS, &r[i]);
  }
  for (int i = 0; i < 8; i++) {
    wait_done(w.loop, d, &r[i]);
    assert_int_equal(r[i].code, CRPC_OK);
    assert_string_equal(r[i].text, text[i]);
  }
  assert_int_equal(count_threads(), before); /* crpc started none */
  if (d) {
    assert_true(d->watch_calls > 3);
    assert_true(d->timer_calls > 0);
  }
  world_stop(&w);
}

static void one_fd_calls(void **state) {
  (void)state;
  calls_on_one_thread(NULL);
}

static void callback_calls(void **state) {
  (void)state;
  driver d;
  calls_on_one_thread(&d);
}

/* A backend that accepts TCP and never speaks: the deadline ends the call
 * even though the program stopped driving the loop past it. */
static void deadline_after_pause(driver *d) {
  world w;
  world_start(&w, d);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(lfd, 8), 0);
  socklen_t al = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &al);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", ntohs(a.sin_port));
  crpc_channel *mute;
  crpc_channel_opts co = {.loop = w.loop};
  assert_int_equal(crpc_channel_new(&mute, target, &co), 0);
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = "anyone?";
  crpc_call_opts o = {.timeout_ms = 50};
  result r = {0};
  assert_int_equal(crpc_unary_async(mute, &m_unary, &o, &req.base, on_done,
                                    &r),
                   0);
  drive(w.loop, d, 0);
  /* the program is busy elsewhere for longer than the deadline */
  poll(NULL, 0, 200);
  assert_false(r.done);
  wait_done(w.loop, d, &r);
  assert_int_equal(r.code, CRPC_DEADLINE_EXCEEDED);
  crpc_channel_free(mute);
  close(lfd);
  world_stop(&w);
}

static void one_fd_deadline(void **state) {
  (void)state;
  deadline_after_pause(NULL);
}

static void callback_deadline(void **state) {
  (void)state;
  driver d;
  deadline_after_pause(&d);
}

/* A plain (threaded) blocking client calls the loop's server. */
typedef struct client_arg {
  int port;
  crpc_code code;
  bool done;
  pthread_mutex_t mu;
} client_arg;

static void *blocking_client(void *p) {
  client_arg *a = p;
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", a->port);
  crpc_channel *ch;
  crpc_channel_new(&ch, target, NULL);
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = "from a thread";
  ProtobufCMessage *resp = NULL;
  crpc_call_opts o = {.timeout_ms = WAIT_MS};
  crpc_code code = crpc_unary(ch, &m_unary, &o, &req.base, &resp, NULL);
  if (resp)
    protobuf_c_message_free_unpacked(resp, NULL);
  crpc_channel_free(ch);
  pthread_mutex_lock(&a->mu);
  a->code = code;
  a->done = true;
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

static void threaded_client(driver *d) {
  world w;
  world_start(&w, d);
  client_arg a = {.port = w.port};
  pthread_mutex_init(&a.mu, NULL);
  pthread_t tid;
  pthread_create(&tid, NULL, blocking_client, &a);
  int64_t end = now_ms() + WAIT_MS;
  for (;;) {
    pthread_mutex_lock(&a.mu);
    bool done = a.done;
    pthread_mutex_unlock(&a.mu);
    if (done || now_ms() > end)
      break;
    drive(w.loop, d, 50);
  }
  pthread_join(tid, NULL);
  assert_int_equal(a.code, CRPC_OK);
  pthread_mutex_destroy(&a.mu);
  world_stop(&w);
}

static void one_fd_threaded_client(void **state) {
  (void)state;
  threaded_client(NULL);
}

static void callback_threaded_client(void **state) {
  (void)state;
  driver d;
  threaded_client(&d);
}

/* A handler that calls another service on the same loop and answers from
 * that call's callback; and one that never answers until cancelled. */
static void async_handlers(driver *d) {
  int before = count_threads();
  world w;
  world_start(&w, d);
  forward_ch = w.ch;
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = "ping";
  crpc_call_opts o = {.timeout_ms = WAIT_MS};
  result r = {0};
  assert_int_equal(
      crpc_unary_async(w.ch, &m_forward, &o, &req.base, on_done, &r), 0);
  wait_done(w.loop, d, &r);
  assert_int_equal(r.code, CRPC_OK);
  assert_string_equal(r.text, "forwarded ping");
  /* answered from another thread before the handler returned */
  result re = {0};
  assert_int_equal(
      crpc_unary_async(w.ch, &m_early, &o, &req.base, on_done, &re), 0);
  wait_done(w.loop, d, &re);
  assert_int_equal(early_rv, 0);
  assert_int_equal(re.code, CRPC_OK);
  assert_string_equal(re.text, "answered early");
  early_rv = -1;
  Crpc__Itest__EchoRequest inside = CRPC__ITEST__ECHO_REQUEST__INIT;
  inside.count = 1;
  result ri = {0};
  assert_int_equal(
      crpc_unary_async(w.ch, &m_early, &o, &inside.base, on_done, &ri), 0);
  wait_done(w.loop, d, &ri);
  assert_int_equal(early_rv, 0);
  assert_int_equal(ri.code, CRPC_NOT_FOUND);
  /* never answered: the client's deadline ends it, the server's cancel
   * notice answers it, nothing leaks */
  silent_answered = 0;
  crpc_call_opts so = {.timeout_ms = 100};
  result r2 = {0};
  assert_int_equal(
      crpc_unary_async(w.ch, &m_silent, &so, &req.base, on_done, &r2), 0);
  wait_done(w.loop, d, &r2);
  assert_int_equal(r2.code, CRPC_DEADLINE_EXCEEDED);
  int64_t end = now_ms() + WAIT_MS;
  while (!silent_answered && now_ms() < end)
    drive(w.loop, d, 50);
  assert_int_equal(silent_answered, 1);
  assert_int_equal(count_threads(), before);
  world_stop(&w);
}

static void one_fd_async_handlers(void **state) {
  (void)state;
  async_handlers(NULL);
}

static void callback_async_handlers(void **state) {
  (void)state;
  driver d;
  async_handlers(&d);
}

/* ---- the client callback API ---- */

typedef struct stream_state {
  crpc_call *call;
  int to_send, sent, write_dones, bad_writes;
  int received, headers;
  bool done, free_in_message, cancel_in_message;
  bool threaded;   /* callbacks on crpc's thread: no assert there, and no
                      probing write (it would race the callback's) */
  int write_errors;
  crpc_code code;
  char last[32];
} stream_state;

static void send_next(stream_state *ss) {
  if (ss->sent == ss->to_send) {
    crpc_call_writes_done(ss->call);
    return;
  }
  char text[32];
  snprintf(text, sizeof text, "m%d", ss->sent);
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = text;
  int rv = crpc_call_write_async(ss->call, &req.base, 0);
  if (rv == CRPC_ESTATE && ss->cancel_in_message && ss->received)
    return; /* cancelled: writes are refused from then on */
  if (ss->threaded) {
    ss->write_errors += rv != 0;
    ss->sent++;
    return;
  }
  assert_int_equal(rv, 0);
  ss->sent++;
  /* one write in flight at a time: the next is refused until it is done */
  if (crpc_call_write_async(ss->call, &req.base, 0) == CRPC_ESTATE)
    ss->bad_writes++;
}

static void cb_headers(crpc_call *call, const crpc_metadata *md, void *ud) {
  (void)call, (void)md;
  ((stream_state *)ud)->headers++;
}

static void cb_message(crpc_call *call, const ProtobufCMessage *msg,
                       void *ud) {
  stream_state *ss = ud;
  snprintf(ss->last, sizeof ss->last, "%s",
           ((const Crpc__Itest__EchoReply *)msg)->text);
  ss->received++;
  if (ss->cancel_in_message)
    crpc_call_cancel(call);
  if (ss->free_in_message) {
    crpc_call_free(call); /* no callback may follow */
    ss->call = NULL;
    ss->done = true;
  }
}

static void cb_write_done(crpc_call *call, bool ok, void *ud) {
  stream_state *ss = ud;
  (void)call;
  ss->write_dones++;
  if (ok)
    send_next(ss);
}

static void cb_done(crpc_call *call, const crpc_status *st, void *ud) {
  stream_state *ss = ud;
  assert_false(ss->done);
  ss->done = true;
  ss->code = st->code;
  crpc_call_free(call); /* freeing from inside on_done */
  ss->call = NULL;
}

static const crpc_call_callbacks stream_cbs = {
    .on_headers = cb_headers,
    .on_message = cb_message,
    .on_write_done = cb_write_done,
    .on_done = cb_done};

static void run_stream(world *w, stream_state *ss, int64_t timeout_ms) {
  crpc_call_opts o = {.timeout_ms = timeout_ms};
  assert_int_equal(crpc_call_start_cb(&ss->call, w->ch, &m_bidi, &o,
                                      &stream_cbs, ss),
                   0);
  send_next(ss);
  int64_t end = now_ms() + WAIT_MS;
  while (!ss->done && now_ms() < end)
    drive(w->loop, w->d, 100);
  assert_true(ss->done);
}

static void callback_streams(driver *d) {
  int before = count_threads();
  world w;
  world_start(&w, d);
  stream_state ss = {.to_send = 50};
  run_stream(&w, &ss, WAIT_MS);
  assert_int_equal(ss.code, CRPC_OK);
  assert_int_equal(ss.received, 50);
  assert_int_equal(ss.write_dones, 50);
  assert_int_equal(ss.bad_writes, 50);
  assert_int_equal(ss.headers, 1);
  assert_string_equal(ss.last, "m49");
  /* cancelled from inside on_message: CANCELLED, nothing after on_done */
  stream_state cs = {.to_send = 50, .cancel_in_message = true};
  run_stream(&w, &cs, WAIT_MS);
  assert_int_equal(cs.code, CRPC_CANCELLED);
  assert_int_equal(cs.received, 1);
  /* freed from inside on_message: no more callbacks, nothing leaks */
  stream_state fs = {.to_send = 50, .free_in_message = true};
  run_stream(&w, &fs, WAIT_MS);
  assert_int_equal(fs.received, 1);
  for (int i = 0; i < 10; i++) /* whatever was queued for it is dropped */
    drive(w.loop, d, 0);
  assert_int_equal(fs.received, 1);
  assert_int_equal(count_threads(), before);
  world_stop(&w);
}

/* The server side of the callback API: replies streamed with
 * crpc_call_write_async() and a write-done callback, large enough that
 * they leave only as the client's window opens; then a call cancelled
 * with a write in flight. */
typedef struct feed_reader {
  int received, bytes;
  bool done, cancel_after_first;
  crpc_code code;
} feed_reader;

static void feed_message(crpc_call *call, const ProtobufCMessage *m,
                         void *ud) {
  feed_reader *fr = ud;
  const Crpc__Itest__EchoReply *r = (const void *)m;
  assert_int_equal(r->index, fr->received);
  fr->received++;
  fr->bytes += (int)r->payload.len;
  if (fr->cancel_after_first)
    crpc_call_cancel(call);
}

static void feed_call_done(crpc_call *call, const crpc_status *st, void *ud) {
  feed_reader *fr = ud;
  fr->code = st->code;
  fr->done = true;
  crpc_call_free(call);
}

static const crpc_call_callbacks feed_cbs = {.on_message = feed_message,
                                             .on_done = feed_call_done};

static void feed_run(world *w, feed_reader *fr, int count, int size) {
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.count = count;
  req.reply_size = size;
  crpc_call_opts o = {.timeout_ms = WAIT_MS};
  crpc_call *call;
  assert_int_equal(
      crpc_call_start_cb(&call, w->ch, &m_feed, &o, &feed_cbs, fr), 0);
  assert_int_equal(crpc_call_write_async(call, &req.base, 0), 0);
  int64_t end = now_ms() + WAIT_MS;
  while (!fr->done && now_ms() < end) {
    if (fr->received == 0 || !fr->cancel_after_first)
      crpc_call_writes_done(call); /* once its write is done; else ESTATE */
    drive(w->loop, w->d, 100);
  }
  assert_true(fr->done);
}

static void server_write_async(driver *d) {
  world w;
  world_start(&w, d);
  feed_done_ok = feed_done_failed = feed_refused = feed_answered = 0;
  feed_next_failed = 0;
  feed_reader fr = {0};
  feed_run(&w, &fr, 40, (int)sizeof feed_payload); /* 10 MiB > windows */
  assert_int_equal(fr.code, CRPC_OK);
  assert_int_equal(fr.received, 40);
  assert_int_equal(fr.bytes, 40 * (int)sizeof feed_payload);
  assert_int_equal(feed_done_ok, 40);
  assert_int_equal(feed_done_failed + feed_next_failed, 0);
  assert_int_equal(feed_refused, 40); /* one write in flight at a time */
  assert_int_equal(feed_answered, 1);
  /* the client cancels after the first reply: a write in flight is
   * reported not done, the handler answers, nothing leaks */
  feed_reader cr = {.cancel_after_first = true};
  feed_run(&w, &cr, 1000, (int)sizeof feed_payload);
  assert_int_equal(cr.code, CRPC_CANCELLED);
  int64_t end = now_ms() + WAIT_MS;
  while (feed_answered < 2 && now_ms() < end)
    drive(w.loop, d, 100);
  assert_int_equal(feed_answered, 2);
  /* the write in flight was either reported not done, or done with the
   * next one refused (the cancel came between them) */
  assert_int_equal(feed_done_failed + feed_next_failed, 1);
  world_stop(&w);
}

/* The same handler on crpc's own server threads, read by a blocking
 * client: the write-done callbacks run on the reactor thread. */
static void threaded_server_write_async(void **state) {
  (void)state;
  crpc_server *srv;
  int port;
  feed_done_ok = feed_done_failed = feed_refused = feed_answered = 0;
  feed_next_failed = 0;
  assert_int_equal(crpc_server_new(&srv, NULL), 0);
  assert_int_equal(crpc_server_register(srv, &m_feed, feed_handler,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_listen(srv, "127.0.0.1:0", NULL, &port), 0);
  assert_int_equal(crpc_server_start(srv), 0);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  crpc_channel *ch;
  assert_int_equal(crpc_channel_new(&ch, target, NULL), 0);
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.count = 20;
  req.reply_size = (int)sizeof feed_payload;
  crpc_call_opts o = {.timeout_ms = WAIT_MS};
  crpc_call *call;
  assert_int_equal(crpc_call_start(&call, ch, &m_feed, &o), 0);
  assert_true(crpc_call_write(call, &req.base));
  assert_true(crpc_call_writes_done(call));
  ProtobufCMessage *m;
  int n = 0;
  while (crpc_call_read(call, &m)) {
    assert_int_equal(((Crpc__Itest__EchoReply *)m)->index, n);
    assert_int_equal(((Crpc__Itest__EchoReply *)m)->payload.len,
                     sizeof feed_payload);
    n++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_int_equal(crpc_call_finish(call, NULL), CRPC_OK);
  crpc_call_free(call);
  assert_int_equal(n, 20);
  crpc_channel_free(ch);
  crpc_server_shutdown(srv, 1000);
  crpc_server_free(srv);
  assert_int_equal(feed_done_ok, 20);
  assert_int_equal(feed_refused, 20);
  assert_int_equal(feed_answered, 1);
}

static void one_fd_server_write_async(void **state) {
  (void)state;
  server_write_async(NULL);
}

static void callback_server_write_async(void **state) {
  (void)state;
  driver d;
  server_write_async(&d);
}

static void one_fd_callback_streams(void **state) {
  (void)state;
  callback_streams(NULL);
}

static void callback_callback_streams(void **state) {
  (void)state;
  driver d;
  callback_streams(&d);
}

static void *answer_sum(void *arg) {
  crpc_call *call = arg;
  Crpc__Itest__EchoReply *resp = (void *)late_resp;
  char text[32];
  snprintf(text, sizeof text, "got %d", late_msgs);
  resp->text = crpc_call_arena_strdup(call, text);
  resp->index = late_msgs;
  assert_int_equal(crpc_call_answer(call, CRPC_OK), 0);
  return NULL;
}

/* Client-streaming and bidi handlers that defer their status. */
static void deferred_stream_status(driver *d) {
  world w;
  world_start(&w, d);
  /* bidi: three echoes, then the test writes once more and answers */
  late_call = NULL;
  late_msgs = late_early_defer = 0;
  stream_state ss = {.to_send = 3};
  assert_int_equal(crpc_call_start_cb(&ss.call, w.ch, &m_bidi_late, NULL,
                                      &stream_cbs, &ss),
                   0);
  send_next(&ss);
  int64_t end = now_ms() + WAIT_MS;
  while ((!late_call || ss.received < 3) && now_ms() < end)
    drive(w.loop, d, 100);
  assert_non_null(late_call);
  for (int i = 0; i < 5; i++) /* the status waits for the answer */
    drive(w.loop, d, 0);
  assert_false(ss.done);
  Crpc__Itest__EchoReply r = CRPC__ITEST__ECHO_REPLY__INIT;
  r.text = "late";
  assert_true(crpc_call_write(late_call, &r.base));
  crpc_call_set_status_message(late_call, "answered late");
  assert_int_equal(crpc_call_answer(late_call, CRPC_NOT_FOUND), 0);
  end = now_ms() + WAIT_MS;
  while (!ss.done && now_ms() < end)
    drive(w.loop, d, 100);
  assert_true(ss.done);
  assert_int_equal(ss.code, CRPC_NOT_FOUND);
  assert_int_equal(ss.received, 4);
  assert_string_equal(ss.last, "late");
  assert_int_equal(late_early_defer, 3);
  /* client streaming: answered from another thread, with the response */
  late_call = NULL;
  late_msgs = late_early_defer = 0;
  stream_state cs = {.to_send = 4};
  assert_int_equal(crpc_call_start_cb(&cs.call, w.ch, &m_sum_late, NULL,
                                      &stream_cbs, &cs),
                   0);
  send_next(&cs);
  end = now_ms() + WAIT_MS;
  while (!late_call && now_ms() < end)
    drive(w.loop, d, 100);
  assert_non_null(late_call);
  assert_false(cs.done);
  pthread_t t;
  pthread_create(&t, NULL, answer_sum, late_call);
  pthread_join(t, NULL);
  end = now_ms() + WAIT_MS;
  while (!cs.done && now_ms() < end)
    drive(w.loop, d, 100);
  assert_true(cs.done);
  assert_int_equal(cs.code, CRPC_OK);
  assert_int_equal(cs.received, 1);
  assert_string_equal(cs.last, "got 4");
  assert_int_equal(late_early_defer, 4);
  world_stop(&w);
}

static void one_fd_deferred_stream_status(void **state) {
  (void)state;
  deferred_stream_status(NULL);
}

static void callback_deferred_stream_status(void **state) {
  (void)state;
  driver d;
  deferred_stream_status(&d);
}

typedef struct freeing {
  crpc_channel **ch; /* freed from inside on_done */
  bool done;
  crpc_code code;
} freeing;

static void free_channel_on_done(crpc_call *call, const crpc_status *st,
                                 const ProtobufCMessage *resp, void *ud) {
  freeing *f = ud;
  (void)call, (void)resp;
  f->done = true;
  f->code = st->code;
  crpc_channel_free(*f->ch); /* its last call: the async one just ended */
  *f->ch = NULL;
}

static void on_result(crpc_call *call, const crpc_status *st,
                      const ProtobufCMessage *resp, void *ud) {
  (void)call, (void)resp;
  freeing *f = ud;
  f->done = true;
  f->code = st->code;
}

/* A callback that frees the channel, a handler that frees the server:
 * both return at once and the objects go once the callbacks unwound. */
static void free_from_callbacks(driver *d) {
  int before = count_threads();
  world w;
  world_start(&w, d);
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = "bye";
  /* the channel, from the on_done of its own last call */
  freeing fc = {.ch = &w.ch};
  assert_int_equal(
      crpc_unary_async(w.ch, &m_unary, NULL, &req.base,
                       free_channel_on_done, &fc),
      0);
  int64_t end = now_ms() + WAIT_MS;
  while ((!fc.done || w.ch) && now_ms() < end)
    drive(w.loop, d, 100);
  assert_true(fc.done);
  assert_int_equal(fc.code, CRPC_OK);
  assert_null(w.ch);
  for (int i = 0; i < 5; i++) /* the deferred free runs in these turns */
    drive(w.loop, d, 0);
  /* the server, from inside one of its NONBLOCKING handlers */
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", w.port);
  crpc_channel_opts co = {.loop = w.loop};
  assert_int_equal(crpc_channel_new(&w.ch, target, &co), 0);
  quit_srv = &w.srv;
  quit_calls = 0;
  freeing fq = {0};
  assert_int_equal(crpc_unary_async(w.ch, &m_quit, NULL, &req.base,
                                    on_result, &fq),
                   0);
  end = now_ms() + WAIT_MS;
  while (!fq.done && now_ms() < end)
    drive(w.loop, d, 100);
  assert_true(fq.done);
  assert_int_equal(quit_calls, 1);
  assert_null(w.srv);
  /* the answer may or may not have left before the shutdown: the call
   * ends either way, and the server is gone afterwards */
  assert_true(fq.code == CRPC_OK || fq.code == CRPC_CANCELLED ||
              fq.code == CRPC_UNAVAILABLE);
  freeing after = {0};
  crpc_call_opts o = {.timeout_ms = WAIT_MS};
  assert_int_equal(crpc_unary_async(w.ch, &m_unary, &o, &req.base,
                                    on_result, &after),
                   0);
  end = now_ms() + WAIT_MS;
  while (!after.done && now_ms() < end)
    drive(w.loop, d, 100);
  assert_true(after.done);
  assert_int_equal(after.code, CRPC_UNAVAILABLE);
  assert_int_equal(count_threads(), before);
  world_stop(&w); /* NULL server: crpc_server_free(NULL) */
}

static void one_fd_free_from_callbacks(void **state) {
  (void)state;
  free_from_callbacks(NULL);
}

static void callback_free_from_callbacks(void **state) {
  (void)state;
  driver d;
  free_from_callbacks(&d);
}

/* The callback API on crpc's own threads: a threaded server, a channel on
 * the shared client reactor threads; callbacks run there. */
typedef struct pooled {
  stream_state ss;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} pooled;

/* The stream's callbacks under the test's lock: main starts the first
 * write holding it. */
static void pooled_message(crpc_call *call, const ProtobufCMessage *msg,
                           void *ud) {
  pooled *p = ud;
  pthread_mutex_lock(&p->mu);
  cb_message(call, msg, &p->ss);
  pthread_mutex_unlock(&p->mu);
}

static void pooled_write_done(crpc_call *call, bool ok, void *ud) {
  pooled *p = ud;
  pthread_mutex_lock(&p->mu);
  cb_write_done(call, ok, &p->ss);
  pthread_mutex_unlock(&p->mu);
}

static void pooled_done(crpc_call *call, const crpc_status *st, void *ud) {
  pooled *p = ud;
  pthread_mutex_lock(&p->mu);
  p->ss.done = true;
  p->ss.code = st->code;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  crpc_call_free(call);
}

static void pool_callback_stream(void **state) {
  (void)state;
  crpc_server *srv;
  int port;
  assert_int_equal(crpc_server_new(&srv, NULL), 0);
  assert_int_equal(crpc_server_register(srv, &m_bidi, bidi_echo,
                                        CRPC_HANDLER_NONBLOCKING, NULL),
                   0);
  assert_int_equal(crpc_server_listen(srv, "127.0.0.1:0", NULL, &port), 0);
  assert_int_equal(crpc_server_start(srv), 0);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  crpc_channel *ch;
  assert_int_equal(crpc_channel_new(&ch, target, NULL), 0);
  pooled p = {.ss = {.to_send = 100, .threaded = true}};
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  crpc_call_callbacks cbs = {.on_message = pooled_message,
                             .on_write_done = pooled_write_done,
                             .on_done = pooled_done};
  crpc_call_opts o = {.timeout_ms = WAIT_MS};
  pthread_mutex_lock(&p.mu); /* the first write before any callback */
  assert_int_equal(crpc_call_start_cb(&p.ss.call, ch, &m_bidi, &o, &cbs, &p),
                   0);
  send_next(&p.ss);
  while (!p.ss.done)
    pthread_cond_wait(&p.cv, &p.mu);
  pthread_mutex_unlock(&p.mu);
  assert_int_equal(p.ss.write_errors, 0);
  assert_int_equal(p.ss.code, CRPC_OK);
  assert_int_equal(p.ss.received, 100);
  assert_int_equal(p.ss.write_dones, 100);
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
  crpc_channel_free(ch);
  crpc_server_free(srv);
}

/* Freeing a channel with calls in flight (callback streams and async
 * unary calls parked in a handler that never answers): each gets
 * CANCELLED before crpc_channel_free() returns, nothing leaks. */
static int inflight_done;

static void inflight_stream_done(crpc_call *call, const crpc_status *st,
                                 void *ud) {
  (void)ud;
  assert_int_equal(st->code, CRPC_CANCELLED);
  inflight_done++;
  crpc_call_free(call);
}

static void inflight_unary_done(crpc_call *call, const crpc_status *st,
                                const ProtobufCMessage *resp, void *ud) {
  (void)call, (void)resp, (void)ud;
  assert_int_equal(st->code, CRPC_CANCELLED);
  inflight_done++;
}

static void free_with_calls_in_flight(driver *d) {
  world w;
  world_start(&w, d);
  silent_answered = 0;
  silent_calls = 0;
  inflight_done = 0;
  Crpc__Itest__EchoRequest req = CRPC__ITEST__ECHO_REQUEST__INIT;
  req.text = "wait";
  crpc_call_callbacks cbs = {.on_done = inflight_stream_done};
  for (int i = 0; i < 3; i++) {
    crpc_call *c;
    assert_int_equal(crpc_call_start_cb(&c, w.ch, &m_bidi, NULL, &cbs, NULL),
                     0);
    assert_int_equal(crpc_call_write_async(c, &req.base, 0), 0);
    assert_int_equal(crpc_unary_async(w.ch, &m_silent, NULL, &req.base,
                                      inflight_unary_done, NULL),
                     0);
  }
  /* until the server holds the three silent calls */
  int64_t end = now_ms() + WAIT_MS;
  while (silent_calls < 3 && now_ms() < end)
    drive(w.loop, d, 50);
  assert_int_equal(silent_calls, 3);
  crpc_channel_free(w.ch);
  assert_int_equal(inflight_done, 6); /* before the free returned */
  w.ch = NULL;
  /* the server sees the resets: its cancel notices answer the calls */
  end = now_ms() + WAIT_MS;
  while (silent_answered < 3 && now_ms() < end)
    drive(w.loop, d, 50);
  assert_int_equal(silent_answered, 3);
  world_stop(&w);
}

static void one_fd_free_in_flight(void **state) {
  (void)state;
  free_with_calls_in_flight(NULL);
}

static void callback_free_in_flight(void **state) {
  (void)state;
  driver d;
  free_with_calls_in_flight(&d);
}

/* The loop's functions refuse other threads. */
static void *other_thread(void *loop) {
  static int rv[3];
  rv[0] = crpc_loop_run_once(loop, 0);
  rv[1] = crpc_loop_run(loop);
  rv[2] = crpc_loop_is_current(loop);
  return rv;
}

static void wrong_thread(void **state) {
  (void)state;
  crpc_loop *loop;
  assert_int_equal(crpc_loop_new(&loop, NULL), 0);
  pthread_t t;
  int *rv;
  pthread_create(&t, NULL, other_thread, loop);
  pthread_join(t, (void **)&rv);
  assert_int_equal(rv[0], CRPC_ESTATE);
  assert_int_equal(rv[1], CRPC_ESTATE);
  assert_int_equal(rv[2], 0);
  crpc_loop_free(loop);
}

/* Misuse gets an error code, not undefined behaviour. */
static void misuse(void **state) {
  (void)state;
  crpc_loop *loop;
  crpc_loop_opts half = {.watch = on_watch};
  assert_int_equal(crpc_loop_new(&loop, &half), CRPC_EINVAL);
  assert_int_equal(crpc_loop_new(NULL, NULL), CRPC_EINVAL);
  assert_int_equal(crpc_loop_new(&loop, NULL), 0);
  assert_int_equal(crpc_loop_fd_ready(loop, 0, CRPC_LOOP_READ), CRPC_ESTATE);
  assert_int_equal(crpc_loop_timer_expired(loop), CRPC_ESTATE);
  assert_int_equal(crpc_loop_timeout_ms(loop), -1);
  assert_int_equal(crpc_loop_run_once(loop, 0), 0);
  assert_true(crpc_loop_is_current(loop));
  crpc_loop_free(loop);
  driver d = {.timer_at = -1};
  crpc_loop_opts cb = {.watch = on_watch, .timer = on_timer, .user_data = &d};
  assert_int_equal(crpc_loop_new(&loop, &cb), 0);
  assert_int_equal(crpc_loop_run_once(loop, 0), CRPC_ESTATE);
  assert_int_equal(crpc_loop_fd_ready(loop, 12345, CRPC_LOOP_READ),
                   CRPC_EINVAL);
  crpc_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(one_fd_calls),
      cmocka_unit_test(callback_calls),
      cmocka_unit_test(one_fd_deadline),
      cmocka_unit_test(callback_deadline),
      cmocka_unit_test(one_fd_threaded_client),
      cmocka_unit_test(callback_threaded_client),
      cmocka_unit_test(one_fd_async_handlers),
      cmocka_unit_test(callback_async_handlers),
      cmocka_unit_test(one_fd_callback_streams),
      cmocka_unit_test(callback_callback_streams),
      cmocka_unit_test(pool_callback_stream),
      cmocka_unit_test(one_fd_server_write_async),
      cmocka_unit_test(callback_server_write_async),
      cmocka_unit_test(threaded_server_write_async),
      cmocka_unit_test(one_fd_deferred_stream_status),
      cmocka_unit_test(one_fd_free_from_callbacks),
      cmocka_unit_test(callback_free_from_callbacks),
      cmocka_unit_test(callback_deferred_stream_status),
      cmocka_unit_test(one_fd_free_in_flight),
      cmocka_unit_test(callback_free_in_flight),
      cmocka_unit_test(wrong_thread),
      cmocka_unit_test(misuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
