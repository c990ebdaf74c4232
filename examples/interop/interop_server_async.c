/*
 * interop_server_async.c: crpc-interop-server --async. Every TestService
 * method served by CRPC_HANDLER_NONBLOCKING handlers on a crpc_loop that
 * the main thread drives (one-descriptor mode) in an epoll set of its own,
 * beside a signalfd and the timerfds of the responses that must wait: the
 * server runs no crpc thread and nothing here ever sleeps.
 *
 * - EmptyCall, UnaryCall, CacheableUnaryCall: the threaded server's
 *   handlers, which never block, run on the loop as they are.
 * - StreamingOutputCall: its responses are queued; those whose
 *   interval_us has to pass first wait on a timerfd, the call deferred
 *   (crpc_call_defer) and answered (crpc_call_answer) once the last one
 *   is written, or at once when crpc_call_on_cancel says it was cancelled.
 * - StreamingInputCall, FullDuplexCall, HalfDuplexCall: one invocation
 *   per request message and a closing one (req NULL) when the client has
 *   half-closed; per-call state hangs on crpc_call_set_user_data().
 *
 * What cannot be served without blocking: a response interval in a
 * streaming-request method (FullDuplexCall, HalfDuplexCall) is honoured
 * only until the client half-closes. The call's status is the return
 * value of the closing invocation, which must return at once (it cannot
 * be deferred: crpc_call_defer() is for unary and server-streaming
 * handlers only), so responses still waiting for their interval then go
 * out without waiting. HalfDuplexCall answers only after the half-close,
 * so none of its intervals is honoured. Waiting there would mean blocking
 * the loop, or crpc letting those handlers defer their status too.
 * None of gRPC's interop cases asks for an interval.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "interop_server.h"

/* ---- the program's own descriptors in its epoll set ---- */

typedef struct watch watch;
struct watch {
  int fd;
  void (*ready)(watch *w); /* on the loop's thread, between crpc turns */
};

static int ep = -1;

static bool watch_add(watch *w) {
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev) == 0)
    return true;
  fprintf(stderr, "interop server: epoll_ctl: %s\n", strerror(errno));
  return false;
}

/* ---- the responses of a streaming call, and when they may go ---- */

/* One queued response (or, in HalfDuplexCall, an Echo Status that ends
 * the call once the responses before it are out). */
typedef struct entry {
  int32_t size;
  int32_t interval_us;
  bool compressed;   /* this response compressed */
  bool req_compress; /* any response of its request asks for gzip */
  bool is_status;
  crpc_code code; /* is_status */
  char *message;  /* is_status; ours */
} entry;

/* A streaming call's state, on the loop's thread only. */
typedef struct stream stream;
struct stream {
  crpc_call *call;
  watch timer; /* timer.fd -1 until an interval needs one */
  entry *q;
  size_t head, n, cap;
  bool waiting;     /* the head's interval is running */
  bool first_write; /* no response written yet: encoding still open */
  bool deferred;    /* StreamingOutputCall: answered when drained */
  bool dead;        /* freed after this loop turn */
  int64_t total;    /* StreamingInputCall */
  stream *next_dead;
};

/*
 * Streams are freed only between loop turns, never where they end: an
 * epoll batch may still hold an event of a stream's timer that crpc's
 * callbacks (a cancel) ended in the same turn.
 */
static stream *graveyard;

static void stream_kill(stream *s) {
  if (s->dead)
    return;
  s->dead = true;
  if (s->timer.fd >= 0) {
    close(s->timer.fd); /* leaves the epoll set */
    s->timer.fd = -1;
  }
  s->next_dead = graveyard;
  graveyard = s;
}

static void bury(void) {
  while (graveyard) {
    stream *s = graveyard;
    graveyard = s->next_dead;
    for (size_t i = 0; i < s->n; i++)
      free(s->q[i].message);
    free(s->q);
    free(s);
  }
}

static void on_timer(watch *w);

static stream *stream_new(crpc_call *call) {
  stream *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->call = call;
  s->timer.fd = -1;
  s->timer.ready = on_timer;
  s->first_write = true;
  return s;
}

static entry *push(stream *s) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 8;
    entry *q = realloc(s->q, cap * sizeof(*q));
    if (q == NULL)
      return NULL;
    s->q = q;
    s->cap = cap;
  }
  entry *e = &s->q[s->n++];
  memset(e, 0, sizeof(*e));
  return e;
}

/* Queues the responses |req| asks for. INVALID_ARGUMENT for a size we
 * refuse (the handler's return then ends the call). */
