/*
 * compress.c: per-message compression (gRPC's doc/compression.md) with
 * zlib: "deflate" is the zlib format (RFC 1950), as gRPC sends it, and
 * "gzip" the gzip format (RFC 1952). Each message is its own stream.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"

#define WBITS_ZLIB 15
#define WBITS_GZIP (15 + 16)
#define INFLATE_FIRST_CHUNK 256

static const char *const enc_names[] = {"identity", "deflate", "gzip"};

static bool name_ieq(const char *a, size_t alen, const char *b) {
  size_t i;
  if (strlen(b) != alen)
    return false;
  for (i = 0; i < alen; i++) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != b[i])
      return false;
  }
  return true;
}

/* Content-codings are case-insensitive tokens (RFC 9110 8.4.1). */
crpc__encoding crpc__encoding_from_name(const char *name, size_t len) {
  int i;
  if (name == NULL)
    return CRPC__ENC_UNKNOWN;
  for (i = 0; i < (int)(sizeof(enc_names) / sizeof(enc_names[0])); i++)
    if (name_ieq(name, len, enc_names[i]))
      return (crpc__encoding)i;
  return CRPC__ENC_UNKNOWN;
}

/* NULL for CRPC__ENC_UNKNOWN: there is no name to put on the wire. */
const char *crpc__encoding_name(crpc__encoding enc) {
  if (enc < CRPC__ENC_IDENTITY || enc > CRPC__ENC_GZIP)
    return NULL;
  return enc_names[enc];
}

const char *crpc__accept_encoding(void) { return "identity,deflate,gzip"; }

bool crpc__accept_encoding_has(const char *value, size_t len,
                               crpc__encoding enc) {
  size_t start = 0;
  if (enc == CRPC__ENC_IDENTITY)
    return true;
  if (enc < CRPC__ENC_IDENTITY || enc > CRPC__ENC_GZIP || value == NULL)
    return false;
  while (start < len) {
    size_t end = start, s = start, e;
    while (end < len && value[end] != ',')
      end++;
    while (s < end && (value[s] == ' ' || value[s] == '\t'))
      s++;
    e = end;
    while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
      e--;
    if (crpc__encoding_from_name(value + s, e - s) == enc)
      return true;
    start = end + 1;
  }
  return false;
}

/* zlib's own state and window come from the caller's allocator too (its
 * opaque), so a test that fails allocations sees them. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
  if (size != 0 && items > SIZE_MAX / size)
    return Z_NULL;
  return crpc__malloc(opaque, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p) { crpc__free(opaque, p); }

static int wbits_for(crpc__encoding enc) {
  return enc == CRPC__ENC_GZIP ? WBITS_GZIP : WBITS_ZLIB;
}

/* zlib counts in uInt; feed larger buffers in slices. */
static uInt clamp_uint(size_t n) { return n > UINT_MAX ? UINT_MAX : (uInt)n; }

static int copy_out(const crpc_mem *m, const uint8_t *in, size_t len,
                    uint8_t **out, size_t *out_len) {
  uint8_t *o = crpc__malloc(m, len);
  if (o == NULL)
    return CRPC_ENOMEM;
  if (len > 0)
    memcpy(o, in, len);
  *out = o;
  *out_len = len;
  return 0;
}

int crpc__compress(const crpc_mem *m, crpc__encoding enc, const uint8_t *in,
                   size_t len, uint8_t **out, size_t *out_len) {
  z_stream z;
  uint8_t *buf = NULL;
  size_t cap, in_left = len;
  int zr, rv;

  if (out == NULL || out_len == NULL || (in == NULL && len > 0))
    return CRPC_EINVAL;
  if (enc == CRPC__ENC_IDENTITY)
    return copy_out(m, in, len, out, out_len);
  if (enc != CRPC__ENC_DEFLATE && enc != CRPC__ENC_GZIP)
    return CRPC_EENCODING;

  memset(&z, 0, sizeof(z));
  z.zalloc = z_alloc;
  z.zfree = z_free;
  z.opaque = (voidpf)(uintptr_t)m;
  zr = deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, wbits_for(enc), 8,
                    Z_DEFAULT_STRATEGY);
  if (zr != Z_OK)
    return zr == Z_MEM_ERROR ? CRPC_ENOMEM : CRPC_EINVAL;

  /* deflateBound() is enough for one deflate(Z_FINISH) pass; the loop
   * below still grows the buffer rather than trust it blindly. */
  cap = len <= ULONG_MAX ? deflateBound(&z, (uLong)len) : len;
  if ((buf = crpc__malloc(m, cap)) == NULL) {
    rv = CRPC_ENOMEM;
    goto fail;
  }
  z.next_in = (Bytef *)(uintptr_t)in; /* zlib's API is not const */
  z.next_out = buf;
  for (;;) {
    size_t used = (size_t)(z.next_out - buf);
    if (used == cap) {
      uint8_t *nb;
      if (cap > SIZE_MAX / 2 || (nb = crpc__realloc(m, buf, cap * 2)) == NULL) {
        rv = CRPC_ENOMEM;
        goto fail;
      }
      buf = nb;
      cap *= 2;
      z.next_out = buf + used;
    }
    if (z.avail_in == 0 && in_left > 0) {
      z.avail_in = clamp_uint(in_left);
      in_left -= z.avail_in;
    }
    z.avail_out = clamp_uint(cap - used);
    zr = deflate(&z, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
    if (zr == Z_STREAM_END)
      break;
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
      rv = zr == Z_MEM_ERROR ? CRPC_ENOMEM : CRPC_EINVAL;
      goto fail;
    }
  }
  *out_len = (size_t)(z.next_out - buf);
  *out = buf;
  deflateEnd(&z);
  return 0;

