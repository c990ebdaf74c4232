/*
 * event_loop.c: the code of docs/event-loop.md, compiled by the docs
 * build: crpc inside the program's own loop, both ways of driving it, and
 * an asynchronous handler.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "helloworld.crpc.h"

// [one_fd]
/* One descriptor: crpc's epoll fd joins the program's poll set. */
static void run_one_fd(crpc_loop *loop, int other_fd, bool *stop) {
  while (!*stop) {
    struct pollfd fds[2] = {{.fd = crpc_loop_fd(loop), .events = POLLIN},
                            {.fd = other_fd, .events = POLLIN}};
    int64_t t = crpc_loop_timeout_ms(loop); /* -1: no timer */
    poll(fds, 2, t < 0 || t > 1000 ? 1000 : (int)t);
    if (fds[1].revents)
      *stop = true;               /* the program's own work */
    crpc_loop_run_once(loop, 0); /* crpc's: never blocks */
  }
}
// [one_fd]

// [callbacks]
/* Socket callbacks: crpc says what to watch; the program reports back. */
typedef struct my_loop {
  struct pollfd fds[64];
  int nfds;
  int64_t timer_ms; /* -1: none */
} my_loop;

static void my_watch(crpc_loop *loop, int fd, unsigned events, void *ud) {
  my_loop *m = ud;
  (void)loop;
  int i = 0;
  while (i < m->nfds && m->fds[i].fd != fd)
    i++;
  if (!events) { /* stop watching fd (crpc may close it next) */
    if (i < m->nfds)
      m->fds[i] = m->fds[--m->nfds];
    return;
  }
  if (i == m->nfds && m->nfds < 64)
    m->fds[m->nfds++].fd = fd;
  m->fds[i].events = (short)((events & CRPC_LOOP_READ ? POLLIN : 0) |
                             (events & CRPC_LOOP_WRITE ? POLLOUT : 0));
}

static void my_timer(crpc_loop *loop, int64_t ms, void *ud) {
  (void)loop;
  ((my_loop *)ud)->timer_ms = ms; /* call crpc_loop_timer_expired then */
}

static void my_turn(crpc_loop *loop, my_loop *m) {
  struct pollfd fds[64];
  int n = m->nfds;
  memcpy(fds, m->fds, sizeof fds[0] * (size_t)n);
  int ready = poll(fds, (nfds_t)n, m->timer_ms < 0 ? 1000 : (int)m->timer_ms);
  for (int i = 0; i < n; i++)
    if (fds[i].revents)
      crpc_loop_fd_ready(loop, fds[i].fd,
                         (fds[i].revents & POLLOUT ? CRPC_LOOP_WRITE : 0) |
                             (fds[i].revents & ~POLLOUT ? CRPC_LOOP_READ : 0));
  if (ready == 0 && m->timer_ms >= 0) {
    m->timer_ms = -1;
    crpc_loop_timer_expired(loop);
  }
}
// [callbacks]

// [server]
static crpc_code hello(crpc_call *call, const Helloworld__HelloRequest *req,
                       Helloworld__HelloReply *resp, void *user_data) {
  (void)user_data;
  resp->message = crpc_call_arena_strdup(call, req->name);
  return CRPC_OK; /* runs on the loop's thread: must not block */
}

static int serve_on(crpc_loop *loop, crpc_server **out, int *port) {
  crpc_server_opts so = {.loop = loop}; /* no reactor thread */
  Helloworld__Greeter_CrpcHandlers h = {.say_hello = hello};
  int rv = crpc_server_new(out, &so);
  if (rv == 0)
    rv = crpc_server_register_service(*out,
                                      &helloworld__greeter__crpc_service, &h,
                                      CRPC_HANDLER_NONBLOCKING, NULL);
  if (rv == 0)
    rv = crpc_server_listen(*out, "127.0.0.1:0", NULL, port);
  return rv == 0 ? crpc_server_start(*out) : rv;
}
// [server]

