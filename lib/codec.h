/*
 * codec.h: gRPC's length-prefixed messages (5-byte prefix: compressed flag,
 * big-endian length), packing and unpacking through protobuf-c descriptors.
 */
#ifndef CRPC_CODEC_H
#define CRPC_CODEC_H

#include <stdatomic.h>

#include "internal.h"

/* One message, prefix included for outgoing ones, payload only for
 * incoming ones. Header and bytes in one allocation. */
typedef struct crpc__msgbuf {
  struct crpc__msgbuf *next;
  size_t len; /* bytes in data */
  size_t off; /* bytes already sent (outgoing) */
  size_t cap; /* bytes data can hold */
  bool compressed;
  uint8_t data[];
} crpc__msgbuf;

/* From |mem| (NULL: libc); freed with crpc__free(mem, m). */
crpc__msgbuf *crpc__msgbuf_new(const crpc_mem *mem, size_t len);

/* A call's spare message buffers. glibc hands a large block back to the
 * kernel when it is freed, so a stream that allocates a fresh 1 MiB buffer
 * per message faults in 1 MiB of zeroed pages each time (bench/NOTES.md:
 * 30 % of the callback client's time). Buffers from CRPC__MSGPOOL_MIN to
 * CRPC__MSGPOOL_MAX bytes are kept here for the call's next message
 * instead, at most two (one each way in a ping-pong), until the call
 * ends. Any thread: the slots are swapped atomically. */
#define CRPC__MSGPOOL_MIN ((size_t)16 * 1024)
#define CRPC__MSGPOOL_MAX ((size_t)8 << 20)
typedef struct crpc__msgpool {
  _Atomic(crpc__msgbuf *) slot[2];
} crpc__msgpool;

/* A buffer for |len| bytes: a spare one from |p| (may be NULL) that is
 * large enough, else a new one from |mem|. Freed with crpc__free(mem, m)
 * or given back with crpc__msgpool_put(). NULL when out of memory. */
crpc__msgbuf *crpc__msgpool_get(crpc__msgpool *p, const crpc_mem *mem,
                                size_t len);
/* Keeps |m| (NULL-safe) for a later get, or frees it. */
void crpc__msgpool_put(crpc__msgpool *p, const crpc_mem *mem,
                       crpc__msgbuf *m);
/* Frees the spares (the call's end). */
void crpc__msgpool_drain(crpc__msgpool *p, const crpc_mem *mem);

typedef struct crpc__msgq {
  crpc__msgbuf *head, *tail;
  size_t count;
  size_t bytes;
} crpc__msgq;

void crpc__msgq_push(crpc__msgq *q, crpc__msgbuf *m);
crpc__msgbuf *crpc__msgq_pop(crpc__msgq *q);
/* Frees every message (allocated from |mem|). */
void crpc__msgq_clear(crpc__msgq *q, const crpc_mem *mem);

typedef struct crpc__deframer {
  uint8_t hdr[5];
  size_t hdr_have;
  crpc__msgbuf *cur;   /* message being filled */
  size_t max_len;      /* largest accepted payload */
  const crpc_mem *mem; /* messages come from it; NULL: libc */
  crpc__msgpool *pool; /* spare buffers to fill first; NULL: none */
} crpc__deframer;

/* Called for each complete message; takes ownership of |m|. Non-zero
 * return stops feeding and is returned by crpc__deframer_feed. */
typedef int (*crpc__msg_cb)(void *ud, crpc__msgbuf *m);

/* Returns 0; CRPC_ETOOBIG (declared length over max_len); CRPC_EPROTO (flag
 * byte other than 0 or 1); CRPC_ENOMEM; or the callback's value. */
int crpc__deframer_feed(crpc__deframer *d, const uint8_t *data, size_t len,
                        crpc__msg_cb cb, void *ud);
/* Whether a message was started but not completed (a truncated stream). */
bool crpc__deframer_partial(const crpc__deframer *d);
void crpc__deframer_reset(crpc__deframer *d);

/* Packs |msg| behind the prefix, compressed with |enc| unless identity,
 * into a buffer from |pool| (may be NULL) or |mem|.
 * Returns 0; CRPC_ETOOBIG (payload over |max_send|, 0 = no limit);
 * CRPC_ENOMEM. */
int crpc__frame_message(const crpc_mem *mem, crpc__msgpool *pool,
                        const ProtobufCMessage *msg,
                        crpc__encoding enc, size_t max_send,
                        crpc__msgbuf **out);

/* Decompresses (when |m->compressed|, with |enc|, scratch from |mem|) and
 * unpacks into |*out| with |alloc| (NULL: protobuf-c's default).
 * Returns CRPC_OK or the status the spec gives: INTERNAL (not protobuf,
 * corrupt compression, compressed flag without an encoding),
 * RESOURCE_EXHAUSTED (decompressed size over max_recv, or out of memory),
 * UNIMPLEMENTED (unsupported encoding). |st| gets a message. */
crpc_code crpc__unframe_message(const crpc_mem *mem,
                                const ProtobufCMessageDescriptor *desc,
                                ProtobufCAllocator *alloc,
                                const crpc__msgbuf *m, crpc__encoding enc,
                                size_t max_recv, ProtobufCMessage **out,
                                crpc_status *st);

#endif
