/**
 * \file
 * channel.h: the client side. A channel is a (lazy, reconnecting) HTTP/2
 * connection to one target, shared by any number of threads and calls.
 */
#ifndef CRPC_CHANNEL_H
#define CRPC_CHANNEL_H

#include <crpc/call.h>
#include <crpc/loop.h>
#include <crpc/resolver.h>
#include <crpc/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A client's connection to one target, shared by any number of threads
 * and calls. Opaque: crpc_channel_new(), crpc_channel_free(). */
typedef struct crpc_channel crpc_channel;

/**
 * Call credentials: called before each call starts, on the thread that
 * starts it, to add metadata such as "authorization: Bearer <token>" to
 * |md|. Return CRPC_OK, or a status code (e.g. CRPC_UNAUTHENTICATED) to fail
 * the call with it without sending anything. Never run for an insecure
 * (clear-text) channel unless allow_insecure_call_creds is set.
 */
typedef crpc_code (*crpc_call_creds_cb)(const char *method_path,
                                        crpc_metadata *md, void *user_data);

/** Options; {0} (or NULL) is the documented default of every field. Copied
 * by crpc_channel_new(), never kept (pointers inside: see each field). */
typedef struct crpc_channel_opts {
  const crpc_tls_opts *tls;    /**< NULL: clear text (h2c); copied */
  size_t max_recv_msg_size;    /**< 0: 4 MiB; SIZE_MAX: no limit */
  size_t max_send_msg_size;    /**< 0: no limit */
  const crpc_mem *mem;         /**< NULL: libc; copied. Everything the
                                  channel makes allocates from it
                                  (common.h); must stay usable until
                                  crpc_channel_free() returns */
  ProtobufCAllocator *msg_allocator; /**< NULL: protobuf-c's (libc); response
                                  messages returned to you come from it
                                  (free them with it); must outlive */
  const char *authority;       /**< :authority; NULL: the target */
  const char *compression;     /**< default per-call encoding; NULL: identity */
  int64_t initial_backoff_ms;  /**< reconnect back-off start; 0: 1000 */
  int64_t max_backoff_ms;      /**< back-off cap; 0: 120000 */
  int64_t keepalive_ms;        /**< PING after this long without input; 0: off.
                                  gRPC servers refuse pings more often than
                                  every 5 minutes by default */
  crpc_call_creds_cb call_creds; /**< per-channel call credentials */
  void *call_creds_user_data;  /**< passed to |call_creds| */
  int allow_insecure_call_creds; /**< send call creds over clear text */
  int64_t handshake_timeout_ms; /**< TLS handshake and the server's HTTP/2
                                   SETTINGS must arrive within this after
                                   connecting; 0: 20000; < 0: no limit */
  int64_t keepalive_timeout_ms; /**< keepalive PING unanswered this long
                                  closes the connection; 0: 20000 */
  size_t max_conn_output_bytes; /**< request bytes queued toward a server
                                   that does not read, before writers
                                   wait (crpc_call_write blocks);
                                   0: 4 MiB */
  crpc_loop *loop;              /**< NULL: one of crpc's shared client
                                   reactor threads. Else the channel runs
                                   on this program-driven loop (crpc/loop.h)
                                   and starts no thread; async callbacks
                                   run on the loop's thread. Must outlive
                                   the channel. */
  int64_t write_stall_timeout_ms; /**< a connection with writers waiting
                                     (or its output budget full) and no
                                     byte of DATA accepted by the server
                                     for this long is closed: its calls
                                     end UNAVAILABLE; 0: 30000; < 0: never */
  crpc_metrics *metrics; /**< NULL: none. Every call counts into this
                            recorder (crpc/metrics.h), which must outlive
                            the channel */
  const char *service_config_json; /**< the channel's service config
                                      (gRPC's JSON, gRFC A2): the load
                                      balancing policy, per-method timeout,
                                      waitForReady, message size limits and
                                      retryPolicy, retryThrottling. NULL:
                                      none. A malformed one fails
                                      crpc_channel_new() with CRPC_EINVAL
                                      and the reason in |error_buf| */
  char *error_buf;       /**< NULL, or where crpc_channel_new() writes why
                            it failed, NUL-terminated (e.g. "service
                            config: methodConfig[0].timeout: \"1x\" is
                            not a duration"); "" on success */
  size_t error_buf_size; /**< |error_buf|'s size in bytes */
  const char *lb_policy; /**< "pick_first" (NULL: the default) or
                            "round_robin"; a loadBalancingConfig in the
                            service config takes precedence, as in gRPC.
                            Another name fails crpc_channel_new() with
                            CRPC_EINVAL */
  const crpc_resolver *resolver; /**< NULL: resolve the target by its
                                    scheme (dns:, ipv4:, ipv6:, unix:).
                                    Else the program's own (crpc/resolver.h;
                                    copied) */
  int64_t min_resolution_interval_ms; /**< least time between two
                                         resolutions of the target;
                                         0: 30000 (gRPC's default) */
} crpc_channel_opts;

