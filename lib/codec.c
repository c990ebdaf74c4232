/*
 * codec.c: message framing. Incoming bytes are cut into messages on the
 * reactor thread; unpacking happens on the reader's thread.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

crpc__msgbuf *crpc__msgbuf_new(const crpc_mem *mem, size_t len) {
  crpc__msgbuf *m = crpc__malloc(mem, sizeof *m + len);
  if (!m)
    return NULL;
  m->next = NULL;
  m->len = len;
  m->off = 0;
  m->cap = len;
  m->compressed = false;
  return m;
}

crpc__msgbuf *crpc__msgpool_get(crpc__msgpool *p, const crpc_mem *mem,
                                size_t len) {
  if (p && len >= CRPC__MSGPOOL_MIN) {
    for (int i = 0; i < 2; i++) {
      crpc__msgbuf *m = atomic_exchange(&p->slot[i], NULL);
      if (!m)
        continue;
      if (m->cap >= len) {
        m->next = NULL;
        m->len = len;
        m->off = 0;
        m->compressed = false;
        return m;
      }
      crpc__free(mem, m); /* too small for what the call sends now */
    }
  }
  return crpc__msgbuf_new(mem, len);
}

void crpc__msgpool_put(crpc__msgpool *p, const crpc_mem *mem,
                       crpc__msgbuf *m) {
  if (!m)
    return;
  if (p && m->cap >= CRPC__MSGPOOL_MIN && m->cap <= CRPC__MSGPOOL_MAX) {
    for (int i = 0; i < 2; i++) {
      crpc__msgbuf *none = NULL;
      if (atomic_compare_exchange_strong(&p->slot[i], &none, m))
        return;
    }
  }
  crpc__free(mem, m);
}

void crpc__msgpool_drain(crpc__msgpool *p, const crpc_mem *mem) {
  for (int i = 0; i < 2; i++)
    crpc__free(mem, atomic_exchange(&p->slot[i], NULL));
}

void crpc__msgq_push(crpc__msgq *q, crpc__msgbuf *m) {
  m->next = NULL;
  if (q->tail)
    q->tail->next = m;
  else
    q->head = m;
  q->tail = m;
  q->count++;
  q->bytes += m->len;
}

crpc__msgbuf *crpc__msgq_pop(crpc__msgq *q) {
  crpc__msgbuf *m = q->head;
  if (!m)
    return NULL;
  q->head = m->next;
  if (!q->head)
    q->tail = NULL;
  q->count--;
  q->bytes -= m->len;
  m->next = NULL;
  return m;
}

void crpc__msgq_clear(crpc__msgq *q, const crpc_mem *mem) {
  crpc__msgbuf *m;
  while ((m = crpc__msgq_pop(q)))
    crpc__free(mem, m);
}

int crpc__deframer_feed(crpc__deframer *d, const uint8_t *data, size_t len,
                        crpc__msg_cb cb, void *ud) {
  while (len > 0) {
    if (!d->cur) {
      size_t n = 5 - d->hdr_have;
      if (n > len)
        n = len;
      memcpy(d->hdr + d->hdr_have, data, n);
      d->hdr_have += n;
      data += n;
      len -= n;
      if (d->hdr_have < 5)
        return 0;
      if (d->hdr[0] > 1)
        return CRPC_EPROTO;
      size_t mlen = ((size_t)d->hdr[1] << 24) | ((size_t)d->hdr[2] << 16) |
                    ((size_t)d->hdr[3] << 8) | d->hdr[4];
      if (mlen > d->max_len)
        return CRPC_ETOOBIG;
      d->cur = crpc__msgpool_get(d->pool, d->mem, mlen);
      if (!d->cur)
        return CRPC_ENOMEM;
      d->cur->compressed = d->hdr[0] == 1;
      d->cur->len = 0; /* filled below; capacity is mlen */
      d->cur->off = mlen;
    }
    size_t want = d->cur->off - d->cur->len;
    size_t n = want < len ? want : len;
    memcpy(d->cur->data + d->cur->len, data, n);
    d->cur->len += n;
    data += n;
    len -= n;
    if (d->cur->len == d->cur->off) {
      crpc__msgbuf *m = d->cur;
      d->cur = NULL;
      d->hdr_have = 0;
      m->off = 0;
      int rv = cb(ud, m);
      if (rv != 0)
        return rv;
    }
  }
  return 0;
}

bool crpc__deframer_partial(const crpc__deframer *d) {
  return d->cur != NULL || d->hdr_have > 0;
}

void crpc__deframer_reset(crpc__deframer *d) {
  crpc__msgpool_put(d->pool, d->mem, d->cur);
  d->cur = NULL;
  d->hdr_have = 0;
}

static void put_prefix(uint8_t *p, bool compressed, size_t len) {
  p[0] = compressed ? 1 : 0;
  p[1] = (uint8_t)(len >> 24);
  p[2] = (uint8_t)(len >> 16);
  p[3] = (uint8_t)(len >> 8);
  p[4] = (uint8_t)len;
}