// [async_handler]
typedef struct relay {
  crpc_call *call;              /* ours, deferred */
  Helloworld__HelloReply *resp; /* valid until we answer */
} relay;

static crpc_channel *backend; /* on the same loop */

static void backend_done(crpc_call *inner, const crpc_status *st,
                         const Helloworld__HelloReply *reply, void *ud) {
  relay *r = ud;
  (void)inner;
  if (reply)
    r->resp->message = crpc_call_arena_strdup(r->call, reply->message);
  crpc_call_answer(r->call, st->code); /* any thread; here the loop's */
  free(r);
}

static crpc_code relay_hello(crpc_call *call,
                             const Helloworld__HelloRequest *req,
                             Helloworld__HelloReply *resp, void *user_data) {
  (void)user_data;
  relay *r = malloc(sizeof *r);
  if (!r || crpc_call_defer(call) != 0) {
    free(r);
    return CRPC_RESOURCE_EXHAUSTED;
  }
  r->call = call;
  r->resp = resp;
  if (helloworld__greeter__say_hello__call_async(backend, NULL, req,
                                                 backend_done, r) != 0) {
    free(r);
    crpc_call_answer(call, CRPC_UNAVAILABLE);
  }
  return CRPC_OK; /* ignored: the answer comes from backend_done */
}
// [async_handler]

// [start_cb]
static void on_hello(crpc_call *call, const ProtobufCMessage *msg,
                     void *user_data) {
  (void)call, (void)user_data;
  printf("%s\n", ((const Helloworld__HelloReply *)msg)->message);
}

static void on_end(crpc_call *call, const crpc_status *st, void *user_data) {
  if (st->code != CRPC_OK)
    printf("failed: %s\n", crpc_status_message(st));
  crpc_call_free(call); /* allowed inside on_done */
  *(bool *)user_data = true;
}
// [start_cb]

static void on_reply(crpc_call *call, const crpc_status *st,
                     const Helloworld__HelloReply *reply, void *ud) {
  (void)call;
  printf("%s\n", st->code == CRPC_OK ? reply->message : "failed");
  *(bool *)ud = true;
}

int main(void) {
  /* one descriptor: a server and a client on one loop, one thread */
  crpc_loop *loop;
  crpc_server *srv;
  int port;
  if (crpc_loop_new(&loop, NULL) != 0 || serve_on(loop, &srv, &port) != 0)
    return 1;
  char target[32];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  crpc_channel_opts co = {.loop = loop};
  crpc_channel *ch;
  if (crpc_channel_new(&ch, target, &co) != 0)
    return 1;
  bool done = false;
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = "loop";
  helloworld__greeter__say_hello__call_async(ch, NULL, &req, on_reply, &done);
  int never[2];
  if (pipe(never) != 0)
    return 1;
  run_one_fd(loop, never[0], &done);
  crpc_channel_free(ch);
  crpc_server_free(srv);
  crpc_loop_free(loop);

  /* socket callbacks: the same through my_loop */
  my_loop m = {.timer_ms = -1};
  crpc_loop_opts lo = {.watch = my_watch, .timer = my_timer, .user_data = &m};
  if (crpc_loop_new(&loop, &lo) != 0 || serve_on(loop, &srv, &port) != 0)
    return 1;
  (void)relay_hello; /* shown in the guide; uv-greeter-server runs it */
  done = false;
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  co.loop = loop;
  if (crpc_channel_new(&ch, target, &co) != 0)
    return 1;
  /* the callback API's generated wrapper: any kind, here unary */
  crpc_call *call;
  crpc_call_callbacks cbs = {.on_message = on_hello, .on_done = on_end};
  helloworld__greeter__say_hello__start_cb(&call, ch, NULL, &req, &cbs, &done);
  while (!done)
    my_turn(loop, &m);
  crpc_channel_free(ch);
  crpc_server_free(srv);
  crpc_loop_free(loop);
  (void)backend;
  return 0;
}
