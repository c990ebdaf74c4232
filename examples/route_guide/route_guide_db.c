/*
 * route_guide_db.c: a small JSON reader for the feature database's fixed
 * shape, and the route guide's geometry.
 *
 * The reader is a strict recursive-descent parser of RFC 8259 JSON: it
 * understands every value (unknown keys are skipped), but keeps only the
 * names and the integer coordinates. Input is treated as untrusted: nesting
 * depth, file size and integer ranges are bounded, strings must be valid
 * UTF-8 after unescaping, and any error reports its byte offset.
 */
#include "route_guide_db.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG_MAX_FILE (16u * 1024u * 1024u)
#define RG_MAX_DEPTH 64

typedef struct parser {
  const char *start;
  const char *p;
  const char *end;
  char *err;
  size_t errlen;
} parser;

static int fail(parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(parser *ps, const char *fmt, ...) {
  char what[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  if (ps->errlen > 0) {
    snprintf(ps->err, ps->errlen, "%s at byte %zu", what,
             (size_t)(ps->p - ps->start));
  }
  return -1;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                             *ps->p == '\n' || *ps->p == '\r')) {
    ps->p++;
  }
}

/* Consumes |c| after optional white space. */
static int expect(parser *ps, char c) {
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != c) {
    return fail(ps, "expected '%c'", c);
  }
  ps->p++;
  return 0;
}

/* Whether the next non-space byte is |c| (consumed if so). */
static bool accept(parser *ps, char c) {
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == c) {
    ps->p++;
    return true;
  }
  return false;
}

static int hex4(parser *ps, unsigned *out) {
  unsigned v = 0;
  if (ps->end - ps->p < 4) {
    return fail(ps, "truncated \\u escape");
  }
  for (int i = 0; i < 4; i++) {
    char c = ps->p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= (unsigned)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= (unsigned)(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= (unsigned)(c - 'A' + 10);
    } else {
      return fail(ps, "bad \\u escape");
    }
  }
  ps->p += 4;
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, no surrogates).
 * Protobuf string fields must be, or peers reject the message. */
static bool utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len;
    unsigned cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) {
      return false;
    }
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

/* Parses a string; |*out| (may be NULL to skip) gets a malloc'd copy. */
static int parse_string(parser *ps, char **out) {
  if (expect(ps, '"') != 0) {
    return -1;
  }
  /* Unescaped text is never longer than the escaped text. */
  const char *q = ps->p;
  while (q < ps->end && *q != '"') {
    q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
  }
  if (q >= ps->end) {
    return fail(ps, "unterminated string");
  }
  char *buf = malloc((size_t)(q - ps->p) + 1);
  if (buf == NULL) {
    return fail(ps, "out of memory");
  }
  size_t n = 0;
  while (*ps->p != '"') {
    unsigned char c = (unsigned char)*ps->p;
    if (c < 0x20) {
      free(buf);
      return fail(ps, "control character in string");
    }
    if (c != '\\') {
      buf[n++] = (char)c;
      ps->p++;
      continue;
    }
    ps->p++;
    char e = *ps->p++;
    switch (e) {
    case '"':
      buf[n++] = '"';
      break;
    case '\\':
      buf[n++] = '\\';
      break;
    case '/':
      buf[n++] = '/';
      break;
    case 'b':
      buf[n++] = '\b';
      break;
    case 'f':
      buf[n++] = '\f';
      break;
    case 'n':
      buf[n++] = '\n';
      break;
    case 'r':
      buf[n++] = '\r';
      break;
    case 't':
      buf[n++] = '\t';
      break;
    case 'u': {
      unsigned cp, lo;
      if (hex4(ps, &cp) != 0) {
        free(buf);
        return -1;
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') {
          free(buf);
          return fail(ps, "unpaired surrogate");
        }
        ps->p += 2;
        if (hex4(ps, &lo) != 0) {
          free(buf);
          return -1;
        }
        if (lo < 0xDC00 || lo > 0xDFFF) {
          free(buf);
          return fail(ps, "unpaired surrogate");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        free(buf);
        return fail(ps, "unpaired surrogate");
      }
      n += put_utf8(buf + n, cp);
      break;
    }
    default:
      free(buf);
      return fail(ps, "bad escape");
    }
  }
  ps->p++; /* closing quote */
  buf[n] = '\0';
  if (!utf8_valid((const unsigned char *)buf, n) || strlen(buf) != n) {
    free(buf);
    return fail(ps, "string is not valid UTF-8 (or contains NUL)");
  }
  if (out != NULL) {
    *out = buf;
  } else {
    free(buf);
  }
  return 0;
}

