/*
 * bench_common.c: flags, histogram and report shared by the crpc and gRPC
 * C++ benchmark programs.
 */
#define _GNU_SOURCE
#include "bench_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The largest message either side accepts by default (4 MiB), minus room
 * for the protobuf framing around the payload bytes. */
#define MAX_PAYLOAD (4u * 1024u * 1024u - 64u)

/* ---- histogram ---- */

void bench_hist_init(bench_hist *h) {
  memset(h, 0, sizeof *h);
  h->min_ns = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v) {
  if (v < 128)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
  unsigned shift = msb - 6;                          /* >= 1 */
  unsigned idx = 128 + (shift - 1) * 64 + (unsigned)((v >> shift) - 64);
  return idx < BENCH_HIST_BUCKETS ? idx : BENCH_HIST_BUCKETS - 1;
}

/* Midpoint of bucket |i|, in ns. */
static double bucket_mid(unsigned i) {
  if (i < 128)
    return (double)i;
  unsigned shift = (i - 128) / 64 + 1;
  uint64_t top = (i - 128) % 64 + 64;
  double lo = (double)(top << shift);
  double hi = (double)((top + 1) << shift);
  return (lo + hi) / 2;
}

void bench_hist_add(bench_hist *h, uint64_t ns) {
  h->count++;
  h->sum_ns += (double)ns;
  if (ns < h->min_ns)
    h->min_ns = ns;
  if (ns > h->max_ns)
    h->max_ns = ns;
  h->buckets[bucket_of(ns)]++;
}

void bench_hist_merge(bench_hist *dst, const bench_hist *src) {
  dst->count += src->count;
  dst->sum_ns += src->sum_ns;
  if (src->min_ns < dst->min_ns)
    dst->min_ns = src->min_ns;
  if (src->max_ns > dst->max_ns)
    dst->max_ns = src->max_ns;
  for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
    dst->buckets[i] += src->buckets[i];
}

double bench_hist_quantile_ns(const bench_hist *h, double q) {
  if (h->count == 0)
    return 0;
  /* The smallest value with at least q * count samples at or below it. */
  double want = q * (double)h->count;
  if (want < 1)
    want = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if ((double)seen >= want) {
      double v = bucket_mid(i);
      /* Never report outside what was observed. */
      if (v < (double)h->min_ns)
        v = (double)h->min_ns;
      if (v > (double)h->max_ns)
        v = (double)h->max_ns;
      return v;
    }
  }
  return (double)h->max_ns;
}

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_cpu_s(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- flags ---- */

void bench_fail(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fputs("FAIL: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  /* _exit: other threads may be mid-call; running atexit handlers and
   * static destructors under them could hang instead of failing. */
  _exit(1);
}

static const char *prog_name = "bench";

static void client_usage(FILE *f) {
  fprintf(f,
          "usage: %s --target=HOST:PORT [--rpc=unary|streaming|idle]\n"
          "         [--connections=C] [--inflight=K] [--req_size=BYTES]\n"
          "         [--resp_size=BYTES] [--duration=SECONDS] "
          "[--warmup=SECONDS]\n"
          "         [--threads=T] [--sync | --async] [--lb_policy=P] "
          "[--tls_ca=PEM "
          "[--tls_server_name=NAME]]\n"
          "  Closed-loop load on grpc.testing.BenchmarkService: C "
          "connections,\n"
          "  K calls (unary) or ping-pong streams (streaming) in flight on "
          "each.\n"
          "  --rpc=idle makes one call per connection, prints READY and "
          "holds\n"
          "  the connections until stdin closes.\n"
          "  Defaults: unary, 1 connection, 1 in flight, 0-byte messages,\n"
          "  10 s measured after 1 s of warm-up. --tls_ca turns TLS on and\n"
          "  verifies the server against that CA (and NAME, default: the\n"
          "  target's host). crpc only: --sync uses the blocking API (a "
          "thread\n"
          "  per call in flight); --async the callback API on crpc_loops "
          "driven\n"
          "  by T threads of the client's own (default 1).\n",
          prog_name);
}

static void server_usage(FILE *f, bool has_api) {
  fprintf(f,
          "usage: %s --port=N [--threads=T]%s\n"
          "         [--tls_cert=PEM --tls_key=PEM]\n"
          "  Serves grpc.testing.BenchmarkService on 127.0.0.1:N (0: any "
          "free\n"
          "  port, printed on stdout). T reactor/poller threads (default: "
          "CPUs).\n",
          prog_name,
          has_api ? " [--api=cq|callback]"
                  : " [--blocking | --async] [--metrics]");
  if (!has_api)
    fprintf(f, "  --async: one crpc_loop driven by the main thread, no "
               "crpc thread\n"
               "  (--threads is then ignored).\n"
               "  --metrics: record gRFC A66 metrics (crpc_metrics) for "
               "every call.\n");
}

static void usage_error(bool server, bool has_api, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4), noreturn))
#endif
    ;
