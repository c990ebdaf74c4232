/*
 * metadata.c: gRPC custom metadata. An ordered, growable array of pairs;
 * each pair is one allocation holding "key\0value\0" so a list of n pairs
 * costs n + 1 blocks. Key and value rules are PROTOCOL-HTTP2.md's:
 *   Header-Name → 1*( %x30-39 / %x61-7A / "_" / "-" / "." )
 *   ASCII-Value → 1*( %x20-%x7E )
 *   Binary-Header → {Header-Name "-bin"} {base64 encoded value}
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct md_pair {
  char *key; /* start of the block; value follows the key's NUL */
  uint8_t *value;
  size_t len;
} md_pair;

struct crpc_metadata {
  md_pair *pairs;
  size_t n, cap;
  const crpc_mem *mem; /* its maker's allocator; outlives the list */
};

static char fold(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool key_char_ok(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' ||
         c == '-' || c == '.';
}

bool crpc__metadata_key_valid(const char *key, size_t len) {
  size_t i;
  if (key == NULL || len == 0)
    return false;
  for (i = 0; i < len; i++)
    if (!key_char_ok(key[i]))
      return false;
  return true;
}

/* Headers the transport writes itself: a user copy would duplicate or
 * contradict them, and connection-specific ones are illegal in HTTP/2
 * (RFC 9113 8.2.2). content-length is reserved because a wrong one makes
 * peers reset the stream. */
static const char *const reserved_keys[] = {
    "content-type",     "te",      "user-agent",        "host",
    "connection",       "upgrade", "transfer-encoding", "keep-alive",
    "proxy-connection", "content-length",
};

/* Case-insensitive, so crpc_metadata_add() can test a key before folding
 * it; keys from the wire are lower case anyway. */
static bool ieq(const char *a, const char *b, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (fold(a[i]) != fold(b[i]))
      return false;
  return true;
}

bool crpc__metadata_key_reserved(const char *key, size_t len) {
  size_t i;
  if (key == NULL || len == 0)
    return false;
  if (key[0] == ':' || (len >= 5 && ieq(key, "grpc-", 5)))
    return true;
  for (i = 0; i < sizeof(reserved_keys) / sizeof(reserved_keys[0]); i++)
    if (strlen(reserved_keys[i]) == len && ieq(reserved_keys[i], key, len))
      return true;
  return false;
}

bool crpc__metadata_key_is_bin(const char *key, size_t len) {
  return key != NULL && len >= 4 && ieq(key + len - 4, "-bin", 4);
}

static bool ascii_value_ok(const uint8_t *v, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (v[i] < 0x20 || v[i] > 0x7e)
      return false;
  return true;
}

int crpc__metadata_new(crpc_metadata **out, const crpc_mem *m) {
  crpc_metadata *md;
  if (out == NULL)
    return CRPC_EINVAL;
  if ((md = crpc__calloc(m, 1, sizeof(*md))) == NULL)
    return CRPC_ENOMEM;
  md->mem = m;
  *out = md;
  return 0;
}

int crpc_metadata_new(crpc_metadata **out) {
  return crpc__metadata_new(out, crpc__mem_libc());
}

void crpc_metadata_clear(crpc_metadata *md) {
  size_t i;
  if (md == NULL)
    return;
  for (i = 0; i < md->n; i++)
    crpc__free(md->mem, md->pairs[i].key);
  md->n = 0;
}

void crpc_metadata_free(crpc_metadata *md) {
  if (md == NULL)
    return;
  crpc_metadata_clear(md);
  crpc__free(md->mem, md->pairs);
  crpc__free(md->mem, md);
}

/* Room for |extra| more pairs, so that multi-pair operations can fail
 * before they change anything. */
static int reserve(crpc_metadata *md, size_t extra) {
  size_t cap;
  md_pair *p;
  if (md->cap - md->n >= extra)
    return 0;
  if (extra > SIZE_MAX / sizeof(md_pair) - md->n)
    return CRPC_ENOMEM;
  cap = md->cap ? md->cap : 4;
  while (cap - md->n < extra)
    cap = cap > SIZE_MAX / sizeof(md_pair) / 2 ? md->n + extra : cap * 2;
  if ((p = crpc__realloc(md->mem, md->pairs, cap * sizeof(md_pair))) == NULL)
    return CRPC_ENOMEM;
  md->pairs = p;
  md->cap = cap;
  return 0;
}

/* Appends without validation; |key| is folded to lower case. The caller
 * has reserved room. */
static int push(crpc_metadata *md, const char *key, size_t klen,
                const void *value, size_t vlen) {
  char *block;
  size_t i;
  if (klen > SIZE_MAX - 2 || vlen > SIZE_MAX - 2 - klen)
    return CRPC_ENOMEM;
  if ((block = crpc__malloc(md->mem, klen + vlen + 2)) == NULL)
    return CRPC_ENOMEM;
  for (i = 0; i < klen; i++)
    block[i] = fold(key[i]);
  block[klen] = '\0';
  if (vlen > 0)
    memcpy(block + klen + 1, value, vlen);
  block[klen + 1 + vlen] = '\0';
  md->pairs[md->n].key = block;
  md->pairs[md->n].value = (uint8_t *)block + klen + 1;
  md->pairs[md->n].len = vlen;
  md->n++;
  return 0;
}

/* Drops pairs past |n|: the undo of a half-done multi-pair operation. */
static void truncate_to(crpc_metadata *md, size_t n) {
  while (md->n > n)
    crpc__free(md->mem, md->pairs[--md->n].key);
}

int crpc_metadata_add(crpc_metadata *md, const char *key, const void *value,
                      size_t value_len) {
  size_t klen, i;
  int rv;

  if (md == NULL || key == NULL || (value == NULL && value_len > 0))
    return CRPC_EINVAL;
  klen = strlen(key);
  if (klen == 0)
    return CRPC_EMETADATA;
  for (i = 0; i < klen; i++)
    if (!key_char_ok(fold(key[i])))
      return CRPC_EMETADATA;
  if (crpc__metadata_key_reserved(key, klen))
    return CRPC_EMETADATA;
  if (!crpc__metadata_key_is_bin(key, klen) &&
      !ascii_value_ok(value, value_len))
    return CRPC_EMETADATA;
  if ((rv = reserve(md, 1)) != 0)
    return rv;
  return push(md, key, klen, value, value_len);
}

int crpc_metadata_add_str(crpc_metadata *md, const char *key,
                          const char *value) {
  if (value == NULL)
    return CRPC_EINVAL;
  return crpc_metadata_add(md, key, value, strlen(value));
}

size_t crpc_metadata_count(const crpc_metadata *md) {
  return md != NULL ? md->n : 0;
}

int crpc_metadata_at(const crpc_metadata *md, size_t i, const char **key,
                     const uint8_t **value, size_t *value_len) {
  if (md == NULL || i >= md->n)
    return CRPC_EINVAL;
  if (key != NULL)
    *key = md->pairs[i].key;
  if (value != NULL)
    *value = md->pairs[i].value;
  if (value_len != NULL)
    *value_len = md->pairs[i].len;
  return 0;
}

const uint8_t *crpc_metadata_get(const crpc_metadata *md, const char *key,
                                 size_t *value_len) {
  size_t i;
  if (md == NULL || key == NULL)
    return NULL;
  for (i = 0; i < md->n; i++) {
    if (strcmp(md->pairs[i].key, key) == 0) {
      if (value_len != NULL)
        *value_len = md->pairs[i].len;
      return md->pairs[i].value;
    }
  }
  return NULL;
}

static bool is_ows(uint8_t c) { return c == ' ' || c == '\t'; }

/*
 * Wire values are handled as the spec asks of a receiver:
 * - a -bin header may carry several values joined with "," by a proxy: each
 *   is decoded as its own pair; one bad piece rejects the whole header;
 * - an ASCII value has surrounding whitespace stripped; one with bytes
 *   outside 0x20-0x7E (legal in HTTP, not in gRPC) is dropped, because the
 *   application could not echo it back through crpc_metadata_add().
 */
int crpc__metadata_add_wire(crpc_metadata *md, const uint8_t *name,
                            size_t namelen, const uint8_t *value,
                            size_t valuelen) {
  const char *key = (const char *)name;
  size_t start, n0, pieces = 1, i;
  int rv;

  if (md == NULL || name == NULL || (value == NULL && valuelen > 0))
    return CRPC_EINVAL;
  if (namelen > 0 && name[0] == ':')
    return 0; /* pseudo-headers are the transport's */
  if (!crpc__metadata_key_valid(key, namelen))
    return CRPC_EMETADATA;
  if (crpc__metadata_key_reserved(key, namelen))
    return 0;

  if (!crpc__metadata_key_is_bin(key, namelen)) {
    while (valuelen > 0 && is_ows(value[0])) {
      value++;
      valuelen--;
    }
    while (valuelen > 0 && is_ows(value[valuelen - 1]))
      valuelen--;
    if (!ascii_value_ok(value, valuelen))
      return 0;
    if ((rv = reserve(md, 1)) != 0)
      return rv;
    return push(md, key, namelen, value, valuelen);
  }

  for (i = 0; i < valuelen; i++)
    pieces += value[i] == ',';
  if ((rv = reserve(md, pieces)) != 0)
    return rv;
  n0 = md->n;
  for (start = 0; start <= valuelen;) {
    size_t end = start, s, e, dlen;
    uint8_t *dec;
    while (end < valuelen && value[end] != ',')
      end++;
    for (s = start; s < end && is_ows(value[s]); s++)
      ;
    for (e = end; e > s && is_ows(value[e - 1]); e--)
      ;
    rv = crpc__base64_decode_m(md->mem, (const char *)value + s, e - s,
                               &dec, &dlen);
    if (rv != 0) {
      truncate_to(md, n0);
      return rv == -2 ? CRPC_ENOMEM : CRPC_EMETADATA;
    }
    rv = push(md, key, namelen, dec, dlen);
    crpc__free(md->mem, dec);
    if (rv != 0) {
      truncate_to(md, n0);
      return rv;
    }
    start = end + 1;
  }
  return 0;
}

int crpc__metadata_append(crpc_metadata *dst, const crpc_metadata *src) {
  size_t n0, i, count;
  int rv;
  if (dst == NULL || src == NULL)
    return CRPC_EINVAL;
  /* src may be dst: copy only the pairs that were there to begin with. */
  count = src->n;
  if ((rv = reserve(dst, count)) != 0)
    return rv;
  n0 = dst->n;
  for (i = 0; i < count; i++) {
    const md_pair *p = &src->pairs[i];
    if ((rv = push(dst, p->key, strlen(p->key), p->value, p->len)) != 0) {
      truncate_to(dst, n0);
      return rv;
    }
  }
  return 0;
}

/* ---- base64, RFC 4648 section 4 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int crpc__base64_encode(const uint8_t *in, size_t len, char **out,
                        size_t *out_len) {
  return crpc__base64_encode_m(NULL, in, len, out, out_len);
}

int crpc__base64_encode_m(const crpc_mem *m, const uint8_t *in, size_t len,
                          char **out, size_t *out_len) {
  size_t n, i;
  char *o, *p;

  if (out == NULL || (in == NULL && len > 0))
    return -1;
  if (len / 3 > (SIZE_MAX - 4) / 4)
    return -1;
  n = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0); /* unpadded */
  if ((o = crpc__malloc(m, n + 1)) == NULL)
    return -1;
  for (i = 0, p = o; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *p++ = b64_alphabet[v >> 18];
    *p++ = b64_alphabet[v >> 12 & 63];
    *p++ = b64_alphabet[v >> 6 & 63];
    *p++ = b64_alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    *p++ = b64_alphabet[v >> 18];
    *p++ = b64_alphabet[v >> 12 & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    *p++ = b64_alphabet[v >> 18];
    *p++ = b64_alphabet[v >> 12 & 63];
    *p++ = b64_alphabet[v >> 6 & 63];
  }
  *p = '\0';
  *out = o;
  if (out_len != NULL)
    *out_len = n;
  return 0;
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/*
 * Padded input must be a whole number of quanta with the right number of
 * '=' (1 or 2); unpadded input may end in a 2- or 3-character quantum. A
 * lone trailing character can encode no byte and is an error. Non-zero
 * leftover bits in the last quantum are accepted, as most decoders do.
 */
int crpc__base64_decode(const char *in, size_t len, uint8_t **out,
                        size_t *out_len) {
  int rv = crpc__base64_decode_m(NULL, in, len, out, out_len);
  return rv < 0 ? -1 : rv;
}

/* -2 tells out-of-memory apart from bad input (-1). */
int crpc__base64_decode_m(const crpc_mem *m, const char *in, size_t len,
                          uint8_t **out, size_t *out_len) {
  const unsigned char *s = (const unsigned char *)in;
  size_t pad = 0, rem, n, i;
  uint8_t *o, *p;

  if (out == NULL || (in == NULL && len > 0))
    return -1;
  if (len > 0 && s[len - 1] == '=') {
    if (len % 4 != 0)
      return -1;
    pad = len >= 2 && s[len - 2] == '=' ? 2 : 1;
    len -= pad;
  }
  rem = len % 4;
  if (rem == 1 || (pad != 0 && pad != 4 - rem))
    return -1;
  n = len / 4 * 3 + (rem ? rem - 1 : 0);
  if ((o = crpc__malloc(m, n + 1)) == NULL)
    return -2;
  for (i = 0, p = o; i < len; i += 4) {
    size_t k, q = len - i < 4 ? len - i : 4;
    uint32_t v = 0;
    for (k = 0; k < 4; k++) {
      int d = k < q ? b64_value(s[i + k]) : 0;
      if (d < 0) {
        crpc__free(m, o);
        return -1;
      }
      v = v << 6 | (uint32_t)d;
    }
    *p++ = (uint8_t)(v >> 16);
    if (q > 2)
      *p++ = (uint8_t)(v >> 8);
    if (q > 3)
      *p++ = (uint8_t)v;
  }
  *p = '\0';
  *out = o;
  if (out_len != NULL)
    *out_len = n;
  return 0;
}
