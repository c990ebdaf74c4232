/*
 * conn_write.c: a connection's output. nghttp2's frames and our DATA
 * payloads are gathered in the loop's write buffer and written in one
 * system call per round; what the socket does not take waits in the
 * connection's own buffer, which exists only while the peer is not
 * reading.
 *
 * DATA uses nghttp2's no-copy source (NGHTTP2_DATA_FLAG_NO_COPY): the
 * read callback only says how much a frame carries, and
 * crpc__conn_send_data() copies the payload straight from the call's send
 * queue into the gather buffer. A message byte is copied once in user
 * space on its way out (plus the packing into the message buffer),
 * instead of twice through nghttp2's frame buffer.
 */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "call_internal.h"
#include "h2.h"
#include "retry.h"

#define FRAME_HDLEN 9 /* an HTTP/2 frame header (RFC 9113, 4.1) */
#define DEFAULT_FRAME 16384 /* SETTINGS_MAX_FRAME_SIZE's initial value */
/* Clear-text DATA payloads this large go from the message buffer to the
 * socket by reference, in their own sendmsg. */
#define DIRECT_MIN (32 * 1024)

/* Output is queued: the stall timer watches it from now (see conn.h). */
static void stall_arm(crpc__conn *c) {
  if (c->stall_ms <= 0 || c->dead || crpc__timer_armed(&c->stall_timer) ||
      atomic_load(&c->out.used) == 0)
    return;
  c->last_progress_ms = crpc__now_ms();
  crpc__timer_start(c->loop, &c->stall_timer,
                    c->last_progress_ms + c->stall_ms);
}

/* Writes up to |len| bytes; returns the count written (maybe 0 when the
 * socket is full) or -1 on a fatal error. */
