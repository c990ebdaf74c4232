/*
 * rawh2.h: a minimal HTTP/2 peer on nghttp2 over a loopback TCP socket, for
 * tests that must send what a well-behaved gRPC peer never would (missing
 * trailers, truncated frames, resets, abrupt closes).
 *
 * Client: rawh2_connect(), rawh2_request(), rawh2_write(), rawh2_run().
 * Everything runs on the caller's thread; rawh2_run() polls the socket
 * with a timeout and returns false instead of hanging.
 *
 * Server: rawh2_server_start() runs one thread that accepts any number of
 * connections and calls a callback when a request's HEADERS are complete
 * and again when its END_STREAM arrives (once when both come together;
 * s->remote_closed tells which). The callback, and any function run through
 * rawh2_server_exec(), may use rawh2_respond(), rawh2_write(),
 * rawh2_trailers(), rawh2_rst(), rawh2_goaway(), rawh2_close().
 *
 * Streams and connections stay allocated until rawh2_free() /
 * rawh2_server_stop(), so a test may keep pointers to them after they are
 * closed. Nothing here is thread-safe except rawh2_server_exec().
 */
#ifndef RAWH2_H
#define RAWH2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

typedef struct rawh2_conn rawh2_conn;

typedef struct rawh2_hdr {
  char *name;
  char *value; /* NUL-terminated copies */
  size_t valuelen;
} rawh2_hdr;

typedef struct rawh2_stream {
  int32_t id;
  rawh2_conn *conn;
  /* received */
  int header_blocks; /* HEADERS blocks seen (1: headers, 2: trailers) */
  rawh2_hdr *hdrs;   /* the first block */
  size_t nhdrs;
  rawh2_hdr *trls; /* any later block */
  size_t ntrls;
  bool end_on_headers; /* END_STREAM came with the first HEADERS block */
  uint8_t *body;       /* DATA payload, concatenated */
  size_t body_len, body_cap;
  bool remote_closed; /* END_STREAM received */
  bool rst_received;
  uint32_t rst_code;
  bool closed; /* nghttp2 closed the stream */
  uint32_t close_code;
  void *user; /* free for the test */
  /* private: what we send */
  uint8_t *out;
  size_t out_len, out_off, out_cap;
  bool out_eof, has_provider, provider_done;
  nghttp2_nv *tnv; /* trailers waiting for the data to drain */
  size_t ntnv;
  bool headers_done, headers_reported, ready_reported;
  struct rawh2_stream *next;
} rawh2_stream;

/* ---- both roles ---- */

/* The first value of |name| in the first header block, or NULL. */
const char *rawh2_header(const rawh2_stream *s, const char *name);
/* The first value of |name| in the trailers (a later block), or in the
 * first block when it ended the stream (trailers-only), or NULL. */
const char *rawh2_trailer(const rawh2_stream *s, const char *name);

/* Appends DATA bytes; |end_stream| sets END_STREAM once they are sent. The
 * stream must have been opened with a body (rawh2_request/rawh2_respond
 * with end_stream false). */
void rawh2_write(rawh2_stream *s, const void *data, size_t len,
                 bool end_stream);
/* Sends a trailer HEADERS block with END_STREAM after the pending data. */
void rawh2_trailers(rawh2_stream *s, const nghttp2_nv *nva, size_t n);
/* RST_STREAM with |code|. */
void rawh2_rst(rawh2_stream *s, uint32_t code);
/* GOAWAY with |last_stream_id| and |code|. */
void rawh2_goaway(rawh2_conn *c, int32_t last_stream_id, uint32_t code);
/* Sends what is queued, then closes the socket (no more I/O). */
void rawh2_close(rawh2_conn *c);
/* Whether the socket is closed (by us or the peer). */
bool rawh2_dead(const rawh2_conn *c);

/* ---- client ---- */

/* Connects to 127.0.0.1:|port| and queues the preface and SETTINGS.
 * NULL on failure. */
rawh2_conn *rawh2_connect(int port);
/* Opens a stream with headers |nva| (sent as given: nothing is checked or
 * added). With |end_stream| the HEADERS frame ends the stream; otherwise
 * rawh2_write() supplies the body. NULL on failure. */
rawh2_stream *rawh2_request(rawh2_conn *c, const nghttp2_nv *nva, size_t n,
                            bool end_stream);
/* Sends and receives until |done(arg)| is true (true), |timeout_ms| passes
 * or the connection dies first (false). |done| NULL: until the output is
 * flushed. */
bool rawh2_run(rawh2_conn *c, bool (*done)(void *arg), void *arg,
               int timeout_ms);
/* rawh2_run() until |s| is closed. */
bool rawh2_wait_closed(rawh2_stream *s, int timeout_ms);
/* Closes the socket if open and frees the connection and its streams. */
void rawh2_free(rawh2_conn *c);

/* ---- server ---- */

typedef struct rawh2_server rawh2_server;
/* Called on the server thread: request headers complete, then END_STREAM
 * (see above). */
typedef void (*rawh2_request_cb)(rawh2_stream *s, void *user_data);

/* Listens on 127.0.0.1:0 and starts the thread. NULL on failure. */
rawh2_server *rawh2_server_start(rawh2_request_cb cb, void *user_data);
int rawh2_server_port(const rawh2_server *srv);
/* Connections accepted so far. Any thread. */
int rawh2_server_accepted(rawh2_server *srv);
/* Runs fn(arg) on the server thread and waits for it (up to
 * |timeout_ms|). Returns false on timeout. */
bool rawh2_server_exec(rawh2_server *srv, void (*fn)(void *arg), void *arg,
                       int timeout_ms);
/* Sends the response HEADERS. |end_stream|: no body (e.g. trailers-only);
 * otherwise rawh2_write()/rawh2_trailers() follow. */
void rawh2_respond(rawh2_stream *s, const nghttp2_nv *nva, size_t n,
                   bool end_stream);
/* Stops the thread, closes every socket, frees everything. */
void rawh2_server_stop(rawh2_server *srv);

/* An nghttp2_nv for string literals / C strings (copied by nghttp2). */
#define RAWH2_NV(n, v)                                                         \
  ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v),          \
                NGHTTP2_NV_FLAG_NONE})

#endif
