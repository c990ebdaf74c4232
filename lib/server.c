/*
 * server.c: listeners, reactor threads and method dispatch. Every reactor
 * thread watches every listener (EPOLLEXCLUSIVE), so an accepted
 * connection stays on the thread that accepted it, with no hand-off.
 * Blocking handlers run on the worker pool; CRPC_HANDLER_NONBLOCKING unary
 * handlers run inline on the reactor when the request is complete.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "call_internal.h"
#include "h2.h"
#include "peer.h"
#include "server_ext.h"
#include "sock.h"
#include "tls_internal.h"

#define MAX_LISTENERS 16
#define ACCEPTS_PER_ROUND 64
/* Connections a thread holds, accepted but not started, while every slot
 * of max_connections is taken (see park()). */
#define PARK_MAX 32

struct crpc__server_method {
  crpc_method method;
  crpc_handler handler;          /* or */
  crpc_method_trampoline tramp;  /* with |handlers| */
  const void *handlers;
  unsigned flags;
  void *user_data;
  crpc_server *srv; /* for the auth hook, read by handler threads */
  atomic_size_t resp_estimate; /* recent unary response size (the most
                                  of the last ones, decaying) */
};

typedef struct listener {
  int fd;
  int port;
  void *tls; /* crpc__tls ctx or NULL */
} listener;

typedef struct srv_thread srv_thread;
/* An accepted connection waiting for a slot under max_connections. */
typedef struct parked {
  int fd;
  int lidx;         /* its listener */
  int64_t until_ms; /* refused then */
} parked;

typedef struct lwatch { /* one listener as watched by one thread */
  crpc__io io;
  srv_thread *t;
  int idx;
  crpc__timer pause; /* out of descriptors: accept again later */
} lwatch;

struct srv_thread {
  crpc_server *srv;
  crpc__loop *loop;
  pthread_t tid;
  lwatch lio[MAX_LISTENERS];
  crpc__conn *conns;
  size_t nconns;
  bool draining;
  bool reported;
  crpc__timer grace_timer;
  crpc__task shutdown_task;
  int64_t grace_ms;
  bool borrowed_loop;    /* the program's crpc_loop: no thread of ours */
  parked park[PARK_MAX]; /* oldest first */
  unsigned npark;
  crpc__timer park_timer;
  crpc__task admit_task; /* admit_parked(), posted when a slot frees */
  atomic_bool admit_queued;
  crpc__task evict_task; /* evict_for_others() */
  atomic_bool evict_queued;
  crpc__task drain_task; /* the server's output budget drained */
  atomic_bool drain_queued;
};

enum { SRV_NEW, SRV_STARTED, SRV_STOPPING, SRV_STOPPED };

struct crpc_server {
  crpc_mem mem; /* the user's, copied: everything the server makes */
  crpc_server_opts opts;
  size_t max_recv;
  listener listeners[MAX_LISTENERS];
  int nlisteners;
  crpc__server_method *methods;
  size_t nmethods, capmethods;
  void **tables; /* copies of typed handler tables */
  size_t ntables;
  unsigned nthreads;
  srv_thread *threads;
  crpc__workers *workers;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int state;
  unsigned threads_drained;
  unsigned threads_unwatched;
  crpc_auth_hook auth_hook; /* [const after start] */
  void *auth_ud;
  atomic_uint nconns;       /* open connections (or slots taken), every
                               thread */
  atomic_uint nparked;      /* parked connections, every thread */
  atomic_uint evict_wanted; /* idle connections other threads should
                               close to make room for parked ones */
  crpc__budget out;         /* output budget over every connection */
  size_t max_conn_out;
  int64_t stall_ms;         /* write-stall timeout; 0: off */
  const crpc_service **svcs; /* registered services, for reflection */
  size_t nsvcs;
  crpc__server_ext *ext; /* built-ins' state (server_ext.h) */
};

static void server_out_drained(crpc__budget *b);

/* ---- registration ---- */

int crpc_server_new(crpc_server **out, const crpc_server_opts *opts) {
  crpc_server_opts none = {0};
  crpc_mem mem;
  if (!out)
    return CRPC_EINVAL;
  crpc__mem_init(&mem, opts ? opts->mem : NULL);
  crpc_server *s = crpc__calloc(&mem, 1, sizeof *s);
  if (!s)
    return CRPC_ENOMEM;
  s->mem = mem;
  s->opts = opts ? *opts : none;
  s->opts.mem = NULL; /* copied, never kept */
  s->max_recv = s->opts.max_recv_msg_size ? s->opts.max_recv_msg_size
                                          : CRPC__DEFAULT_MAX_RECV;
  if (!s->opts.max_concurrent_streams)
    s->opts.max_concurrent_streams = 100;
  if (!s->opts.max_header_list_size)
    s->opts.max_header_list_size = 16 * 1024;
  if (!s->opts.handshake_timeout_ms)
    s->opts.handshake_timeout_ms = 20000;
  if (!s->opts.max_ping_strikes)
    s->opts.max_ping_strikes = 10;
  s->max_conn_out = s->opts.max_conn_output_bytes
                        ? s->opts.max_conn_output_bytes
                        : CRPC__DEFAULT_CONN_OUTPUT;
  s->out.limit = s->opts.max_output_bytes ? s->opts.max_output_bytes
                                          : CRPC__DEFAULT_SERVER_OUTPUT;
  s->out.on_drained = server_out_drained;
  s->out.owner = s;
  s->stall_ms = s->opts.write_stall_timeout_ms == 0
                    ? CRPC__DEFAULT_WRITE_STALL_MS
                    : (s->opts.write_stall_timeout_ms < 0
                           ? 0
                           : s->opts.write_stall_timeout_ms);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  *out = s;
  return 0;
}

static crpc__server_method *find_method(crpc_server *s, const char *path,
                                        size_t len) {
  for (size_t i = 0; i < s->nmethods; i++) {
    const char *p = s->methods[i].method.path;
    if (strlen(p) == len && memcmp(p, path, len) == 0)
      return &s->methods[i];
  }
  return NULL;
}

static int add_method(crpc_server *s, const crpc_method *m, crpc_handler h,
                      crpc_method_trampoline t, const void *handlers,
                      unsigned flags, void *ud) {
  if (!s || !m || !m->path || m->path[0] != '/' || !m->input || !m->output ||
      (!h && !t))
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  if (find_method(s, m->path, strlen(m->path)))
    return CRPC_EEXIST;
  if (s->nmethods == s->capmethods) {
    size_t cap = s->capmethods ? 2 * s->capmethods : 16;
    crpc__server_method *nm = crpc__realloc(&s->mem, s->methods,
                                            cap * sizeof *nm);
    if (!nm)
      return CRPC_ENOMEM;
    s->methods = nm;
    s->capmethods = cap;
  }
  crpc__server_method *sm = &s->methods[s->nmethods++];
  sm->method = *m;
  sm->handler = h;
  sm->tramp = t;
  sm->handlers = handlers;
  sm->flags = flags;
  sm->user_data = ud;
  sm->srv = s;
  return 0;
}

int crpc_server_register(crpc_server *s, const crpc_method *m, crpc_handler h,
                         unsigned flags, void *user_data) {
  if (!h)
    return CRPC_EINVAL;
  return add_method(s, m, h, NULL, NULL, flags, user_data);
}