static void usage_error(bool server, bool has_api, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog_name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (server)
    server_usage(stderr, has_api);
  else
    client_usage(stderr);
  exit(2);
}

/* Splits "--name=value"; returns the value or NULL when |arg| is not
 * "--name=...". */
static const char *flag_value(const char *arg, const char *name) {
  size_t n = strlen(name);
  if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 ||
      arg[2 + n] != '=')
    return NULL;
  return arg + 3 + n;
}

/* Strict unsigned decimal in [lo, hi]; returns false on anything else. */
static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  if (*s < '0' || *s > '9')
    return false;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end != '\0' || v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

static bool parse_seconds(const char *s, double lo, double hi, double *out) {
  if ((*s < '0' || *s > '9') && *s != '.')
    return false;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || *end != '\0' || !(v >= lo && v <= hi))
    return false;
  *out = v;
  return true;
}

void bench_client_parse(bench_client_opts *o, int argc, char **argv,
                        const char *prog) {
  prog_name = prog;
  memset(o, 0, sizeof *o);
  o->rpc = BENCH_RPC_UNARY;
  o->connections = 1;
  o->inflight = 1;
  o->duration_s = 10;
  o->warmup_s = 1;
  o->threads = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    uint64_t u;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      client_usage(stdout);
      exit(0);
    } else if ((v = flag_value(a, "target"))) {
      if (!*v || (!strchr(v, ':')))
        usage_error(false, false, "--target=%s: want HOST:PORT", v);
      o->target = v;
    } else if ((v = flag_value(a, "rpc"))) {
      if (strcmp(v, "unary") == 0)
        o->rpc = BENCH_RPC_UNARY;
      else if (strcmp(v, "streaming") == 0)
        o->rpc = BENCH_RPC_STREAMING;
      else if (strcmp(v, "idle") == 0)
        o->rpc = BENCH_RPC_IDLE;
      else
        usage_error(false, false,
                    "--rpc=%s: want unary, streaming or idle", v);
    } else if ((v = flag_value(a, "connections"))) {
      if (!parse_u64(v, 1, 20000, &u))
        usage_error(false, false,
                    "--connections=%s: want an integer in 1..20000", v);
      o->connections = (unsigned)u;
    } else if ((v = flag_value(a, "inflight"))) {
      if (!parse_u64(v, 1, 1000, &u))
        usage_error(false, false,
                    "--inflight=%s: want an integer in 1..1000", v);
      o->inflight = (unsigned)u;
    } else if ((v = flag_value(a, "req_size"))) {
      if (!parse_u64(v, 0, MAX_PAYLOAD, &u))
        usage_error(false, false, "--req_size=%s: want bytes in 0..%u", v,
                    MAX_PAYLOAD);
      o->req_size = (uint32_t)u;
    } else if ((v = flag_value(a, "resp_size"))) {
      if (!parse_u64(v, 0, MAX_PAYLOAD, &u))
        usage_error(false, false, "--resp_size=%s: want bytes in 0..%u", v,
                    MAX_PAYLOAD);
      o->resp_size = (uint32_t)u;
    } else if ((v = flag_value(a, "duration"))) {
      if (!parse_seconds(v, 0.01, 3600, &o->duration_s))
        usage_error(false, false,
                    "--duration=%s: want seconds in 0.01..3600", v);
    } else if ((v = flag_value(a, "warmup"))) {
      if (!parse_seconds(v, 0, 600, &o->warmup_s))
        usage_error(false, false, "--warmup=%s: want seconds in 0..600", v);
    } else if ((v = flag_value(a, "threads"))) {
      if (!parse_u64(v, 1, 256, &u))
        usage_error(false, false, "--threads=%s: want an integer in 1..256",
                    v);
      o->threads = (unsigned)u;
    } else if (strcmp(a, "--sync") == 0) {
      o->sync = true;
    } else if (strcmp(a, "--async") == 0) {
      o->async = true;
    } else if ((v = flag_value(a, "lb_policy"))) {
      o->lb_policy = v; /* crpc client only: pick_first, round_robin */
    } else if ((v = flag_value(a, "tls_ca"))) {
      if (!*v)
        usage_error(false, false, "--tls_ca: want a PEM file");
      o->tls_ca = v;
    } else if ((v = flag_value(a, "tls_server_name"))) {
      if (!*v)
        usage_error(false, false, "--tls_server_name: want a host name");
      o->tls_server_name = v;
    } else {
      usage_error(false, false, "unknown argument '%s'", a);
    }
  }
  if (!o->target)
    usage_error(false, false, "--target is required");
  if (o->tls_server_name && !o->tls_ca)
    usage_error(false, false, "--tls_server_name needs --tls_ca");
  if (o->sync && o->async)
    usage_error(false, false, "--sync and --async exclude each other");
  if (o->rpc == BENCH_RPC_IDLE && o->inflight != 1)
    usage_error(false, false, "--rpc=idle makes one call per connection: "
                              "--inflight must be 1");
}

