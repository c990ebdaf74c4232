/**
 * \file
 * server.h: listeners, reactor threads, method dispatch.
 */
#ifndef CRPC_SERVER_H
#define CRPC_SERVER_H

#include <crpc/call.h>
#include <crpc/loop.h>
#include <crpc/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A server: listeners, reactor threads, registered methods. Opaque:
 * crpc_server_new(), crpc_server_free(). */
typedef struct crpc_server crpc_server;

/** Options; {0} or NULL: the documented defaults. Copied, never kept. */
typedef struct crpc_server_opts {
  unsigned reactor_threads;        /**< 0: number of CPUs; ignored with
                                      |loop| */
  crpc_loop *loop;                 /**< NULL: crpc's own reactor threads.
                                      Else the server runs on this loop
                                      (crpc/loop.h), driven by the
                                      program: no reactor thread, and
                                      NONBLOCKING handlers start no thread
                                      at all (blocking ones still run on
                                      crpc's workers). Must outlive the
                                      server. */
  unsigned max_workers;            /**< blocking handler threads; 0: 256 */
  size_t max_recv_msg_size;        /**< 0: 4 MiB; SIZE_MAX: no limit */
  size_t max_send_msg_size;        /**< 0: no limit */
  uint32_t max_concurrent_streams; /**< per connection; 0: 100 */
  uint32_t max_header_list_size;   /**< bytes; 0: 16 KiB */
  const crpc_mem *mem;             /**< NULL: libc; copied. Everything the
                                      server makes allocates from it
                                      (common.h), including the requests
                                      given to handlers; must stay usable
                                      until crpc_server_free() returns */
  /* Defences against hostile peers. */
  int64_t handshake_timeout_ms; /**< a new connection must finish its TLS
                                   handshake and HTTP/2 preface within
                                   this, or it is closed (slow-loris);
                                   0: 20000; < 0: no limit */
  int64_t idle_timeout_ms;      /**< GOAWAY and close a connection that has
                                   had no call for this long; 0: never */
  uint32_t max_connections;     /**< open connections; at the limit a new
                                   one replaces the oldest connection
                                   without a call (of its reactor thread,
                                   else of another), or waits, accepted
                                   but unread, for one to close: for at
                                   most handshake_timeout_ms, then it is
                                   refused; 0: no limit */
  /* Output memory: bytes of responses queued toward clients that do not
   * read them. A connection over its budget gets no new handler until it
   * drains (requests wait, holding only their request); a handler's
   * crpc_call_write() waits; a unary response is packed once and the
   * handler's arena freed. Over the server's budget, only connections
   * with nothing queued get their next response out. */
  size_t max_conn_output_bytes; /**< output budget per connection (see
                                   above); 0: 4 MiB */
  size_t max_output_bytes;      /**< output budget over all connections;
                                   0: 64 MiB */
  int64_t write_stall_timeout_ms; /**< a connection with a handler waiting
                                     to write (or over its budget) whose
                                     client accepts no DATA for this long
                                     gets GOAWAY and is closed, its calls
                                     cancelled; 0: 30000; < 0: never */
  uint32_t max_ping_strikes;    /**< PING/SETTINGS frames < 1 s apart with
                                   no response sent in between, before
                                   GOAWAY(ENHANCE_YOUR_CALM); 0: 10. A
                                   PING counts as a strike when it comes
                                   sooner than keepalive_min_time_ms
                                   after the previous one (see there) */
  /* Connection management (gRFC A9) and keepalive (gRPC's
   * doc/keepalive.md), with gRPC's names. */
  int64_t max_connection_idle_ms; /**< gRPC's name for idle_timeout_ms,
                                     the same behaviour (GOAWAY and close
                                     once no call has been outstanding for
                                     this long); used when idle_timeout_ms
                                     is 0; 0: never */
  int64_t max_connection_age_ms;  /**< a connection older than this, ±10%
                                     jitter, is drained: GOAWAY(NO_ERROR,
                                     last stream 2^31-1) and a PING, then,
                                     once the PING is answered, the final
                                     GOAWAY with the last stream processed;
                                     running calls go on, clients open a new
                                     connection for new ones; 0: never */
  int64_t max_connection_age_grace_ms; /**< after the first GOAWAY of
                                          max_connection_age_ms, calls
                                          still running after this long are
                                          cancelled and the connection
                                          closed; 0: no limit */
  int64_t keepalive_time_ms;    /**< the server PINGs a connection that
                                   sent nothing for this long; 0: 2 hours
                                   (gRPC's default); < 0: never */
  int64_t keepalive_timeout_ms; /**< ... and closes it if the PING is not
                                   answered within this; 0: 20000 */
  int64_t keepalive_min_time_ms; /**< gRPC's
                                    min_ping_interval_without_data: a
                                    client PING sooner than this after its
                                    previous one, with no HEADERS or DATA
                                    sent by the server in between, is a
                                    strike (max_ping_strikes); past the
                                    limit: GOAWAY(ENHANCE_YOUR_CALM, debug
                                    data "too_many_pings"), as gRPC sends.
                                    0: 300000 (5 min, gRPC's default);
                                    < 0: only the 1 s flood rule */
  bool permit_keepalive_without_calls; /**< false (gRPC's default): a
                                          PING on a connection without a
                                          call is a strike unless 2 hours
                                          apart; true: keepalive_min_time_ms
                                          applies to it too */
  crpc_metrics *metrics;        /**< NULL: none. Every call counts into
                                   this recorder (crpc/metrics.h), which
                                   must outlive the server */
} crpc_server_opts;