int crpc_server_register_service(crpc_server *s, const crpc_service *svc,
                                 const void *handlers, unsigned flags,
                                 void *user_data) {
  if (!s || !svc || !handlers || !svc->methods || !svc->trampolines)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  for (size_t i = 0; i < svc->n_methods; i++)
    if (find_method(s, svc->methods[i].path, strlen(svc->methods[i].path)))
      return CRPC_EEXIST;
  void **tables = crpc__realloc(&s->mem, s->tables,
                                (s->ntables + 1) * sizeof *tables);
  if (!tables)
    return CRPC_ENOMEM;
  s->tables = tables;
  void *copy = crpc__malloc(&s->mem, svc->handlers_size);
  if (!copy)
    return CRPC_ENOMEM;
  memcpy(copy, handlers, svc->handlers_size);
  s->tables[s->ntables++] = copy;
  const crpc_service **svcs =
      crpc__realloc(&s->mem, s->svcs, (s->nsvcs + 1) * sizeof *svcs);
  if (!svcs)
    return CRPC_ENOMEM;
  s->svcs = svcs;
  s->svcs[s->nsvcs++] = svc;
  for (size_t i = 0; i < svc->n_methods; i++) {
    int rv = add_method(s, &svc->methods[i], NULL, svc->trampolines[i], copy,
                        flags, user_data);
    if (rv != 0)
      return rv;
  }
  return 0;
}

void crpc__server_ext_add(crpc_server *s, crpc__server_ext *e) {
  e->next = s->ext;
  s->ext = e;
}

crpc__server_ext *crpc__server_ext_find(const crpc_server *s,
                                        const void *key) {
  for (crpc__server_ext *e = s->ext; e; e = e->next)
    if (e->key == key)
      return e;
  return NULL;
}

size_t crpc__server_services(const crpc_server *s,
                             const crpc_service *const **out) {
  *out = s->svcs;
  return s->nsvcs;
}

const char *crpc__server_method_path(const crpc_server *s, size_t i) {
  return i < s->nmethods ? s->methods[i].method.path : NULL;
}

int crpc_server_listen(crpc_server *s, const char *addr,
                       const crpc_tls_server_opts *tls, int *port_out) {
  crpc__addr addrs[4];
  if (!s || !addr)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  if (s->nlisteners == MAX_LISTENERS)
    return CRPC_ENOMEM;
  /* ":port" means every interface */
  char buf[300];
  if (addr[0] == ':' && strlen(addr) < 200) {
    snprintf(buf, sizeof buf, "[::]%s", addr);
    addr = buf;
  }
  int n = crpc__resolve(addr, true, addrs, 1, NULL, &s->mem);
  if (n < 0)
    return n == CRPC_ENOMEM ? n : CRPC_ETARGET;
  void *ctx = NULL;
  if (tls) {
    const char *why = NULL;
    int rv = crpc__tls_server_ctx_new(tls, &s->mem, &ctx, &why);
    if (rv != 0) {
      crpc__log_error("TLS listener %s: %s", addr, why ? why : "failed");
      return rv;
    }
  }
  int port = 0;
  int fd = crpc__sock_listen(&addrs[0], &port);
  if (fd < 0 && addr == buf) {
    /* no IPv6: fall back to IPv4 any */
    snprintf(buf, sizeof buf, "0.0.0.0%s", strrchr(buf, ':'));
    if (crpc__resolve(buf, true, addrs, 1, NULL, &s->mem) > 0)
      fd = crpc__sock_listen(&addrs[0], &port);
  } else if (fd >= 0 && addr == buf) {
    /* [::] with V6ONLY: add the IPv4 side on the same port */
    char v4[64];
    snprintf(v4, sizeof v4, "0.0.0.0:%d", port);
    crpc__addr a4;
    if (crpc__resolve(v4, true, &a4, 1, NULL, &s->mem) > 0 &&
        s->nlisteners + 1 < MAX_LISTENERS) {
      int fd4 = crpc__sock_listen(&a4, NULL);
      if (fd4 >= 0) {
        s->listeners[s->nlisteners].fd = fd4;
        s->listeners[s->nlisteners].port = port;
        s->listeners[s->nlisteners].tls = ctx; /* shared with the v6 one */
        s->nlisteners++;
      }
    }
  }
  if (fd < 0) {
    if (ctx)
      crpc__tls_ctx_free(ctx);
    return fd;
  }
  s->listeners[s->nlisteners].fd = fd;
  s->listeners[s->nlisteners].port = port;
  s->listeners[s->nlisteners].tls = ctx;
  s->nlisteners++;
  if (port_out)
    *port_out = port;
  return 0;
}

int crpc_server_set_auth_hook(crpc_server *s, crpc_auth_hook hook,
                              void *user_data) {
  if (!s)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  s->auth_hook = hook;
  s->auth_ud = user_data;
  return 0;
}

int crpc_server_reload_tls(crpc_server *s) {
  int rv = 0;
  if (!s)
    return CRPC_EINVAL;
  for (int i = 0; i < s->nlisteners; i++) {
    void *ctx = s->listeners[i].tls;
    const char *why = NULL;
    if (!ctx || (i > 0 && s->listeners[i - 1].tls == ctx))
      continue; /* a [::] listener's IPv4 twin shares the context */
    int r = crpc__tls_ctx_reload(ctx, &why);
    if (r != 0) {
      crpc__log_error("TLS reload (port %d): %s", s->listeners[i].port,
                      why ? why : crpc_strerror(r));
      rv = CRPC_ETLS;
    }
  }
  return rv;
}

/* ---- responses [loop] ---- */

#define NV_LIT(k, v)                                                           \
  (nghttp2_nv) {                                                               \
    (uint8_t *)(k), (uint8_t *)(v), sizeof(k) - 1, strlen(v),                  \
        NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE           \
  }

/* Status fields of a trailer block; strings live in the call's nv_arena. */
static size_t status_nv(crpc_call *c, nghttp2_nv *nva) {
  /* static strings: the status must go out even when memory does not */
  static const char *const codes[] = {"0",  "1",  "2",  "3",  "4",  "5",
                                      "6",  "7",  "8",  "9",  "10", "11",
                                      "12", "13", "14", "15", "16"};
  size_t n = 0;
  unsigned code = (unsigned)c->status.code;
  nva[n++] = NV_LIT("grpc-status", codes[code < 17 ? code : 2]);
  if (c->status.message && c->status.message[0]) {
    size_t elen;
    char *enc = crpc__percent_encode_m(&c->mem, c->status.message,
                                       strlen(c->status.message), &elen);
    char *copy = enc ? crpc__arena_alloc(&c->nv_arena, elen + 1) : NULL;
    if (copy) {
      memcpy(copy, enc, elen + 1);
      nva[n++] = NV_LIT("grpc-message", copy);
    }
    crpc__free(&c->mem, enc);
  }
  if (c->status.details_len) {
    char *b64;
    size_t blen;
    if (crpc__base64_encode_m(&c->mem, c->status.details,
                              c->status.details_len, &b64, &blen) == 0) {
      char *copy = crpc__arena_alloc(&c->nv_arena, blen + 1);
      if (copy) {
        memcpy(copy, b64, blen + 1);
        nva[n++] = NV_LIT("grpc-status-details-bin", copy);
      }
      crpc__free(&c->mem, b64);
    }
  }
  return n;
}

size_t crpc__server_trailers(crpc_call *c, nghttp2_nv *nva, size_t max) {
  pthread_mutex_lock(&c->mu);
  size_t n = status_nv(c, nva);
  n += crpc__md_to_nv(c, c->trailers, nva + n, max - n);
  if (c->md_oom) { /* not the trailers the handler meant: say so */
    crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                     "out of memory encoding the response metadata");
    n = status_nv(c, nva);
  }
  pthread_mutex_unlock(&c->mu);
  return n;
}