void bench_server_parse(bench_server_opts *o, int argc, char **argv,
                        const char *prog, bool has_api) {
  bool have_port = false;
  prog_name = prog;
  memset(o, 0, sizeof *o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    uint64_t u;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      server_usage(stdout, has_api);
      exit(0);
    } else if ((v = flag_value(a, "port"))) {
      if (!parse_u64(v, 0, 65535, &u))
        usage_error(true, has_api, "--port=%s: want an integer in 0..65535",
                    v);
      o->port = (int)u;
      have_port = true;
    } else if ((v = flag_value(a, "threads"))) {
      if (!parse_u64(v, 1, 256, &u))
        usage_error(true, has_api, "--threads=%s: want an integer in 1..256",
                    v);
      o->threads = (unsigned)u;
    } else if (has_api && (v = flag_value(a, "api"))) {
      if (strcmp(v, "cq") != 0 && strcmp(v, "callback") != 0)
        usage_error(true, has_api, "--api=%s: want cq or callback", v);
      o->api = v;
    } else if (!has_api && strcmp(a, "--blocking") == 0) {
      o->blocking = true;
    } else if (!has_api && strcmp(a, "--async") == 0) {
      o->async = true;
    } else if (!has_api && strcmp(a, "--metrics") == 0) {
      o->metrics = true;
    } else if ((v = flag_value(a, "tls_cert"))) {
      o->tls_cert = v;
    } else if ((v = flag_value(a, "tls_key"))) {
      o->tls_key = v;
    } else {
      usage_error(true, has_api, "unknown argument '%s'", a);
    }
  }
  if (!have_port)
    usage_error(true, has_api, "--port is required (0: any free port)");
  if (!o->tls_cert != !o->tls_key || (o->tls_cert && !*o->tls_cert) ||
      (o->tls_key && !*o->tls_key))
    usage_error(true, has_api, "TLS needs both --tls_cert and --tls_key");
}

void bench_raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* ---- report ---- */

static const char *rpc_name(bench_rpc r) {
  switch (r) {
  case BENCH_RPC_UNARY:
    return "unary";
  case BENCH_RPC_STREAMING:
    return "streaming";
  case BENCH_RPC_IDLE:
    return "idle";
  }
  return "?";
}

void bench_report(const bench_client_opts *o, const bench_result *r) {
  double rate = r->elapsed_s > 0 ? (double)r->calls / r->elapsed_s : 0;
  /* Payload bytes moved in both directions (protobuf and HTTP/2 framing
   * not counted), in MB/s (10^6). */
  double mbps = rate * ((double)o->req_size + (double)o->resp_size) / 1e6;
  const bench_hist *h = &r->hist;
  double p50 = bench_hist_quantile_ns(h, 0.50) / 1e3;
  double p90 = bench_hist_quantile_ns(h, 0.90) / 1e3;
  double p99 = bench_hist_quantile_ns(h, 0.99) / 1e3;
  double p999 = bench_hist_quantile_ns(h, 0.999) / 1e3;
  double mean = h->count ? h->sum_ns / (double)h->count / 1e3 : 0;
  const char *unit = o->rpc == BENCH_RPC_STREAMING ? "msgs" : "calls";
  double cpu = r->elapsed_s > 0 ? r->cpu_s / r->elapsed_s : 0;
  printf("%s client, %s: %u connection(s) x %u in flight, req %u B, "
         "resp %u B\n",
         r->impl, rpc_name(o->rpc), o->connections, o->inflight, o->req_size,
         o->resp_size);
  printf("  %" PRIu64 " %s in %.3f s: %.1f %s/s, %.2f MB/s\n", r->calls, unit,
         r->elapsed_s, rate, unit, mbps);
  printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  "
         "mean %.1f  max %.1f\n",
         p50, p90, p99, p999, mean,
         h->count ? (double)h->max_ns / 1e3 : 0.0);
  printf("  client CPU: %.2f CPUs busy\n", cpu);
  printf("{\"impl\":\"%s\",\"rpc\":\"%s\",\"connections\":%u,"
         "\"inflight\":%u,\"req_size\":%u,\"resp_size\":%u,"
         "\"calls\":%" PRIu64 ",\"elapsed_s\":%.4f,\"calls_per_s\":%.1f,"
         "\"mb_per_s\":%.3f,\"p50_us\":%.2f,\"p90_us\":%.2f,"
         "\"p99_us\":%.2f,\"p999_us\":%.2f,\"mean_us\":%.2f,"
         "\"tls\":%s,\"client_cpu\":%.3f}\n",
         r->impl, rpc_name(o->rpc), o->connections, o->inflight, o->req_size,
         o->resp_size, r->calls, r->elapsed_s, rate, mbps, p50, p90, p99,
         p999, mean, o->tls_ca ? "true" : "false", cpu);
  fflush(stdout);
}
