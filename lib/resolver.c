/*
 * resolver.c: a channel's target into addresses (resolver.h), by scheme:
 *  - "ipv4:a.b.c.d:p[,...]", "ipv6:[addr]:p[,...]", numeric hosts and
 *    "unix:path": parsed once, no I/O;
 *  - "dns:///name:port", "dns://server/name:port", "dns:name:port" and a
 *    bare "name:port": looked up with c-ares on the loop (resolver_dns.c);
 *  - any target, with a crpc_resolver of the program's: it is asked, and
 *    answers with crpc_channel_set_addresses() from any thread.
 * Results always arrive through a posted task, never inside a request;
 * after a success the next resolution waits for the minimum interval.
 */
#include "resolver.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "resolver_dns.h"

typedef enum { R_STATIC, R_DNS, R_CUSTOM } resolver_kind;

struct crpc__resolver {
  crpc__resolver_args a;
  crpc_mem mem;
  char *target;
  resolver_kind kind;
  crpc__addr *fixed; /* R_STATIC */
  size_t nfixed;
  char *host;        /* R_DNS */
  int port;
  char *server;      /* R_DNS: "ip[:port]", NULL: the system's */
  crpc__dns *dns;
  int64_t min_interval_ms;
  /* [loop] */
  bool in_flight;      /* asked, no result yet */
  int64_t next_ok_ms;  /* after a success: no new resolution before */
  crpc__timer timer;   /* a request waiting for next_ok_ms */
  crpc__addr *res;     /* the result to deliver */
  size_t nres;
  char err[300];
  bool has_err;
  crpc__task deliver_task, ask_task;
  bool deliver_queued, ask_queued;
  unsigned ntasks; /* of those two, queued */
  bool freed;
  /* a program's answers, from any thread [mu] */
  pthread_mutex_t mu;
  crpc__addr *cust;
  size_t ncust;
  char cust_err[200];
  bool cust_new, cust_queued;
  crpc__task cust_task;
};

/* ---- target syntax ---- */

static int parse_port(const char *p) {
  if (!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p))
    return -1;
  int v = atoi(p);
  return v <= 65535 ? v : -1;
}

/* "host:port" / "[v6]:port" (in place) into host and port; -1 if bad. */
static int split(char *s, char **host, int *port) {
  char *p;
  if (s[0] == '[') {
    char *close = strchr(s, ']');
    if (!close || close[1] != ':')
      return -1;
    *close = '\0';
    *host = s + 1;
    p = close + 2;
  } else {
    char *colon = strrchr(s, ':');
    if (!colon || strchr(s, ':') != colon)
      return -1; /* a bare IPv6 needs brackets */
    *colon = '\0';
    *host = s;
    p = colon + 1;
  }
  return (*port = parse_port(p)) < 0 ? -1 : 0;
}