static ssize_t write_some(crpc__conn *c, const uint8_t *p, size_t len) {
  size_t done = 0, scap = 0;
  uint8_t *scratch = c->tp ? crpc__loop_sbuf(c->loop, &scap) : NULL;
  while (done < len) {
    ssize_t n;
    if (c->tp)
      n = c->tp->ops->write(c->tp, c->io.fd, p + done, len - done, scratch,
                            scap);
    else {
      /* send(): a peer that resets must not raise SIGPIPE */
      n = send(c->io.fd, p + done, len - done, MSG_NOSIGNAL);
      if (n < 0)
        n = (errno == EAGAIN || errno == EINTR) ? CRPC__TP_WANT_WRITE
                                                : CRPC__TP_ERROR;
    }
    if (n == CRPC__TP_WANT_WRITE || n == CRPC__TP_WANT_READ)
      break;
    if (n < 0)
      return -1;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

/* Keeps bytes the socket did not take; the only per-connection buffer,
 * allocated only while the peer is not reading. */
static int stash(crpc__conn *c, const uint8_t *p, size_t len) {
  if (c->wlen + len > c->wcap) {
    size_t cap = c->wcap ? c->wcap : 16384;
    while (cap < c->wlen + len)
      cap *= 2;
    uint8_t *b = crpc__realloc(c->mem, c->wbuf, cap);
    if (!b)
      return -1;
    c->wbuf = b;
    c->wcap = cap;
  }
  memcpy(c->wbuf + c->wlen, p, len);
  c->wlen += len;
  return 0;
}

/* What the transport kept from earlier writes (TLS records the socket
 * did not take): 0 when none is left, 1 while the socket is full, -1 on an
 * error. */
static int write_transport(crpc__conn *c) {
  if (!c->tp)
    return 0;
  int r = c->tp->ops->flush(c->tp, c->io.fd);
  return r == 0 ? 0 : r == CRPC__TP_WANT_WRITE ? 1 : -1;
}

/* 0: everything stashed is written; 1: the socket is full; -1: error. */
static int write_stashed(crpc__conn *c) {
  int t = write_transport(c);
  if (t != 0)
    return t;
  if (c->woff < c->wlen) {
    ssize_t n = write_some(c, c->wbuf + c->woff, c->wlen - c->woff);
    if (n < 0)
      return -1;
    c->woff += (size_t)n;
    if (c->woff < c->wlen)
      return 1;
  }
  crpc__free(c->mem, c->wbuf); /* idle connections hold no write buffer */
  c->wbuf = NULL;
  c->woff = c->wlen = c->wcap = 0;
  return 0;
}

/* Fills |g| from nghttp2 until it is full or nghttp2 has nothing more.
 * Returns 0, or an nghttp2 error code. A chunk that does not fit is left
 * in |*carry| (valid until the next nghttp2_session_mem_send). */
static int gather(crpc__conn *c, crpc__gather *g, const uint8_t **carry,
                  size_t *carry_len) {
  c->gather = g;
  c->write_errno = 0;
  int rv = 0;
  while (!g->full) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(c->session, &data);
    if (n <= 0) {
      rv = (int)n; /* 0: nothing more, or a DATA frame waits for room */
      break;
    }
    if (c->wlen) { /* after a direct write the socket filled up: in order */
      if (stash(c, data, (size_t)n) != 0) {
        c->write_errno = ENOMEM;
        rv = NGHTTP2_ERR_NOMEM;
        break;
      }
      g->full = true;
      break;
    }
    if (g->len + (size_t)n > g->cap) {
      *carry = data;
      *carry_len = (size_t)n;
      break;
    }
    memcpy(g->buf + g->len, data, (size_t)n);
    g->len += (size_t)n;
  }
  c->gather = NULL;
  return rv;
}

void crpc__conn_flush(crpc__conn *c) {
  if (c->dead || c->handshaking || !c->session)
    return;
  crpc__gather g = {0};
  g.buf = crpc__loop_wbuf(c->loop, &g.cap);
  const uint8_t *carry = NULL;
  size_t carry_len = 0;
  for (;;) {
    int w = write_stashed(c);
    if (w < 0)
      goto write_failed;
    if (w > 0) {
      crpc__io_watch(c->loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
      stall_arm(c);
      return;
    }
    g.len = 0;
    g.full = false;
    if (carry) {
      if (carry_len > g.cap) { /* larger than the buffer: send it alone */
        ssize_t n = write_some(c, carry, carry_len);
        if (n < 0)
          goto write_failed;
        if ((size_t)n < carry_len &&
            stash(c, carry + n, carry_len - (size_t)n) != 0)
          goto oom;
        carry = NULL;
        continue;
      }
      memcpy(g.buf, carry, carry_len);
      g.len = carry_len;
      carry = NULL;
    }
    int rv = gather(c, &g, &carry, &carry_len);
    if (rv < 0 && c->write_errno) {
      errno = c->write_errno;
      goto write_failed;
    }
    if (rv < 0) {
      crpc__conn_close(c, CRPC_INTERNAL, nghttp2_strerror(rv));
      return;
    }
    if (g.len == 0 && !carry) {
      if (c->wlen)
        continue; /* a direct write left bytes: wait for the socket */
      break;
    }
    ssize_t n = write_some(c, g.buf, g.len);
    if (n < 0)
      goto write_failed;
    if ((size_t)n < g.len) {
      if (stash(c, g.buf + n, g.len - (size_t)n) != 0 ||
          (carry && stash(c, carry, carry_len) != 0))
        goto oom;
      carry = NULL;
    }
  }
  int t = write_transport(c); /* TLS may hold the last records */
  if (t < 0)
    goto write_failed;
  if (t > 0) {
    crpc__io_watch(c->loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    stall_arm(c);
    return;
  }
  if (c->io.watching & EPOLLOUT)
    crpc__io_watch(c->loop, &c->io, EPOLLIN | EPOLLRDHUP);
  stall_arm(c);
  if (!nghttp2_session_want_read(c->session) &&
      !nghttp2_session_want_write(c->session))
    crpc__conn_close(c, CRPC_UNAVAILABLE, "connection closed");
  return;
write_failed: {
  char why[200];
  int err = errno;
  if (c->tp) {
    /* the peer may have said why before it closed (a TLS alert, e.g. our
     * client certificate was refused): read it */
    uint8_t b[512];
    c->tp->ops->read(c->tp, c->io.fd, b, sizeof b);
    snprintf(why, sizeof why, "%s", c->tp->ops->error(c->tp));
  } else {
    snprintf(why, sizeof why, "connection write failed: %s", strerror(err));
  }
  crpc__conn_close(c, CRPC_UNAVAILABLE, why);
  return;
}
oom:
  crpc__conn_close(c, CRPC_RESOURCE_EXHAUSTED, "out of memory");
}

void crpc__conn_schedule_flush(crpc__conn *c) {
  if (c->flush_queued || c->dead || c->in_io)
    return;
  c->flush_queued = true;
  crpc__loop_post_task(c->loop, &c->flush_task);
}

/* ---- outgoing DATA ---- */

/* Bytes of |c|'s send queue not yet in a frame, counted until they pass
 * |limit| (mu held). */
static size_t unsent(const crpc_call *c, size_t limit) {
  size_t n = 0;
  for (const crpc__msgbuf *m = c->sendq.head; m && n <= limit; m = m->next)
    n += m->len - m->off;
  return n;
}

static int submit_trailers(crpc_call *c) {
  nghttp2_nv nva[64];
  size_t nnv = c->conn->hooks.streams->trailers(c, nva, 64);
  return nghttp2_submit_trailer(c->conn->session, c->stream_id, nva, nnv);
}

ssize_t crpc__call_data_read(nghttp2_session *session, int32_t stream_id,
                             uint8_t *buf, size_t length,
                             uint32_t *data_flags, nghttp2_data_source *source,
                             void *user_data) {
  crpc_call *c = source->ptr;
  bool eof = false;
  CRPC__UNUSED(session);
  CRPC__UNUSED(stream_id);
  CRPC__UNUSED(buf); /* crpc__conn_send_data() writes the payload */
  CRPC__UNUSED(user_data);
  pthread_mutex_lock(&c->mu);
  if (c->done && !c->is_server) { /* cancelled: RST_STREAM is on its way */
    pthread_mutex_unlock(&c->mu);
    return NGHTTP2_ERR_DEFERRED;
  }
  /* Only how much: the bytes stay queued until the frame is written. */
  size_t queued = unsent(c, length);
  size_t n = queued < length ? queued : length;
  bool all = queued <= length;
  if (all && c->send_closed && !c->eos_sent) {
    eof = true;
    c->eos_sent = true;
  }
  pthread_mutex_unlock(&c->mu);
  if (n)
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (eof) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (c->conn->hooks.streams->trailers) {
      /* trailers carry the status; they count the bytes sent, so they
       * wait for crpc__conn_send_data() when this frame has a payload */
      *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      if (n)
        c->trailers_due = true;
      else if (submit_trailers(c) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
  }
  if (n == 0)
    return NGHTTP2_ERR_DEFERRED;
  return (ssize_t)n;
}

/* Marks |length| bytes of |c|'s queue as sent: finished messages leave
 * the queue (kept for a retry, or reused) and their writers hear of it
 * (mu held). */
static void consume(crpc__conn *conn, crpc_call *c, size_t length) {
  bool wake = false;
  while (length) {
    crpc__msgbuf *m = c->sendq.head;
    size_t k = m->len - m->off;
    if (k > length)
      k = length;
    m->off += k;
    length -= k;
    if (m->off == m->len) {
      c->mx_tx += m->len - 5; /* A66: message bytes, no prefix */
      crpc__retry_sent(c, crpc__call_sendq_pop(c)); /* kept to replay */
      wake = true;
      if (c->write_pending && !c->write_done && !c->sendq.head)
        crpc__call_write_left(c); /* crpc_call_write_async's message */
    }
  }
  if (conn->stall_ms > 0)
    conn->last_progress_ms = crpc__now_ms(); /* for the stall timer */
  if (wake && c->writers_waiting)
    crpc__call_notify(c);
  if (wake && c->inline_stream && (c->uncredited || c->recvq.head))
    crpc__call_kick_locked(c); /* output drained: take requests again */
}

/* Stashes what is left of |iov| after its first |skip| bytes. */
static int stash_iov(crpc__conn *c, const struct iovec *iov, int n,
                     size_t skip) {
  for (int i = 0; i < n; i++) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    if (stash(c, (const uint8_t *)iov[i].iov_base + skip,
              iov[i].iov_len - skip) != 0)
      return -1;
    skip = 0;
  }
  return 0;
}

/* Clear text: writes the gathered bytes (ending with the frame header),
 * then |length| payload bytes of |c|'s queue by reference, with sendmsg
 * in batches of up to 64 pieces (a frame may span hundreds of small
 * messages); what the socket does not take is stashed, and so is every
 * later batch. 0, or -1 with errno. */
static int write_frame_direct(crpc__conn *conn, crpc_call *c,
                              crpc__gather *g, size_t length) {
  struct iovec iov[64];
  int niov = 0;
  bool blocked = false;
  const crpc__msgbuf *m = c->sendq.head;
  size_t off = m->off, left = length;
  iov[niov++] = (struct iovec){g->buf, g->len};
  do {
    size_t total = 0;
    while (left && niov < (int)(sizeof iov / sizeof iov[0])) {
      size_t k = m->len - off < left ? m->len - off : left;
      iov[niov++] = (struct iovec){(void *)(m->data + off), k};
      left -= k;
      off += k;
      if (off == m->len && left) {
        m = m->next;
        off = m->off;
      }
    }
    for (int i = 0; i < niov; i++)
      total += iov[i].iov_len;
    ssize_t n = 0;
    if (!blocked) {
      struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
      do
        n = sendmsg(conn->io.fd, &mh, MSG_NOSIGNAL);
      while (n < 0 && errno == EINTR);
      if (n < 0 && errno != EAGAIN)
        return -1;
      if (n < 0)
        n = 0;
    }
    if ((size_t)n < total) {
      blocked = true; /* the rest waits for EPOLLOUT, in order */
      if (stash_iov(conn, iov, niov, (size_t)n) != 0) {
        errno = ENOMEM;
        return -1;
      }
    }
    niov = 0;
  } while (left); /* the frame header promised all |length| bytes */
  g->len = 0;
  return 0;
}

int crpc__conn_send_data(nghttp2_session *session, nghttp2_frame *frame,
                         const uint8_t *framehd, size_t length,
                         nghttp2_data_source *source, void *user_data) {
  crpc__conn *conn = user_data;
  crpc_call *c = source->ptr;
  crpc__gather *g = conn->gather;
  CRPC__UNUSED(session);
  if (!g || frame->data.padlen) /* we never pad; flush is the only sender */
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  bool direct = !conn->tp && length >= DIRECT_MIN;
  if (conn->wlen ||
      g->len + FRAME_HDLEN + (direct ? 0 : length) > g->cap) {
    g->full = true; /* written first, then nghttp2 asks again */
    return NGHTTP2_ERR_WOULDBLOCK;
  }
  pthread_mutex_lock(&c->mu);
  if (unsent(c, length) < length) {
    /* what the read callback promised is gone: reset this stream only */
    pthread_mutex_unlock(&c->mu);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  memcpy(g->buf + g->len, framehd, FRAME_HDLEN);
  g->len += FRAME_HDLEN;
  if (direct) {
    if (write_frame_direct(conn, c, g, length) != 0) {
      conn->write_errno = errno;
      pthread_mutex_unlock(&c->mu);
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  } else {
    size_t n = 0;
    for (const crpc__msgbuf *m = c->sendq.head; n < length; m = m->next) {
      size_t k = m->len - m->off < length - n ? m->len - m->off : length - n;
      memcpy(g->buf + g->len, m->data + m->off, k);
      g->len += k;
      n += k;
    }
  }
  consume(conn, c, length);
  pthread_mutex_unlock(&c->mu);
  if (c->trailers_due) {
    c->trailers_due = false;
    if (submit_trailers(c) != 0)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return 0;
}

ssize_t crpc__conn_data_length(nghttp2_session *session, uint8_t frame_type,
                               int32_t stream_id, int32_t session_window,
                               int32_t stream_window, uint32_t peer_max,
                               void *user_data) {
  crpc__conn *conn = user_data;
  size_t max = peer_max < CRPC__MAX_FRAME ? peer_max : CRPC__MAX_FRAME;
  CRPC__UNUSED(frame_type);
  CRPC__UNUSED(session_window);
  CRPC__UNUSED(stream_window);
  if (conn->tp || max <= DEFAULT_FRAME)
    return DEFAULT_FRAME; /* TLS records hold 16 KiB anyway */
  /* nghttp2 grows its frame buffer to what this returns (untouched with
   * the no-copy source), so ask for no more than is queued */
  crpc_call *c = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!c)
    return DEFAULT_FRAME;
  pthread_mutex_lock(&c->mu);
  size_t queued = unsent(c, max);
  pthread_mutex_unlock(&c->mu);
  return (ssize_t)(queued < DEFAULT_FRAME ? DEFAULT_FRAME
                   : queued < max         ? queued
                                          : max);
}
