/*
 * status.c: gRPC status codes, the crpc_status object, the grpc-message
 * percent-encoding and the grpc-status / HTTP status parsers
 * (gRPC's PROTOCOL-HTTP2.md and http-grpc-status-mapping.md).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *crpc_code_name(crpc_code code) {
  /* Compare as unsigned: an enum may hold any int. */
  if ((unsigned)code < sizeof(code_names) / sizeof(code_names[0]))
    return code_names[code];
  return "UNKNOWN_CODE";
}

void crpc_status_clear(crpc_status *st) {
  if (st == NULL)
    return;
  free(st->message);
  free(st->details);
  memset(st, 0, sizeof(*st));
}

const char *crpc_status_message(const crpc_status *st) {
  if (st == NULL)
    return "no status";
  if (st->message != NULL && st->message[0] != '\0')
    return st->message;
  return crpc_code_name(st->code);
}

/* The details are left alone: they belong to whoever set them. On OOM the
 * message is dropped but the code is still set, so the outcome survives. */
void crpc__status_set(crpc_status *st, crpc_code code, const char *fmt, ...) {
  va_list ap;
  char *msg = NULL;
  int n;

  if (st == NULL)
    return;
  if (fmt != NULL) {
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && (msg = malloc((size_t)n + 1)) != NULL) {
      va_start(ap, fmt);
      vsnprintf(msg, (size_t)n + 1, fmt, ap);
      va_end(ap);
    }
  }
  free(st->message);
  st->message = msg;
  st->code = code;
}

void crpc__status_move(crpc_status *dst, crpc_status *src) {
  if (dst == NULL || src == NULL || dst == src)
    return;
  crpc_status_clear(dst);
  *dst = *src;
  memset(src, 0, sizeof(*src));
}

static bool percent_unreserved(unsigned char c) {
  return c >= 0x20 && c <= 0x7e && c != '%';
}

char *crpc__percent_encode(const char *msg, size_t len, size_t *out_len) {
  return crpc__percent_encode_m(NULL, msg, len, out_len);
}

char *crpc__percent_encode_m(const crpc_mem *m, const char *msg, size_t len,
                             size_t *out_len) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *in = (const unsigned char *)msg;
  size_t i, n = 0;
  char *out, *o;

  if (msg == NULL)
    len = 0;
  for (i = 0; i < len; i++) {
    size_t w = percent_unreserved(in[i]) ? 1 : 3;
    if (n > SIZE_MAX - 1 - w)
      return NULL;
    n += w;
  }
  if ((out = crpc__malloc(m, n + 1)) == NULL)
    return NULL;
  for (i = 0, o = out; i < len; i++) {
    if (percent_unreserved(in[i])) {
      *o++ = (char)in[i];
    } else {
      *o++ = '%';
      *o++ = hex[in[i] >> 4];
      *o++ = hex[in[i] & 0xf];
    }
  }
  *o = '\0';
  if (out_len != NULL)
    *out_len = n;
  return out;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') /* emitters should use upper case; be liberal */
    return c - 'a' + 10;
  return -1;
}

/* Never fails on bad input (the spec forbids dropping the message): a '%'
 * not followed by two hex digits is kept as it is. */
char *crpc__percent_decode(const char *in, size_t len) {
  const unsigned char *s = (const unsigned char *)in;
  size_t i;
  char *out, *o;

  if (in == NULL)
    len = 0;
  if (len == SIZE_MAX || (out = malloc(len + 1)) == NULL)
    return NULL;
  for (i = 0, o = out; i < len; i++) {
    int hi, lo;
    if (s[i] == '%' && len - i >= 3 && (hi = hexval(s[i + 1])) >= 0 &&
        (lo = hexval(s[i + 2])) >= 0) {
      *o++ = (char)(hi << 4 | lo);
      i += 2;
    } else {
      *o++ = (char)s[i];
    }
  }
  *o = '\0';
  return out;
}

/* "Status → grpc-status 1*DIGIT". A number outside 0..16 (including a
 * negative or huge one) is still a status: UNKNOWN, as other gRPC stacks
 * treat codes they do not know. Anything else is not a status at all. */
int crpc__parse_grpc_status(const char *v, size_t len, crpc_code *out) {
  size_t i = 0;
  unsigned long n = 0;
  bool neg = false, big = false;

  if (v == NULL || out == NULL)
    return -1;
  if (len > 0 && v[0] == '-') {
    neg = true;
    i = 1;
  }
  if (i == len)
    return -1;
  for (; i < len; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    if (n > 1000)
      big = true; /* keep scanning: the rest must still be digits */
    else
      n = n * 10 + (unsigned long)(v[i] - '0');
  }
  if (neg || big || n > CRPC_UNAUTHENTICATED)
    *out = CRPC_UNKNOWN;
  else
    *out = (crpc_code)n;
  return 0;
}

crpc_code crpc__http_status_to_code(int http_status) {
  switch (http_status) {
  case 400: /* Bad Request */
  case 431: /* Request Header Fields Too Large */
    return CRPC_INTERNAL;
  case 401:
    return CRPC_UNAUTHENTICATED;
  case 403:
    return CRPC_PERMISSION_DENIED;
  case 404:
    return CRPC_UNIMPLEMENTED;
  case 429: /* Too Many Requests */
  case 502: /* Bad Gateway */
  case 503: /* Service Unavailable */
  case 504: /* Gateway Timeout */
    return CRPC_UNAVAILABLE;
  default: /* 200 included: a real OK carries grpc-status */
    return CRPC_UNKNOWN;
  }
}
