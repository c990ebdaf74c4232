/*
 * tls_bio.c: the BIO under every crpc TLS connection (OpenSSL 3).
 *
 * It sends with MSG_NOSIGNAL: a peer that resets the connection must never
 * raise SIGPIPE in the application.
 *
 * It also gathers records. OpenSSL hands each record of an SSL_write to
 * the BIO by itself, so a 64 KiB write would be four send() calls and four
 * TCP pushes, each waking the peer. During a write that lends it a scratch
 * buffer (the loop's), the BIO keeps the records there and sends them in
 * one call when the buffer fills and when the write ends. Records the
 * socket does not take move to a buffer of the connection's own, which
 * exists only while the peer is not reading, and go out first next time;
 * while it holds bytes, new records wait (BIO retry), so a stalled peer
 * costs at most one scratch buffer per connection.
 */
#include "tls_bio.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "internal.h"

typedef struct tls_bio {
  int fd;
  const crpc_mem *mem;
  uint8_t *scratch; /* lent for one write, or NULL: records go straight out */
  size_t scratch_cap, scratch_len;
  uint8_t *held; /* records the socket did not take, in order */
  size_t held_off, held_len;
} tls_bio;

/* Sends up to |len| bytes; the count sent (0 when the socket is full), or
 * -1 with errno on a fatal error. */
static ssize_t send_some(int fd, const uint8_t *p, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n < 0)
      return -1;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

/* 0: nothing is held; 1: the socket is full; -1: error (errno). */
static int send_held(tls_bio *s) {
  if (s->held_off == s->held_len)
    return 0;
  ssize_t n = send_some(s->fd, s->held + s->held_off, s->held_len - s->held_off);
  if (n < 0)
    return -1;
  s->held_off += (size_t)n;
  if (s->held_off < s->held_len)
    return 1;
  crpc__free(s->mem, s->held); /* idle connections hold nothing */
  s->held = NULL;
  s->held_off = s->held_len = 0;
  return 0;
}

/* Sends the scratch buffer; what the socket does not take is held. 0, or
 * -1 with errno (ENOMEM included). */
static int send_scratch(tls_bio *s) {
  if (!s->scratch_len)
    return 0;
  ssize_t n = send_some(s->fd, s->scratch, s->scratch_len);
  if (n < 0)
    return -1;
  size_t rest = s->scratch_len - (size_t)n;
  s->scratch_len = 0;
  if (!rest)
    return 0;
  /* held is empty here: records are gathered only once it is */
  s->held = crpc__malloc(s->mem, rest);
  if (!s->held) {
    errno = ENOMEM;
    return -1;
  }
  memcpy(s->held, s->scratch + n, rest);
  s->held_off = 0;
  s->held_len = rest;
  return 0;
}

static int bio_write(BIO *b, const char *buf, int len) {
  tls_bio *s = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  int h = send_held(s); /* what came before goes first */
  if (h < 0)
    return -1;
  if (h > 0) {
    BIO_set_retry_write(b);
    return -1;
  }
  if (s->scratch && (size_t)len <= s->scratch_cap) {
    if (s->scratch_len + (size_t)len > s->scratch_cap) {
      if (send_scratch(s) != 0)
        return -1;
      if (s->held) { /* the socket is full: this record waits */
        BIO_set_retry_write(b);
        return -1;
      }
    }
    memcpy(s->scratch + s->scratch_len, buf, (size_t)len);
    s->scratch_len += (size_t)len;
    return len;
  }
  ssize_t n = send_some(s->fd, (const uint8_t *)buf, (size_t)len);
  if (n < 0)
    return -1;
  if (n == 0) {
    BIO_set_retry_write(b);
    return -1;
  }
  return (int)n;
}

static int bio_read(BIO *b, char *buf, int len) {
  tls_bio *s = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  ssize_t n = recv(s->fd, buf, (size_t)len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    BIO_set_retry_read(b);
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  tls_bio *s = BIO_get_data(b);
  CRPC__UNUSED(num);
  CRPC__UNUSED(ptr);
  switch (cmd) {
  case BIO_CTRL_FLUSH: { /* the handshake's flights, alerts */
    BIO_clear_retry_flags(b);
    int h = send_held(s);
    if (h > 0)
      BIO_set_retry_write(b);
    return h == 0 ? 1 : 0;
  }
  case BIO_CTRL_WPENDING:
    return (long)(s->held_len - s->held_off + s->scratch_len);
  default:
    return 0;
  }
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static int bio_destroy(BIO *b) {
  tls_bio *s = BIO_get_data(b);
  if (s) {
    crpc__free(s->mem, s->held);
    crpc__free(s->mem, s);
    BIO_set_data(b, NULL);
  }
  return 1;
}

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static void make_method(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                               "crpc socket");
  if (m && BIO_meth_set_write(m, bio_write) &&
      BIO_meth_set_read(m, bio_read) && BIO_meth_set_ctrl(m, bio_ctrl) &&
      BIO_meth_set_create(m, bio_create) &&
      BIO_meth_set_destroy(m, bio_destroy))
    method = m;
  else
    BIO_meth_free(m);
}

BIO *crpc__tls_bio_new(int fd, const crpc_mem *mem) {
  pthread_once(&method_once, make_method);
  tls_bio *s = method ? crpc__calloc(mem, 1, sizeof *s) : NULL;
  if (!s)
    return NULL;
  s->fd = fd;
  s->mem = mem;
  BIO *b = BIO_new(method);
  if (!b) {
    crpc__free(mem, s);
    return NULL;
  }
  BIO_set_data(b, s);
  return b;
}

void crpc__tls_bio_gather(BIO *b, uint8_t *scratch, size_t cap) {
  tls_bio *s = BIO_get_data(b);
  s->scratch = scratch;
  s->scratch_cap = cap;
  s->scratch_len = 0;
}

int crpc__tls_bio_end_gather(BIO *b) {
  tls_bio *s = BIO_get_data(b);
  int rv = send_scratch(s);
  s->scratch = NULL;
  s->scratch_cap = s->scratch_len = 0;
  return rv;
}

int crpc__tls_bio_flush(BIO *b) {
  return send_held(BIO_get_data(b));
}