/** crpc_call_opts flag: wait for the channel to connect instead of failing
 * UNAVAILABLE at once when the server cannot be reached. */
#define CRPC_CALL_WAIT_FOR_READY 0x1u

/** Per-call options; {0} or NULL: no deadline, no metadata. */
typedef struct crpc_call_opts {
  int64_t timeout_ms;                  /**< <= 0: no deadline */
  const crpc_metadata *metadata;       /**< request metadata; copied */
  unsigned flags;                      /**< CRPC_CALL_* */
  const char *compression;             /**< NULL: channel default */
  crpc_metadata *initial_metadata_out; /**< response headers appended here
                                            (yours; must outlive the call) */
  crpc_metadata *trailing_metadata_out; /**< trailers appended here (yours;
                                             must outlive the call) */
  crpc_call_creds_cb call_creds;       /**< per-call credentials (after the
                                          channel's) */
  void *call_creds_user_data;          /**< passed to |call_creds| */
} crpc_call_opts;

/**
 * Creates a channel to |target|: "host:port" or "dns:///host:port" (names
 * resolved with c-ares on the channel's loop, /etc/hosts first),
 * "dns://dns-server[:port]/host:port", "ipv4:1.2.3.4:80,1.2.3.5:80",
 * "ipv6:[::1]:80,[::2]:80", "[::1]:80", "unix:/path" or "unix:///path";
 * with opts->resolver, any name. Calls are balanced over the addresses by
 * the load-balancing policy (opts->lb_policy, or the service config's).
 * Nothing resolves or connects until the first call (or
 * crpc_channel_state(ch, 1)).
 * Returns 0; CRPC_EINVAL (also: an invalid service config or an unknown
 * lb_policy, the reason in opts->error_buf and the log); CRPC_ETARGET
 * (unparseable target, a bad entry in an address list);
 * CRPC_ETLS; CRPC_ENOMEM; CRPC_ESYS (thread or eventfd creation failed).
 * Thread safety: the channel may be used from any number of threads.
 */
CRPC_API int crpc_channel_new(crpc_channel **out, const char *target,
                              const crpc_channel_opts *opts);

/** Closes the channel; calls still running end CANCELLED (async ones get
 * their callback first). Every call must be freed before the channel is.
 * On a program-driven loop (crpc/loop.h) it may be called from inside one
 * of that loop's callbacks: it then returns at once and the channel is
 * closed and freed once the callbacks have unwound (later in the same
 * turn of the loop, or the next; crpc_loop_free() finishes it too); the
 * channel must not be used after the call either way. On crpc's own
 * client threads, not from an async callback. NULL-safe. */
CRPC_API void crpc_channel_free(crpc_channel *ch);

