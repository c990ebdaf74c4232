/*
 * conn.h: one HTTP/2 connection: a byte stream (TCP or unix socket, TLS
 * optional) and an nghttp2 session, owned by one reactor thread for its
 * whole life. Client and server share it; the role-specific parts live in
 * client.c and server.c.
 */
#ifndef CRPC_CONN_H
#define CRPC_CONN_H

#include <nghttp2/nghttp2.h>

#include <crpc/status.h>

#include "budget.h"
#include "loop.h"
#include "transport.h"

typedef struct crpc__conn crpc__conn;
typedef struct crpc_call crpc_call;

/*
 * What the transport reports about a connection's streams, to the role
 * (client or server) that made the connection: conn.c calls these and
 * knows nothing else of either side [loop].
 */
typedef struct crpc__stream_events {
  /* A stream the peer opened (servers; NULL for clients): make its call.
   * 0 or an NGHTTP2_ERR_* (the stream is reset). */
  int (*begin)(crpc__conn *c, int32_t stream_id);
  /* One header of a HEADERS block; 0 or an NGHTTP2_ERR_*. */
  int (*header)(crpc_call *call, const nghttp2_frame *f, const uint8_t *name,
                size_t namelen, const uint8_t *value, size_t valuelen);
  void (*headers_done)(crpc_call *call, const nghttp2_frame *f,
                       bool end_stream);
  void (*end_stream)(crpc_call *call);
  /* Messages were queued on the call (optional). */
  void (*data)(crpc_call *call);
  /* The stream's framing is bad (a crpc__deframer_feed error). */
  void (*data_error)(crpc_call *call, int rv);
  void (*stream_close)(crpc_call *call, uint32_t error_code);
  /* The connection went away under the call. */
  void (*fail)(crpc_call *call, crpc_code code, const char *msg);
  /* The trailer block sent after the last DATA (servers; NULL for
   * clients, whose last DATA carries END_STREAM). */
  size_t (*trailers)(crpc_call *call, nghttp2_nv *nva, size_t max);
} crpc__stream_events;

/* The loop's write buffer while crpc__conn_flush() fills it
 * (conn_write.c): nghttp2's frames and our DATA, written in one go. */
typedef struct crpc__gather {
  uint8_t *buf;
  size_t cap, len;
  bool full; /* a DATA frame did not fit: write, then go on */
} crpc__gather;

typedef struct crpc__conn_hooks {
  const crpc__stream_events *streams;
  /* Called once when the connection is gone (after every attached call was
   * detached); the owner forgets it. The conn is freed right after. */
  void (*on_closed)(crpc__conn *c);
  /* Called last, once the conn and all it allocated are freed (the owner
   * may go, and its allocator with it). May be NULL. */
  void (*on_freed)(void *owner);
  /* Optional [loop]: the output budget drained (writers were woken). */
  void (*on_drained)(crpc__conn *c);
  /* Optional [loop, inside nghttp2's callback]: the peer's SETTINGS (its
   * preface) arrived: the connection is up. */
  void (*on_ready)(crpc__conn *c);
} crpc__conn_hooks;

struct crpc__conn {
  const crpc_mem *mem; /* the owner's: the conn, its buffer, nghttp2 */
  crpc__loop *loop;
  crpc__io io;
  crpc__transport *tp; /* plain or TLS byte stream */
  nghttp2_session *session;
  bool is_server;
  bool handshaking; /* transport handshake not finished */
  bool dead;        /* closing: no more I/O */
  bool flush_queued;
  bool in_io; /* inside a callback that flushes on exit */
  bool goaway_received;
  uint8_t *wbuf;
  size_t wlen, woff, wcap;
  crpc__gather *gather; /* set only inside crpc__conn_flush() */
  int write_errno;      /* why a write inside nghttp2's callback failed */
  crpc_call *calls; /* attached calls (intrusive list) */
  size_t ncalls;
  crpc__task flush_task;
  crpc__task close_task;
  crpc__conn_hooks hooks;
  void *owner; /* crpc_channel or server thread */
  char close_msg[200]; /* why crpc__conn_close() closed it */
  struct crpc__conn *next, *prev; /* in the owner's list */
  char peer[80];
  /* the server side */
  void *server;
  size_t max_recv;
  uint32_t max_header_list;
  /* Defences against hostile peers (conn.c); the role code sets the
   * limits before crpc__conn_start(), 0 turns one off. */
  int64_t handshake_ms;  /* TLS handshake + HTTP/2 preface deadline */
  int64_t idle_ms;       /* GOAWAY after this long without a call */
  uint32_t max_strikes;  /* PING/SETTINGS floods (see on_control) */
  crpc__timer guard_timer; /* the handshake deadline, then the idle one */
  bool preface_done;       /* the peer's first SETTINGS arrived */
  bool sent_since_ctl;     /* we sent HEADERS/DATA since its last PING */
  uint32_t strikes;
  int64_t last_ctl_ms;
  int64_t rst_tokens_ms; /* reset budget, as a time (see count_reset) */
  int64_t born_ms;
  const char *calm_reason; /* why we sent GOAWAY(ENHANCE_YOUR_CALM) */
  /* Server connection management (conn_mgmt.c): the role code sets
   * these before crpc__conn_start(). */
  int64_t max_age_ms;     /* drain at this age (jittered at start); 0: no */
  int64_t age_grace_ms;   /* then cancel what is left; 0: no limit */
  int64_t min_ping_ms;    /* keepalive enforcement (on_control); <= 0: off */
  bool ping_without_calls; /* permit_keepalive_without_calls */
  int drain_state;        /* CRPC__DRAIN_* */
  int64_t drain_started_ms;
  crpc__timer age_timer;  /* max age, the PING ack, then the grace */
  int64_t last_ping_ms;   /* the peer's last PING (0: none yet) */
  bool sent_since_ping;   /* we sent HEADERS/DATA since that PING */
  /* Keepalive (clients, and servers with keepalive_time_ms): PING after keepalive_ms without input; no answer
   * within keepalive_timeout_ms closes the connection. */
  int64_t keepalive_ms, keepalive_timeout_ms;
  int64_t last_recv_ms, ping_sent_ms;
  crpc__timer ka_timer;
  /* Output budget (budget.h): the role code sets out.limit and
   * out_parent (the server's) before crpc__conn_start(). */
  crpc__budget out;
  crpc__budget *out_parent;
  crpc__task drain_task; /* conn_drained(), posted by out.on_drained */
  atomic_bool drain_queued;
  /* Write stall: output queued with writers blocked (or the budget full)
   * and no DATA handed to HTTP/2 for stall_ms closes the connection. */
  int64_t stall_ms; /* 0: off */
  crpc__timer stall_timer;
  int64_t last_progress_ms; /* DATA last taken from a send queue (or the
                               watch began) */
  /* the server side: calls held back while the budget is full */
  crpc_call *pend_head, *pend_tail;
  atomic_size_t unary_inflight; /* dispatched unary handlers running */
};

