/*
 * server_internal.h: the server's state, shared by server.c (registration,
 * listeners, start and shutdown), server_accept.c (connections: accept,
 * the max_connections park, eviction, draining), server_call.c (a call
 * on the wire: stream events, responses, the kick, cancellation, the
 * deadline) and server_dispatch.c (who runs the handler: workers, inline
 * handlers, deferred answers, the output-budget gate). Never installed.
 */
#ifndef CRPC_SERVER_INTERNAL_H
#define CRPC_SERVER_INTERNAL_H

#include "call_internal.h"
#include "metrics_internal.h"
#include "server_ext.h"
#include "h2.h"
#include "peer.h"
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
  _Atomic(struct crpc__mx_method *) mx; /* its metrics row, found at the
                                          first call (metrics_call.c) */
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
  crpc__task free_task; /* crpc_server_free() from inside a callback */
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
  crpc_access_log_cb access_log; /* [const after start] metrics_call.c */
  void *access_log_ud;
  crpc__server_chain ic; /* interceptors [const after start] */
  bool auth_in_chain;    /* the auth hook's interceptor is in |ic| */
};

/* intercept_server.c: puts the auth hook's interceptor in the chain
 * (once). Returns 0 or CRPC_ENOMEM (chain full). */
int crpc__server_auth_interceptor(crpc_server *s);

/* server.c */
crpc__server_method *crpc__server_find_method(crpc_server *s,
                                              const char *path, size_t len);
/* server_accept.c [loop] */
void crpc__server_on_accept(crpc__io *io, uint32_t events);
void crpc__server_park_expired(crpc__timer *tm);
void crpc__server_thread_shutdown(void *arg);
/* server_call.c */
/* What the transport reports about a server's streams (conn.h). */
extern const crpc__stream_events crpc__server_streams;
/* Ends the call now with |code| and a printf-style message: the handler
 * (if running) sees a cancelled call, its later writes fail, its return
 * value is ignored; a no-op once the status went out [loop]. */
void crpc__server_abort(crpc_call *c, crpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* server_dispatch.c: who runs the handler, what the call's stream events
 * ask of it [loop, except where marked] */
/* Headers accepted: the handler goes to a worker (or waits behind the
 * gate), or is marked to run inline at END_STREAM or per message. */
void crpc__server_dispatch(crpc_call *c);
/* END_STREAM arrived: an inline unary handler runs now (or waits behind
 * the gate); an inline streaming one gets what is left, then its end. */
void crpc__server_dispatch_end_stream(crpc_call *c);
/* Messages arrived, or the handler's output drained: an inline streaming
 * handler gets the queued requests. */
void crpc__server_dispatch_more(crpc_call *c);
/* The stream is gone: an inline streaming handler's closing invocation
 * (|cancelled|: it only cleans up). */
void crpc__server_dispatch_closed(crpc_call *c, bool cancelled);
/* Takes the call off its connection's queue of held calls, if on it. */
void crpc__server_unpend(crpc_call *c);
/* The handler is done (or never will be): the call stops counting
 * against the gate; |run_held|: held calls may start now. */
void crpc__server_handler_over(crpc_call *c, bool run_held);
void crpc__server_conn_drained(crpc__conn *conn); /* [loop] */
void crpc__server_out_drained(crpc__budget *b);   /* any thread */

#endif