int crpc__frame_message(const crpc_mem *mem, crpc__msgpool *pool,
                        const ProtobufCMessage *msg,
                        crpc__encoding enc, size_t max_send,
                        crpc__msgbuf **out) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  if ((max_send && n > max_send) || n > 0xffffffffu)
    return CRPC_ETOOBIG;
  crpc__msgbuf *m = crpc__msgpool_get(pool, mem, 5 + n);
  if (!m)
    return CRPC_ENOMEM;
  protobuf_c_message_pack(msg, m->data + 5); /* one pass, behind the prefix */
  if (enc != CRPC__ENC_IDENTITY && n > 0) {
    uint8_t *z;
    size_t zlen;
    int rv = crpc__compress(mem, enc, m->data + 5, n, &z, &zlen);
    if (rv != 0) {
      crpc__msgpool_put(pool, mem, m);
      return rv;
    }
    crpc__msgbuf *c = crpc__msgpool_get(pool, mem, 5 + zlen);
    if (!c) {
      crpc__free(mem, z);
      crpc__msgpool_put(pool, mem, m);
      return CRPC_ENOMEM;
    }
    memcpy(c->data + 5, z, zlen);
    crpc__free(mem, z);
    crpc__msgpool_put(pool, mem, m);
    m = c;
    put_prefix(m->data, true, zlen);
  } else {
    put_prefix(m->data, false, n);
  }
  *out = m;
  return 0;
}

/* protobuf-c answers NULL for a malformed message and for out-of-memory
 * alike; this allocator, wrapped around the caller's, tells them apart.
 * Its free is the caller's, so messages are freed with that one later. */
typedef struct oom_watch {
  ProtobufCAllocator *inner; /* NULL: protobuf-c's default, libc's */
  bool oom;
} oom_watch;

static void *watch_alloc(void *ud, size_t n) {
  oom_watch *w = ud;
  void *p = w->inner ? w->inner->alloc(w->inner->allocator_data, n)
                     : malloc(n);
  if (!p)
    w->oom = true;
  return p;
}

static void watch_free(void *ud, void *p) {
  oom_watch *w = ud;
  if (w->inner)
    w->inner->free(w->inner->allocator_data, p);
  else
    free(p);
}

crpc_code crpc__unframe_message(const crpc_mem *mem,
                                const ProtobufCMessageDescriptor *desc,
                                ProtobufCAllocator *alloc,
                                const crpc__msgbuf *m, crpc__encoding enc,
                                size_t max_recv, ProtobufCMessage **out,
                                crpc_status *st) {
  const uint8_t *p = m->data;
  size_t len = m->len;
  uint8_t *plain = NULL;
  *out = NULL;
  if (m->compressed) {
    if (enc == CRPC__ENC_IDENTITY) {
      crpc__status_set(st, CRPC_INTERNAL,
                       "compressed message flag set but no grpc-encoding "
                       "was negotiated");
      return CRPC_INTERNAL;
    }
    if (enc == CRPC__ENC_UNKNOWN) {
      crpc__status_set(st, CRPC_UNIMPLEMENTED,
                       "message compressed with an unsupported encoding");
      return CRPC_UNIMPLEMENTED;
    }
    int rv = crpc__decompress(mem, enc, m->data, m->len, max_recv, &plain,
                              &len);
    if (rv == CRPC_ETOOBIG) {
      crpc__status_set(st, CRPC_RESOURCE_EXHAUSTED,
                       "decompressed message larger than max (%zu)",
                       max_recv);
      return CRPC_RESOURCE_EXHAUSTED;
    }
    if (rv == CRPC_ENOMEM) {
      crpc__status_set(st, CRPC_RESOURCE_EXHAUSTED,
                       "out of memory decompressing a message");
      return CRPC_RESOURCE_EXHAUSTED;
    }
    if (rv != 0) {
      crpc__status_set(st, CRPC_INTERNAL, "cannot decompress message (%s)",
                       crpc__encoding_name(enc));
      return CRPC_INTERNAL;
    }
    p = plain;
  }
  oom_watch w = {alloc, false};
  ProtobufCAllocator wa = {watch_alloc, watch_free, &w};
  *out = protobuf_c_message_unpack(desc, &wa, len, p);
  crpc__free(mem, plain);
  if (!*out && w.oom) {
    crpc__status_set(st, CRPC_RESOURCE_EXHAUSTED,
                     "out of memory unpacking a %s message", desc->name);
    return CRPC_RESOURCE_EXHAUSTED;
  }
  if (!*out) {
    crpc__status_set(st, CRPC_INTERNAL, "cannot parse %s message",
                     desc->name);
    return CRPC_INTERNAL;
  }
  return CRPC_OK;
}
