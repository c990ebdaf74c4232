/*
 * bench_common.h: what every benchmark program shares, so that the crpc and
 * the gRPC C++ peers take the same flags, measure with the same histogram and
 * print the same report. Plain C, usable from C++.
 */
#ifndef CRPC_BENCH_COMMON_H
#define CRPC_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- latency histogram ----
 * Log-bucketed, in nanoseconds: values below 128 have a bucket each, above
 * that every power of two is split into 64 buckets (about 1.6% wide), up to
 * 2^41 ns. Percentiles are reported at the bucket midpoint. One histogram is
 * touched by one thread; merge them at the end. */
#define BENCH_HIST_BUCKETS (128 + 35 * 64)

typedef struct bench_hist {
  uint64_t count;
  uint64_t min_ns, max_ns;
  double sum_ns;
  uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_init(bench_hist *h);
void bench_hist_add(bench_hist *h, uint64_t ns);
void bench_hist_merge(bench_hist *dst, const bench_hist *src);
/* |q| in [0, 1]; 0 when the histogram is empty. */
double bench_hist_quantile_ns(const bench_hist *h, double q);

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

/* CPU time (user + system) this process has used so far, in seconds: the
 * report shows how busy the load generator was, since a saturated client
 * measures itself, not the server. */
double bench_cpu_s(void);

/* ---- client options ---- */
typedef enum bench_rpc {
  BENCH_RPC_UNARY = 0,
  BENCH_RPC_STREAMING = 1,
  BENCH_RPC_IDLE = 2 /* one call per connection, then hold them */
} bench_rpc;

typedef struct bench_client_opts {
  const char *target;
  bench_rpc rpc;
  unsigned connections;
  unsigned inflight; /* per connection: calls (unary) or streams */
  uint32_t req_size, resp_size;
  double duration_s, warmup_s;
  unsigned threads; /* client threads, where the implementation has them */
  bool sync;        /* crpc: blocking API, one thread per call in flight */
  bool async;       /* crpc: callback API on crpc_loops the client's own
                       threads drive (--threads of them) */
  const char *tls_ca;          /* PEM CA: TLS on, server verified */
  const char *lb_policy;       /* crpc: the channel's LB policy; NULL */
  const char *tls_server_name; /* name checked in the server certificate */
} bench_client_opts;

/* Parses argv; on a bad or missing argument prints a message naming the
 * flag and the usage to stderr and exits 2. --help prints usage, exits 0. */
void bench_client_parse(bench_client_opts *o, int argc, char **argv,
                        const char *prog);

typedef struct bench_server_opts {
  int port;
  unsigned threads; /* 0: implementation default (number of CPUs) */
  const char *api;  /* gRPC C++ only: "cq" or "callback"; NULL: default */
  const char *tls_cert, *tls_key; /* PEM: TLS on when both are set */
  bool blocking; /* crpc only: streaming handler on the worker pool */
  bool async;    /* crpc only: served on a crpc_loop this program drives */
  bool metrics;  /* crpc only: a crpc_metrics recorder on the server */
} bench_server_opts;

/* |has_api|: the gRPC C++ server (--api); otherwise crpc (--blocking). */
void bench_server_parse(bench_server_opts *o, int argc, char **argv,
                        const char *prog, bool has_api);

/* Raises RLIMIT_NOFILE to its hard limit (1000 connections need it). */
void bench_raise_nofile(void);

/* ---- results ---- */
typedef struct bench_result {
  const char *impl; /* "crpc" or "grpcpp" */
  uint64_t calls;   /* completed in the measured window */
  double elapsed_s;
  double cpu_s; /* client CPU time used in the measured window */
  bench_hist hist;
} bench_result;

/* Prints a human-readable summary and then one final JSON line (the
 * machine-readable line the run script parses) on stdout. */
void bench_report(const bench_client_opts *o, const bench_result *r);

/* Prints a message to stderr and exits 1: a failed run must never look like
 * a fast one. printf-style. */
void bench_fail(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif /* CRPC_BENCH_COMMON_H */
