/**
 * \file
 * call.h: one RPC, client or server side.
 *
 * Thread safety: a call is used by one thread at a time, except
 * crpc_call_cancel(), which any thread may call until crpc_call_free().
 *
 * Messages: messages you write are borrowed (packed before the function
 * returns). Messages crpc_call_read() returns are yours: free them with
 * protobuf_c_message_free_unpacked(msg, allocator), where allocator is the
 * channel's msg_allocator (client side) or NULL (server side). Messages
 * crpc lends you and frees itself (a handler's |req|, an async callback's
 * |resp|) come from the server's or channel's crpc_mem (common.h), or from
 * the channel's msg_allocator when it has one: never free those.
 */
#ifndef CRPC_CALL_H
#define CRPC_CALL_H

#include <stdbool.h>

#include <crpc/metadata.h>
#include <crpc/method.h>
#include <crpc/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/** crpc_call_write2 flag: send this message uncompressed. */
#define CRPC_WRITE_NO_COMPRESS 0x1u

/**
 * Sends one message, waiting while HTTP/2 flow control says the peer is not
 * reading (a slow reader pushes back on the writer). Returns false when the
 * call has ended (status from crpc_call_finish on the client; on the server
 * the call was cancelled) or the message is over the send limit.
 */
CRPC_API bool crpc_call_write(crpc_call *call, const ProtobufCMessage *msg);
/** crpc_call_write() with |flags|: 0 or CRPC_WRITE_NO_COMPRESS. Same
 * returns. */
CRPC_API bool crpc_call_write2(crpc_call *call, const ProtobufCMessage *msg,
                               unsigned flags);

/**
 * Receives the next message into |*msg_out| (yours; see above). Returns false
 * at the end of the stream or when the call failed; the final status then
 * comes from crpc_call_finish() (client) or the call is cancelled (server).
 */
CRPC_API bool crpc_call_read(crpc_call *call, ProtobufCMessage **msg_out);

/** Cancels the call: RST_STREAM(CANCEL) to the peer; the call ends
 * CANCELLED. Any thread, any time before crpc_call_free(). Idempotent. */
CRPC_API void crpc_call_cancel(crpc_call *call);

/** The method path, e.g. "/helloworld.Greeter/SayHello". */
CRPC_API const char *crpc_call_method(const crpc_call *call);

/** Milliseconds left before the deadline, 0 when past it, -1 if none. */
CRPC_API int64_t crpc_call_time_left_ms(const crpc_call *call);

/** Whether the call was cancelled (by either side) or its deadline passed. */
CRPC_API bool crpc_call_is_cancelled(const crpc_call *call);

/** See crpc_call_on_cancel(). Runs on the reactor thread: must not block. */
typedef void (*crpc_call_cancel_cb)(crpc_call *call, void *user_data);

/**
 * Server side: runs |cb| once when the call is cancelled, its deadline
 * passes, its connection dies or crpc aborts it (e.g. a bad request
 * message), so a handler blocked on its own condition (a long poll, a
 * watch) can wake up at once instead of polling crpc_call_is_cancelled().
 * If that already happened, |cb| runs soon on the reactor (never inside
 * this function). It never runs after the handler has returned, and the
 * handler's return waits for a running |cb| to finish, so |user_data| may
 * live on the handler's stack. |cb| NULL unregisters (waiting for a running
 * |cb| to finish).
 * Returns 0 or CRPC_EINVAL (client call). Thread safety: the handler's
 * thread.
 */
CRPC_API int crpc_call_on_cancel(crpc_call *call, crpc_call_cancel_cb cb,
                                 void *user_data);

