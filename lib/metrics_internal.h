/*
 * metrics_internal.h: the recorder's rows (metrics.c), its Prometheus
 * writer (metrics_prom.c) and the call hooks (metrics_call.c). Never
 * installed.
 *
 * A recorder has one table per side (client, server) of method rows, each
 * found by its path and never freed before the recorder. A row holds its
 * started counter and one block of histograms per status code, made the
 * first time that status is seen. Everything on the recording path is an
 * atomic add or load: no lock.
 */
#ifndef CRPC_METRICS_INTERNAL_H
#define CRPC_METRICS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include <crpc/metrics.h>

#include "internal.h"

enum { CRPC__MX_CLIENT = 0, CRPC__MX_SERVER = 1 };

#define CRPC__MX_LAT_N 41  /* A66's latency boundaries */
#define CRPC__MX_SIZE_N 14 /* A66's size boundaries */
#define CRPC__MX_CODES 17

typedef struct crpc__mx_lat { /* buckets: <= bound[i], then +Inf */
  atomic_uint_fast64_t b[CRPC__MX_LAT_N + 1];
  atomic_uint_fast64_t sum_ns;
} crpc__mx_lat;

typedef struct crpc__mx_size {
  atomic_uint_fast64_t b[CRPC__MX_SIZE_N + 1];
  atomic_uint_fast64_t sum;
} crpc__mx_size;

/* One (method, status): a server uses dur/sent/rcvd, a client those for
 * its attempts and |call| for its calls. */
typedef struct crpc__mx_status {
  crpc__mx_lat dur;
  crpc__mx_size sent, rcvd;
  crpc__mx_lat call;
} crpc__mx_status;

typedef struct crpc__mx_method {
  crpc_metrics *rec;
  int side;
  const char *name; /* the grpc.method label (no leading '/') */
  size_t len;
  uint64_t hash;
  atomic_uint_fast64_t started;
  _Atomic(crpc__mx_status *) st[CRPC__MX_CODES];
} crpc__mx_method;

typedef struct crpc__mx_table {
  _Atomic(crpc__mx_method *) *slots; /* open addressing, |cap| a power of 2 */
  size_t cap;
  atomic_uint n; /* rows taken, at most the recorder's max_methods */
  crpc__mx_method other;
} crpc__mx_table;

struct crpc_metrics {
  crpc_mem mem;
  unsigned max_methods;
  crpc__mx_table t[2];
  atomic_size_t bytes; /* what crpc_metrics_memory() reports */
  crpc_stats_cb cb;    /* [const after attach] */
  void *cb_ud;
};

extern const double crpc__mx_lat_bounds[CRPC__MX_LAT_N];
extern const double crpc__mx_size_bounds[CRPC__MX_SIZE_N];

/* The row of |path| ("/pkg.Svc/M" or "pkg.Svc/M") on |side|; with
 * |insert|, made if missing while the table has room, else "other". NULL
 * only without |insert| when there is no row. Any thread, no lock. */
crpc__mx_method *crpc__mx_find(crpc_metrics *m, int side, const char *path,
                               bool insert);
/* The row for calls to methods a server has not registered. */
crpc__mx_method *crpc__mx_other(crpc_metrics *m, int side);
/* Counts one finished call into |row| (call_ns < 0: no call duration). */
void crpc__mx_record(crpc__mx_method *row, crpc_code code, int64_t dur_ns,
                     int64_t call_ns, uint64_t tx, uint64_t rx);
/* The status block of |code| in |row|, made when |make|; NULL if none. */
crpc__mx_status *crpc__mx_status_of(crpc__mx_method *row, crpc_code code,
                                    bool make);

/* Monotonic nanoseconds. */
int64_t crpc__mx_now_ns(void);

/* ---- the hooks the call code calls (metrics_call.c) [loop] ---- */
typedef struct crpc_server crpc_server;
/* Server: the request headers are in and c->handler is looked up. */
void crpc__mx_server_start(crpc_call *c, crpc_server *s);
/* Server: the status |code| is going out, or the stream went (first one
 * wins). */
void crpc__mx_server_end(crpc_call *c, crpc_code code);
/* Client: the call is made (before its request is packed). */
void crpc__mx_client_new(crpc_call *c);
/* Client: the attempt starts. */
void crpc__mx_client_start(crpc_call *c);
/* Client: the call has its final status |code|. */
void crpc__mx_client_end(crpc_call *c, crpc_code code);
/* A client attempt ended with |code| and the call goes on to another
 * (gRFC A6 retry or transparent retry): its attempt record alone; the
 * next attempt's bytes count from zero. */
void crpc__mx_client_attempt_end(crpc_call *c, crpc_code code);

#endif
