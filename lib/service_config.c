/*
 * service_config.c: the service config JSON (gRFC A2, retries gRFC A6)
 * parsed with json-c into crpc__service_config. Unknown fields are
 * ignored, as gRPC does; a known field with a bad value fails the whole
 * config with a message naming it. json-c allocates with libc: its tree
 * lives only inside crpc__service_config_parse; the result comes from the
 * channel's crpc_mem.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "service_config.h"

/* proto3 Duration's own bound, 10000 years */
#define MAX_DURATION_S INT64_C(315576000000)

typedef struct parser {
  const crpc_mem *mem;
  char *err;
  size_t errlen;
  int rv;
} parser;

static int fail(parser *p, const char *path, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (p->err && p->errlen)
    snprintf(p->err, p->errlen, "service config: %s%s%s", path,
             *path ? ": " : "", msg);
  p->rv = CRPC_EINVAL;
  return -1;
}

static int oom(parser *p) {
  if (p->err && p->errlen)
    snprintf(p->err, p->errlen, "service config: out of memory");
  p->rv = CRPC_ENOMEM;
  return -1;
}

static const char *type_name(json_object *o) {
  return json_type_to_name(json_object_get_type(o));
}

/* A JSON value quoted for a message, cut short. */
static const char *show(json_object *o, char *buf, size_t len) {
  const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  snprintf(buf, len, "%.40s%s", s ? s : "?", s && strlen(s) > 40 ? "..." : "");
  return buf;
}

int64_t crpc__duration_parse_us(const char *s) {
  int64_t sec = 0, us = 0;
  const char *q = s;
  if (!s || *q < '0' || *q > '9')
    return -1;
  for (; *q >= '0' && *q <= '9'; q++) {
    sec = sec * 10 + (*q - '0');
    if (sec > MAX_DURATION_S)
      return -1;
  }
  if (*q == '.') {
    int digits = 0;
    int64_t ns = 0;
    for (q++; *q >= '0' && *q <= '9'; q++, digits++)
      if (digits < 9)
        ns = ns * 10 + (*q - '0');
    if (digits == 0 || digits > 9)
      return -1;
    for (; digits < 9; digits++)
      ns *= 10;
    us = (ns + 999) / 1000; /* a timeout is never shortened by rounding */
  }
  if (q[0] != 's' || q[1] != 0)
    return -1;
  return sec * 1000000 + us;
}

static int get_duration(parser *p, json_object *o, const char *path,
                        int64_t *out_us) {
  char b[64];
  if (!json_object_is_type(o, json_type_string))
    return fail(p, path, "%s is not a duration (want a string such as "
                         "\"1.5s\")", show(o, b, sizeof b));
  int64_t us = crpc__duration_parse_us(json_object_get_string(o));
  if (us < 0)
    return fail(p, path, "%s is not a duration (want a string such as "
                         "\"1.5s\")", show(o, b, sizeof b));
  *out_us = us;
  return 0;
}

/* An integer: a JSON integer, an integral number, or a string of digits
 * (proto3 JSON writes 64-bit integers as strings). */
static int get_int(parser *p, json_object *o, const char *path, int64_t min,
                   int64_t max, int64_t *out) {
  char b[64];
  int64_t v;
  switch (json_object_get_type(o)) {
  case json_type_int:
    errno = 0;
    v = json_object_get_int64(o);
    if (errno == ERANGE || v == INT64_MAX || v == INT64_MIN)
      return fail(p, path, "%s is out of range", show(o, b, sizeof b));
    break;
  case json_type_double: {
    double d = json_object_get_double(o);
    if (!(d >= -9e15 && d <= 9e15) || d != (double)(int64_t)d)
      return fail(p, path, "%s is not an integer", show(o, b, sizeof b));
    v = (int64_t)d;
    break;
  }
  case json_type_string: {
    const char *s = json_object_get_string(o);
    char *end;
    if (*s < '0' || *s > '9')
      return fail(p, path, "%s is not an integer", show(o, b, sizeof b));
    errno = 0;
    long long ll = strtoll(s, &end, 10);
    if (*end || errno == ERANGE)
      return fail(p, path, "%s is not an integer", show(o, b, sizeof b));
    v = ll;
    break;
  }
  default:
    return fail(p, path, "want an integer, not %s", type_name(o));
  }
  if (v < min || v > max)
    return fail(p, path, "%lld is out of range [%lld, %lld]", (long long)v,
                (long long)min, (long long)max);
  *out = v;
  return 0;
}

