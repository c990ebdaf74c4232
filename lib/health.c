/*
 * health.c: grpc.health.v1.Health over the generic server API.
 *
 * One mutex guards the table of services; one condition variable wakes the
 * watchers on every change. Check runs on the reactor and only reads the
 * table under the mutex. Watch runs on a worker and sleeps on the condition
 * variable between changes; crpc_call_on_cancel() wakes it when its call is
 * cancelled, expires or loses its connection.
 *
 * The protobuf-c bindings of health.proto are generated at build time with
 * their symbols renamed from grpc__health__v1__ to crpc__health_v1__ (see
 * lib/CMakeLists.txt), so they never clash with a user's own generated
 * health.pb-c.c linked with the static library.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "health_internal.h"
#include "internal.h"

typedef Grpc__Health__V1__HealthCheckRequest health_req;
typedef Grpc__Health__V1__HealthCheckResponse health_resp;

/* Our public enum is health.proto's ServingStatus, value for value. */
#define PB_STATUS(x)                                                           \
  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x
#define SAME_STATUS(x)                                                         \
  _Static_assert((int)CRPC_HEALTH_##x == (int)PB_STATUS(x), #x)
SAME_STATUS(UNKNOWN);
SAME_STATUS(SERVING);
SAME_STATUS(NOT_SERVING);
SAME_STATUS(SERVICE_UNKNOWN);

static const crpc_method check_method = {
    "/grpc.health.v1.Health/Check", CRPC_UNARY,
    &crpc__health_v1__health_check_request__descriptor,
    &crpc__health_v1__health_check_response__descriptor};
static const crpc_method watch_method = {
    "/grpc.health.v1.Health/Watch", CRPC_SERVER_STREAMING,
    &crpc__health_v1__health_check_request__descriptor,
    &crpc__health_v1__health_check_response__descriptor};

typedef struct service {
  char *name;
  crpc_health_status st;
} service;

struct crpc_health {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* a status changed, shutdown, or a watcher left;
                        CLOCK_MONOTONIC */
  service *svcs;
  size_t n, cap;
  size_t nwatchers;
  bool shut;
};

/* [mu] */
static service *find(crpc_health *h, const char *name) {
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->svcs[i].name, name) == 0)
      return &h->svcs[i];
  return NULL;
}

/* [mu] What a watcher of |name| should be told now. */
static crpc_health_status status_of(crpc_health *h, const char *name) {
  service *sv = find(h, name);
  return sv ? sv->st : CRPC_HEALTH_SERVICE_UNKNOWN;
}

static void deadline_in(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

int crpc_health_new(crpc_health **out) {
  if (!out)
    return CRPC_EINVAL;
  crpc_health *h = calloc(1, sizeof *h);
  if (!h)
    return CRPC_ENOMEM;
  h->svcs = malloc(sizeof *h->svcs);
  if (!h->svcs)
    goto fail_h;
  h->svcs[0].name = strdup("");
  if (!h->svcs[0].name)
    goto fail_svcs;
  h->svcs[0].st = CRPC_HEALTH_SERVING;
  h->n = h->cap = 1;
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0)
    goto fail_name;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rv = pthread_cond_init(&h->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rv != 0)
    goto fail_name;
  pthread_mutex_init(&h->mu, NULL);
  *out = h;
  return 0;

fail_name:
  free(h->svcs[0].name);
fail_svcs:
  free(h->svcs);
fail_h:
  free(h);
  return CRPC_ENOMEM;
}

void crpc_health_free(crpc_health *h) {
  if (!h)
    return;
  crpc_health_shutdown(h);
  pthread_mutex_lock(&h->mu);
  while (h->nwatchers)
    pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  for (size_t i = 0; i < h->n; i++)
    free(h->svcs[i].name);
  free(h->svcs);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  free(h);
}

int crpc_health_set(crpc_health *h, const char *name, crpc_health_status st) {
  if (!h || !name || (unsigned)st > CRPC_HEALTH_SERVICE_UNKNOWN)
    return CRPC_EINVAL;
  int rv = 0;
  pthread_mutex_lock(&h->mu);
  if (h->shut) {
    rv = CRPC_ECLOSED;
    goto out;
  }
  service *sv = find(h, name);
  if (st == CRPC_HEALTH_SERVICE_UNKNOWN) {
    if (!sv)
      goto out;
    free(sv->name);
    *sv = h->svcs[--h->n];
  } else if (sv) {
    if (sv->st == st)
      goto out;
    sv->st = st;
  } else {
    if (h->n == h->cap) {
      size_t cap = 2 * h->cap;
      service *v = realloc(h->svcs, cap * sizeof *v);
      if (!v) {
        rv = CRPC_ENOMEM;
        goto out;
      }
      h->svcs = v;
      h->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
      rv = CRPC_ENOMEM;
      goto out;
    }
    h->svcs[h->n].name = copy;
    h->svcs[h->n++].st = st;
  }
  /* every watcher looks: each compares with what it last sent */
  pthread_cond_broadcast(&h->cv);
out:
  pthread_mutex_unlock(&h->mu);
  return rv;
}