fail:
  crpc__free(m, buf);
  deflateEnd(&z);
  return rv;
}

/*
 * The output buffer grows by doubling up to |max_out| and never past it.
 * Once it holds exactly max_out bytes, inflate runs into a one-byte probe:
 * any byte there means the message is too big, so a zip bomb costs at most
 * max_out plus zlib's own ~40 KiB, however large it would expand.
 */
int crpc__decompress(const crpc_mem *m, crpc__encoding enc, const uint8_t *in,
                     size_t len, size_t max_out, uint8_t **out,
                     size_t *out_len) {
  z_stream z;
  uint8_t *buf = NULL, probe;
  size_t cap, used = 0, in_left = len;
  bool probing = false;
  int zr, rv;

  if (out == NULL || out_len == NULL || (in == NULL && len > 0))
    return CRPC_EINVAL;
  if (enc == CRPC__ENC_IDENTITY) {
    if (len > max_out)
      return CRPC_ETOOBIG;
    return copy_out(m, in, len, out, out_len);
  }
  if (enc != CRPC__ENC_DEFLATE && enc != CRPC__ENC_GZIP)
    return CRPC_EENCODING;

  memset(&z, 0, sizeof(z));
  z.zalloc = z_alloc;
  z.zfree = z_free;
  z.opaque = (voidpf)(uintptr_t)m;
  zr = inflateInit2(&z, wbits_for(enc));
  if (zr != Z_OK)
    return zr == Z_MEM_ERROR ? CRPC_ENOMEM : CRPC_EINVAL;

  /* A first guess from the input size; most messages fit without growing. */
  cap = len < SIZE_MAX / 4 ? len * 4 : SIZE_MAX;
  if (cap < INFLATE_FIRST_CHUNK)
    cap = INFLATE_FIRST_CHUNK;
  if (cap > max_out)
    cap = max_out;
  if ((buf = crpc__malloc(m, cap)) == NULL) {
    rv = CRPC_ENOMEM;
    goto fail;
  }
  z.next_in = (Bytef *)(uintptr_t)in;
  for (;;) {
    if (used == cap && !probing) {
      if (cap == max_out) {
        probing = true;
      } else {
        size_t ncap = cap <= max_out / 2 ? cap * 2 : max_out;
        uint8_t *nb = crpc__realloc(m, buf, ncap);
        if (nb == NULL) {
          rv = CRPC_ENOMEM;
          goto fail;
        }
        buf = nb;
        cap = ncap;
      }
    }
    if (probing) {
      z.next_out = &probe;
      z.avail_out = 1;
    } else {
      z.next_out = buf + used;
      z.avail_out = clamp_uint(cap - used);
    }
    if (z.avail_in == 0 && in_left > 0) {
      z.avail_in = clamp_uint(in_left);
      in_left -= z.avail_in;
    }
    {
      uInt before = z.avail_out;
      zr = inflate(&z, Z_NO_FLUSH);
      if (probing && z.avail_out != before) {
        rv = CRPC_ETOOBIG;
        goto fail;
      }
      if (!probing)
        used += before - z.avail_out;
    }
    if (zr == Z_STREAM_END)
      break;
    if (zr == Z_MEM_ERROR) {
      rv = CRPC_ENOMEM;
      goto fail;
    }
    if (zr != Z_OK && zr != Z_BUF_ERROR) { /* Z_DATA_ERROR, Z_NEED_DICT */
      rv = CRPC_EPROTO;
      goto fail;
    }
    /* No progress with all input consumed: the stream is truncated. */
    if (zr == Z_BUF_ERROR && z.avail_in == 0 && in_left == 0) {
      rv = CRPC_EPROTO;
      goto fail;
    }
  }
  /* Bytes after the end of the stream are not ours to ignore: a second
   * gzip member or garbage both mean the peer sent something else. */
  if (z.avail_in != 0 || in_left != 0) {
    rv = CRPC_EPROTO;
    goto fail;
  }
  inflateEnd(&z);
  *out = buf;
  *out_len = used;
  return 0;

fail:
  crpc__free(m, buf);
  inflateEnd(&z);
  return rv;
}