static int get_number(parser *p, json_object *o, const char *path,
                      double *out) {
  if (!json_object_is_type(o, json_type_int) &&
      !json_object_is_type(o, json_type_double))
    return fail(p, path, "want a number, not %s", type_name(o));
  *out = json_object_get_double(o);
  if (!isfinite(*out))
    return fail(p, path, "not a finite number");
  return 0;
}

static int get_bool(parser *p, json_object *o, const char *path, int *out) {
  if (!json_object_is_type(o, json_type_boolean))
    return fail(p, path, "want true or false, not %s", type_name(o));
  *out = json_object_get_boolean(o) ? 1 : 0;
  return 0;
}

static int code_from_json(json_object *o) {
  if (json_object_is_type(o, json_type_int)) {
    int64_t v = json_object_get_int64(o);
    return v >= 1 && v <= CRPC_UNAUTHENTICATED ? (int)v : -1;
  }
  if (!json_object_is_type(o, json_type_string))
    return -1;
  const char *s = json_object_get_string(o);
  for (int c = 1; c <= CRPC_UNAUTHENTICATED; c++)
    if (strcasecmp(s, crpc_code_name((crpc_code)c)) == 0)
      return c;
  return -1;
}

/* A field, NULL when absent (or null: proto3 JSON's "not set"). */
static json_object *field(json_object *obj, const char *key) {
  json_object *v = NULL;
  if (!json_object_object_get_ex(obj, key, &v))
    return NULL;
  return json_object_is_type(v, json_type_null) ? NULL : v;
}

static int parse_retry(parser *p, json_object *o, const char *path,
                       crpc__retry_policy *r) {
  char sub[160], b[64];
  json_object *v;
  int64_t n;
  if (!json_object_is_type(o, json_type_object))
    return fail(p, path, "want an object, not %s", type_name(o));
  /* gRFC A6: every field is required */
  snprintf(sub, sizeof sub, "%.100s.maxAttempts", path);
  if (!(v = field(o, "maxAttempts")))
    return fail(p, sub, "required");
  if (get_int(p, v, sub, INT64_MIN + 1, INT64_MAX - 1, &n) != 0)
    return -1;
  if (n < 2)
    return fail(p, sub, "%lld: must be at least 2 (1 attempt is no retry)",
                (long long)n);
  r->max_attempts = n > CRPC__RETRY_MAX_ATTEMPTS ? CRPC__RETRY_MAX_ATTEMPTS
                                                 : (int)n;
  snprintf(sub, sizeof sub, "%.100s.initialBackoff", path);
  if (!(v = field(o, "initialBackoff")))
    return fail(p, sub, "required");
  if (get_duration(p, v, sub, &r->initial_backoff_us) != 0)
    return -1;
  if (r->initial_backoff_us <= 0)
    return fail(p, sub, "must be greater than 0");
  snprintf(sub, sizeof sub, "%.100s.maxBackoff", path);
  if (!(v = field(o, "maxBackoff")))
    return fail(p, sub, "required");
  if (get_duration(p, v, sub, &r->max_backoff_us) != 0)
    return -1;
  if (r->max_backoff_us <= 0)
    return fail(p, sub, "must be greater than 0");
  snprintf(sub, sizeof sub, "%.100s.backoffMultiplier", path);
  if (!(v = field(o, "backoffMultiplier")))
    return fail(p, sub, "required");
  if (get_number(p, v, sub, &r->multiplier) != 0)
    return -1;
  if (!(r->multiplier > 0))
    return fail(p, sub, "%s: must be greater than 0", show(v, b, sizeof b));
  snprintf(sub, sizeof sub, "%.100s.retryableStatusCodes", path);
  if (!(v = field(o, "retryableStatusCodes")))
    return fail(p, sub, "required");
  if (!json_object_is_type(v, json_type_array))
    return fail(p, sub, "want a list of status codes, not %s", type_name(v));
  size_t len = json_object_array_length(v);
  if (len == 0)
    return fail(p, sub, "must not be empty");
  r->codes = 0;
  for (size_t i = 0; i < len; i++) {
    json_object *e = json_object_array_get_idx(v, i);
    int code = code_from_json(e);
    if (code < 0) {
      char el[180];
      snprintf(el, sizeof el, "%.150s[%zu]", sub, i);
      return fail(p, el, "%s is not a retryable status code (a name such as "
                         "\"UNAVAILABLE\", or 1-16)",
                  show(e, b, sizeof b));
    }
    r->codes |= 1u << code;
  }
  return 0;
}