/* Any JSON number, validated and discarded. */
static int skip_number(parser *ps) {
  const char *s = ps->p;
  if (ps->p < ps->end && *ps->p == '-') {
    ps->p++;
  }
  size_t digits = 0;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
    ps->p++;
    digits++;
  }
  if (digits == 0 || (digits > 1 && s[*s == '-' ? 1 : 0] == '0')) {
    return fail(ps, "bad number");
  }
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    digits = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
      ps->p++;
      digits++;
    }
    if (digits == 0) {
      return fail(ps, "bad number");
    }
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) {
      ps->p++;
    }
    digits = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
      ps->p++;
      digits++;
    }
    if (digits == 0) {
      return fail(ps, "bad number");
    }
  }
  return 0;
}

/* A JSON integer that fits in int32 (coordinates are E7 degrees). */
static int parse_int32(parser *ps, int32_t *out) {
  skip_ws(ps);
  const char *s = ps->p;
  if (skip_number(ps) != 0) {
    return -1;
  }
  int64_t v = 0;
  bool neg = *s == '-';
  for (const char *q = s + (neg ? 1 : 0); q < ps->p; q++) {
    if (*q < '0' || *q > '9') {
      ps->p = s;
      return fail(ps, "coordinate is not an integer");
    }
    v = v * 10 + (*q - '0');
    if (v > (int64_t)INT32_MAX + 1) {
      ps->p = s;
      return fail(ps, "coordinate out of range");
    }
  }
  v = neg ? -v : v;
  if (v > INT32_MAX) {
    ps->p = s;
    return fail(ps, "coordinate out of range");
  }
  *out = (int32_t)v;
  return 0;
}

static int skip_value(parser *ps, int depth);

static int skip_literal(parser *ps, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0) {
    return fail(ps, "unexpected character");
  }
  ps->p += n;
  return 0;
}

/* Calls |member| for each key of an object; |member| consumes the value. */
typedef int (*member_fn)(parser *ps, const char *key, void *ctx, int depth);

static int parse_object(parser *ps, member_fn member, void *ctx, int depth) {
  if (depth > RG_MAX_DEPTH) {
    return fail(ps, "nesting too deep");
  }
  if (expect(ps, '{') != 0) {
    return -1;
  }
  if (accept(ps, '}')) {
    return 0;
  }
  do {
    char *key = NULL;
    skip_ws(ps);
    if (parse_string(ps, &key) != 0) {
      return -1;
    }
    int rv = expect(ps, ':');
    if (rv == 0) {
      rv = member(ps, key, ctx, depth + 1);
    }
    free(key);
    if (rv != 0) {
      return -1;
    }
  } while (accept(ps, ','));
  return expect(ps, '}');
}

static int skip_member(parser *ps, const char *key, void *ctx, int depth) {
  (void)key;
  (void)ctx;
  return skip_value(ps, depth);
}

static int skip_value(parser *ps, int depth) {
  if (depth > RG_MAX_DEPTH) {
    return fail(ps, "nesting too deep");
  }
  skip_ws(ps);
  if (ps->p >= ps->end) {
    return fail(ps, "unexpected end of input");
  }
  switch (*ps->p) {
  case '{':
    return parse_object(ps, skip_member, NULL, depth);
  case '[':
    ps->p++;
    if (accept(ps, ']')) {
      return 0;
    }
    do {
      if (skip_value(ps, depth + 1) != 0) {
        return -1;
      }
    } while (accept(ps, ','));
    return expect(ps, ']');
  case '"':
    return parse_string(ps, NULL);
  case 't':
    return skip_literal(ps, "true");
  case 'f':
    return skip_literal(ps, "false");
  case 'n':
    return skip_literal(ps, "null");
  default:
    return skip_number(ps);
  }
}

typedef struct loc_ctx {
  rg_feature *f;
  bool have_lat, have_lon;
} loc_ctx;

static int location_member(parser *ps, const char *key, void *ctx, int depth) {
  loc_ctx *lc = ctx;
  if (strcmp(key, "latitude") == 0) {
    lc->have_lat = true;
    return parse_int32(ps, &lc->f->latitude);
  }
  if (strcmp(key, "longitude") == 0) {
    lc->have_lon = true;
    return parse_int32(ps, &lc->f->longitude);
  }
  return skip_value(ps, depth);
}

typedef struct feature_ctx {
  rg_feature *f;
  bool have_loc;
} feature_ctx;

static int feature_member(parser *ps, const char *key, void *ctx, int depth) {
  feature_ctx *fc = ctx;
  if (strcmp(key, "name") == 0) {
    char *name = NULL;
    skip_ws(ps);
    if (parse_string(ps, &name) != 0) {
      return -1;
    }
    free(fc->f->name); /* a repeated key: the last one wins */
    fc->f->name = name;
    return 0;
  }
  if (strcmp(key, "location") == 0) {
    loc_ctx lc = {fc->f, false, false};
    if (parse_object(ps, location_member, &lc, depth) != 0) {
      return -1;
    }
    if (!lc.have_lat || !lc.have_lon) {
      return fail(ps, "location without latitude and longitude");
    }
    fc->have_loc = true;
    return 0;
  }
  return skip_value(ps, depth);
}

