/*
 * transport.h: the byte stream under HTTP/2. NULL means a plain socket
 * (read/write on the fd); TLS (tls.c) plugs in through these ops.
 */
#ifndef CRPC_TRANSPORT_H
#define CRPC_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Results of the ops besides byte counts. */
#define CRPC__TP_WANT_READ (-1)  /* would block until readable */
#define CRPC__TP_WANT_WRITE (-3) /* would block until writable */
#define CRPC__TP_ERROR (-2)      /* fatal; see crpc__transport_error() */

typedef struct crpc__transport crpc__transport;

typedef struct crpc__transport_ops {
  /* > 0 bytes read, 0 at a clean end of stream, or a CRPC__TP_* value. */
  ssize_t (*read)(crpc__transport *tp, int fd, uint8_t *buf, size_t len);
  /* > 0 bytes taken, or a CRPC__TP_* value. |scratch| (|scratch_cap|
   * bytes, the loop's) is the transport's until it returns. Bytes taken
   * may stay in the transport when the socket is full: see flush. */
  ssize_t (*write)(crpc__transport *tp, int fd, const uint8_t *buf,
                   size_t len, uint8_t *scratch, size_t scratch_cap);
  /* Sends what earlier writes left: 0 when nothing is left,
   * CRPC__TP_WANT_WRITE while the socket is full, or CRPC__TP_ERROR. */
  int (*flush)(crpc__transport *tp, int fd);
  /* 0 when the handshake is complete (and ALPN chose h2), or a CRPC__TP_*
   * value. */
  int (*handshake)(crpc__transport *tp, int fd);
  /* A human-readable reason for the last CRPC__TP_ERROR. */
  const char *(*error)(crpc__transport *tp);
  void (*free)(crpc__transport *tp);
} crpc__transport_ops;

struct crpc__transport {
  const crpc__transport_ops *ops;
};

#endif