static char *dup_nonempty(parser *p, const char *s) {
  return s && *s ? crpc__strdup(p->mem, s) : NULL;
}

static int parse_names(parser *p, json_object *o, const char *path,
                       crpc__service_config *sc,
                       const crpc__method_config *cfg) {
  char sub[160];
  if (!json_object_is_type(o, json_type_array))
    return fail(p, path, "want a list, not %s", type_name(o));
  size_t len = json_object_array_length(o);
  for (size_t i = 0; i < len; i++) {
    json_object *e = json_object_array_get_idx(o, i), *sv, *mv;
    snprintf(sub, sizeof sub, "%.100s[%zu]", path, i);
    if (!json_object_is_type(e, json_type_object))
      return fail(p, sub, "want an object, not %s", type_name(e));
    sv = field(e, "service");
    mv = field(e, "method");
    if ((sv && !json_object_is_type(sv, json_type_string)) ||
        (mv && !json_object_is_type(mv, json_type_string)))
      return fail(p, sub, "service and method must be strings");
    const char *s = sv ? json_object_get_string(sv) : "";
    const char *m = mv ? json_object_get_string(mv) : "";
    if (!*s && *m)
      return fail(p, sub, "a method needs its service");
    for (size_t j = 0; j < sc->nnames; j++) {
      const crpc__method_name *n = &sc->names[j];
      if (strcmp(n->service ? n->service : "", s) == 0 &&
          strcmp(n->method ? n->method : "", m) == 0)
        return fail(p, sub, "duplicate name \"%s/%s\"", s, m);
    }
    crpc__method_name *n = &sc->names[sc->nnames];
    n->service = dup_nonempty(p, s);
    n->method = dup_nonempty(p, m);
    n->cfg = cfg;
    sc->nnames++;
    if ((*s && !n->service) || (*m && !n->method))
      return oom(p);
  }
  return 0;
}

static int parse_method(parser *p, json_object *o, const char *path,
                        crpc__service_config *sc, crpc__method_config *mc) {
  char sub[160];
  json_object *v;
  int64_t us;
  mc->wait_for_ready = -1;
  mc->max_request_bytes = mc->max_response_bytes = -1;
  if (!json_object_is_type(o, json_type_object))
    return fail(p, path, "want an object, not %s", type_name(o));
  if ((v = field(o, "name"))) {
    snprintf(sub, sizeof sub, "%.100s.name", path);
    if (parse_names(p, v, sub, sc, mc) != 0)
      return -1;
  }
  if ((v = field(o, "timeout"))) {
    snprintf(sub, sizeof sub, "%.100s.timeout", path);
    if (get_duration(p, v, sub, &us) != 0)
      return -1;
    mc->timeout_ms = us > INT64_MAX - 999 ? INT64_MAX / 1000
                                          : (us + 999) / 1000;
  }
  if ((v = field(o, "waitForReady"))) {
    snprintf(sub, sizeof sub, "%.100s.waitForReady", path);
    if (get_bool(p, v, sub, &mc->wait_for_ready) != 0)
      return -1;
  }
  if ((v = field(o, "maxRequestMessageBytes"))) {
    snprintf(sub, sizeof sub, "%.100s.maxRequestMessageBytes", path);
    if (get_int(p, v, sub, 0, UINT32_MAX, &mc->max_request_bytes) != 0)
      return -1;
  }
  if ((v = field(o, "maxResponseMessageBytes"))) {
    snprintf(sub, sizeof sub, "%.100s.maxResponseMessageBytes", path);
    if (get_int(p, v, sub, 0, UINT32_MAX, &mc->max_response_bytes) != 0)
      return -1;
  }
  if ((v = field(o, "retryPolicy"))) {
    snprintf(sub, sizeof sub, "%.100s.retryPolicy", path);
    if (parse_retry(p, v, sub, &mc->retry) != 0)
      return -1;
    mc->has_retry = true;
  }
  return 0;
}