/**
 * crpc_server_register flag: the handler never blocks, so it runs inline on
 * the connection's reactor thread (no thread hop: the fastest path). It
 * must not wait for anything; crpc_call_write() never blocks there (it
 * queues, and the call stops taking requests until the queue drains).
 * - unary, server streaming: called once with the whole request, at the
 *   end of the request stream;
 * - client streaming, bidi: called once per received message (|req| set,
 *   |resp| NULL; return CRPC_OK to go on, any other code ends the call with
 *   it), then once with |req| NULL when the client has finished sending
 *   (|resp| set for client streaming; the return value is the status), or
 *   when the call was cancelled (crpc_call_is_cancelled() true, |resp| NULL,
 *   the return value ignored): free per-call state there. crpc_call_read()
 *   is not used. The auth hook, if any, also runs on the reactor.
 * Generated typed handlers of bidi methods take no message, so register
 * those with crpc_server_register() to use this mode.
 */
#define CRPC_HANDLER_NONBLOCKING 0x1u

/** Returns 0, CRPC_EINVAL or CRPC_ENOMEM. */
CRPC_API int crpc_server_new(crpc_server **out, const crpc_server_opts *opts);

/**
 * Listens on |addr|: "127.0.0.1:0", "[::1]:50051", "0.0.0.0:50051",
 * "localhost:0", ":50051" (all interfaces) or "unix:/path". Port 0 picks a
 * free port, written to |*port_out| (may be NULL). |tls| NULL: clear text.
 * Before crpc_server_start(). Returns 0; CRPC_EINVAL; CRPC_ETARGET;
 * CRPC_EADDRINUSE; CRPC_ESYS; CRPC_ETLS; CRPC_ESTATE (already started).
 */
CRPC_API int crpc_server_listen(crpc_server *s, const char *addr,
                                const crpc_tls_server_opts *tls,
                                int *port_out);

/**
 * Registers one method. Before crpc_server_start(). Returns 0, CRPC_EINVAL,
 * CRPC_EEXIST (path registered), CRPC_ESTATE or CRPC_ENOMEM.
 */
CRPC_API int crpc_server_register(crpc_server *s, const crpc_method *m,
                                  crpc_handler h, unsigned flags,
                                  void *user_data);

/**
 * Registers every method of a generated service with its typed handler
 * table |handlers| (copied; svc->handlers_size bytes). A NULL entry answers
 * UNIMPLEMENTED. Same returns as crpc_server_register().
 */
CRPC_API int crpc_server_register_service(crpc_server *s,
                                          const crpc_service *svc,
                                          const void *handlers, unsigned flags,
                                          void *user_data);

/**
 * Authorization hook, run before every handler (on the handler's thread)
 * with the call's request metadata and peer identity available
 * (crpc_call_request_metadata, crpc_call_peer_cert_subject, ...). Return
 * CRPC_OK to let the handler run, or e.g. CRPC_UNAUTHENTICATED /
 * CRPC_PERMISSION_DENIED (message: crpc_call_set_status_message) to end the
 * call with that status.
 */
typedef crpc_code (*crpc_auth_hook)(crpc_call *call, void *user_data);

/** Installs |hook| (NULL removes it). Before crpc_server_start(). The
 * hook runs as a server interceptor's on_start (crpc/interceptor.h),
 * taking the chain slot where it was first installed. Returns 0,
 * CRPC_EINVAL, CRPC_ESTATE or CRPC_ENOMEM (the interceptor chain is
 * full). */
CRPC_API int crpc_server_set_auth_hook(crpc_server *s, crpc_auth_hook hook,
                                       void *user_data);

/** Starts the reactor threads. Returns 0, CRPC_ESTATE, CRPC_ESYS. */
CRPC_API int crpc_server_start(crpc_server *s);

/**
 * Graceful shutdown: stops accepting, sends GOAWAY, lets running calls finish
 * for up to |grace_ms| (< 0: wait for ever), then cancels the rest. Returns
 * when every connection is closed. Any thread except a handler's.
 */
CRPC_API void crpc_server_shutdown(crpc_server *s, int64_t grace_ms);

/**
 * Reloads the certificate chain and key of every TLS listener from the
 * files given to crpc_server_listen() (e.g. after rotation): new
 * connections use the new ones, open connections are unaffected. Any
 * thread. Returns 0, or CRPC_ETLS (files unreadable or not matching; the
 * old credentials stay in use).
 */
CRPC_API int crpc_server_reload_tls(crpc_server *s);

/**
 * Bytes of responses queued toward clients right now, over every
 * connection (what max_output_bytes bounds); |*peak| (may be NULL) gets the
 * most there has been since the server started. Any thread.
 */
CRPC_API size_t crpc_server_output_bytes(const crpc_server *s, size_t *peak);

/** Blocks until crpc_server_shutdown() has completed (from another thread). */
CRPC_API void crpc_server_wait(crpc_server *s);

/** Shuts down (grace 0) if needed and frees. On a program-driven loop
 * (crpc/loop.h) it may be called from inside one of that loop's callbacks
 * (a NONBLOCKING handler, a client call's callback): it then returns at
 * once, and the server is shut down (its calls cancelled) and freed once
 * the callbacks have unwound, later in the same turn of the loop or the
 * next (crpc_loop_free() finishes it too). The server must not be used
 * after the call either way. NULL-safe. */
CRPC_API void crpc_server_free(crpc_server *s);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_SERVER_H */
