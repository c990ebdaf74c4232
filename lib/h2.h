/*
 * h2.h: HTTP/2 session settings shared by both roles.
 */
#ifndef CRPC_H2_H
#define CRPC_H2_H

#include <nghttp2/nghttp2.h>

#include "conn.h"

/* Per-stream receive window (what one slow reader may leave buffered) and
 * the connection window (what a whole connection may leave buffered). */
#define CRPC__STREAM_WINDOW (1 << 20)
#define CRPC__CONN_WINDOW (8 << 20)
/* The largest DATA frame we accept, and send where the peer accepts it:
 * a 1 MiB message in 4 frames instead of 64. */
#define CRPC__MAX_FRAME (256 * 1024)

/* Creates the session for |c| and queues our SETTINGS. Returns 0 or a
 * CRPC_E* code. */
int crpc__h2_session_new(crpc__conn *c, uint32_t max_concurrent_streams,
                         uint32_t max_header_list);

#endif