static const char *known_policy(const char *name) {
  if (strcmp(name, "pick_first") == 0)
    return "pick_first";
  if (strcmp(name, "round_robin") == 0)
    return "round_robin";
  return NULL;
}

static int parse_lb(parser *p, json_object *root, crpc__service_config *sc) {
  json_object *v;
  char sub[96];
  if ((v = field(root, "loadBalancingConfig"))) {
    if (!json_object_is_type(v, json_type_array))
      return fail(p, "loadBalancingConfig", "want a list, not %s",
                  type_name(v));
    size_t len = json_object_array_length(v);
    for (size_t i = 0; i < len; i++) {
      json_object *e = json_object_array_get_idx(v, i);
      snprintf(sub, sizeof sub, "loadBalancingConfig[%zu]", i);
      if (!json_object_is_type(e, json_type_object) ||
          json_object_object_length(e) != 1)
        return fail(p, sub, "want an object with one policy name");
      json_object_object_foreach(e, key, val) {
        if (!json_object_is_type(val, json_type_object))
          return fail(p, sub, "%s: want an object, not %s", key,
                      type_name(val));
        if (!sc->lb_policy)
          sc->lb_policy = known_policy(key);
      }
    }
    if (len && !sc->lb_policy)
      return fail(p, "loadBalancingConfig",
                  "no policy crpc knows (pick_first, round_robin)");
    if (sc->lb_policy)
      return 0; /* it wins over loadBalancingPolicy */
  }
  if ((v = field(root, "loadBalancingPolicy"))) {
    if (!json_object_is_type(v, json_type_string))
      return fail(p, "loadBalancingPolicy", "want a string, not %s",
                  type_name(v));
    const char *s = json_object_get_string(v);
    if (strcasecmp(s, "pick_first") == 0)
      sc->lb_policy = "pick_first";
    else if (strcasecmp(s, "round_robin") == 0)
      sc->lb_policy = "round_robin";
    else
      return fail(p, "loadBalancingPolicy", "\"%.40s\" is not a policy crpc "
                  "knows (pick_first, round_robin)", s);
  }
  return 0;
}

static int parse_throttle(parser *p, json_object *o,
                          crpc__service_config *sc) {
  json_object *v;
  int64_t n;
  double d;
  if (!json_object_is_type(o, json_type_object))
    return fail(p, "retryThrottling", "want an object, not %s", type_name(o));
  if (!(v = field(o, "maxTokens")))
    return fail(p, "retryThrottling.maxTokens", "required");
  if (get_int(p, v, "retryThrottling.maxTokens", 1, 1000, &n) != 0)
    return -1;
  sc->max_tokens_milli = n * 1000;
  if (!(v = field(o, "tokenRatio")))
    return fail(p, "retryThrottling.tokenRatio", "required");
  if (get_number(p, v, "retryThrottling.tokenRatio", &d) != 0)
    return -1;
  /* gRFC A6: three decimal places; more are ignored */
  if (!(d > 0) || d > 1e6 || (int64_t)(d * 1000) <= 0)
    return fail(p, "retryThrottling.tokenRatio", "must be at least 0.001");
  sc->token_ratio_milli = (int64_t)(d * 1000);
  sc->has_throttle = true;
  return 0;
}

