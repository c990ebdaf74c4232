/*
 * metrics.c: the recorder (crpc_metrics): its method tables, the status
 * blocks of atomic histograms, recording, and reading values back.
 *
 * No lock anywhere: a method row is published into its table slot with one
 * compare-and-swap, a status block into its row the same way, and a
 * recorded call is a handful of relaxed atomic adds. Rows and blocks live
 * until crpc_metrics_free(), so a pointer read once stays valid.
 */
#include <string.h>
#include <time.h>

#include "metrics_internal.h"

/* gRFC A66, "Buckets for histograms in default views". */
const double crpc__mx_lat_bounds[CRPC__MX_LAT_N] = {
    0,     0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002,
    0.003, 0.004,   0.005,   0.006,  0.008,  0.01,   0.013,  0.016, 0.02,
    0.025, 0.03,    0.04,    0.05,   0.065,  0.08,   0.1,    0.13,  0.16,
    0.2,   0.25,    0.3,     0.4,    0.5,    0.65,   0.8,    1,     2,
    5,     10,      20,      50,     100};
const double crpc__mx_size_bounds[CRPC__MX_SIZE_N] = {
    0,        1024,      2048,      4096,       16384,
    65536,    262144,    1048576,   4194304,    16777216,
    67108864, 268435456, 1073741824, 4294967296.0};

/* The same latency bounds in nanoseconds: recording compares integers. */
static const int64_t lat_ns[CRPC__MX_LAT_N] = {
    0,          10000,      50000,       100000,      300000,
    600000,     800000,     1000000,     2000000,     3000000,
    4000000,    5000000,    6000000,     8000000,     10000000,
    13000000,   16000000,   20000000,    25000000,    30000000,
    40000000,   50000000,   65000000,    80000000,    100000000,
    130000000,  160000000,  200000000,   250000000,   300000000,
    400000000,  500000000,  650000000,   800000000,   1000000000,
    2000000000, 5000000000, 10000000000, 20000000000, 50000000000,
    100000000000};

int64_t crpc__mx_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char other_name[] = "other";

int crpc_metrics_new(crpc_metrics **out, const crpc_metrics_opts *opts) {
  crpc_mem mem;
  if (!out)
    return CRPC_EINVAL;
  *out = NULL;
  unsigned max = opts && opts->max_methods ? opts->max_methods : 256;
  if (max > 65536)
    return CRPC_EINVAL;
  crpc__mem_init(&mem, opts ? opts->mem : NULL);
  crpc_metrics *m = crpc__calloc(&mem, 1, sizeof *m);
  if (!m)
    return CRPC_ENOMEM;
  m->mem = mem;
  m->max_methods = max;
  size_t cap = 16;
  while (cap < (size_t)max * 2) /* at most half full: short probes */
    cap *= 2;
  atomic_init(&m->bytes, sizeof *m);
  for (int side = 0; side < 2; side++) {
    crpc__mx_table *t = &m->t[side];
    t->slots = crpc__calloc(&mem, cap, sizeof *t->slots);
    if (!t->slots) {
      crpc_metrics_free(m);
      return CRPC_ENOMEM;
    }
    t->cap = cap;
    t->other.rec = m;
    t->other.side = side;
    t->other.name = other_name;
    t->other.len = sizeof other_name - 1;
    atomic_fetch_add(&m->bytes, cap * sizeof *t->slots);
  }
  *out = m;
  return 0;
}

static void free_row(crpc_metrics *m, crpc__mx_method *row) {
  for (int i = 0; i < CRPC__MX_CODES; i++)
    crpc__free(&m->mem, atomic_load(&row->st[i]));
}

void crpc_metrics_free(crpc_metrics *m) {
  if (!m)
    return;
  for (int side = 0; side < 2; side++) {
    crpc__mx_table *t = &m->t[side];
    for (size_t i = 0; t->slots && i < t->cap; i++) {
      crpc__mx_method *row = atomic_load(&t->slots[i]);
      if (row) {
        free_row(m, row);
        crpc__free(&m->mem, row);
      }
    }
    free_row(m, &t->other);
    crpc__free(&m->mem, t->slots);
  }
  crpc__free(&m->mem, m);
}