/* Creates a connection on |fd| and starts reading. The session is created by
 * the caller's role code (client.c / server.c) after this returns. The
 * conn allocates from |mem|, its owner's, which outlives it. */
int crpc__conn_new(crpc__conn **out, crpc__loop *loop, int fd,
                   crpc__transport *tp, bool is_server, void *owner,
                   const crpc__conn_hooks *hooks, const crpc_mem *mem);

/* Starts the transport handshake (TLS) or sends the HTTP/2 preface. */
void crpc__conn_start(crpc__conn *c);

/* nghttp2 callbacks shared by both roles; role hooks fill the rest. */
int crpc__conn_make_callbacks(nghttp2_session_callbacks **out);

/* Writes whatever nghttp2 wants to send (now). */
void crpc__conn_flush(crpc__conn *c);
/* Flushes at the end of this loop round (batches writes). */
void crpc__conn_schedule_flush(crpc__conn *c);
/* Tears the connection down: every attached call is failed with
 * |code|/|msg|, then hooks.on_closed, then the conn is freed (later, on
 * the loop, never inside an nghttp2 callback). */
void crpc__conn_close(crpc__conn *c, crpc_code code, const char *msg);

void crpc__conn_attach(crpc__conn *c, crpc_call *call);
void crpc__conn_detach(crpc__conn *c, crpc_call *call);

/* Runs |c|'s drain work on its loop (any thread; see budget.h). */
void crpc__conn_post_drained(crpc__conn *c);
/* [loop] Wakes writers of every attached call blocked on the budget,
 * then the role's on_drained hook. */
void crpc__conn_drained(crpc__conn *c);

/* ---- server connection management (conn_mgmt.c) [loop] ---- */
enum { CRPC__DRAIN_NONE, CRPC__DRAIN_NOTICE, CRPC__DRAIN_FINAL };
/* Arms the max-age timer (with its jitter) of a server connection. */
void crpc__conn_mgmt_start(crpc__conn *c);
/* Starts the graceful GOAWAY sequence (A9): shutdown notice + PING, the
 * final GOAWAY once the PING is answered; calls still running
 * age_grace_ms after the notice are cancelled. |why| is logged. */
void crpc__conn_drain(crpc__conn *c, const char *why);
/* A PING ACK arrived: the drain's PING, maybe (its opaque data). */
void crpc__conn_ping_ack(crpc__conn *c, const uint8_t *opaque);

/* ---- output (conn_write.c) [loop] ---- */
/* nghttp2 data source over a call's send queue: says how many bytes the
 * next DATA frame carries (NGHTTP2_DATA_FLAG_NO_COPY); the bytes stay
 * queued until crpc__conn_send_data() writes them. */
ssize_t crpc__call_data_read(nghttp2_session *session, int32_t stream_id,
                                   uint8_t *buf, size_t length,
                                   uint32_t *data_flags,
                                   nghttp2_data_source *source,
                                   void *user_data);
/* nghttp2's send_data callback: appends the DATA frame (header and the
 * payload, from the call's send queue) to the flush's gather buffer, or
 * NGHTTP2_ERR_WOULDBLOCK when it does not fit (written first). */
int crpc__conn_send_data(nghttp2_session *session, nghttp2_frame *frame,
                         const uint8_t *framehd, size_t length,
                         nghttp2_data_source *source, void *user_data);

/* nghttp2's data_source_read_length callback: how large the next DATA
 * frame may be (larger than 16 KiB only on clear text, when the peer's
 * SETTINGS_MAX_FRAME_SIZE allows and that much is queued). */
ssize_t crpc__conn_data_length(nghttp2_session *session, uint8_t frame_type,
                               int32_t stream_id, int32_t session_window,
                               int32_t stream_window, uint32_t peer_max,
                               void *user_data);

#define CRPC__NV(n, v)                                                         \
  {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                   \
   NGHTTP2_NV_FLAG_NO_COPY_NAME}

#endif