static crpc_code enqueue(stream *s, const StreamingOutputCallRequest *req) {
  bool compress = false;
  for (size_t i = 0; i < req->n_response_parameters; i++) {
    const ResponseParameters *rp = req->response_parameters[i];
    if (!payload_size_ok(s->call, rp->size))
      return CRPC_INVALID_ARGUMENT;
    if (rp->compressed != NULL && rp->compressed->value)
      compress = true;
  }
  for (size_t i = 0; i < req->n_response_parameters; i++) {
    const ResponseParameters *rp = req->response_parameters[i];
    entry *e = push(s);
    if (e == NULL)
      return CRPC_RESOURCE_EXHAUSTED;
    e->size = rp->size;
    e->interval_us = rp->interval_us;
    e->compressed = rp->compressed != NULL && rp->compressed->value;
    e->req_compress = compress;
  }
  return CRPC_OK;
}

static bool arm(stream *s, int32_t us) {
  if (s->timer.fd < 0) {
    s->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->timer.fd < 0 || !watch_add(&s->timer)) {
      if (s->timer.fd >= 0)
        close(s->timer.fd);
      s->timer.fd = -1;
      return false;
    }
  }
  struct itimerspec it = {
      .it_value = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000L}};
  if (timerfd_settime(s->timer.fd, 0, &it, NULL) != 0)
    return false;
  s->waiting = true;
  return true;
}

/* Writes one response of |e->size| zero bytes: queued, never waiting (a
 * NONBLOCKING call on the loop's thread). */
static crpc_code write_entry(stream *s, const entry *e) {
  if (s->first_write && e->req_compress) {
    crpc_code code = set_response_compression(s->call, true);
    if (code != CRPC_OK)
      return code;
  }
  Grpc__Testing__Payload payload = GRPC__TESTING__PAYLOAD__INIT;
  StreamingOutputCallResponse resp =
      GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
  payload.body.len = (size_t)e->size;
  payload.body.data = calloc(1, payload.body.len + 1);
  if (payload.body.data == NULL)
    return CRPC_RESOURCE_EXHAUSTED;
  resp.payload = &payload;
  bool ok = crpc_call_write2(s->call, &resp.base,
                             e->compressed ? 0 : CRPC_WRITE_NO_COMPRESS);
  free(payload.body.data); /* packed by now */
  if (!ok)
    return CRPC_CANCELLED; /* the client is gone */
  s->first_write = false;
  return CRPC_OK;
}

/* Pump's result: CRPC_OK, a status that ends the call, or this. */
#define WAITING ((crpc_code)-1)

/*
 * Writes the queued responses in order until one must wait for its
 * interval (WAITING, its timer armed) or the queue is empty (CRPC_OK).
 * |flush|: the status is due now, so nothing waits any more (the
 * limitation at the top of this file).
 */
static crpc_code pump(stream *s, bool flush) {
  while (s->head < s->n) {
    entry *e = &s->q[s->head];
    if (e->is_status) {
      s->head++;
      crpc_call_set_status_message(s->call, e->message);
      return e->code;
    }
    if (e->interval_us > 0 && !flush) {
      if (s->waiting)
        return WAITING;
      if (!arm(s, e->interval_us)) {
        crpc_call_set_status_message(s->call, "cannot arm a timerfd");
        return CRPC_INTERNAL;
      }
      return WAITING;
    }
    s->head++;
    crpc_code code = write_entry(s, e);
    if (code != CRPC_OK)
      return code;
  }
  return CRPC_OK;
}

/* A response's interval has passed: write it and what follows. */
static void on_timer(watch *w) {
  stream *s = (stream *)((char *)w - offsetof(stream, timer));
  uint64_t expirations;
  if (s->dead || read(w->fd, &expirations, sizeof(expirations)) < 0)
    return;
  s->waiting = false;
  s->q[s->head].interval_us = 0; /* waited for */
  crpc_code code = pump(s, false);
  if (code == WAITING)
    return;
  if (s->deferred) {
    /* StreamingOutputCall: the last response is out, so is the status */
    crpc_call_on_cancel(s->call, NULL, NULL);
    log_rv("crpc_call_answer", crpc_call_answer(s->call, code));
    stream_kill(s);
  } else if (code != CRPC_OK) {
    /* a streaming-request call whose write failed (the client is gone):
     * its closing invocation comes and frees the state */
    s->head = s->n;
  }
}

/* ---- the handlers ---- */

static crpc_code a_empty_call(crpc_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage *resp, void *user_data) {
  return empty_call(call, (const void *)req, (void *)resp, user_data);
}

static crpc_code a_unary_call(crpc_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage *resp, void *user_data) {
  return unary_call(call, (const void *)req, (void *)resp, user_data);
}