/** A channel's connectivity state (gRPC's). */
typedef enum crpc_connectivity_state {
  CRPC_CHANNEL_IDLE = 0,              /**< no connection, none wanted yet */
  CRPC_CHANNEL_CONNECTING = 1,        /**< resolving or connecting */
  CRPC_CHANNEL_READY = 2,             /**< calls go out now */
  CRPC_CHANNEL_TRANSIENT_FAILURE = 3, /**< nothing reachable: calls that do
                                         not wait for ready fail
                                         UNAVAILABLE; retrying with
                                         backoff */
  CRPC_CHANNEL_SHUTDOWN = 4           /**< the channel is being freed */
} crpc_connectivity_state;

/** "IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE", "SHUTDOWN" (gRPC's
 * names), or "UNKNOWN". Static storage; any thread. */
CRPC_API const char *crpc_connectivity_state_name(crpc_connectivity_state s);

/**
 * The channel's state now: with round_robin READY when any address is,
 * with pick_first the state of the address it uses or tries. With
 * |try_to_connect| non-zero an IDLE channel starts resolving and
 * connecting (as a call would). Any thread; the state may have moved on
 * by the time the caller looks at it (watch it with
 * crpc_channel_watch_state()).
 */
CRPC_API crpc_connectivity_state crpc_channel_state(crpc_channel *ch,
                                                    int try_to_connect);

/** See crpc_channel_watch_state(). */
typedef void (*crpc_channel_state_cb)(crpc_channel *ch,
                                      crpc_connectivity_state state,
                                      void *user_data);

/**
 * Calls |cb| once, when the channel's state is other than |last_seen|
 * (soon, if it already is): on the channel's loop's own thread (a client
 * reactor thread, or the program's loop in its own turn), never inside
 * this function. A watcher still waiting when the channel is freed gets
 * CRPC_CHANNEL_SHUTDOWN from inside crpc_channel_free(), on its thread.
 * Watch again from the callback to follow every change. On a
 * program-driven loop the callback may free the channel.
 * Returns 0; CRPC_EINVAL (NULL |ch| or |cb|); CRPC_ENOMEM. Any thread.
 */
CRPC_API int crpc_channel_watch_state(crpc_channel *ch,
                                      crpc_connectivity_state last_seen,
                                      crpc_channel_state_cb cb,
                                      void *user_data);

/**
 * A blocking unary call. |*resp_out| is set only on CRPC_OK and is yours
 * (free with the msg_allocator). |st| may be NULL.
 * Returns the call's status code.
 */
CRPC_API crpc_code crpc_unary(crpc_channel *ch, const crpc_method *m,
                              const crpc_call_opts *opts,
                              const ProtobufCMessage *req,
                              ProtobufCMessage **resp_out, crpc_status *st);

/**
 * Completion of an async unary call, run on one of crpc's client reactor
 * threads (shared by channels): do not block in it, nor make blocking calls
 * or free a channel from it. |resp| (NULL unless st->code is OK) and |st| are
 * borrowed for the callback's duration; |call| may be queried for metadata.
 */
typedef void (*crpc_unary_cb)(crpc_call *call, const crpc_status *st,
                              const ProtobufCMessage *resp, void *user_data);

/**
 * Starts a unary call without waiting. Returns 0 and then calls |cb| exactly
 * once, never from inside this function; or returns CRPC_EINVAL,
 * CRPC_ENOMEM, CRPC_ECLOSED or CRPC_ETOOBIG and never calls |cb|.
 */
CRPC_API int crpc_unary_async(crpc_channel *ch, const crpc_method *m,
                              const crpc_call_opts *opts,
                              const ProtobufCMessage *req, crpc_unary_cb cb,
                              void *user_data);

/** Any function pointer, converted back to its real type before a call
 * (generated code's typed callbacks). */
typedef void (*crpc_fn)(void);
/** For generated code: calls |typed_cb|, converted back to the method's
 * typed callback, with the arguments of a #crpc_unary_cb. Runs where a
 * crpc_unary_cb would. */
