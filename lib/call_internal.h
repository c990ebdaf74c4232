/*
 * call_internal.h: the call object shared by client and server.
 *
 * A call is touched by two threads: the user's (or a worker's) and the
 * connection's reactor thread. Fields marked [mu] are guarded by call->mu;
 * fields marked [loop] belong to the reactor thread; [const] fields are set
 * before the call is shared. The reactor never calls into nghttp2 while
 * holding mu (nghttp2 calls back into crpc__call_data_read, which takes it).
 */
#ifndef CRPC_CALL_INTERNAL_H
#define CRPC_CALL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "arena.h"
#include "codec.h"
#include "conn.h"
#include "intercept.h"
#include "internal.h"
#include "loop.h"
#include "retry.h"

typedef struct crpc__server_method crpc__server_method;
typedef struct crpc_channel crpc_channel;

/* Bytes read by the user before window credit goes back to the peer. */
#define CRPC__CONSUME_BATCH (32 * 1024)
/* After a message this large a blocking reader's window credit is sent
 * by the loop's own thread, which keeps reading while the caller unpacks
 * (call.c, crpc__call_next_message). */
#define CRPC__CREDIT_POSTED_MIN (256 * 1024)
/* Bytes of queued outgoing messages before writers wait. */
#define CRPC__SENDQ_LIMIT (256 * 1024)

struct crpc_call {
  atomic_int refs;
  /* [const] a copy of the owner's allocator (a call may be freed after
   * its channel's last word): the call, its lists, arenas and messages */
  crpc_mem mem;
  ProtobufCAllocator pbc; /* over |mem|: messages crpc unpacks and frees */
  bool is_server;                    /* [const] */
  const crpc_method *method;         /* [const] */
  crpc__loop *loop;                  /* [const] */
  pthread_mutex_t mu;
  pthread_cond_t cv;

  /* transport side [loop] */
  crpc__conn *conn;
  int32_t stream_id; /* -1 until submitted */
  crpc_call *conn_next, *conn_prev;
  crpc__deframer deframer;
  crpc__msgpool msgpool; /* [any] spare message buffers (codec.h) */
  size_t rx_bytes, rx_consumed; /* DATA bytes received / credited */
  crpc__timer deadline_timer;
  int http_status;
  bool got_grpc_status;
  bool trailers_phase; /* the next HEADERS block are trailers */
  bool headers_sent;   /* server: response HEADERS submitted */
  bool submitted;      /* client: request HEADERS submitted */
  size_t header_bytes;
  bool rx_discard; /* the call gave up on input: drop further DATA */
  bool md_oom;     /* metadata lost for want of memory: the call fails
                      RESOURCE_EXHAUSTED rather than go on without it */
  bool last_read_compressed; /* [user] */

  /* shared [mu] */
  crpc__task kick;
  bool kick_queued;
  crpc__budget *budget[2]; /* [mu] the connection's and the server's
                              output budgets while attached */
  crpc_call *pend_next;    /* [loop] in the connection's pending list */
  bool pending;            /* [loop] held back by the output budget */
  bool unary_counted;      /* [loop->worker] in conn->unary_inflight */
  crpc__task done_task; /* async completion, on the loop's own thread */
  crpc__msgq sendq;
  bool send_closed; /* client: writes done; server: handler returned */
  bool eos_sent;    /* END_STREAM or trailers handed to nghttp2 */
  bool trailers_due; /* submit them once the last DATA is written */
  bool wrote_any;   /* a message was queued (headers go with the first) */
  unsigned events;  /* bumped at every change a waiter may wait for */
  int writers_waiting;
  crpc__msgq recvq;
  bool recv_closed; /* peer sent END_STREAM */
  size_t to_consume;
  size_t uncredited; /* received bytes the reactor has not credited back */
  bool done;            /* the call has ended (stream closed or failed) */
  bool cancel_requested; /* user cancel: RST_STREAM(CANCEL) pending */
  bool cancelled;       /* ended by cancel, deadline or reset */
  bool got_headers;     /* client: response headers (or end) arrived */
  crpc_status status;   /* client: final; server: the one to send */

