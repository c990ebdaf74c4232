/*
 * h2raw.h: a hostile HTTP/2 client for the defence tests. It writes frames
 * by hand (HPACK through nghttp2's deflater), so it can send what no
 * well-behaved peer would: floods of PING or SETTINGS, HEADERS followed by
 * RST_STREAM at full speed, oversized header blocks, more streams than the
 * server allows, half a preface. Blocking socket, one thread; every wait
 * has a timeout.
 */
#ifndef H2RAW_H
#define H2RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

typedef struct h2raw {
  int fd;
  nghttp2_hd_deflater *def;
  nghttp2_hd_inflater *inf;
  int32_t next_id;
  bool dead;  /* reading: the server closed the connection */
  bool wdead; /* writing failed (the server is gone or not reading) */
  uint8_t in[1 << 16];
  size_t inlen;
  /* what was seen while reading */
  bool got_goaway;
  uint32_t goaway_code;
  char goaway_debug[128]; /* the GOAWAY's debug data, if any */
  int goaway_count;        /* GOAWAY frames received */
  int32_t goaway_last_sid; /* the last one's last_stream_id */
  bool ack_pings;          /* set: answer the server's PINGs */
  int ping_acks;           /* PING ACKs received */
  int rst_count;          /* RST_STREAM frames received */
  int rst_refused;        /* ... with REFUSED_STREAM */
  int32_t last_status_sid; /* the last stream that got a grpc-status */
  int last_status;         /* its value (-1: none yet) */
} h2raw;

/* TCP connection to 127.0.0.1:|port|. Nothing is sent. 0 or -1. */
int h2raw_connect(h2raw *r, int port);
/* The client preface and an empty SETTINGS frame. */
void h2raw_preface(h2raw *r);
/* Sends bytes as they are; false when the socket is gone. */
bool h2raw_send(h2raw *r, const void *buf, size_t len);
/* One frame; false when the socket is gone. */
bool h2raw_frame(h2raw *r, uint8_t type, uint8_t flags, int32_t sid,
                 const void *payload, size_t len);
/* Opens stream r->next_id (then += 2) with a gRPC POST to |path| plus
 * |extra| headers; the block is split into CONTINUATION frames when over
 * 16 KiB. Returns the stream id. */
int32_t h2raw_request(h2raw *r, const char *path, const nghttp2_nv *extra,
                      size_t n, bool end_stream);
/* A gRPC message (5-byte prefix + |len| bytes) in one DATA frame. */
bool h2raw_message(h2raw *r, int32_t sid, const void *msg, size_t len,
                   bool end_stream);
bool h2raw_rst(h2raw *r, int32_t sid, uint32_t code);
/* Reads and handles frames (SETTINGS are ACKed) until |until| returns
 * true, the connection closes or |timeout_ms| passes. Returns whether
 * |until| became true (NULL: wait for the close). */
bool h2raw_run(h2raw *r, bool (*until)(h2raw *r, void *arg), void *arg,
               int timeout_ms);
/* Handles whatever has arrived, without waiting. */
void h2raw_drain(h2raw *r);
/* h2raw_run until the server closed the connection. */
bool h2raw_wait_closed(h2raw *r, int timeout_ms);
/* h2raw_run until stream |sid| got a grpc-status (returned) or a reset
 * (returns -2); -1 on timeout or close. */
int h2raw_wait_status(h2raw *r, int32_t sid, int timeout_ms);
void h2raw_close(h2raw *r);

#endif