/**
 * Sends one message without waiting: it is packed now (|msg| is borrowed)
 * and the call's write-done callback runs once it has been handed to
 * HTTP/2 (which happens as the peer's flow-control window allows), which
 * is when the next may be written: gRPC's callback API's backpressure. For
 * a client call started with crpc_call_start_cb() (its on_write_done), and
 * for a server call whose handler set one with crpc_call_on_write_done().
 * Returns 0; CRPC_ESTATE (a write is still in flight, the call was
 * half-closed, answered or has ended); CRPC_EINVAL (neither kind of call,
 * NULL arguments); CRPC_ETOOBIG (over the send limit: the call ends
 * RESOURCE_EXHAUSTED); CRPC_ENOMEM. |flags|: as crpc_call_write2(). Any
 * thread, but a call's writes must not race each other: the slot frees
 * just before the write-done callback runs, so issue the next write from
 * there (or serialize them yourself).
 */
CRPC_API int crpc_call_write_async(crpc_call *call, const ProtobufCMessage *msg,
                                   unsigned flags);

/** See crpc_call_on_write_done(): |ok| is false when the call ended before
 * the message could go. Runs on the call's loop's own thread (a reactor
 * thread of the server, or the program's crpc_loop in its own turn); must
 * not block. */
typedef void (*crpc_write_done_cb)(crpc_call *call, bool ok, void *user_data);

/**
 * Server side, for a handler that deferred its answer (crpc_call_defer())
 * and streams its responses without blocking: sets the callback that
 * crpc_call_write_async() on this call reports to (NULL: none, and
 * crpc_call_write_async() is refused). Typical use: write the first
 * message from the handler, the next from each callback, and answer with
 * crpc_call_answer() from the last one (or when |ok| is false). No
 * callback starts once the call has been answered; answer on the loop's
 * thread (from a callback) so that none is running either.
 * Returns 0 or CRPC_EINVAL (client call). Any thread.
 */
CRPC_API int crpc_call_on_write_done(crpc_call *call, crpc_write_done_cb cb,
                                     void *user_data);

/**
 * Server, from inside a CRPC_HANDLER_NONBLOCKING unary or server-streaming
 * handler, or the closing invocation (|req| NULL, not cancelled) of a
 * NONBLOCKING client-streaming or bidi one: the call is answered later,
 * with crpc_call_answer(), instead of
 * when the handler returns (whose return value is then ignored). This is
 * the asynchronous handler: it may start other work (an async call on the
 * same loop, a job on a thread of its own) and answer when that is done.
 * The response message the handler got stays valid until then (fill it
 * before answering; a server-streaming or bidi handler may
 * crpc_call_write() meanwhile); the request does not: copy what you need from it before
 * returning. Every deferred call must be answered exactly once, even one
 * that was cancelled meanwhile (crpc_call_on_cancel() tells you; that
 * answer is discarded): the answer is what frees the call.
 * Returns 0; CRPC_EINVAL (client call); CRPC_ESTATE (not inside such a
 * handler). Thread: the handler's (the loop's).
 */
CRPC_API int crpc_call_defer(crpc_call *call);

/**
 * Answers a call deferred with crpc_call_defer(): packs the response
 * message the handler got (unary) and ends the call with |code| (and the
 * status message, details and trailers set on the call). Any thread: the
 * answer is handed to the call's loop. It may even come before the
 * deferring handler has returned (from the handler itself, say when the
 * work it started failed at once, or from another thread): the call then
 * ends with it when the handler returns. After it returns, |call| must not
 * be used by the answering code. Returns 0; CRPC_EINVAL (client call);
 * CRPC_ESTATE (not deferred, or answered already).
 */
CRPC_API int crpc_call_answer(crpc_call *call, crpc_code code);

/**
 * Memory that lives as long as the call (freed with it). NULL on OOM.
 */
CRPC_API void *crpc_call_arena_alloc(crpc_call *call, size_t size);

/** Attaches the caller's pointer to the call (e.g. per-call state of a
 * NONBLOCKING streaming handler, which runs once per message). */
CRPC_API void crpc_call_set_user_data(crpc_call *call, void *user_data);
/** The pointer set with crpc_call_set_user_data(), or NULL. */
CRPC_API void *crpc_call_user_data(const crpc_call *call);

/** Copies |s| into the call's arena. NULL on OOM or when s is NULL. */
CRPC_API char *crpc_call_arena_strdup(crpc_call *call, const char *s);

/* ---- client side ---- */