static crpc_code a_cacheable_unary_call(crpc_call *call,
                                        const ProtobufCMessage *req,
                                        ProtobufCMessage *resp,
                                        void *user_data) {
  return cacheable_unary_call(call, (const void *)req, (void *)resp, user_data);
}

/* A deferred StreamingOutputCall was cancelled (or its deadline passed):
 * the answer is discarded, but it is what frees the call. */
static void output_cancelled(crpc_call *call, void *user_data) {
  stream *s = user_data;
  log_rv("crpc_call_answer", crpc_call_answer(call, CRPC_CANCELLED));
  stream_kill(s);
}

static crpc_code a_streaming_output_call(crpc_call *call,
                                         const ProtobufCMessage *msg,
                                         ProtobufCMessage *resp,
                                         void *user_data) {
  (void)resp, (void)user_data;
  const StreamingOutputCallRequest *req = (const void *)msg;
  crpc_code code;
  echo_metadata(call);
  if (echo_status(call, req->response_status, &code))
    return code;
  stream *s = stream_new(call);
  if (s == NULL)
    return CRPC_RESOURCE_EXHAUSTED;
  code = enqueue(s, req);
  if (code == CRPC_OK)
    code = pump(s, false);
  if (code != WAITING) { /* all written now: the status goes at once */
    stream_kill(s);
    return code;
  }
  /* a response must wait for its interval: answered from on_timer */
  int rv = crpc_call_defer(call);
  if (rv == 0)
    rv = crpc_call_on_cancel(call, output_cancelled, s);
  if (rv != 0) {
    log_rv("crpc_call_defer", rv);
    if (crpc_call_answer(call, CRPC_INTERNAL) != 0) {
      stream_kill(s); /* not deferred: our return is the status */
      return CRPC_INTERNAL;
    }
  }
  s->deferred = true;
  return CRPC_OK; /* ignored: deferred */
}

/* The state of a streaming-request call, made on its first invocation
 * (which echoes the metadata: before any response is written). NULL when
 * out of memory. */
static stream *call_stream(crpc_call *call) {
  stream *s = crpc_call_user_data(call);
  if (s == NULL && (s = stream_new(call)) != NULL) {
    crpc_call_set_user_data(call, s);
    echo_metadata(call);
  }
  return s;
}

/* Ends a streaming-request call's state with the invocation returning
 * |code|: an invocation returning non-OK ends the call, and no closing
 * one follows then. */
static crpc_code stream_end(stream *s, crpc_code code) {
  crpc_call_set_user_data(s->call, NULL);
  stream_kill(s);
  return code;
}

/* StreamingInputCall: once per request, then once with req NULL. */
static crpc_code a_streaming_input_call(crpc_call *call,
                                        const ProtobufCMessage *msg,
                                        ProtobufCMessage *resp,
                                        void *user_data) {
  (void)user_data;
  stream *s = call_stream(call);
  if (s == NULL)
    return CRPC_RESOURCE_EXHAUSTED;
  if (msg != NULL) {
    const StreamingInputCallRequest *req = (const void *)msg;
    crpc_code code = check_compression(call, req->expect_compressed);
    if (req->payload != NULL)
      s->total += (int64_t)req->payload->body.len;
    return code == CRPC_OK ? CRPC_OK : stream_end(s, code);
  }
  if (resp == NULL) /* cancelled: only the state to free */
    return stream_end(s, CRPC_CANCELLED);
  int64_t total = s->total;
  stream_end(s, CRPC_OK);
  if (total > INT32_MAX) {
    crpc_call_set_status_message(call, "aggregated payload too large");
    return CRPC_OUT_OF_RANGE;
  }
  ((StreamingInputCallResponse *)resp)->aggregated_payload_size =
      (int32_t)total;
  return CRPC_OK;
}

/* FullDuplexCall: each request's responses as soon as they may go. */
static crpc_code a_full_duplex_call(crpc_call *call,
                                    const ProtobufCMessage *msg,
                                    ProtobufCMessage *resp, void *user_data) {
  (void)resp, (void)user_data;
  stream *s = call_stream(call);
  if (s == NULL)
    return CRPC_RESOURCE_EXHAUSTED;
  if (msg == NULL) { /* half-closed (or cancelled): the status is due */
    crpc_code code =
        crpc_call_is_cancelled(call) ? CRPC_CANCELLED : pump(s, true);
    return stream_end(s, code);
  }
  const StreamingOutputCallRequest *req = (const void *)msg;
  crpc_code code;
  if (echo_status(call, req->response_status, &code)) {
    pump(s, true); /* what the earlier requests asked for goes first */
    return stream_end(s, code);
  }
  code = enqueue(s, req);
  if (code == CRPC_OK)
    code = pump(s, false);
  if (code == WAITING || code == CRPC_OK)
    return CRPC_OK;
  return stream_end(s, code);
}