  /* settings [const after start] */
  int64_t deadline_ms; /* absolute crpc__now_ms(); 0: none */
  crpc__encoding send_enc, recv_enc;
  size_t max_recv, max_send;
  ProtobufCAllocator *alloc;
  crpc__arena arena; /* [user] crpc_call_arena_alloc */
  void *user_data;   /* [user] crpc_call_set_user_data */
  /* [loop] strings of the header and trailer blocks we send: apart from
   * |arena|, which the handler's thread may be using at the same time */
  crpc__arena nv_arena;

  /* metadata */
  crpc_metadata *send_md;     /* client: request md; server: response hdrs */
  crpc_metadata *recv_md;     /* client: response headers; server: request */
  crpc_metadata *trailers;    /* client: received; server: to send */
  crpc_metadata *initial_out; /* client: user's, from crpc_call_opts */
  crpc_metadata *trailing_out;

  /* client, callback API (client_cb.c) */
  const struct crpc_call_callbacks *cb; /* [const] NULL: not a cb call */
  struct crpc_call_callbacks *cb_copy;  /* owned copy behind |cb| */
  void *cb_ud;
  crpc__task cb_task;
  bool cb_queued;      /* [mu] cb_task posted */
  bool cb_headers;     /* [mu] on_headers delivered */
  bool cb_finished;    /* [mu] on_done delivered */
  bool cb_freed;       /* [mu] the user freed the call: no more callbacks */
  bool write_pending;  /* [mu] crpc_call_write_async() in flight */
  bool write_done;     /* [mu] ... and it left the send queue */
  crpc_write_done_cb wd_cb; /* [mu] server: crpc_call_on_write_done() */
  void *wd_ud;
  crpc__task wd_task;
  bool wd_queued;      /* [mu] wd_task posted */

  /* client [const] */
  crpc_channel *channel;
  unsigned flags; /* CRPC_CALL_* */
  crpc__retry_state rs; /* retries (retry.c) */
  crpc_unary_cb async_cb;
  crpc_unary_adapter async_adapter;
  crpc_fn async_typed_cb;
  void *async_ud;

  /* server */
  crpc__server_method *handler; /* [const] */
  bool accepts_enc[3];          /* peer's grpc-accept-encoding */
  char *path;                   /* [loop until dispatch] */
  char *content_type;
  char peer[80];
  struct crpc__peer_id *peer_id; /* [const] TLS client identity, peer.h */
  bool peer_tls;                 /* [const] arrived over TLS */
  bool inline_unary; /* NONBLOCKING unary: runs on the reactor at END */
  bool inline_stream; /* NONBLOCKING client/bidi streaming: the handler
                         runs on the reactor once per message */
  bool final_invoked; /* inline_stream: the closing invocation ran */
  bool in_inline;     /* [loop] a NONBLOCKING handler is running */
  bool deferred;      /* [mu] crpc_call_defer(): answered later */
  ProtobufCMessage *deferred_resp; /* [mu] its response, until answered */
  bool answered_early; /* [mu] crpc_call_answer() ran (another thread)
                          before the deferring handler returned */
  crpc_code early_code; /* [mu] that answer's code */
  crpc_call_cancel_cb cancel_cb; /* [mu] crpc_call_on_cancel */
  void *cancel_ud;
  bool cancel_cb_running;        /* [mu] */
  bool handler_returned;         /* [mu] no cancel callback after this */
  bool dispatched;

  /* metrics and access log (metrics_call.c) [loop] */
  struct crpc__mx_method *mx; /* its row; NULL: not measured */
  bool mx_on;                 /* measuring (metrics or access log) */
  bool mx_done;               /* recorded */
  int64_t mx_call_ns, mx_start_ns; /* client call / attempt or server */
  uint64_t mx_tx, mx_rx;      /* message bytes sent / received */
  /* interceptors (intercept.h): the side's chain [const]; how many of
   * its on_start ran (client [const after start]; server [mu]); whether
   * the server's on_finish ran [mu] */
  const crpc__client_chain *cic;
  const crpc__server_chain *sic;
  unsigned ic_started;
  bool ic_done;
  bool ic_finishing; /* client [mu]: on_done running, the end is near */
};

/* ---- client_cb.c ---- */
/* A callback call changed: run its callbacks soon, on the loop's own
 * thread, never inside another API call (mu held; any thread). */