typedef void (*crpc_unary_adapter)(crpc_fn typed_cb, crpc_call *call,
                                   const crpc_status *st,
                                   const ProtobufCMessage *resp,
                                   void *user_data);
/** For generated code (`P__call_async`): an async unary call whose typed
 * callback |typed_cb| is invoked through |adapter|. Same contract as
 * crpc_unary_async(): returns 0 and then runs the callback exactly once,
 * or a negative CRPC_E* and never runs it. */
CRPC_API int crpc_unary_async_typed(crpc_channel *ch, const crpc_method *m,
                                    const crpc_call_opts *opts,
                                    const ProtobufCMessage *req,
                                    crpc_unary_adapter adapter,
                                    crpc_fn typed_cb, void *user_data);

/**
 * Starts a call of any kind; then crpc_call_write / writes_done / read /
 * finish. Returns 0; CRPC_EINVAL; CRPC_ENOMEM; CRPC_ECLOSED. A call that
 * cannot connect still starts: its failure shows in crpc_call_finish().
 */
CRPC_API int crpc_call_start(crpc_call **out, crpc_channel *ch,
                             const crpc_method *m, const crpc_call_opts *opts);

/**
 * The callback (reactor) API for a client call of any kind: what
 * crpc_call_start_cb() calls as the call goes. Every callback runs on the
 * channel's loop's own thread (one of crpc's client reactor threads, or,
 * for a channel on a crpc_loop, the program's loop thread in its own
 * turn), never inside another crpc function the program called; none may
 * block. |user_data| is crpc_call_start_cb()'s. Messages are lent for the
 * callback's duration. Inside any of them the program may write, half-close,
 * cancel, or free the call (crpc_call_free(): no callback follows, not even
 * on_done).
 */
typedef struct crpc_call_callbacks {
  /** Optional: the response headers arrived (|md|: their custom metadata;
   * not called when the call ends without any). */
  void (*on_headers)(crpc_call *call, const crpc_metadata *md,
                     void *user_data);
  /** Optional: one response message, in order. Window credit goes back to
   * the server once it returns: a slow callback slows the server. */
  void (*on_message)(crpc_call *call, const ProtobufCMessage *msg,
                     void *user_data);
  /** Optional: the message of crpc_call_write_async() was handed to
   * HTTP/2 (|ok|), or the call ended first (!|ok|). The next write may be
   * issued from here. When a write finishes and a message arrives in the
   * same turn of the loop, on_message may run first: a write issued from
   * on_message before this callback gets CRPC_ESTATE. The order of
   * on_message and on_write_done is not guaranteed; on_done is last. */
  void (*on_write_done)(crpc_call *call, bool ok, void *user_data);
  /** Required: the call ended, with |st| (borrowed) and the trailers in
   * crpc_call_trailing_metadata(); called exactly once, last. The call
   * stays the program's: free it here or later with crpc_call_free(). */
  void (*on_done)(crpc_call *call, const crpc_status *st, void *user_data);
} crpc_call_callbacks;

/**
 * Starts a call of any kind driven by callbacks (|cbs| is copied).
 * Send with crpc_call_write_async() (one message in flight at a time),
 * half-close with crpc_call_writes_done(), cancel with crpc_call_cancel();
 * the deadline is |opts|'s timeout. The blocking read/write/finish
 * functions must not be used on such a call. Returns 0 and then calls
 * cbs->on_done exactly once (unless the call is freed first); or returns
 * CRPC_EINVAL (no on_done), CRPC_ENOMEM, CRPC_ECLOSED, and calls nothing.
 * Any thread.
 */
CRPC_API int crpc_call_start_cb(crpc_call **out, crpc_channel *ch,
                                const crpc_method *m,
                                const crpc_call_opts *opts,
                                const crpc_call_callbacks *cbs,
                                void *user_data);


#ifdef __cplusplus
}
#endif
#endif /* CRPC_CHANNEL_H */