/* A numeric address of |family| (AF_UNSPEC: either). */
static bool numeric(const char *host, int port, int family, crpc__addr *a) {
  memset(a, 0, sizeof *a);
  struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
  if (family != AF_INET6 && inet_pton(AF_INET, host, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    a->len = sizeof *in;
    return true;
  }
  if (family != AF_INET && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    a->len = sizeof *in6;
    return true;
  }
  return false;
}

/* One "host:port" entry of an address list into |a|. */
static int parse_entry(const char *e, size_t len, int family, crpc__addr *a,
                       const crpc_mem *mem) {
  char *s = crpc__malloc(mem, len + 1), *host;
  int port, rv = CRPC_ETARGET;
  if (!s)
    return CRPC_ENOMEM;
  memcpy(s, e, len);
  s[len] = '\0';
  if (split(s, &host, &port) == 0 && numeric(host, port, family, a))
    rv = 0;
  crpc__free(mem, s);
  return rv;
}

/* "a:p,b:p" (an ipv4:/ipv6: list) into a new array. */
static int parse_list(const char *list, int family, crpc__addr **out,
                      size_t *n, const crpc_mem *mem) {
  size_t count = 1;
  for (const char *p = list; *p; p++)
    count += *p == ',';
  if (count > CRPC__RESOLVER_MAX_ADDRS)
    return CRPC_ETARGET;
  crpc__addr *v = crpc__calloc(mem, count, sizeof *v);
  if (!v)
    return CRPC_ENOMEM;
  const char *p = list;
  for (size_t i = 0; i < count; i++) {
    size_t len = strcspn(p, ",");
    int rv = len ? parse_entry(p, len, family, &v[i], mem) : CRPC_ETARGET;
    if (rv != 0) {
      crpc__free(mem, v);
      return rv;
    }
    p += len + (p[len] == ',');
  }
  *out = v;
  *n = count;
  return 0;
}

static int parse_target(crpc__resolver *r) {
  const char *t = r->target;
  const crpc_mem *mem = &r->mem;
  if (r->a.custom) {
    r->kind = R_CUSTOM;
    return 0;
  }
  if (strncmp(t, "unix:", 5) == 0) {
    r->fixed = crpc__calloc(mem, 1, sizeof *r->fixed);
    if (!r->fixed)
      return CRPC_ENOMEM;
    int rv = crpc__resolve(t, false, r->fixed, 1, NULL, mem);
    if (rv < 0)
      return rv == CRPC_ENOMEM ? rv : CRPC_ETARGET;
    r->nfixed = 1;
    r->kind = R_STATIC;
    return 0;
  }
  if (strncmp(t, "ipv4:", 5) == 0 || strncmp(t, "ipv6:", 5) == 0) {
    r->kind = R_STATIC;
    return parse_list(t + 5, t[3] == '4' ? AF_INET : AF_INET6, &r->fixed,
                      &r->nfixed, mem);
  }
  if (strncmp(t, "dns://", 6) == 0) { /* dns://[server]/name:port */
    const char *slash = strchr(t + 6, '/');
    if (!slash)
      return CRPC_ETARGET;
    size_t n = (size_t)(slash - (t + 6));
    if (n) {
      if (!(r->server = crpc__malloc(mem, n + 1)))
        return CRPC_ENOMEM;
      memcpy(r->server, t + 6, n);
      r->server[n] = '\0';
    }
    t = slash + 1;
  } else if (strncmp(t, "dns:", 4) == 0) {
    t += 4;
  }
  char *s = crpc__strdup(mem, t), *host;
  int port;
  if (!s)
    return CRPC_ENOMEM;
  if (split(s, &host, &port) != 0) {
    crpc__free(mem, s);
    return CRPC_ETARGET;
  }
  r->port = port;
  crpc__addr a;
  if (numeric(host, port, AF_UNSPEC, &a)) { /* no lookup needed */
    crpc__free(mem, s);
    if (!(r->fixed = crpc__calloc(mem, 1, sizeof *r->fixed)))
      return CRPC_ENOMEM;
    r->fixed[0] = a;
    r->nfixed = 1;
    r->kind = R_STATIC;
    return 0;
  }
  r->host = crpc__strdup(mem, *host ? host : "localhost");
  crpc__free(mem, s);
  if (!r->host)
    return CRPC_ENOMEM;
  r->kind = R_DNS;
  return 0;
}

/* ---- the resolver ---- */

static void destroy(crpc__resolver *r) {
  crpc_mem mem = r->mem;
  crpc__free(&mem, r->fixed);
  crpc__free(&mem, r->host);
  crpc__free(&mem, r->server);
  crpc__free(&mem, r->res);
  crpc__free(&mem, r->cust);
  crpc__free(&mem, r->target);
  pthread_mutex_destroy(&r->mu);
  crpc__free(&mem, r);
}

static void on_dns(void *ud, const crpc__addr *addrs, size_t n,
                   const char *error);

int crpc__resolver_new(crpc__resolver **out, const crpc__resolver_args *a) {
  crpc__resolver *r = crpc__calloc(a->mem, 1, sizeof *r);
  if (!r)
    return CRPC_ENOMEM;
  r->mem = *a->mem;
  r->a = *a;
  r->a.mem = &r->mem;
  pthread_mutex_init(&r->mu, NULL);
  r->min_interval_ms = a->min_interval_ms > 0 ? a->min_interval_ms
                                              : CRPC__RESOLVER_MIN_INTERVAL_MS;
  r->target = crpc__strdup(&r->mem, a->target);
  int rv = r->target ? parse_target(r) : CRPC_ENOMEM;
  if (rv == 0 && r->kind == R_DNS)
    rv = crpc__dns_new(&r->dns, a->loop, r->server, &r->mem, on_dns, r);
  if (rv != 0) {
    destroy(r);
    return rv;
  }
  r->a.target = r->target;
  *out = r;
  return 0;
}

static bool gone(crpc__resolver *r) {
  if (!r->freed)
    return false;
  pthread_mutex_lock(&r->mu);
  bool busy = r->cust_queued;
  pthread_mutex_unlock(&r->mu);
  if (r->ntasks == 0 && !busy)
    destroy(r);
  return true;
}

static void deliver(void *arg) {
  crpc__resolver *r = arg;
  r->ntasks--;
  r->deliver_queued = false;
  if (gone(r))
    return;
  r->in_flight = false;
  crpc__resolution res = {0};
  if (r->has_err) {
    res.error = r->err;
  } else {
    res.addrs = r->res;
    res.naddrs = r->nres;
    r->next_ok_ms = crpc__now_ms() + r->min_interval_ms;
  }
  r->a.cb(r->a.owner, &res);
}

static void post(crpc__resolver *r, crpc__task *t, crpc__task_fn fn) {
  t->fn = fn;
  t->arg = r;
  t->heap = false;
  r->ntasks++;
  crpc__loop_post_task(r->a.loop, t);
}

/* Keeps |addrs| (or |error|) as the result and posts its delivery. */
static void set_result(crpc__resolver *r, const crpc__addr *addrs, size_t n,
                       const char *error) {
  crpc__free(&r->mem, r->res);
  r->res = NULL;
  r->nres = 0;
  r->has_err = error != NULL || n == 0;
  if (!r->has_err) {
    r->res = crpc__calloc(&r->mem, n, sizeof *r->res);
    if (r->res) {
      memcpy(r->res, addrs, n * sizeof *addrs);
      r->nres = n;
    } else {
      r->has_err = true;
      error = "out of memory";
    }
  }
  if (r->has_err)
    snprintf(r->err, sizeof r->err, "%s", error ? error : "no addresses");
  if (!r->deliver_queued) { /* else the queued delivery takes this one */
    r->deliver_queued = true;
    post(r, &r->deliver_task, deliver);
  }
}

static void on_dns(void *ud, const crpc__addr *addrs, size_t n,
                   const char *error) {
  crpc__resolver *r = ud;
  char why[256];
  if (error)
    snprintf(why, sizeof why, "dns: %.80s: %.160s", r->host, error);
  set_result(r, addrs, n, error ? why : NULL);
}

static void ask_program(void *arg) {
  crpc__resolver *r = arg;
  r->ntasks--;
  r->ask_queued = false;
  if (gone(r))
    return;
  r->a.custom->resolve(r->a.channel, r->target, r->a.custom->user_data);
}

static void start(crpc__resolver *r) {
  r->in_flight = true;
  switch (r->kind) {
  case R_STATIC:
    set_result(r, r->fixed, r->nfixed, NULL);
    return;
  case R_DNS:
    if (crpc__dns_lookup(r->dns, r->host, r->port) != 0)
      set_result(r, NULL, 0, "out of memory");
    return;
  case R_CUSTOM:
    if (!r->ask_queued) {
      r->ask_queued = true;
      post(r, &r->ask_task, ask_program);
    }
    return;
  }
}

static void on_interval(crpc__timer *t) {
  crpc__resolver *r =
      (crpc__resolver *)((char *)t - offsetof(crpc__resolver, timer));
  if (!r->in_flight)
    start(r);
}

void crpc__resolver_request(crpc__resolver *r) {
  if (r->in_flight || crpc__timer_armed(&r->timer))
    return; /* merged into the one on its way */
  int64_t now = crpc__now_ms();
  if (now >= r->next_ok_ms) {
    start(r);
    return;
  }
  r->timer.cb = on_interval;
  crpc__timer_start(r->a.loop, &r->timer, r->next_ok_ms);
}

void crpc__resolver_free(crpc__resolver *r) {
  if (!r)
    return;
  crpc__timer_stop(r->a.loop, &r->timer);
  crpc__dns_free(r->dns);
  r->dns = NULL;
  r->freed = true;
  gone(r); /* now, or by the last queued task */
}

/* ---- a program's own resolver ---- */

static void take_answer(void *arg) {
  crpc__resolver *r = arg;
  pthread_mutex_lock(&r->mu);
  r->cust_queued = false;
  crpc__addr *v = r->cust;
  size_t n = r->ncust;
  char err[sizeof r->cust_err];
  memcpy(err, r->cust_err, sizeof err);
  bool fresh = r->cust_new;
  r->cust = NULL;
  r->ncust = 0;
  r->cust_new = false;
  pthread_mutex_unlock(&r->mu);
  if (r->freed) {
    crpc__free(&r->mem, v);
    gone(r);
    return;
  }
  if (fresh) {
    r->in_flight = true; /* an answer: delivered like any result */
    set_result(r, v, n, n ? NULL : err);
  }
  crpc__free(&r->mem, v);
}

int crpc__resolver_set_addresses(crpc__resolver *r, const char *const *addrs,
                                 size_t n, const char *error) {
  if (!r || r->kind != R_CUSTOM || (n && !addrs))
    return CRPC_EINVAL;
  if (n > CRPC__RESOLVER_MAX_ADDRS)
    return CRPC_ETARGET;
  crpc__addr *v = NULL;
  if (n && !(v = crpc__calloc(&r->mem, n, sizeof *v)))
    return CRPC_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int rv;
    if (!addrs[i]) {
      rv = CRPC_EINVAL;
    } else if (strncmp(addrs[i], "unix:", 5) == 0) {
      rv = crpc__resolve(addrs[i], false, &v[i], 1, NULL, &r->mem);
      rv = rv > 0 ? 0 : (rv == CRPC_ENOMEM ? rv : CRPC_ETARGET);
    } else {
      rv = parse_entry(addrs[i], strlen(addrs[i]), AF_UNSPEC, &v[i],
                       &r->mem);
    }
    if (rv != 0) {
      crpc__free(&r->mem, v);
      return rv;
    }
  }
  pthread_mutex_lock(&r->mu);
  crpc__free(&r->mem, r->cust);
  r->cust = v;
  r->ncust = n;
  snprintf(r->cust_err, sizeof r->cust_err, "%s",
           error ? error : "no addresses");
  r->cust_new = true;
  bool queue = !r->cust_queued;
  r->cust_queued = true;
  pthread_mutex_unlock(&r->mu);
  if (queue) {
    r->cust_task.fn = take_answer;
    r->cust_task.arg = r;
    r->cust_task.heap = false;
    crpc__loop_post_task(r->a.loop, &r->cust_task);
  }
  return 0;
}