void crpc_health_shutdown(crpc_health *h) {
  if (!h)
    return;
  pthread_mutex_lock(&h->mu);
  if (!h->shut) {
    h->shut = true;
    for (size_t i = 0; i < h->n; i++)
      h->svcs[i].st = CRPC_HEALTH_NOT_SERVING;
    pthread_cond_broadcast(&h->cv);
  }
  pthread_mutex_unlock(&h->mu);
}

/* ---- handlers ---- */

/* On the reactor: a short critical section, no allocation but the status
 * message's copy. */
static crpc_code check(crpc_call *c, const ProtobufCMessage *req,
                       ProtobufCMessage *resp, void *user_data) {
  crpc_health *h = user_data;
  const health_req *r = (const health_req *)req;
  pthread_mutex_lock(&h->mu);
  crpc_health_status st = status_of(h, r->service);
  pthread_mutex_unlock(&h->mu);
  if (st == CRPC_HEALTH_SERVICE_UNKNOWN) {
    crpc_call_set_status_message(c, "unknown service");
    return CRPC_NOT_FOUND;
  }
  ((health_resp *)resp)->status =
      (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
  return CRPC_OK;
}

typedef struct watcher {
  crpc_health *h;
  bool cancelled; /* [h->mu] */
} watcher;

/* On the reactor when a Watch call ends under its handler. */
static void on_watch_cancel(crpc_call *c, void *ud) {
  watcher *w = ud;
  CRPC__UNUSED(c);
  pthread_mutex_lock(&w->h->mu);
  w->cancelled = true;
  pthread_cond_broadcast(&w->h->cv);
  pthread_mutex_unlock(&w->h->mu);
}

/* On a worker, for as long as the client watches. */
static crpc_code watch(crpc_call *c, const ProtobufCMessage *req,
                       ProtobufCMessage *resp, void *user_data) {
  crpc_health *h = user_data;
  /* |r| is ours until we return, so the name need not be copied */
  const char *name = ((const health_req *)req)->service;
  crpc_code code;
  int sent = -1; /* the status last written; none yet */

  pthread_mutex_lock(&h->mu);
  if (h->nwatchers >= CRPC_HEALTH_MAX_WATCHERS) {
    pthread_mutex_unlock(&h->mu);
    crpc__log_warn("health: Watch from %s refused: %d watchers already",
                   crpc_call_peer(c), CRPC_HEALTH_MAX_WATCHERS);
    crpc_call_set_status_message(c, "too many health watchers");
    return CRPC_RESOURCE_EXHAUSTED;
  }
  h->nwatchers++;
  pthread_cond_broadcast(&h->cv); /* for the tests' wait */
  watcher w = {h, false};
  pthread_mutex_unlock(&h->mu);
  crpc_call_on_cancel(c, on_watch_cancel, &w);
  pthread_mutex_lock(&h->mu);
  for (;;) {
    crpc_health_status st = status_of(h, name);
    if ((int)st != sent) {
      /* write unlocked: it may wait for a slow client's flow control */
      pthread_mutex_unlock(&h->mu);
      health_resp m = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
      m.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
      bool ok = crpc_call_write(c, &m.base);
      pthread_mutex_lock(&h->mu);
      if (!ok) {
        code = CRPC_CANCELLED;
        break;
      }
      sent = (int)st;
      continue; /* it may have changed again meanwhile */
    }
    if (h->shut) {
      crpc_call_set_status_message(c, "health service shutting down");
      code = CRPC_UNAVAILABLE;
      break;
    }
    if (w.cancelled || crpc_call_is_cancelled(c)) {
      code = CRPC_CANCELLED;
      break;
    }
    pthread_cond_wait(&h->cv, &h->mu);
  }
  pthread_mutex_unlock(&h->mu);
  crpc_call_on_cancel(c, NULL, NULL); /* waits out a running callback */
  pthread_mutex_lock(&h->mu);
  h->nwatchers--;
  pthread_cond_broadcast(&h->cv); /* for free and the tests' wait */
  pthread_mutex_unlock(&h->mu);
  return code;
}

int crpc_health_register(crpc_health *h, crpc_server *s) {
  if (!h || !s)
    return CRPC_EINVAL;
  int rv = crpc_server_register(s, &check_method, check,
                                CRPC_HANDLER_NONBLOCKING, h);
  if (rv != 0)
    return rv;
  return crpc_server_register(s, &watch_method, watch, 0, h);
}

int crpc__health_wait_watchers(crpc_health *h, size_t n, int64_t timeout_ms,
                               size_t *now) {
  struct timespec ts;
  int rv = 0;
  deadline_in(&ts, timeout_ms);
  pthread_mutex_lock(&h->mu);
  while (h->nwatchers != n && rv != ETIMEDOUT)
    rv = pthread_cond_timedwait(&h->cv, &h->mu, &ts);
  if (now)
    *now = h->nwatchers;
  rv = h->nwatchers == n ? 0 : -1;
  pthread_mutex_unlock(&h->mu);
  return rv;
}