int rg_db_parse(rg_db *db, const char *text, size_t len, char *err,
                size_t errlen) {
  parser ps = {text, text, text + len, err, errlen};
  size_t cap = 0;
  db->features = NULL;
  db->n = 0;
  if (expect(&ps, '[') != 0) {
    return -1;
  }
  if (!accept(&ps, ']')) {
    do {
      if (db->n == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        rg_feature *nf = realloc(db->features, ncap * sizeof(*nf));
        if (nf == NULL) {
          fail(&ps, "out of memory");
          goto fail;
        }
        db->features = nf;
        cap = ncap;
      }
      rg_feature *f = &db->features[db->n];
      memset(f, 0, sizeof(*f));
      feature_ctx fc = {f, false};
      const char *at = ps.p;
      int rv = parse_object(&ps, feature_member, &fc, 1);
      db->n++; /* so that fail frees its name */
      if (rv != 0) {
        goto fail;
      }
      if (!fc.have_loc) {
        ps.p = at;
        fail(&ps, "feature without a location");
        goto fail;
      }
      if (f->name == NULL && (f->name = calloc(1, 1)) == NULL) {
        fail(&ps, "out of memory");
        goto fail;
      }
    } while (accept(&ps, ','));
    if (expect(&ps, ']') != 0) {
      goto fail;
    }
  }
  skip_ws(&ps);
  if (ps.p != ps.end) {
    fail(&ps, "trailing data after the array");
    goto fail;
  }
  return 0;

fail:
  rg_db_free(db);
  return -1;
}

int rg_db_load(rg_db *db, const char *path, char *err, size_t errlen) {
  db->features = NULL;
  db->n = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  char *buf = malloc(RG_MAX_FILE);
  if (buf == NULL) {
    fclose(f);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  size_t n = fread(buf, 1, RG_MAX_FILE, f);
  int rv = -1;
  if (ferror(f)) {
    snprintf(err, errlen, "%s: read error", path);
  } else if (n == RG_MAX_FILE) {
    snprintf(err, errlen, "%s: larger than %u bytes", path, RG_MAX_FILE);
  } else {
    char perr[200];
    rv = rg_db_parse(db, buf, n, perr, sizeof(perr));
    if (rv != 0) {
      snprintf(err, errlen, "%s: %s", path, perr);
    }
  }
  free(buf);
  fclose(f);
  return rv;
}

void rg_db_free(rg_db *db) {
  for (size_t i = 0; i < db->n; i++) {
    free(db->features[i].name);
  }
  free(db->features);
  db->features = NULL;
  db->n = 0;
}

const rg_feature *rg_db_find(const rg_db *db, int32_t latitude,
                             int32_t longitude) {
  for (size_t i = 0; i < db->n; i++) {
    if (db->features[i].latitude == latitude &&
        db->features[i].longitude == longitude) {
      return &db->features[i];
    }
  }
  return NULL;
}

bool rg_in_rect(int32_t lo_lat, int32_t lo_lon, int32_t hi_lat, int32_t hi_lon,
                int32_t lat, int32_t lon) {
  int32_t left = lo_lon < hi_lon ? lo_lon : hi_lon;
  int32_t right = lo_lon > hi_lon ? lo_lon : hi_lon;
  int32_t bottom = lo_lat < hi_lat ? lo_lat : hi_lat;
  int32_t top = lo_lat > hi_lat ? lo_lat : hi_lat;
  return lon >= left && lon <= right && lat >= bottom && lat <= top;
}

double rg_distance(int32_t lat1, int32_t lon1, int32_t lat2, int32_t lon2) {
  const double coord_factor = 10000000.0;
  const double earth_radius_m = 6371000.0;
  const double pi = 3.14159265358979323846;
  double phi1 = lat1 / coord_factor * pi / 180.0;
  double phi2 = lat2 / coord_factor * pi / 180.0;
  double dphi = ((double)lat2 - lat1) / coord_factor * pi / 180.0;
  double dlambda = ((double)lon2 - lon1) / coord_factor * pi / 180.0;
  double a = sin(dphi / 2) * sin(dphi / 2) +
             cos(phi1) * cos(phi2) * sin(dlambda / 2) * sin(dlambda / 2);
  double c = 2 * atan2(sqrt(a), sqrt(1 - a));
  return earth_radius_m * c;
}