int crpc_metrics_set_callback(crpc_metrics *m, crpc_stats_cb cb,
                              void *user_data) {
  if (!m)
    return CRPC_EINVAL;
  m->cb = cb;
  m->cb_ud = user_data;
  return 0;
}

size_t crpc_metrics_memory(const crpc_metrics *m) {
  return m ? atomic_load(&((crpc_metrics *)m)->bytes) : 0;
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

crpc__mx_method *crpc__mx_other(crpc_metrics *m, int side) {
  return &m->t[side].other;
}

crpc__mx_method *crpc__mx_find(crpc_metrics *m, int side, const char *path,
                               bool insert) {
  crpc__mx_table *t = &m->t[side];
  if (path[0] == '/')
    path++;
  if (!insert && strcmp(path, other_name) == 0)
    return &t->other;
  size_t len = strlen(path);
  uint64_t h = fnv1a(path, len);
  crpc__mx_method *mine = NULL;
  for (size_t i = h & (t->cap - 1), probes = 0; probes < t->cap;
       i = (i + 1) & (t->cap - 1), probes++) {
    crpc__mx_method *row = atomic_load_explicit(&t->slots[i],
                                                memory_order_acquire);
    if (!row) {
      if (!insert)
        break;
      if (!mine) {
        /* reserve a place under the bound first: a table that is full
         * sends every new method to "other", and never grows */
        if (atomic_fetch_add(&t->n, 1) >= m->max_methods) {
          atomic_fetch_sub(&t->n, 1);
          return &t->other;
        }
        mine = crpc__calloc(&m->mem, 1, sizeof *mine + len + 1);
        if (!mine) {
          atomic_fetch_sub(&t->n, 1);
          return &t->other;
        }
        char *name = (char *)(mine + 1);
        memcpy(name, path, len + 1);
        mine->rec = m;
        mine->side = side;
        mine->name = name;
        mine->len = len;
        mine->hash = h;
      }
      crpc__mx_method *expected = NULL;
      if (atomic_compare_exchange_strong_explicit(
              &t->slots[i], &expected, mine, memory_order_acq_rel,
              memory_order_acquire)) {
        atomic_fetch_add(&m->bytes, sizeof *mine + len + 1);
        return mine;
      }
      row = expected; /* someone else took the slot: look at theirs */
    }
    if (row->hash == h && row->len == len && memcmp(row->name, path, len) == 0) {
      if (mine) {
        crpc__free(&m->mem, mine);
        atomic_fetch_sub(&t->n, 1);
      }
      return row;
    }
  }
  if (mine) { /* cannot happen: the table is never more than half full */
    crpc__free(&m->mem, mine);
    atomic_fetch_sub(&t->n, 1);
  }
  return insert ? &t->other : NULL;
}

crpc__mx_status *crpc__mx_status_of(crpc__mx_method *row, crpc_code code,
                                    bool make) {
  unsigned i = (unsigned)code < CRPC__MX_CODES ? (unsigned)code : CRPC_UNKNOWN;
  crpc__mx_status *st = atomic_load_explicit(&row->st[i],
                                             memory_order_acquire);
  if (st || !make)
    return st;
  crpc_metrics *m = row->rec;
  crpc__mx_status *fresh = crpc__calloc(&m->mem, 1, sizeof *fresh);
  if (!fresh)
    return NULL; /* this call goes uncounted rather than fail */
  crpc__mx_status *expected = NULL;
  if (atomic_compare_exchange_strong_explicit(&row->st[i], &expected, fresh,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
    atomic_fetch_add(&m->bytes, sizeof *fresh);
    return fresh;
  }
  crpc__free(&m->mem, fresh);
  return expected;
}

static void add_lat(crpc__mx_lat *h, int64_t ns) {
  if (ns < 0)
    ns = 0;
  size_t lo = 0, hi = CRPC__MX_LAT_N; /* first bound >= ns, or +Inf */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (lat_ns[mid] >= ns)
      hi = mid;
    else
      lo = mid + 1;
  }
  atomic_fetch_add_explicit(&h->b[lo], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)ns, memory_order_relaxed);
}