void crpc__call_cb_schedule(crpc_call *c);

/* ---- call_write_async.c ---- */
/* A server call's write-done callback is due (mu held; any thread). */
void crpc__call_wd_schedule(crpc_call *c);
/* The message of crpc_call_write_async() left the send queue (mu held). */
static inline void crpc__call_write_left(crpc_call *c) {
  c->write_done = true;
  if (c->cb)
    crpc__call_cb_schedule(c);
  else if (c->wd_cb)
    crpc__call_wd_schedule(c);
}

/* ---- call.c ---- */
/* Wakes whoever waits on the call (mu held). */
static inline void crpc__call_notify(crpc_call *c) {
  c->events++;
  pthread_cond_broadcast(&c->cv);
  if (c->cb)
    crpc__call_cb_schedule(c);
  else if (c->write_pending && c->done)
    crpc__call_wd_schedule(c); /* the write will not complete */
}
/* Waits for a change on the call (mu held, as pthread_cond_wait). A client
 * caller runs the channel's loop itself when nobody else does. */
void crpc__call_wait(crpc_call *c);
/* |kick| runs the call's pending work on its loop (the side's). */
int crpc__call_new(crpc_call **out, bool is_server, crpc__loop *loop,
                   const crpc_mem *mem, crpc__task_fn kick);
void crpc__call_ref(crpc_call *c);
void crpc__call_unref(crpc_call *c);
/* Hands the call's pending work to its loop (mu not held); on a client
 * loop nobody runs, the caller runs that round itself. */
void crpc__call_kick(crpc_call *c);
/* Queues the call's kick task on its loop (any thread; mu held). */
void crpc__call_kick_locked(crpc_call *c);
/* The send queue, with the output budgets (mu held). */
void crpc__call_sendq_push(crpc_call *c, crpc__msgbuf *m);
crpc__msgbuf *crpc__call_sendq_pop(crpc_call *c);
void crpc__call_sendq_clear(crpc_call *c);
/* Whether a writer must wait for the peer to read (mu held): the call's
 * own queue is full, its connection's budget is, or the server's is and
 * this connection has output of its own in flight. */
bool crpc__call_out_blocked(const crpc_call *c);
/* Attaches / detaches the call's queue to a connection's budgets [loop]. */
void crpc__call_budget_attach(crpc_call *c, crpc__budget *conn,
                              crpc__budget *parent);
void crpc__call_budget_detach(crpc_call *c);

/* Deframer callback: queues a received message for the reader. */
int crpc__call_on_message(void *ud, crpc__msgbuf *m);
/* Gives window credit for |n| bytes back to the peer [loop]. */
void crpc__call_consume(crpc_call *c, size_t n);
/* Returns the leftover connection window when a stream goes away [loop]. */
void crpc__call_release_window(crpc_call *c);
/* Pops the next received message, blocking; false at end. [user]. */
bool crpc__call_next_message(crpc_call *c, crpc__msgbuf **out);
/* crpc_call_read() unpacking with |alloc| (NULL: protobuf-c's). */
bool crpc__call_read(crpc_call *c, ProtobufCMessage **msg_out,
                     ProtobufCAllocator *alloc);
/* Builds the HTTP/2 header list of |md| into |nva| (arena memory). */
size_t crpc__md_to_nv(crpc_call *c, const crpc_metadata *md, nghttp2_nv *nva,
                      size_t max);

/* ---- client.c ---- */
/* A new client call (crpc_call_start's first half) and its start. */
int crpc__client_new_call(crpc_call **out, crpc_channel *ch,
                          const crpc_method *m, const crpc_call_opts *opts);
void crpc__client_start(crpc_call *c);

/* ---- worker.c ---- */
typedef struct crpc__workers crpc__workers;
/* The pool and its jobs come from |mem|, which must outlive it. */
int crpc__workers_new(crpc__workers **out, unsigned max,
                      const crpc_mem *mem);
/* Runs fn(arg) on a worker thread (starting one if none is idle and the
 * pool is below its maximum). */
int crpc__workers_submit(crpc__workers *w, void (*fn)(void *), void *arg);
/* Waits until every submitted job has run, then stops the threads. */
void crpc__workers_free(crpc__workers *w);

#endif
