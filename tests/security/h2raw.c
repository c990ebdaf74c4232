#define _POSIX_C_SOURCE 200809L
/*
 * h2raw.c: see h2raw.h.
 */
#include "h2raw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int h2raw_connect(h2raw *r, int port) {
  memset(r, 0, sizeof *r);
  r->next_id = 1;
  r->last_status = -1;
  r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r->fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* a send never blocks a test for ever */
  struct timeval tv = {10, 0};
  setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(r->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      nghttp2_hd_deflate_new(&r->def, 4096) != 0 ||
      nghttp2_hd_inflate_new(&r->inf) != 0) {
    h2raw_close(r);
    return -1;
  }
  return 0;
}

void h2raw_close(h2raw *r) {
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
  if (r->def)
    nghttp2_hd_deflate_del(r->def);
  if (r->inf)
    nghttp2_hd_inflate_del(r->inf);
  r->def = NULL;
  r->inf = NULL;
}

bool h2raw_send(h2raw *r, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len && !r->wdead) {
    ssize_t n = send(r->fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      r->wdead = true;
      return false;
    }
    p += n;
    len -= (size_t)n;
  }
  return !r->wdead;
}

bool h2raw_frame(h2raw *r, uint8_t type, uint8_t flags, int32_t sid,
                 const void *payload, size_t len) {
  uint8_t hd[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
                   type, flags, (uint8_t)((uint32_t)sid >> 24 & 0x7f),
                   (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
  uint8_t *buf = malloc(9 + len);
  memcpy(buf, hd, 9);
  if (len)
    memcpy(buf + 9, payload, len);
  bool ok = h2raw_send(r, buf, 9 + len);
  free(buf);
  return ok;
}

void h2raw_preface(h2raw *r) {
  static const char magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  h2raw_send(r, magic, sizeof magic - 1);
  h2raw_frame(r, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
}

#define NV(n, v)                                                               \
  {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                   \
   NGHTTP2_NV_FLAG_NONE}

int32_t h2raw_request(h2raw *r, const char *path, const nghttp2_nv *extra,
                      size_t n, bool end_stream) {
  nghttp2_nv *nva = calloc(n + 6, sizeof *nva);
  nghttp2_nv base[] = {NV(":method", "POST"), NV(":scheme", "http"),
                       NV(":path", path), NV(":authority", "localhost"),
                       NV("content-type", "application/grpc"),
                       NV("te", "trailers")};
  memcpy(nva, base, sizeof base);
  if (n)
    memcpy(nva + 6, extra, n * sizeof *nva);
  size_t bound = nghttp2_hd_deflate_bound(r->def, nva, n + 6);
  uint8_t *block = malloc(bound);
  ssize_t blen = nghttp2_hd_deflate_hd(r->def, block, bound, nva, n + 6);
  free(nva);
  int32_t sid = r->next_id;
  r->next_id += 2;
  size_t off = 0;
  bool first = true;
  do { /* HEADERS, then CONTINUATION frames of at most 16 KiB */
    size_t chunk = (size_t)blen - off > 16384 ? 16384 : (size_t)blen - off;
    uint8_t flags = off + chunk == (size_t)blen ? NGHTTP2_FLAG_END_HEADERS : 0;
    if (first && end_stream)
      flags |= NGHTTP2_FLAG_END_STREAM;
    h2raw_frame(r, first ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION, flags, sid,
                block + off, chunk);
    off += chunk;
    first = false;
  } while (off < (size_t)blen);
  free(block);
  return sid;
}

bool h2raw_message(h2raw *r, int32_t sid, const void *msg, size_t len,
                   bool end_stream) {
  uint8_t *buf = malloc(5 + len);
  buf[0] = 0;
  buf[1] = (uint8_t)(len >> 24);
  buf[2] = (uint8_t)(len >> 16);
  buf[3] = (uint8_t)(len >> 8);
  buf[4] = (uint8_t)len;
  if (len)
    memcpy(buf + 5, msg, len);
  bool ok = h2raw_frame(r, NGHTTP2_DATA,
                        end_stream ? NGHTTP2_FLAG_END_STREAM : 0, sid, buf,
                        5 + len);
  free(buf);
  return ok;
}

bool h2raw_rst(h2raw *r, int32_t sid, uint32_t code) {
  uint8_t p[4] = {(uint8_t)(code >> 24), (uint8_t)(code >> 16),
                  (uint8_t)(code >> 8), (uint8_t)code};
  return h2raw_frame(r, NGHTTP2_RST_STREAM, 0, sid, p, 4);
}

static int32_t hdr_sid; /* the stream of the header block being decoded */

static void decode_headers(h2raw *r, const uint8_t *p, size_t len,
                           bool final) {
  for (;;) {
    nghttp2_nv nv;
    int fl = 0;
    ssize_t n = nghttp2_hd_inflate_hd2(r->inf, &nv, &fl, p, len, final);
    if (n < 0) {
      r->dead = true;
      return;
    }
    p += n;
    len -= (size_t)n;
    if ((fl & NGHTTP2_HD_INFLATE_EMIT) && nv.namelen == 11 &&
        memcmp(nv.name, "grpc-status", 11) == 0) {
      int v = 0;
      for (size_t i = 0; i < nv.valuelen; i++)
        v = v * 10 + (nv.value[i] - '0');
      r->last_status = v;
      r->last_status_sid = hdr_sid;
    }
    if (fl & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(r->inf);
      return;
    }
    if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && len == 0)
      return;
  }
}

/* Handles every complete frame in r->in. */
static void process(h2raw *r) {
  size_t off = 0;
  while (r->inlen - off >= 9) {
    const uint8_t *h = r->in + off;
    size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
    if (r->inlen - off < 9 + len)
      break;
    uint8_t type = h[3], flags = h[4];
    int32_t sid = (int32_t)(((uint32_t)h[5] & 0x7f) << 24 | (uint32_t)h[6] << 16 |
                            (uint32_t)h[7] << 8 | h[8]);
    const uint8_t *p = h + 9;
    switch (type) {
    case NGHTTP2_SETTINGS:
      if (!(flags & NGHTTP2_FLAG_ACK))
        h2raw_frame(r, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, NULL, 0);
      break;
    case NGHTTP2_PING:
      if (!(flags & NGHTTP2_FLAG_ACK) && len == 8 && r->ack_pings)
        h2raw_frame(r, NGHTTP2_PING, NGHTTP2_FLAG_ACK, 0, p, 8);
      if (flags & NGHTTP2_FLAG_ACK)
        r->ping_acks++;
      break;
    case NGHTTP2_GOAWAY:
      r->got_goaway = true;
      r->goaway_count++;
      if (len >= 4)
        r->goaway_last_sid = (int32_t)(((uint32_t)p[0] & 0x7f) << 24 |
                                       (uint32_t)p[1] << 16 |
                                       (uint32_t)p[2] << 8 | p[3]);
      if (len >= 8)
        r->goaway_code = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
                         (uint32_t)p[6] << 8 | p[7];
      if (len > 8) {
        size_t d = len - 8 < sizeof r->goaway_debug - 1
                       ? len - 8
                       : sizeof r->goaway_debug - 1;
        memcpy(r->goaway_debug, p + 8, d);
        r->goaway_debug[d] = '\0';
      }
      break;
    case NGHTTP2_RST_STREAM:
      r->rst_count++;
      if (len >= 4 && p[3] == NGHTTP2_REFUSED_STREAM && !p[0] && !p[1] &&
          !p[2])
        r->rst_refused++;
      if (r->last_status_sid != sid || r->last_status < 0) {
        r->last_status_sid = sid;
        r->last_status = -2;
      }
      break;
    case NGHTTP2_HEADERS: {
      size_t skip = 0, pad = 0;
      if (flags & NGHTTP2_FLAG_PADDED) {
        pad = p[0];
        skip = 1;
      }
      if (flags & NGHTTP2_FLAG_PRIORITY)
        skip += 5;
      hdr_sid = sid;
      if (skip + pad <= len)
        decode_headers(r, p + skip, len - skip - pad,
                       flags & NGHTTP2_FLAG_END_HEADERS);
      break;
    }
    case NGHTTP2_CONTINUATION:
      decode_headers(r, p, len, flags & NGHTTP2_FLAG_END_HEADERS);
      break;
    default:
      break;
    }
    off += 9 + len;
  }
  memmove(r->in, r->in + off, r->inlen - off);
  r->inlen -= off;
}

bool h2raw_run(h2raw *r, bool (*until)(h2raw *r, void *arg), void *arg,
               int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  for (;;) {
    if (until && until(r, arg))
      return true;
    if (r->dead)
      return !until;
    int64_t left = end - now_ms();
    if (left <= 0)
      return false;
    struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)left) <= 0)
      continue;
    ssize_t n = recv(r->fd, r->in + r->inlen, sizeof r->in - r->inlen, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR)
        continue;
      r->dead = true;
      continue;
    }
    r->inlen += (size_t)n;
    process(r);
  }
}

void h2raw_drain(h2raw *r) {
  while (!r->dead) {
    ssize_t n = recv(r->fd, r->in + r->inlen, sizeof r->in - r->inlen,
                     MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n <= 0) {
      r->dead = true;
      return;
    }
    r->inlen += (size_t)n;
    process(r);
  }
}

bool h2raw_wait_closed(h2raw *r, int timeout_ms) {
  return h2raw_run(r, NULL, NULL, timeout_ms);
}

typedef struct { int32_t sid; } status_wait;

static bool has_status(h2raw *r, void *arg) {
  status_wait *w = arg;
  return r->last_status_sid == w->sid && r->last_status != -1;
}

int h2raw_wait_status(h2raw *r, int32_t sid, int timeout_ms) {
  status_wait w = {sid};
  if (r->last_status_sid != sid)
    r->last_status = -1;
  return h2raw_run(r, has_status, &w, timeout_ms) ? r->last_status : -1;
}
