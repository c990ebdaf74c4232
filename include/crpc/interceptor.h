/**
 * \file
 * interceptor.h: ordered chains of hooks around every call of a channel
 * (client) or a server, for every RPC kind and both the blocking and the
 * callback APIs.
 *
 * An interceptor is a struct of optional hook functions (NULL: not
 * interested) plus a user_data pointer, both given at registration (the
 * struct is copied). The chain lives in the channel or server: running it
 * allocates nothing per call.
 *
 * Order (gRPC's convention: the first registered is the outermost):
 * - client: on_start and on_send run in registration order (the first
 *   registered sees the request first); on_headers, on_recv and on_done
 *   run in reverse order (the first registered sees the response last);
 * - server: on_start and on_recv run in registration order; on_send and
 *   on_finish in reverse order.
 *
 * Messages: outgoing messages are seen unpacked (before packing; a client
 * interceptor may replace one); incoming messages are seen as the packed
 * protobuf bytes as they arrived (|compressed|: still compressed with the
 * call's grpc-encoding), before anyone unpacks them.
 *
 * Ending a call early: a non-OK code from an on_start ends the call with
 * it (the later interceptors' on_start does not run). Client: nothing is
 * sent; the call fails locally with that status. Server: the handler never
 * runs; the client gets that status (message: crpc_call_set_status_message
 * from the hook, or a default one).
 *
 * Threads: each hook says where it runs; a hook on a loop's thread must
 * not block. Client call credentials (crpc_call_creds_cb) run after every
 * on_start, as the innermost step. An interceptor that needs per-call
 * state keeps it in the call's arena (crpc_call_arena_alloc(), freed with
 * the call): that is the program's allocation, the chain makes none.
 */
#ifndef CRPC_INTERCEPTOR_H
#define CRPC_INTERCEPTOR_H

#include <crpc/channel.h>
#include <crpc/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Most interceptors one channel or server holds (a fixed array: no
 * allocation per call). */
#define CRPC_MAX_INTERCEPTORS 8

/** Hooks of a client interceptor; every one optional. |ud| is the
 * user_data given to crpc_channel_add_interceptor(). */
typedef struct crpc_client_interceptor {
  /** Before anything is sent, on the thread starting the call
   * (crpc_call_start*, crpc_unary*): |m| is the method (path and kind);
   * add request metadata to |md|. Return CRPC_OK, or a code to fail the
   * call with it locally (message: "call ended by a client interceptor
   * (CODE)"). */
  crpc_code (*on_start)(crpc_call *call, const crpc_method *m,
                        crpc_metadata *md, void *ud);
  /** Each outgoing message, unpacked, on the writer's thread (the
   * starter's for unary and server-streaming calls): |*msg| may be
   * replaced by a message of the same type, which must stay valid until
   * the write function returns (it is packed before that). Return
   * CRPC_OK, or a code to end the call with it (the message is not sent;
   * the write fails). */
  crpc_code (*on_send)(crpc_call *call, const ProtobufCMessage **msg,
                       void *ud);
  /** The response headers (custom metadata) arrived; the loop's thread.
   * A trailers-only response (e.g. an error) comes with an empty |md|;
   * not called when the call ends without any response. */
  void (*on_headers)(crpc_call *call, const crpc_metadata *md, void *ud);
  /** Each response message as received (packed, |compressed| as flagged
   * on the wire), the loop's thread, before it is delivered. */
  void (*on_recv)(crpc_call *call, const uint8_t *data, size_t len,
                  bool compressed, void *ud);
  /** The call ended with |st| and |trailers| (both lent for the hook),
   * before the program sees the end (crpc_call_finish returns, on_done
   * or the unary callback runs). On the thread that ends the call: the
   * loop's, or a blocking caller's that runs the loop itself. Runs for
   * every interceptor whose on_start ran (also when one ended it early). */
  void (*on_done)(crpc_call *call, const crpc_status *st,
                  const crpc_metadata *trailers, void *ud);
} crpc_client_interceptor;

/** Hooks of a server interceptor; every one optional. |ud| is the
 * user_data given to crpc_server_add_interceptor(). */
typedef struct crpc_server_interceptor {
  /** Before the handler, on the handler's thread (a worker for blocking
   * handlers, the loop for NONBLOCKING ones): crpc_call_method(),
   * crpc_call_request_metadata(), crpc_call_peer*() are available, and
   * response headers / trailers may be added
   * (crpc_call_add_initial_metadata / _trailing_metadata). Return CRPC_OK
   * to go on, or a code: the handler never runs and the client gets that
   * status (message from crpc_call_set_status_message, or a default). */
  crpc_code (*on_start)(crpc_call *call, const crpc_method *m, void *ud);
  /** Each request message as received (packed bytes, |compressed| as
   * flagged on the wire), on the loop's thread. */
  void (*on_recv)(crpc_call *call, const uint8_t *data, size_t len,
                  bool compressed, void *ud);
  /** Each response message, unpacked, before it is packed, on the
   * thread writing it (the handler's; crpc_call_answer()'s caller). */
  void (*on_send)(crpc_call *call, const ProtobufCMessage *msg, void *ud);
  /** The call's status is decided (|code|; message via the call), before
   * the trailers are queued: trailers may still be added. On the thread
   * that completes the call (the handler's, crpc_call_answer()'s caller),
   * or the loop's when the call was cancelled, reset or timed out first
   * (|code| then CANCELLED or DEADLINE_EXCEEDED). Runs once for every
   * interceptor whose on_start ran. */
  void (*on_finish)(crpc_call *call, crpc_code code, void *ud);
} crpc_server_interceptor;

/**
 * Appends |ic| (copied) with |user_data| to the channel's chain. Before
 * the first call is started on the channel (calls read the chain without
 * a lock). Returns 0; CRPC_EINVAL (NULL arguments); CRPC_ENOMEM (chain
 * full: CRPC_MAX_INTERCEPTORS). Thread: the channel's creator, before use.
 */
CRPC_API int crpc_channel_add_interceptor(crpc_channel *ch,
                                          const crpc_client_interceptor *ic,
                                          void *user_data);

/**
 * Appends |ic| (copied) with |user_data| to the server's chain. Before
 * crpc_server_start(). Returns 0; CRPC_EINVAL; CRPC_ESTATE (started);
 * CRPC_ENOMEM (chain full: CRPC_MAX_INTERCEPTORS). The auth hook
 * (crpc_server_set_auth_hook) takes one slot, at the place in the chain
 * where it was first installed.
 */
CRPC_API int crpc_server_add_interceptor(crpc_server *s,
                                         const crpc_server_interceptor *ic,
                                         void *user_data);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_INTERCEPTOR_H */