static void add_size(crpc__mx_size *h, uint64_t n) {
  size_t i = 0;
  while (i < CRPC__MX_SIZE_N && (double)n > crpc__mx_size_bounds[i])
    i++;
  atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum, n, memory_order_relaxed);
}

void crpc__mx_record(crpc__mx_method *row, crpc_code code, int64_t dur_ns,
                     int64_t call_ns, uint64_t tx, uint64_t rx) {
  crpc__mx_status *st = crpc__mx_status_of(row, code, true);
  if (!st)
    return;
  add_lat(&st->dur, dur_ns);
  add_size(&st->sent, tx);
  add_size(&st->rcvd, rx);
  if (call_ns >= 0)
    add_lat(&st->call, call_ns);
}

/* ---- reading back ---- */

static int side_of(const char *name, const char **rest) {
  if (strncmp(name, "grpc.client.", 12) == 0) {
    *rest = name + 12;
    return CRPC__MX_CLIENT;
  }
  if (strncmp(name, "grpc.server.", 12) == 0) {
    *rest = name + 12;
    return CRPC__MX_SERVER;
  }
  return -1;
}

uint64_t crpc_metrics_counter(const crpc_metrics *m, const char *name,
                              const char *method) {
  const char *rest;
  if (!m || !name || !method)
    return 0;
  int side = side_of(name, &rest);
  if (side < 0 ||
      strcmp(rest, side == CRPC__MX_CLIENT ? "attempt.started"
                                           : "call.started") != 0)
    return 0;
  crpc__mx_method *row = crpc__mx_find((crpc_metrics *)m, side, method, false);
  return row ? atomic_load(&row->started) : 0;
}

int crpc_metrics_histogram(const crpc_metrics *m, const char *name,
                           const char *method, crpc_code status,
                           uint64_t *count, double *sum) {
  const char *rest;
  if (!m || !name || !method || !count)
    return CRPC_EINVAL;
  int side = side_of(name, &rest);
  if (side < 0)
    return CRPC_EINVAL;
  const char *pfx = side == CRPC__MX_CLIENT ? "attempt." : "call.";
  int which; /* 0 dur, 1 sent, 2 rcvd, 3 client call */
  if (side == CRPC__MX_CLIENT && strcmp(rest, "call.duration") == 0) {
    which = 3;
  } else if (strncmp(rest, pfx, strlen(pfx)) == 0) {
    rest += strlen(pfx);
    if (strcmp(rest, "duration") == 0)
      which = 0;
    else if (strcmp(rest, "sent_total_compressed_message_size") == 0)
      which = 1;
    else if (strcmp(rest, "rcvd_total_compressed_message_size") == 0)
      which = 2;
    else
      return CRPC_EINVAL;
  } else {
    return CRPC_EINVAL;
  }
  *count = 0;
  if (sum)
    *sum = 0;
  crpc__mx_method *row = crpc__mx_find((crpc_metrics *)m, side, method, false);
  crpc__mx_status *st = row ? crpc__mx_status_of(row, status, false) : NULL;
  if (!st)
    return 0;
  const atomic_uint_fast64_t *b;
  size_t nb;
  double s;
  if (which == 0 || which == 3) {
    const crpc__mx_lat *h = which == 0 ? &st->dur : &st->call;
    b = h->b;
    nb = CRPC__MX_LAT_N + 1;
    s = (double)atomic_load(&h->sum_ns) / 1e9;
  } else {
    const crpc__mx_size *h = which == 1 ? &st->sent : &st->rcvd;
    b = h->b;
    nb = CRPC__MX_SIZE_N + 1;
    s = (double)atomic_load(&h->sum);
  }
  for (size_t i = 0; i < nb; i++)
    *count += atomic_load(&b[i]);
  if (sum)
    *sum = s;
  return 0;
}