static size_t response_headers(crpc_call *c, nghttp2_nv *nva, size_t max) {
  size_t n = 0;
  nva[n++] = NV_LIT(":status", "200");
  nva[n++] = NV_LIT("content-type", "application/grpc");
  if (c->send_enc != CRPC__ENC_IDENTITY)
    nva[n++] = NV_LIT("grpc-encoding", crpc__encoding_name(c->send_enc));
  nva[n++] = NV_LIT("grpc-accept-encoding", crpc__accept_encoding());
  n += crpc__md_to_nv(c, c->send_md, nva + n, max - n);
  return n;
}

/* nghttp2 could not take a response (out of memory): reset the stream
 * (INTERNAL_ERROR: the client ends INTERNAL) so the client does not wait
 * for it; if even that fails, the connection goes. */
static void submit_failed(crpc_call *c, int rv) {
  crpc__log_warn("%s: cannot send the response: %s", c->peer,
                 nghttp2_strerror(rv));
  if (nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE,
                                c->stream_id, NGHTTP2_INTERNAL_ERROR) != 0)
    crpc__conn_close(c->conn, CRPC_RESOURCE_EXHAUSTED, "out of memory");
}

static void abort_call(crpc_call *c, crpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Submits whatever the call has ready: headers, data, trailers. */
static void pump(crpc_call *c) {
  crpc__conn *conn = c->conn;
  if (!conn || conn->dead)
    return;
  pthread_mutex_lock(&c->mu);
  bool done = c->done, closed = c->send_closed, data = c->sendq.head != NULL;
  pthread_mutex_unlock(&c->mu);
  if (done)
    return;
  if (!c->headers_sent) {
    nghttp2_nv nva[128];
    if (closed && !data) {
      /* trailers-only: one HEADERS frame with the status */
      size_t n = 0;
      nva[n++] = NV_LIT(":status", "200");
      nva[n++] = NV_LIT("content-type", "application/grpc");
      pthread_mutex_lock(&c->mu);
      c->eos_sent = true;
      n += status_nv(c, nva + n);
      n += crpc__md_to_nv(c, c->send_md, nva + n, 128 - n);
      n += crpc__md_to_nv(c, c->trailers, nva + n, 128 - n);
      if (c->md_oom) {
        crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                         "out of memory encoding the response metadata");
        n = 2 + status_nv(c, nva + 2);
      }
      pthread_mutex_unlock(&c->mu);
      int rv = nghttp2_submit_response(conn->session, c->stream_id, nva, n,
                                       NULL);
      c->headers_sent = true;
      if (rv != 0)
        submit_failed(c, rv);
    } else if (data || closed) {
      pthread_mutex_lock(&c->mu);
      size_t n = response_headers(c, nva, 128);
      pthread_mutex_unlock(&c->mu);
      if (c->md_oom) { /* trailers-only RESOURCE_EXHAUSTED instead */
        abort_call(c, CRPC_RESOURCE_EXHAUSTED,
                   "out of memory encoding the response metadata");
        return;
      }
      nghttp2_data_provider dp = {.source.ptr = c,
                                  .read_callback = crpc__call_data_read};
      int rv = nghttp2_submit_response(conn->session, c->stream_id, nva, n,
                                       &dp);
      c->headers_sent = true;
      if (rv != 0)
        submit_failed(c, rv);
    }
  } else {
    nghttp2_session_resume_data(conn->session, c->stream_id);
  }
  crpc__conn_schedule_flush(conn);
}

/* Ends the call now with |code|: the handler (if running) sees a cancelled
 * call, its later writes fail and its return value is ignored. */
static void abort_call(crpc_call *c, crpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void abort_call(crpc_call *c, crpc_code code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&c->mu);
  if (c->send_closed && c->eos_sent) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  crpc__status_set(&c->status, code, "%s", msg);
  c->send_closed = true;
  c->cancelled = true;
  crpc__call_sendq_clear(c);
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  crpc__log_debug("%s: %s %s", c->peer, crpc_code_name(code), msg);
  crpc__server_fire_cancel(c);
  pump(c);
}

/* An HTTP-level refusal before any gRPC exchange (415, 405). */
static void http_error(crpc_call *c, const char *status) {
  nghttp2_nv nva[2];
  nva[0] = NV_LIT(":status", status);
  nva[1] = NV_LIT("content-type", "text/plain");
  pthread_mutex_lock(&c->mu);
  c->send_closed = c->eos_sent = true;
  c->cancelled = true;
  pthread_mutex_unlock(&c->mu);
  c->headers_sent = true;
  int rv = nghttp2_submit_response(c->conn->session, c->stream_id, nva, 2,
                                   NULL);
  if (rv != 0)
    submit_failed(c, rv);
  crpc__conn_schedule_flush(c->conn);
}

/* ---- handlers ---- */

static crpc_code invoke(crpc_call *c, const ProtobufCMessage *req,
                        ProtobufCMessage *resp) {
  crpc__server_method *h = c->handler;
  if (h->tramp)
    return h->tramp(c, h->handlers, req, resp, h->user_data);
  return h->handler(c, req, resp, h->user_data);
}

static ProtobufCMessage *new_response(crpc_call *c) {
  const ProtobufCMessageDescriptor *d = c->method->output;
  ProtobufCMessage *resp = crpc__arena_alloc(&c->arena, d->sizeof_message);
  if (resp)
    d->message_init(resp);
  return resp;
}

/* The size of unary responses, per method: the dispatch gate's guess of
 * what a handler about to run will queue (the most of the recent ones,
 * decaying by an eighth per response). */
static void note_response_size(crpc__server_method *h, size_t n) {
  size_t est = atomic_load(&h->resp_estimate);
  size_t next = n > est - est / 8 ? n : est - est / 8;
  atomic_store(&h->resp_estimate, next);
}

/* After the handler: queue the response and the status [any thread]. */
static void complete(crpc_call *c, crpc_code code, ProtobufCMessage *resp) {
  crpc__msgbuf *m = NULL;
  pthread_mutex_lock(&c->mu);
  c->handler_returned = true; /* its cancel callback's data may go now */
  c->cancel_cb = NULL;
  while (c->cancel_cb_running && !crpc__loop_on_thread(c->loop))
    pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  if (code == CRPC_OK && resp) {
    int rv = crpc__frame_message(&c->mem, resp, c->send_enc, c->max_send,
                                 &m);
    if (rv != 0) {
      code = rv == CRPC_ETOOBIG ? CRPC_RESOURCE_EXHAUSTED : CRPC_INTERNAL;
      crpc_call_set_status_message(
          c, rv == CRPC_ETOOBIG ? "response larger than the send limit"
                                : "cannot encode the response");
    }
  }
  bool had_resp = resp != NULL;
  if (had_resp) {
    /* the response is packed: what the handler built for it (in the
     * arena) goes now, so a response waiting for a slow reader is held
     * once, not twice */
    crpc__arena_free(&c->arena);
    resp = NULL;
    if (m && c->method->kind == CRPC_UNARY)
      note_response_size(c->handler, m->len);
  }
  if (c->deadline_ms && crpc__now_ms() >= c->deadline_ms) {
    /* past the deadline the handler's answer no longer counts */
    code = CRPC_DEADLINE_EXCEEDED;
    crpc_call_set_status_message(c, "deadline exceeded");
    crpc__free(&c->mem, m);
    m = NULL;
  }
  pthread_mutex_lock(&c->mu);
  if (!c->send_closed) {
    if (m)
      crpc__call_sendq_push(c, m);
    else if (code == CRPC_OK && !had_resp &&
             (c->method->kind == CRPC_UNARY ||
              c->method->kind == CRPC_CLIENT_STREAMING))
      code = CRPC_INTERNAL;
    m = NULL;
    c->status.code = code;
    c->send_closed = true;
    crpc__call_kick_locked(c);
  }
  pthread_mutex_unlock(&c->mu);
  crpc__free(&c->mem, m);
}

/* The server's auth hook, before the handler and on its thread. False when
 * it refused the call (which is then complete). */