/* HalfDuplexCall: every request first, then every response, each Echo
 * Status in its place. */
static crpc_code a_half_duplex_call(crpc_call *call,
                                    const ProtobufCMessage *msg,
                                    ProtobufCMessage *resp, void *user_data) {
  (void)resp, (void)user_data;
  stream *s = call_stream(call);
  if (s == NULL)
    return CRPC_RESOURCE_EXHAUSTED;
  if (msg == NULL) {
    crpc_code code =
        crpc_call_is_cancelled(call) ? CRPC_CANCELLED : pump(s, true);
    return stream_end(s, code);
  }
  const StreamingOutputCallRequest *req = (const void *)msg;
  const Grpc__Testing__EchoStatus *es = req->response_status;
  if (es != NULL && es->code != 0) {
    entry *e = push(s);
    if (e == NULL)
      return stream_end(s, CRPC_RESOURCE_EXHAUSTED);
    e->is_status = true;
    e->code = es->code > 0 && es->code <= CRPC_UNAUTHENTICATED
                  ? (crpc_code)es->code
                  : CRPC_UNKNOWN; /* as echo_status() */
    e->message = es->message ? strdup(es->message) : NULL;
    return CRPC_OK;
  }
  crpc_code code = enqueue(s, req);
  return code == CRPC_OK ? CRPC_OK : stream_end(s, code);
}

int interop_register_async(crpc_server *server) {
  static const struct {
    const char *name;
    crpc_handler h;
  } handlers[] = {
      {"EmptyCall", a_empty_call},
      {"UnaryCall", a_unary_call},
      {"CacheableUnaryCall", a_cacheable_unary_call},
      {"StreamingOutputCall", a_streaming_output_call},
      {"StreamingInputCall", a_streaming_input_call},
      {"FullDuplexCall", a_full_duplex_call},
      {"HalfDuplexCall", a_half_duplex_call},
      /* UnimplementedCall is not registered: UNIMPLEMENTED */
  };
  const crpc_service *svc = &grpc__testing__test_service__crpc_service;
  for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
    const crpc_method *m = NULL;
    for (size_t j = 0; j < svc->n_methods; j++) {
      const char *slash = strrchr(svc->methods[j].path, '/');
      if (slash != NULL && strcmp(slash + 1, handlers[i].name) == 0)
        m = &svc->methods[j];
    }
    if (m == NULL)
      return CRPC_EINVAL;
    int rv = crpc_server_register(server, m, handlers[i].h,
                                  CRPC_HANDLER_NONBLOCKING, NULL);
    if (rv != 0)
      return rv;
  }
  return 0;
}

/* ---- the loop ---- */

static bool stopping;

static void on_signal(watch *w) {
  struct signalfd_siginfo si;
  if (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
    stopping = true;
}

static void on_crpc(watch *w) { (void)w; } /* run_once below does it */

int interop_run_async(crpc_loop *loop, crpc_server *server, int sigfd) {
  ep = epoll_create1(EPOLL_CLOEXEC);
  watch crpc_w = {.fd = crpc_loop_fd(loop), .ready = on_crpc};
  watch sig_w = {.fd = sigfd, .ready = on_signal};
  if (ep < 0 || !watch_add(&crpc_w) || !watch_add(&sig_w)) {
    fprintf(stderr, "interop server: cannot set up epoll\n");
    return 1;
  }
  while (!stopping) {
    struct epoll_event got[16];
    int64_t t = crpc_loop_timeout_ms(loop); /* -1: no timer of crpc's */
    int n = epoll_wait(ep, got, 16, t < 0 || t > 60000 ? 60000 : (int)t);
    if (n < 0 && errno != EINTR) {
      fprintf(stderr, "interop server: epoll_wait: %s\n", strerror(errno));
      break;
    }
    /* our timers first, crpc last: what crpc's callbacks end in its turn
     * is only buried after the batch */
    for (int i = 0; i < n; i++)
      ((watch *)got[i].data.ptr)->ready(got[i].data.ptr);
    int rv = crpc_loop_run_once(loop, 0); /* never blocks */
    if (rv != 0)
      log_rv("crpc_loop_run_once", rv);
    bury();
  }
  /* shutdown turns the loop itself until the calls are over; deferred
   * ones still waiting get their cancel notice, which answers them */
  crpc_server_shutdown(server, 1000);
  bury();
  close(ep);
  return 0;
}
