/*
 * client_internal.h: a channel's state, shared by channel.c (the shared
 * client reactors, resolving, connecting, back-off, submitting calls onto
 * a connection, the channel's life), client_call.c (a client call on the
 * wire: the kick, the deadline, the stream events, finishing),
 * client_api.c (starting calls, the blocking and async unary API, the
 * streaming side's finish and free) and client_cb.c (the callback API).
 * Never installed.
 */
#ifndef CRPC_CLIENT_INTERNAL_H
#define CRPC_CLIENT_INTERNAL_H

#include "call_internal.h"
#include "metrics_internal.h"
#include "h2.h"
#include "resolver.h"
#include "sock.h"
#include "tls_internal.h"

typedef enum chan_state {
  CH_IDLE,
  CH_CONNECTING,
  CH_READY,
  CH_TRANSIENT_FAILURE
} chan_state;

typedef struct crpc__subchannel crpc__subchannel;
typedef struct crpc__lb_policy crpc__lb_policy;

/* One address of the channel's target and its connection (subchannel.c).
 * [loop] everything. */
struct crpc__subchannel {
  crpc_channel *ch;
  crpc__addr addr;
  char name[128]; /* the address, for messages and tests */
  chan_state state;
  crpc__conn *conn;     /* READY: the connection new calls go on;
                           CONNECTING: the one waiting for its preface */
  crpc__conn *draining; /* older connections finishing their calls */
  crpc__io connect_io;
  crpc__timer connect_timer; /* the TCP connect's own deadline */
  crpc__timer backoff_timer; /* TRANSIENT_FAILURE until it fires */
  int64_t backoff_ms;        /* gRPC's connection backoff, next wait */
  bool reconnect;   /* connect again when the backoff ends (round_robin) */
  bool removed;     /* no longer resolved: freed once its conns are gone */
  size_t nconns;    /* connections not yet freed */
  char last_error[400];
  size_t calls;     /* calls put on it (tests, the note's figures) */
  crpc__task ready_task; /* the connection's preface came: READY */
  bool ready_queued;
  crpc__subchannel *next; /* in the channel's list (address order) */
};

/* [loop] subchannel.c */
crpc__subchannel *crpc__subchannel_new(crpc_channel *ch, const crpc__addr *a);
/* Starts connecting an IDLE subchannel (no-op otherwise). */
void crpc__subchannel_connect(crpc__subchannel *sc);
/* Its connection, when READY and still taking streams; a connection that
 * stopped (GOAWAY, dead) is retired and the subchannel goes IDLE. */
crpc__conn *crpc__subchannel_conn(crpc__subchannel *sc);
/* Removed from the channel: stops connecting; frees itself once its
 * connections are gone (at once when it has none). */
void crpc__subchannel_remove(crpc__subchannel *sc);
/* Channel shutdown: closes everything (calls end CANCELLED). */
void crpc__subchannel_close(crpc__subchannel *sc);
/* Whether two addresses are the same. */
bool crpc__addr_equal(const crpc__addr *a, const crpc__addr *b);

/* A load-balancing policy (lb.c) [loop]. */
struct crpc__lb_policy {
  const char *name;
  /* The subchannel list changed (a resolution): start what must start. */
  void (*update)(crpc_channel *ch);
  /* A connection for a new call, or NULL (the call waits or fails). */
  crpc__conn *(*pick)(crpc_channel *ch);
  /* A subchannel changed state. */
  void (*sub_state)(crpc_channel *ch, crpc__subchannel *sc);
  /* A call needs a connection and none is READY: connect (pick_first
   * starts on its first address; round_robin connects them all). */
  void (*exit_idle)(crpc_channel *ch);
};
extern const crpc__lb_policy crpc__lb_pick_first;
extern const crpc__lb_policy crpc__lb_round_robin;
/* NULL for a name it does not know. */
const crpc__lb_policy *crpc__lb_find(const char *name);

/* A crpc_channel_watch_state() watcher (channel_state.c) [loop]. */
typedef struct crpc__state_watch crpc__state_watch;

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
  int64_t initial_backoff_ms, max_backoff_ms;
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
  const crpc__lb_policy *lb; /* [const] */
  /* [loop] */
  chan_state state;          /* the policy's aggregate */
  crpc__subchannel *subs;    /* the resolved addresses, in order */
  size_t nsubs;
  crpc__subchannel *rr_next; /* round_robin's next pick */
  crpc__subchannel *pf_cur;  /* pick_first: the one tried or used */
  bool resolving;            /* a resolution was asked for */
  bool resolved;             /* at least one came back */
  crpc__timer resolve_timer; /* after a failed resolution (wait-for-ready) */
  int64_t resolve_backoff_ms;
  crpc_call *pending;   /* waiting for a connection (linked by conn_next) */
  crpc_call *pending_tail;
  char last_error[640];
  bool shutting_down;
  crpc__task shutdown_task;
  crpc__task free_task; /* crpc_channel_free() from inside a callback */
  crpc__task connect_task; /* crpc_channel_state(ch, 1) */
  bool connect_queued;
  size_t nconns;     /* [loop] connections not yet destroyed */
  pthread_mutex_t done_mu; /* crpc_channel_free waits for the loop's */
  pthread_cond_t done_cv;  /* last word on this channel */
  bool done;
  size_t fires; /* [done_mu] watch callbacks queued or running */
  crpc__client_chain ic; /* interceptors [const once calls run] */
  _Atomic int pub_state;     /* crpc_connectivity_state, any thread */
  crpc__state_watch *watches; /* [loop] */
};

/* channel.c [loop]: a subchannel's state changed (the policy decides). */
void crpc__channel_sub_state(crpc__subchannel *sc);
/* channel.c [loop]: asks the resolver again (it rate-limits). */
void crpc__channel_reresolve(crpc_channel *ch);
/* channel.c [loop]: the policy's aggregate state changed; a READY
 * channel gets its pending calls submitted, a failed one fails those
 * that do not wait for ready. */
void crpc__channel_set_state(crpc_channel *ch, chan_state st);
/* channel.c [loop]: the connection's calls and memory are the channel's;
 * a subchannel reports a connection gone (its memory freed). */
void crpc__channel_conn_freed(crpc_channel *ch);
/* channel.c, any thread: crpc_channel_state(ch, 1) leaves IDLE. */
void crpc__channel_kick_connect(crpc_channel *ch);
/* channel_state.c [loop]: publishes |st| and runs the watchers due. */
void crpc__channel_publish_state(crpc_channel *ch, int st);
/* channel_state.c: the SHUTDOWN notice, from crpc_channel_free(). */
void crpc__channel_watches_shutdown(crpc_channel *ch);

/* channel.c [loop]: puts a started call on the channel's connection (or
 * its pending list while it connects). */
void crpc__channel_submit(crpc_channel *ch, crpc_call *c);
/* client_call.c [loop]: ends the call with the status already in it (or
 * |code| / |msg| when that is still OK). */
void crpc__client_finish(crpc_call *c, crpc_code code, const char *msg);
/* client_call.c [loop]: a client call's kick task (crpc__call_new's
 * |kick|): hands the loop what user threads asked of the call. */
void crpc__client_kick(void *arg);
/* What the transport reports about a client's streams (conn.h). */
extern const crpc__stream_events crpc__client_streams;

#endif