static bool authorized(crpc_call *c) {
  crpc_server *s = c->handler->srv;
  if (!s->auth_hook)
    return true;
  crpc_code code = s->auth_hook(c, s->auth_ud);
  if (code == CRPC_OK)
    return true;
  if ((unsigned)code > CRPC_UNAUTHENTICATED)
    code = CRPC_UNKNOWN;
  pthread_mutex_lock(&c->mu);
  bool has_msg = c->status.message != NULL;
  pthread_mutex_unlock(&c->mu);
  if (!has_msg)
    crpc_call_set_status_message(c, "request rejected by the server's "
                                    "authorization check");
  complete(c, code, NULL);
  return false;
}

/* Reads the single request of a unary / server-streaming call; crpc frees
 * it after the handler, so it comes from the server's allocator. */
static bool read_request(crpc_call *c, ProtobufCMessage **req) {
  if (crpc__call_read(c, req, &c->pbc))
    return true;
  pthread_mutex_lock(&c->mu);
  bool cancelled = c->cancelled || c->cancel_requested || c->done;
  pthread_mutex_unlock(&c->mu);
  if (!cancelled) {
    crpc_call_set_status_message(c, "missing request message");
    complete(c, CRPC_INTERNAL, NULL);
  }
  return false;
}

static void run_handler(void *arg) {
  crpc_call *c = arg;
  ProtobufCMessage *req = NULL, *resp = NULL;
  crpc_method_kind kind = c->method->kind;
  if (!authorized(c))
    goto out;
  if (kind == CRPC_UNARY || kind == CRPC_SERVER_STREAMING) {
    if (!read_request(c, &req))
      goto out;
    if (kind == CRPC_UNARY) {
      crpc__msgbuf *extra;
      if (crpc__call_next_message(c, &extra)) {
        crpc__free(&c->mem, extra);
        crpc_call_set_status_message(c, "more than one request message for "
                                        "a unary method");
        complete(c, CRPC_INTERNAL, NULL);
        goto out;
      }
    }
  }
  if (kind == CRPC_UNARY || kind == CRPC_CLIENT_STREAMING) {
    resp = new_response(c);
    if (!resp) {
      complete(c, CRPC_RESOURCE_EXHAUSTED, NULL);
      goto out;
    }
  }
  complete(c, invoke(c, req, resp), resp);
out:
  if (req)
    protobuf_c_message_free_unpacked(req, &c->pbc);
  crpc__call_unref(c); /* the worker's reference */
}

/* NONBLOCKING unary: the whole request is here; run on the reactor. */
static void run_inline(crpc_call *c);
static void dispatch(crpc_call *c);

/*
 * The output budget's gate on new handlers [loop]: none while the
 * connection's budget is full, nor while the server's is and this
 * connection has output queued; and a unary handler waits while those
 * already running would, by the method's recent response size, fill the
 * connection's budget (one always may run). A client that asks for large
 * responses and never reads them then holds a budget's worth of them, not
 * one per stream.
 */
static bool gate_closed(crpc__conn *conn, const crpc_call *c) {
  size_t used = atomic_load(&conn->out.used);
  if (crpc__budget_full(&conn->out))
    return true;
  if (conn->out_parent && crpc__budget_full(conn->out_parent) && used > 0)
    return true;
  if (c->method->kind != CRPC_UNARY)
    return false;
  size_t running = atomic_load(&conn->unary_inflight);
  size_t est = atomic_load(&c->handler->resp_estimate);
  return running > 0 && est > 0 &&
         (running >= (conn->out.limit - used) / est);
}

/* Holds the call back until the gate opens (it keeps its request; its
 * deadline still runs). */
static void pend(crpc_call *c) {
  crpc__conn *conn = c->conn;
  c->pending = true;
  c->pend_next = NULL;
  if (conn->pend_tail)
    conn->pend_tail->pend_next = c;
  else
    conn->pend_head = c;
  conn->pend_tail = c;
}

static void unpend(crpc_call *c) {
  crpc__conn *conn = c->conn;
  if (!c->pending || !conn)
    return;
  crpc_call **pp = &conn->pend_head, *prev = NULL;
  while (*pp && *pp != c) {
    prev = *pp;
    pp = &(*pp)->pend_next;
  }
  if (*pp)
    *pp = c->pend_next;
  if (conn->pend_tail == c)
    conn->pend_tail = prev;
  c->pending = false;
  c->pend_next = NULL;
}

/* Starts held-back calls, oldest first, while the gate lets them [loop]. */
static void run_pending(crpc__conn *conn) {
  while (conn->pend_head && !conn->dead) {
    crpc_call *c = conn->pend_head;
    if (!c->send_closed && gate_closed(conn, c))
      return;
    unpend(c);
    if (c->send_closed || c->done)
      continue; /* ended while it waited (deadline, reset) */
    crpc__call_ref(c);
    if (c->inline_unary)
      run_inline(c);
    else
      dispatch(c);
    crpc__call_unref(c);
  }
}

static void on_conn_drained(crpc__conn *conn) { run_pending(conn); }

/* The server's budget drained: every thread wakes its writers and gates. */
static void thread_drained(void *arg) {
  srv_thread *t = arg;
  atomic_store(&t->drain_queued, false);
  for (crpc__conn *c = t->conns; c; c = c->next)
    crpc__conn_drained(c);
}

static void server_out_drained(crpc__budget *b) {
  crpc_server *s = b->owner;
  for (unsigned i = 0; s->threads && i < s->nthreads; i++) {
    srv_thread *t = &s->threads[i];
    if (atomic_exchange(&t->drain_queued, true))
      continue;
    t->drain_task.fn = thread_drained;
    t->drain_task.arg = t;
    crpc__loop_post_task(t->loop, &t->drain_task);
  }
}

static void run_inline(crpc_call *c) {
  crpc__msgbuf *m;
  crpc_status st = {0};
  ProtobufCMessage *req = NULL, *resp;
  pthread_mutex_lock(&c->mu);
  m = crpc__msgq_pop(&c->recvq);
  bool extra = c->recvq.head != NULL;
  pthread_mutex_unlock(&c->mu);
  if (m)
    crpc__call_consume(c, m->len + 5);
  if (!m || extra) {
    crpc__free(&c->mem, m);
    abort_call(c, CRPC_INTERNAL, "%s", m ? "more than one request message"
                                         : "missing request message");
    return;
  }
  if (!authorized(c)) {
    crpc__free(&c->mem, m);
    return;
  }
  crpc_code code = crpc__unframe_message(&c->mem, c->method->input, &c->pbc,
                                         m, c->recv_enc, c->max_recv, &req,
                                         &st);
  crpc__free(&c->mem, m);
  if (code != CRPC_OK) {
    abort_call(c, code, "%s", crpc_status_message(&st));
    crpc_status_clear(&st);
    return;
  }
  resp = c->method->kind == CRPC_UNARY ? new_response(c) : NULL;
  c->in_inline = true;
  code = resp || c->method->kind != CRPC_UNARY ? invoke(c, req, resp)
                                               : CRPC_RESOURCE_EXHAUSTED;
  c->in_inline = false;
  protobuf_c_message_free_unpacked(req, &c->pbc);
  pthread_mutex_lock(&c->mu);
  bool deferred = c->deferred;
  if (deferred)
    c->deferred_resp = resp; /* crpc_call_answer() completes it */
  pthread_mutex_unlock(&c->mu);
  if (!deferred)
    complete(c, code, resp);
}