/**
 * Half-closes the client side: no more messages will be written. Returns
 * false if the call has already ended: a server may end a call before the
 * client half-closes (a server-streaming handler that has sent its
 * replies), and then its messages and status are still read as usual.
 */
CRPC_API bool crpc_call_writes_done(crpc_call *call);

/**
 * Waits for the response headers (or the end of the call) and returns them;
 * an empty list when the call ended without any. Valid until
 * crpc_call_free().
 */
CRPC_API const crpc_metadata *crpc_call_initial_metadata(crpc_call *call);

/**
 * Waits for the call to end and returns its status code; fills |st| (may be
 * NULL) with code, message and details. Unread messages are discarded.
 */
CRPC_API crpc_code crpc_call_finish(crpc_call *call, crpc_status *st);

/**
 * Client streaming: half-closes, reads exactly one response into |*resp_out|
 * and finishes. A response count other than one is INTERNAL (as in gRPC).
 */
CRPC_API crpc_code crpc_call_finish_with_response(crpc_call *call,
                                                  ProtobufCMessage **resp_out,
                                                  crpc_status *st);

/** The trailers once the call has finished (empty list before). */
CRPC_API const crpc_metadata *crpc_call_trailing_metadata(crpc_call *call);

/** Frees a call; cancels it first if it has not finished. NULL-safe. */
CRPC_API void crpc_call_free(crpc_call *call);

/* ---- server side ---- */

/** The request headers' custom metadata. */
CRPC_API const crpc_metadata *crpc_call_request_metadata(const crpc_call *call);

/**
 * Adds a response header. Only before the first message is written (the
 * headers go out with it, or with the trailers). Returns 0, CRPC_ESTATE
 * (headers already sent) or a crpc_metadata_add() error.
 */
CRPC_API int crpc_call_add_initial_metadata(crpc_call *call, const char *key,
                                            const void *value, size_t len);

/** Adds a trailer, sent when the handler returns. */
CRPC_API int crpc_call_add_trailing_metadata(crpc_call *call, const char *key,
                                             const void *value, size_t len);

/** Sets the grpc-message of the status the handler returns (copied). */
CRPC_API void crpc_call_set_status_message(crpc_call *call, const char *msg);

/** Sets grpc-status-details-bin (copied). */
CRPC_API void crpc_call_set_status_details(crpc_call *call, const void *data,
                                           size_t len);

/** The peer's address, e.g. "ipv4:127.0.0.1:50512" or "unix:/tmp/s". */
CRPC_API const char *crpc_call_peer(const crpc_call *call);

/** Whether the call arrived over TLS. */
CRPC_API bool crpc_call_peer_is_tls(const crpc_call *call);

/**
 * The verified client certificate's subject (RFC 2253 form, e.g.
 * "CN=client,O=Example"), or NULL when the client sent none (or the
 * connection is not TLS). Valid until the handler returns.
 */
CRPC_API const char *crpc_call_peer_cert_subject(const crpc_call *call);

/** Number of subjectAltName entries (DNS, IP, URI, email) of the verified
 * client certificate; 0 without one. */
CRPC_API size_t crpc_call_peer_cert_san_count(const crpc_call *call);

/** The |i|th subjectAltName as "DNS:name", "IP:1.2.3.4", "URI:spiffe://..",
 * "email:a@b"; NULL when out of range. */
CRPC_API const char *crpc_call_peer_cert_san(const crpc_call *call, size_t i);

/**
 * Sets the encoding of the messages the server sends on this call ("gzip",
 * "deflate", "identity"). Before the first message. If the client did not
 * list the encoding in grpc-accept-encoding, messages go uncompressed.
 * Returns 0, CRPC_EENCODING (unknown name) or CRPC_ESTATE.
 */
CRPC_API int crpc_call_set_compression(crpc_call *call, const char *encoding);

/** Whether the last message crpc_call_read() returned arrived compressed
 * (interop's expect_compressed checks). */
CRPC_API bool crpc_call_last_read_compressed(const crpc_call *call);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_CALL_H */