static int parse_root(parser *p, json_object *root, crpc__service_config *sc) {
  json_object *v;
  if (!json_object_is_type(root, json_type_object))
    return fail(p, "", "want a JSON object, not %s", type_name(root));
  if (parse_lb(p, root, sc) != 0)
    return -1;
  if ((v = field(root, "methodConfig"))) {
    if (!json_object_is_type(v, json_type_array))
      return fail(p, "methodConfig", "want a list, not %s", type_name(v));
    size_t len = json_object_array_length(v), names = 0;
    for (size_t i = 0; i < len; i++) {
      json_object *e = json_object_array_get_idx(v, i), *nm;
      if (json_object_is_type(e, json_type_object) && (nm = field(e, "name")) &&
          json_object_is_type(nm, json_type_array))
        names += json_object_array_length(nm);
    }
    if (len && !(sc->methods = crpc__calloc(p->mem, len, sizeof *sc->methods)))
      return oom(p);
    if (names && !(sc->names = crpc__calloc(p->mem, names, sizeof *sc->names)))
      return oom(p);
    for (size_t i = 0; i < len; i++) {
      char path[48];
      snprintf(path, sizeof path, "methodConfig[%zu]", i);
      sc->nmethods++;
      if (parse_method(p, json_object_array_get_idx(v, i), path, sc,
                       &sc->methods[i]) != 0)
        return -1;
    }
  }
  if ((v = field(root, "retryThrottling")) && parse_throttle(p, v, sc) != 0)
    return -1;
  return 0;
}

int crpc__service_config_parse(const char *json, size_t len,
                               const crpc_mem *mem,
                               crpc__service_config **out, char *err,
                               size_t errlen) {
  parser p = {.mem = mem, .err = err, .errlen = errlen, .rv = 0};
  *out = NULL;
  if (err && errlen)
    err[0] = 0;
  json_tokener *tok = json_tokener_new_ex(32); /* bounded nesting */
  if (!tok)
    return oom(&p), p.rv;
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
  json_object *root = NULL;
  if (len > INT32_MAX) {
    fail(&p, "", "too large");
  } else {
    root = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue && !root) {
      /* a bare literal or number at the very end ends at a terminator */
      root = json_tokener_parse_ex(tok, "", 1);
      jerr = json_tokener_get_error(tok);
      end = len;
    }
    if (jerr == json_tokener_continue)
      fail(&p, "", "malformed JSON: unexpected end of input");
    else if (jerr != json_tokener_success)
      fail(&p, "", "malformed JSON at byte %zu: %s", end,
           json_tokener_error_desc(jerr));
    else if (end < len) {
      size_t at = end;
      while (at < len && strchr(" \t\r\n", json[at]))
        at++;
      if (at < len)
        fail(&p, "", "malformed JSON: trailing bytes at byte %zu", at);
    }
  }
  json_tokener_free(tok);
  if (p.rv == 0) {
    crpc__service_config *sc = crpc__calloc(mem, 1, sizeof *sc);
    if (!sc)
      oom(&p);
    else if (parse_root(&p, root, sc) != 0)
      crpc__service_config_free(sc, mem);
    else
      *out = sc;
  }
  if (root)
    json_object_put(root);
  return p.rv;
}

void crpc__service_config_free(crpc__service_config *sc,
                               const crpc_mem *mem) {
  if (!sc)
    return;
  for (size_t i = 0; i < sc->nnames; i++) {
    crpc__free(mem, sc->names[i].service);
    crpc__free(mem, sc->names[i].method);
  }
  crpc__free(mem, sc->names);
  crpc__free(mem, sc->methods);
  crpc__free(mem, sc);
}

const crpc__method_config *
crpc__service_config_find(const crpc__service_config *sc, const char *path) {
  if (!sc || !path || path[0] != '/')
    return NULL;
  const char *slash = strchr(path + 1, '/');
  if (!slash)
    return NULL;
  size_t slen = (size_t)(slash - path - 1);
  const char *m = slash + 1;
  const crpc__method_config *svc = NULL, *dflt = NULL;
  for (size_t i = 0; i < sc->nnames; i++) {
    const crpc__method_name *n = &sc->names[i];
    if (!n->service) {
      dflt = n->cfg;
      continue;
    }
    if (strlen(n->service) != slen || memcmp(n->service, path + 1, slen) != 0)
      continue;
    if (!n->method)
      svc = n->cfg;
    else if (strcmp(n->method, m) == 0)
      return n->cfg;
  }
  return svc ? svc : dflt;
}