int crpc_call_defer(crpc_call *c) {
  if (!c || !c->is_server)
    return CRPC_EINVAL;
  if (!c->in_inline || !crpc__loop_on_thread(c->loop))
    return CRPC_ESTATE; /* only from inside a NONBLOCKING handler */
  pthread_mutex_lock(&c->mu);
  bool already = c->deferred;
  c->deferred = true;
  pthread_mutex_unlock(&c->mu);
  if (!already)
    crpc__call_ref(c); /* the answer's */
  return 0;
}

int crpc_call_answer(crpc_call *c, crpc_code code) {
  if (!c || !c->is_server)
    return CRPC_EINVAL;
  pthread_mutex_lock(&c->mu);
  bool deferred = c->deferred && !c->in_inline;
  ProtobufCMessage *resp = c->deferred_resp;
  if (deferred) {
    c->deferred = false;
    c->deferred_resp = NULL;
  }
  pthread_mutex_unlock(&c->mu);
  if (!deferred)
    return CRPC_ESTATE;
  if ((unsigned)code > CRPC_UNAUTHENTICATED)
    code = CRPC_UNKNOWN;
  complete(c, code, resp); /* any thread: the loop sends it */
  crpc__call_unref(c);
  return 0;
}

/* NONBLOCKING client/bidi streaming: one invocation per message, on the
 * reactor, then a closing one with req NULL. */
void crpc__server_on_data(crpc_call *c) {
  crpc__msgbuf *m;
  crpc_status st = {0};
  for (;;) {
    pthread_mutex_lock(&c->mu);
    bool stop = c->send_closed || c->done;
    m = stop ? NULL : crpc__msgq_pop(&c->recvq);
    pthread_mutex_unlock(&c->mu);
    if (!m)
      return;
    ProtobufCMessage *req = NULL;
    crpc_code code = crpc__unframe_message(&c->mem, c->method->input,
                                           &c->pbc, m, c->recv_enc,
                                           c->max_recv, &req, &st);
    crpc__free(&c->mem, m);
    if (code != CRPC_OK) {
      abort_call(c, code, "%s", crpc_status_message(&st));
      crpc_status_clear(&st);
      return;
    }
    code = invoke(c, req, NULL);
    protobuf_c_message_free_unpacked(req, &c->pbc);
    if (code != CRPC_OK) { /* the handler ends the call early */
      c->final_invoked = true;
      complete(c, code, NULL);
      return;
    }
  }
}

/* The closing invocation: req NULL; resp set for client streaming unless
 * the call was cancelled (then the handler only cleans up). */
static void inline_stream_close(crpc_call *c, bool cancelled) {
  if (c->final_invoked)
    return;
  c->final_invoked = true;
  ProtobufCMessage *resp = NULL;
  if (!cancelled && c->method->kind == CRPC_CLIENT_STREAMING &&
      !(resp = new_response(c))) {
    complete(c, CRPC_RESOURCE_EXHAUSTED, NULL);
    return;
  }
  crpc_code code = invoke(c, NULL, resp);
  if (!cancelled)
    complete(c, code, resp);
}

static void dispatch(crpc_call *c) {
  crpc_server *s = c->conn->server;
  c->dispatched = true;
  if (c->method->kind == CRPC_UNARY) {
    c->unary_counted = true; /* until the kick sees it complete */
    atomic_fetch_add(&c->conn->unary_inflight, 1);
  }
  crpc__call_ref(c);
  if (crpc__workers_submit(s->workers, run_handler, c) != 0) {
    crpc__call_unref(c);
    abort_call(c, CRPC_RESOURCE_EXHAUSTED, "no worker thread available");
  }
}

/* ---- the kick [loop] ---- */

void crpc__server_kick(void *arg) {
  crpc_call *c = arg;
  pthread_mutex_lock(&c->mu);
  c->kick_queued = false;
  bool cancel = c->cancel_requested, done = c->done;
  crpc_code code = c->status.code;
  size_t consume = c->to_consume;
  c->to_consume = 0;
  bool closed = c->send_closed;
  pthread_mutex_unlock(&c->mu);
  if (c->unary_counted && (closed || done) && c->conn) {
    c->unary_counted = false; /* its handler is done: the gate may open */
    atomic_fetch_sub(&c->conn->unary_inflight, 1);
    if (c->conn->pend_head)
      run_pending(c->conn);
  }
  if (done || !c->conn)
    goto out;
  crpc__call_consume(c, consume);
  if (cancel) {
    pthread_mutex_lock(&c->mu);
    c->cancel_requested = false;
    pthread_mutex_unlock(&c->mu);
    if (code != CRPC_OK) {
      /* a request the handler could not parse */
      abort_call(c, code, "%s", crpc_status_message(&c->status));
    } else {
      crpc__conn *conn = c->conn;
      pthread_mutex_lock(&c->mu);
      c->cancelled = true;
      c->send_closed = true;
      crpc__call_notify(c);
      pthread_mutex_unlock(&c->mu);
      crpc__server_fire_cancel(c);
      nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE,
                                c->stream_id, NGHTTP2_CANCEL);
      crpc__conn_schedule_flush(conn);
    }
    goto out;
  }
  pump(c);
out:
  crpc__call_unref(c); /* the kick's reference */
}

/* ---- stream events [loop] ---- */

static void on_deadline(crpc__timer *t) {
  crpc_call *c =
      (crpc_call *)((char *)t - offsetof(crpc_call, deadline_timer));
  crpc__call_ref(c);
  abort_call(c, CRPC_DEADLINE_EXCEEDED, "deadline exceeded");
  crpc__call_unref(c);
}

