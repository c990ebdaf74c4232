/*
 * client_internal.h: a channel's state, shared by channel.c (the shared
 * client reactors, resolving, connecting, back-off, submitting calls onto
 * a connection, the channel's life) and client_call.c (a client call:
 * starting it, the kick, the stream events, finishing, the blocking and
 * async unary API). Never installed.
 */
#ifndef CRPC_CLIENT_INTERNAL_H
#define CRPC_CLIENT_INTERNAL_H

#include "call_internal.h"
#include "metrics_internal.h"
#include "h2.h"
#include "resolver.h"
#include "sock.h"
#include "tls_internal.h"

#define MAX_ADDRS 8

typedef enum chan_state {
  CH_IDLE,
  CH_CONNECTING,
  CH_READY,
  CH_TRANSIENT_FAILURE
} chan_state;

struct crpc_channel {
  crpc_mem mem;     /* the user's, copied: everything the channel makes */
  crpc__loop *loop; /* one of the shared client loops (below) */
  int loop_idx;
  char *target;
  char *authority;
  char *host; /* TLS name */
  size_t max_recv, max_send;
  ProtobufCAllocator *alloc;
  crpc__encoding default_enc;
  int64_t initial_backoff_ms, max_backoff_ms, backoff_ms;
  int64_t keepalive_ms, keepalive_timeout_ms;
  void *tls; /* crpc__tls_ctx, NULL for clear text */
  crpc_call_creds_cb call_creds; /* [const] */
  void *call_creds_ud;
  bool allow_insecure_creds;
  int64_t handshake_ms; /* conn.c's guard: TLS + the server's SETTINGS */
  size_t max_conn_out;  /* output budget of a connection */
  int64_t stall_ms;     /* write-stall timeout; 0: off */
  crpc_metrics *metrics; /* [const] opts.metrics (metrics_call.c) */
  crpc__service_config *sc; /* [const] NULL: none (service_config.h) */
  crpc__retry_throttle throttle; /* retries, when sc->has_throttle */
  crpc__resolver *resolver; /* the target's addresses (resolver.h) */
  /* [loop] */
  chan_state state;
  crpc__conn *conn;     /* current connection */
  crpc__conn *draining; /* older connections finishing their calls */
  crpc_call *pending;   /* waiting for a connection (linked by conn_next) */
  crpc_call *pending_tail;
  crpc__io connect_io;
  crpc__timer connect_timer; /* the TCP connect's own deadline */
  crpc__addr addrs[MAX_ADDRS]; /* the target, resolved at each attempt */
  int naddrs, addr_idx;
  crpc__timer backoff_timer;
  char last_error[256];
  bool shutting_down;
  crpc__task shutdown_task;
  crpc__task free_task; /* crpc_channel_free() from inside a callback */
  size_t nconns;     /* [loop] connections not yet destroyed */
  pthread_mutex_t done_mu; /* crpc_channel_free waits for the loop's */
  pthread_cond_t done_cv;  /* last word on this channel */
  bool done;
  crpc__client_chain ic; /* interceptors [const once calls run] */
};

/* channel.c [loop]: puts a started call on the channel's connection (or
 * its pending list while it connects). */
void crpc__channel_submit(crpc_channel *ch, crpc_call *c);
/* client_call.c [loop]: ends the call with the status already in it (or
 * |code| / |msg| when that is still OK). */
void crpc__client_finish(crpc_call *c, crpc_code code, const char *msg);
/* What the transport reports about a client's streams (conn.h). */
extern const crpc__stream_events crpc__client_streams;

#endif