int crpc__server_on_begin_headers(crpc__conn *conn, int32_t stream_id) {
  crpc_server *s = conn->server;
  crpc_call *c;
  if (crpc__call_new(&c, true, conn->loop, conn->mem) != 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  c->stream_id = stream_id;
  c->max_recv = s->max_recv;
  c->max_send = s->opts.max_send_msg_size;
  c->deframer.max_len = s->max_recv;
  c->accepts_enc[CRPC__ENC_IDENTITY] = true;
  memcpy(c->peer, conn->peer, sizeof c->peer);
  c->peer_tls = conn->tp != NULL;
  c->peer_id = crpc__tls_peer_id(conn->tp);
  crpc__conn_attach(conn, c);
  crpc__call_unref(c); /* the connection holds it now */
  nghttp2_session_set_stream_user_data(conn->session, stream_id, c);
  return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit) {
  return strlen(lit) == len && memcmp(name, lit, len) == 0;
}

int crpc__server_on_header(crpc_call *c, const uint8_t *name, size_t namelen,
                           const uint8_t *value, size_t valuelen) {
  crpc_server *s = c->conn->server;
  c->header_bytes += namelen + valuelen + 32;
  if (c->header_bytes > s->opts.max_header_list_size) {
    if (c->dispatched || c->trailers_phase)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    /* keep nothing more; answered RESOURCE_EXHAUSTED when the block ends */
    c->http_status = -2;
    return 0;
  }
  if (c->dispatched || c->trailers_phase)
    return 0; /* request trailers carry nothing we use */
  if (name_is(name, namelen, ":path")) {
    crpc__free(&c->mem, c->path);
    if (!(c->path = crpc__strndup(&c->mem, (const char *)value, valuelen)))
      c->http_status = -3; /* answered RESOURCE_EXHAUSTED below */
  } else if (name_is(name, namelen, ":method")) {
    if (!(valuelen == 4 && memcmp(value, "POST", 4) == 0))
      c->http_status = 405;
  } else if (name_is(name, namelen, "content-type")) {
    crpc__free(&c->mem, c->content_type);
    if (!(c->content_type =
              crpc__strndup(&c->mem, (const char *)value, valuelen)))
      c->http_status = -3;
  } else if (name_is(name, namelen, "grpc-timeout")) {
    int64_t ms;
    if (crpc__timeout_parse((const char *)value, valuelen, &ms) == 0)
      c->deadline_ms = crpc__now_ms() + ms;
    else
      c->http_status = -1; /* malformed: answered INTERNAL below */
  } else if (name_is(name, namelen, "grpc-encoding")) {
    c->recv_enc = crpc__encoding_from_name((const char *)value, valuelen);
  } else if (name_is(name, namelen, "grpc-accept-encoding")) {
    for (int e = CRPC__ENC_DEFLATE; e <= CRPC__ENC_GZIP; e++)
      c->accepts_enc[e] = crpc__accept_encoding_has(
          (const char *)value, valuelen, (crpc__encoding)e);
  } else if (namelen && name[0] != ':') {
    if (crpc__metadata_add_wire(c->recv_md, name, namelen, value, valuelen) ==
        CRPC_ENOMEM)
      c->http_status = -3;
  }
  return 0;
}

void crpc__server_on_headers_done(crpc_call *c, bool end_stream) {
  crpc_server *s = c->conn->server;
  if (c->trailers_phase || c->dispatched)
    return;
  c->trailers_phase = true;
  if (c->http_status == -2) {
    abort_call(c, CRPC_RESOURCE_EXHAUSTED,
               "request headers larger than the server's limit (%u bytes)",
               s->opts.max_header_list_size);
    return;
  }
  if (c->http_status == -3) {
    abort_call(c, CRPC_RESOURCE_EXHAUSTED,
               "out of memory reading the request headers");
    return;
  }
  if (c->http_status == 405) {
    http_error(c, "405");
    return;
  }
  if (!c->content_type || strncmp(c->content_type, "application/grpc", 16) ||
      (c->content_type[16] && c->content_type[16] != '+' &&
       c->content_type[16] != ';')) {
    http_error(c, "415");
    return;
  }
  c->handler = c->path ? find_method(s, c->path, strlen(c->path)) : NULL;
  if (!c->handler) {
    c->method = NULL;
    abort_call(c, CRPC_UNIMPLEMENTED, "unknown method %s",
               c->path ? c->path : "(no :path)");
    return;
  }
  c->method = &c->handler->method;
  if (c->http_status == -1) {
    abort_call(c, CRPC_INTERNAL, "malformed grpc-timeout");
    return;
  }
  if (c->recv_enc == CRPC__ENC_UNKNOWN) {
    crpc_metadata_add_str(c->send_md, "grpc-accept-encoding-note",
                          crpc__accept_encoding());
    abort_call(c, CRPC_UNIMPLEMENTED,
               "unsupported grpc-encoding; supported: %s",
               crpc__accept_encoding());
    return;
  }
  if (c->deadline_ms) {
    c->deadline_timer.cb = on_deadline;
    crpc__timer_start(c->loop, &c->deadline_timer, c->deadline_ms);
  }
  if (end_stream)
    c->recv_closed = true;
  if (!(c->handler->flags & CRPC_HANDLER_NONBLOCKING)) {
    if (gate_closed(c->conn, c))
      pend(c);
    else
      dispatch(c);
  } else if (c->method->kind == CRPC_UNARY ||
             c->method->kind == CRPC_SERVER_STREAMING) {
    c->inline_unary = true; /* runs at END_STREAM, with the request */
  } else {
    c->dispatched = true; /* later HEADERS are trailers */
    if (authorized(c))
      c->inline_stream = true; /* runs as messages arrive */
  }
}

void crpc__server_on_end_stream(crpc_call *c) {
  pthread_mutex_lock(&c->mu);
  bool partial = crpc__deframer_partial(&c->deframer);
  c->recv_closed = true;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  if (partial) {
    abort_call(c, CRPC_INTERNAL, "request ended in the middle of a message");
    return;
  }
  if (c->inline_unary && !c->send_closed) {
    if (gate_closed(c->conn, c))
      pend(c);
    else
      run_inline(c);
  } else if (c->inline_stream) {
    crpc__server_on_data(c); /* messages that came with END_STREAM */
    if (!c->send_closed)
      inline_stream_close(c, false);
  }
}

void crpc__server_on_data_error(crpc_call *c, int rv) {
  crpc__deframer_reset(&c->deframer);
  if (rv == CRPC_ETOOBIG)
    abort_call(c, CRPC_RESOURCE_EXHAUSTED,
               "received message larger than max (%zu bytes)", c->max_recv);
  else if (rv == CRPC_ENOMEM)
    abort_call(c, CRPC_RESOURCE_EXHAUSTED,
               "out of memory receiving a message");
  else
    abort_call(c, CRPC_INTERNAL, "malformed message framing");
  /* stop reading this stream; the rest is discarded */
  c->rx_discard = true;
  crpc__call_release_window(c);
}

void crpc__server_on_stream_close(crpc_call *c, uint32_t error_code) {
  unpend(c);
  if (c->unary_counted && c->conn) {
    c->unary_counted = false;
    atomic_fetch_sub(&c->conn->unary_inflight, 1);
  }
  pthread_mutex_lock(&c->mu);
  c->done = true;
  if (error_code != NGHTTP2_NO_ERROR || !c->eos_sent)
    c->cancelled = true;
  bool cancelled = c->cancelled;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  if (cancelled)
    crpc__server_fire_cancel(c);
  if (c->inline_stream)
    inline_stream_close(c, cancelled); /* the handler frees its state */
}

void crpc__server_fail(crpc_call *c, crpc_code code, const char *msg) {
  CRPC__UNUSED(code);
  CRPC__UNUSED(msg);
  unpend(c);
  pthread_mutex_lock(&c->mu);
  c->done = true;
  c->cancelled = true;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
  crpc__server_fire_cancel(c);
  if (c->inline_stream)
    inline_stream_close(c, true);
}

void crpc__server_fire_cancel(crpc_call *c) {
  pthread_mutex_lock(&c->mu);
  crpc_call_cancel_cb cb = c->handler_returned ? NULL : c->cancel_cb;
  void *ud = c->cancel_ud;
  c->cancel_cb = NULL;
  c->cancel_cb_running = cb != NULL;
  pthread_mutex_unlock(&c->mu);
  if (!cb)
    return;
  cb(c, ud);
  pthread_mutex_lock(&c->mu);
  c->cancel_cb_running = false;
  crpc__call_notify(c);
  pthread_mutex_unlock(&c->mu);
}

/* ---- connections and threads [loop] ---- */

static void report_drained(srv_thread *t) {
  if (t->reported || !t->draining || t->nconns)
    return;
  t->reported = true;
  crpc__timer_stop(t->loop, &t->grace_timer);
  pthread_mutex_lock(&t->srv->mu);
  t->srv->threads_drained++;
  pthread_cond_broadcast(&t->srv->cv);
  pthread_mutex_unlock(&t->srv->mu);
}

static void wake_parked(crpc_server *s);

static void on_conn_closed(crpc__conn *conn) {
  srv_thread *t = conn->owner;
  if (!t)
    return; /* never made it into the list */
  atomic_fetch_sub(&t->srv->nconns, 1);
  if (conn->prev)
    conn->prev->next = conn->next;
  else
    t->conns = conn->next;
  if (conn->next)
    conn->next->prev = conn->prev;
  t->nconns--;
  report_drained(t);
  if (atomic_load(&t->srv->nparked))
    wake_parked(t->srv);
}

/* Makes room for a new connection by closing this thread's oldest one
 * that has no call, preferring one stuck in its handshake or preface for
 * over a second (slow-loris). False when every connection is busy. */
static bool evict_idle(srv_thread *t) {
  crpc__conn *idle = NULL, *stuck = NULL;
  int64_t now = crpc__now_ms();
  for (crpc__conn *c = t->conns; c; c = c->next) { /* newest first */
    if (c->dead || c->ncalls)
      continue;
    idle = c;
    if (!c->preface_done && now - c->born_ms > 1000)
      stuck = c;
  }
  crpc__conn *v = stuck ? stuck : idle;
  if (!v)
    return false;
  crpc__log_info("%s: closed to make room for a new connection", v->peer);
  if (v->preface_done) {
    nghttp2_session_terminate_session(v->session, NGHTTP2_NO_ERROR);
    crpc__conn_flush(v); /* GOAWAY, then it closes */
  }
  if (!v->dead)
    crpc__conn_close(v, CRPC_UNAVAILABLE, "connection limit reached");
  return true;
}

static void on_accept_resume(crpc__timer *tm) {
  lwatch *lw = (lwatch *)((char *)tm - offsetof(lwatch, pause));
  if (!lw->t->draining)
    crpc__io_watch_exclusive(lw->t->loop, &lw->io);
}

/* Takes one of max_connections' slots; false when all are taken. */
static bool take_slot(crpc_server *s) {
  uint32_t max = s->opts.max_connections;
  unsigned n = atomic_load(&s->nconns);
  do {
    if (max && n >= max)
      return false;
  } while (!atomic_compare_exchange_weak(&s->nconns, &n, n + 1));
  return true;
}

/* Starts serving an accepted socket that holds a slot (released here on
 * failure; on_conn_closed releases it otherwise). */
static void start_conn(srv_thread *t, int fd, int lidx) {
  crpc_server *s = t->srv;
  listener *l = &s->listeners[lidx];
  static const crpc__conn_hooks hooks = {.on_closed = on_conn_closed,
                                         .on_drained = on_conn_drained};
  crpc__transport *tp = NULL;
  if (l->tls) {
    const char *why = NULL;
    if (crpc__tls_server_transport(l->tls, &tp, &why) != 0) {
      crpc__log_warn("TLS: %s", why ? why : "cannot start");
      goto fail_fd;
    }
  }
  crpc__conn *conn;
  if (crpc__conn_new(&conn, t->loop, fd, tp, true, t, &hooks, &s->mem) !=
      0) {
    if (tp)
      tp->ops->free(tp);
    goto fail_fd;
  }
  conn->server = s;
  conn->handshake_ms = s->opts.handshake_timeout_ms;
  conn->idle_ms = s->opts.idle_timeout_ms;
  conn->max_strikes = s->opts.max_ping_strikes;
  conn->out.limit = s->max_conn_out;
  conn->out_parent = &s->out;
  conn->stall_ms = s->stall_ms;
  crpc__sock_peer_string(fd, conn->peer, sizeof conn->peer);
  if (crpc__h2_session_new(conn, s->opts.max_concurrent_streams,
                           s->opts.max_header_list_size) != 0) {
    conn->owner = NULL;
    crpc__conn_close(conn, CRPC_UNAVAILABLE, "out of memory");
    goto fail_slot;
  }
  conn->next = t->conns;
  conn->prev = NULL;
  if (t->conns)
    t->conns->prev = conn;
  t->conns = conn;
  t->nconns++;
  crpc__conn_start(conn);
  return;
fail_fd:
  close(fd);
fail_slot:
  atomic_fetch_sub(&s->nconns, 1);
}

/* One fewer idle connection wanted from other threads (a parked one got a
 * slot or gave up), if any still is. */
static void drop_evict_token(crpc_server *s) {
  unsigned w = atomic_load(&s->evict_wanted);
  while (w && !atomic_compare_exchange_weak(&s->evict_wanted, &w, w - 1))
    ;
}

static void park_timer_arm(srv_thread *t) {
  if (t->npark)
    crpc__timer_start(t->loop, &t->park_timer, t->park[0].until_ms);
  else
    crpc__timer_stop(t->loop, &t->park_timer);
}

static parked park_pop(srv_thread *t) {
  parked p = t->park[0];
  t->npark--;
  memmove(&t->park[0], &t->park[1], t->npark * sizeof t->park[0]);
  atomic_fetch_sub(&t->srv->nparked, 1);
  drop_evict_token(t->srv);
  return p;
}

/* Parked connections that waited their whole handshake timeout are
 * refused. */
static void on_park_expired(crpc__timer *tm) {
  srv_thread *t = (srv_thread *)((char *)tm - offsetof(srv_thread, park_timer));
  int64_t now = crpc__now_ms();
  while (t->npark && t->park[0].until_ms <= now) {
    parked p = park_pop(t);
    crpc__log_warn("connection refused: %u connections, none freed up",
                   t->srv->opts.max_connections);
    close(p.fd);
  }
  park_timer_arm(t);
}

/* A slot freed somewhere: the oldest parked connections get it. */
static void admit_parked(void *arg) {
  srv_thread *t = arg;
  atomic_store(&t->admit_queued, false);
  while (t->npark && !t->draining && take_slot(t->srv)) {
    parked p = park_pop(t);
    start_conn(t, p.fd, p.lidx);
  }
  park_timer_arm(t);
}

/* Another thread parked a connection it could not make room for. */
static void evict_for_others(void *arg) {
  srv_thread *t = arg;
  crpc_server *s = t->srv;
  atomic_store(&t->evict_queued, false);
  unsigned w = atomic_load(&s->evict_wanted);
  while (w && !t->draining) {
    if (!atomic_compare_exchange_weak(&s->evict_wanted, &w, w - 1))
      continue;
    if (!evict_idle(t)) {
      atomic_fetch_add(&s->evict_wanted, 1); /* nothing idle here */
      return;
    }
    w = atomic_load(&s->evict_wanted);
  }
}

static void post_once(srv_thread *t, crpc__task *task, atomic_bool *queued,
                      crpc__task_fn fn) {
  if (atomic_exchange(queued, true))
    return;
  task->fn = fn;
  task->arg = t;
  crpc__loop_post_task(t->loop, task);
}

/* Any thread: a slot may have freed up. */
static void wake_parked(crpc_server *s) {
  for (unsigned i = 0; i < s->nthreads; i++)
    post_once(&s->threads[i], &s->threads[i].admit_task,
              &s->threads[i].admit_queued, admit_parked);
}

/*
 * Every slot is taken: rather than refuse at once, the connection waits
 * (accepted, not read) for one to free up, for at most its handshake
 * timeout. A client that arrives just as another one leaves is then
 * served even when the server learns of the departure after the arrival
 * (another thread's connection, or a later event in this round). To make
 * room, this thread closes its oldest idle connection, or asks the other
 * threads to close one of theirs. False when the thread's park is full.
 */
static bool park(srv_thread *t, int fd, int lidx) {
  crpc_server *s = t->srv;
  if (t->npark == PARK_MAX)
    return false;
  int64_t wait = s->opts.handshake_timeout_ms > 0 ? s->opts.handshake_timeout_ms
                                                  : 20000;
  t->park[t->npark++] = (parked){fd, lidx, crpc__now_ms() + wait};
  atomic_fetch_add(&s->nparked, 1);
  park_timer_arm(t);
  if (evict_idle(t))
    return true; /* its on_conn_closed admits this one */
  atomic_fetch_add(&s->evict_wanted, 1);
  for (unsigned i = 0; i < s->nthreads; i++)
    if (&s->threads[i] != t)
      post_once(&s->threads[i], &s->threads[i].evict_task,
                &s->threads[i].evict_queued, evict_for_others);
  return true;
}

static void on_accept(crpc__io *io, uint32_t events) {
  lwatch *lw = (lwatch *)io;
  srv_thread *t = lw->t;
  crpc_server *s = t->srv;
  listener *l = &s->listeners[lw->idx];
  CRPC__UNUSED(events);
  for (int i = 0; i < ACCEPTS_PER_ROUND && !t->draining; i++) {
    int fd = crpc__sock_accept(l->fd);
    if (fd < 0) {
      struct pollfd p = {.fd = l->fd, .events = POLLIN};
      if ((errno == EMFILE || errno == ENFILE) && poll(&p, 1, 0) == 1) {
        /* a connection waits and the listener stays readable: without
         * this the loop would spin */
        crpc__log_warn("accept: %s", strerror(errno));
        if (!evict_idle(t)) {
          crpc__io_unwatch(t->loop, &lw->io);
          lw->pause.cb = on_accept_resume;
          crpc__timer_start(t->loop, &lw->pause, crpc__now_ms() + 100);
        }
      }
      return;
    }
    if (take_slot(s)) {
      start_conn(t, fd, lw->idx);
    } else if (!park(t, fd, lw->idx)) {
      crpc__log_warn("connection refused: %u connections, all busy",
                     s->opts.max_connections);
      close(fd);
    }
  }
}

static void on_grace_expired(crpc__timer *tm) {
  srv_thread *t =
      (srv_thread *)((char *)tm - offsetof(srv_thread, grace_timer));
  crpc__conn *c = t->conns;
  while (c) {
    crpc__conn *next = c->next;
    crpc__conn_close(c, CRPC_CANCELLED, "server shutting down");
    c = next;
  }
}

static void thread_shutdown(void *arg) {
  srv_thread *t = arg;
  crpc_server *s = t->srv;
  t->draining = true;
  for (int i = 0; i < s->nlisteners; i++)
    crpc__io_unwatch(t->loop, &t->lio[i].io);
  while (t->npark)
    close(park_pop(t).fd);
  park_timer_arm(t);
  /* the last thread to stop watching closes the listeners, so new
   * connections are refused rather than left in the backlog */
  pthread_mutex_lock(&s->mu);
  if (++s->threads_unwatched == s->nthreads) {
    for (int i = 0; i < s->nlisteners; i++) {
      close(s->listeners[i].fd);
      s->listeners[i].fd = -1;
    }
  }
  pthread_mutex_unlock(&s->mu);
  for (crpc__conn *c = t->conns; c; c = c->next) {
    if (c->dead || !c->session)
      continue;
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session),
                          NGHTTP2_NO_ERROR, NULL, 0);
    crpc__conn_flush(c); /* closes at once when no stream is open */
  }
  if (t->grace_ms >= 0 && t->nconns) {
    t->grace_timer.cb = on_grace_expired;
    crpc__timer_start(t->loop, &t->grace_timer, crpc__now_ms() + t->grace_ms);
  }
  report_drained(t);
}

int crpc_server_start(crpc_server *s) {
  if (!s)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW || s->nlisteners == 0)
    return CRPC_ESTATE;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  s->nthreads = s->opts.reactor_threads
                    ? s->opts.reactor_threads
                    : (unsigned)(ncpu > 0 ? (ncpu > 64 ? 64 : ncpu) : 1);
  if (s->opts.loop)
    s->nthreads = 1; /* the program's loop is the one reactor */
  int rv = crpc__workers_new(&s->workers, s->opts.max_workers, &s->mem);
  if (rv != 0)
    return rv;
  s->threads = crpc__calloc(&s->mem, s->nthreads, sizeof *s->threads);
  if (!s->threads)
    return CRPC_ENOMEM;
  for (unsigned i = 0; i < s->nthreads; i++) {
    srv_thread *t = &s->threads[i];
    t->srv = s;
    t->park_timer.cb = on_park_expired;
    if (s->opts.loop) {
      t->loop = (crpc__loop *)s->opts.loop;
      t->borrowed_loop = true;
    } else if ((rv = crpc__loop_new(&t->loop, &s->mem)) != 0) {
      return rv;
    }
    for (int j = 0; j < s->nlisteners; j++) {
      t->lio[j].t = t;
      t->lio[j].idx = j;
      t->lio[j].io.fd = s->listeners[j].fd;
      t->lio[j].io.cb = on_accept;
      if (crpc__io_watch_exclusive(t->loop, &t->lio[j].io) != 0)
        return CRPC_ESYS;
    }
  }
  for (unsigned i = 0; i < s->nthreads && !s->opts.loop; i++)
    if ((rv = crpc__loop_thread_start(s->threads[i].loop,
                                      &s->threads[i].tid)) != 0)
      return rv; /* threads started so far are stopped by free */
  pthread_mutex_lock(&s->mu);
  s->state = SRV_STARTED;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

void crpc_server_shutdown(crpc_server *s, int64_t grace_ms) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  if (s->state != SRV_STARTED) {
    while (s->state == SRV_STOPPING)
      pthread_cond_wait(&s->cv, &s->mu);
    if (s->state == SRV_NEW)
      s->state = SRV_STOPPED;
    pthread_mutex_unlock(&s->mu);
    return;
  }
  s->state = SRV_STOPPING;
  pthread_mutex_unlock(&s->mu);
  for (unsigned i = 0; i < s->nthreads; i++) {
    srv_thread *t = &s->threads[i];
    t->grace_ms = grace_ms;
    t->shutdown_task.fn = thread_shutdown;
    t->shutdown_task.arg = t;
    crpc__loop_post_task(t->loop, &t->shutdown_task);
  }
  pthread_mutex_lock(&s->mu);
  while (s->threads_drained < s->nthreads) {
    if (s->opts.loop && crpc_loop_is_current(s->opts.loop)) {
      /* the program's loop, and we are its thread: drive it ourselves */
      pthread_mutex_unlock(&s->mu);
      crpc__loop_run_once(s->threads[0].loop, 100);
      pthread_mutex_lock(&s->mu);
      continue;
    }
    pthread_cond_wait(&s->cv, &s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  /* handlers may still be running on cancelled calls: let them return */
  crpc__workers_free(s->workers);
  s->workers = NULL;
  for (unsigned i = 0; i < s->nthreads && !s->opts.loop; i++) {
    crpc__loop_stop(s->threads[i].loop);
    pthread_join(s->threads[i].tid, NULL);
  }
  if (s->opts.loop) /* what the drained connections posted */
    crpc__loop_run_once(s->threads[0].loop, 0);
  pthread_mutex_lock(&s->mu);
  s->state = SRV_STOPPED;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

size_t crpc_server_output_bytes(const crpc_server *s, size_t *peak) {
  if (peak)
    *peak = s ? atomic_load(&s->out.peak) : 0;
  return s ? atomic_load(&s->out.used) : 0;
}

void crpc_server_wait(crpc_server *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  while (s->state != SRV_STOPPED)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

void crpc_server_free(crpc_server *s) {
  if (!s)
    return;
  crpc_server_shutdown(s, 0);
  for (unsigned i = 0; s->threads && i < s->nthreads; i++)
    if (!s->threads[i].borrowed_loop)
      crpc__loop_free(s->threads[i].loop);
  crpc__free(&s->mem, s->threads);
  crpc__workers_free(s->workers);
  for (int i = 0; i < s->nlisteners; i++) {
    if (s->listeners[i].fd >= 0)
      close(s->listeners[i].fd);
    if (s->listeners[i].tls &&
        (i + 1 >= s->nlisteners ||
         s->listeners[i + 1].tls != s->listeners[i].tls))
      crpc__tls_ctx_free(s->listeners[i].tls);
  }
  for (size_t i = 0; i < s->ntables; i++)
    crpc__free(&s->mem, s->tables[i]);
  crpc__free(&s->mem, s->tables);
  crpc__free(&s->mem, s->methods);
  crpc__free(&s->mem, s->svcs);
  while (s->ext) {
    crpc__server_ext *e = s->ext;
    s->ext = e->next;
    e->free(e);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  crpc_mem mem = s->mem; /* the last free must not read the server */
  crpc__free(&mem, s);
}
