/*
 * metrics_prom.c: a recorder in the Prometheus text exposition format
 * (0.0.4), and the atomic rewrite of a file with it (node_exporter's
 * textfile collector reads files that must never be seen half written).
 *
 * Names follow the OpenTelemetry-to-Prometheus mapping: dots become
 * underscores, the unit is a suffix (s -> _seconds, By -> _bytes) and
 * counters end in _total.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics_internal.h"

enum { H_DUR, H_SENT, H_RCVD, H_CALL };

typedef struct family {
  int side;
  int hist; /* -1: the started counter */
  const char *name;
  const char *help;
} family;

static const family families[] = {
    {CRPC__MX_CLIENT, -1, "grpc_client_attempt_started_total",
     "The total number of RPC attempts started, including those that have "
     "not completed."},
    {CRPC__MX_CLIENT, H_DUR, "grpc_client_attempt_duration_seconds",
     "End-to-end time taken to complete an RPC attempt."},
    {CRPC__MX_CLIENT, H_SENT,
     "grpc_client_attempt_sent_total_compressed_message_size_bytes",
     "Compressed message bytes sent per RPC attempt."},
    {CRPC__MX_CLIENT, H_RCVD,
     "grpc_client_attempt_rcvd_total_compressed_message_size_bytes",
     "Compressed message bytes received per RPC attempt."},
    {CRPC__MX_CLIENT, H_CALL, "grpc_client_call_duration_seconds",
     "Time taken by the gRPC library to complete an RPC from the "
     "application's perspective."},
    {CRPC__MX_SERVER, -1, "grpc_server_call_started_total",
     "The total number of RPCs started, including those that have not "
     "completed."},
    {CRPC__MX_SERVER, H_DUR, "grpc_server_call_duration_seconds",
     "End-to-end time taken to complete an RPC from the server transport's "
     "perspective."},
    {CRPC__MX_SERVER, H_SENT,
     "grpc_server_call_sent_total_compressed_message_size_bytes",
     "Compressed message bytes sent per RPC."},
    {CRPC__MX_SERVER, H_RCVD,
     "grpc_server_call_rcvd_total_compressed_message_size_bytes",
     "Compressed message bytes received per RPC."},
};

/* A label value: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *v) {
  for (; *v; v++) {
    if (*v == '\\')
      fputs("\\\\", f);
    else if (*v == '"')
      fputs("\\\"", f);
    else if (*v == '\n')
      fputs("\\n", f);
    else
      fputc(*v, f);
  }
}

static void put_labels(FILE *f, const crpc__mx_method *row, int code,
                       const char *le) {
  fputs("{grpc_method=\"", f);
  put_label(f, row->name);
  fputc('"', f);
  if (code >= 0)
    fprintf(f, ",grpc_status=\"%s\"", crpc_code_name((crpc_code)code));
  if (le)
    fprintf(f, ",le=\"%s\"", le);
  fputc('}', f);
}

static void put_hist(FILE *f, const family *fam, const crpc__mx_method *row,
                     int code, const crpc__mx_status *st) {
  const atomic_uint_fast64_t *b;
  const double *bounds;
  size_t n;
  double sum;
  if (fam->hist == H_DUR || fam->hist == H_CALL) {
    const crpc__mx_lat *h = fam->hist == H_DUR ? &st->dur : &st->call;
    b = h->b;
    bounds = crpc__mx_lat_bounds;
    n = CRPC__MX_LAT_N;
    sum = (double)atomic_load(&h->sum_ns) / 1e9;
  } else {
    const crpc__mx_size *h = fam->hist == H_SENT ? &st->sent : &st->rcvd;
    b = h->b;
    bounds = crpc__mx_size_bounds;
    n = CRPC__MX_SIZE_N;
    sum = (double)atomic_load(&h->sum);
  }
  uint64_t cum = 0;
  char le[32];
  for (size_t i = 0; i <= n; i++) {
    cum += atomic_load_explicit(&b[i], memory_order_relaxed);
    if (i < n)
      snprintf(le, sizeof le, "%.10g", bounds[i]);
    else
      strcpy(le, "+Inf");
    fprintf(f, "%s_bucket", fam->name);
    put_labels(f, row, code, le);
    fprintf(f, " %llu\n", (unsigned long long)cum);
  }
  fprintf(f, "%s_sum", fam->name);
  put_labels(f, row, code, NULL);
  fprintf(f, " %.17g\n", sum);
  fprintf(f, "%s_count", fam->name);
  put_labels(f, row, code, NULL);
  fprintf(f, " %llu\n", (unsigned long long)cum);
}

static void put_row(FILE *f, const family *fam, crpc__mx_method *row) {
  if (fam->hist < 0) {
    uint64_t v = atomic_load(&row->started);
    if (v == 0 && row->name[0] == 'o' && strcmp(row->name, "other") == 0)
      return; /* the "other" row shows once something counts in it */
    fputs(fam->name, f);
    put_labels(f, row, -1, NULL);
    fprintf(f, " %llu\n", (unsigned long long)v);
    return;
  }
  for (int code = 0; code < CRPC__MX_CODES; code++) {
    crpc__mx_status *st = crpc__mx_status_of(row, (crpc_code)code, false);
    if (st)
      put_hist(f, fam, row, code, st);
  }
}

int crpc_metrics_write_prometheus(const crpc_metrics *cm, FILE *f) {
  crpc_metrics *m = (crpc_metrics *)cm; /* only read */
  if (!m || !f)
    return CRPC_EINVAL;
  for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
    const family *fam = &families[i];
    crpc__mx_table *t = &m->t[fam->side];
    fprintf(f, "# HELP %s %s\n", fam->name, fam->help);
    fprintf(f, "# TYPE %s %s\n", fam->name,
            fam->hist < 0 ? "counter" : "histogram");
    for (size_t s = 0; s < t->cap; s++) {
      crpc__mx_method *row = atomic_load_explicit(&t->slots[s],
                                                  memory_order_acquire);
      if (row)
        put_row(f, fam, row);
    }
    put_row(f, fam, &t->other);
  }
  if (fflush(f) != 0 || ferror(f))
    return CRPC_ESYS;
  return 0;
}

int crpc_metrics_write_file(const crpc_metrics *m, const char *path) {
  if (!m || !path)
    return CRPC_EINVAL;
  size_t len = strlen(path);
  char *tmp = crpc__malloc(&m->mem, len + 16);
  if (!tmp)
    return CRPC_ENOMEM;
  /* same directory: rename() is atomic only within one file system */
  memcpy(tmp, path, len);
  memcpy(tmp + len, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    crpc__free(&m->mem, tmp);
    return CRPC_ESYS;
  }
  int rv = 0;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    rv = CRPC_ESYS;
  } else {
    if (fchmod(fd, 0644) != 0 || crpc_metrics_write_prometheus(m, f) != 0 ||
        fsync(fd) != 0)
      rv = CRPC_ESYS;
    int saved = errno;
    if (fclose(f) != 0 && rv == 0)
      rv = CRPC_ESYS;
    else
      errno = saved;
  }
  if (rv == 0 && rename(tmp, path) != 0)
    rv = CRPC_ESYS;
  if (rv != 0) {
    int saved = errno;
    unlink(tmp);
    errno = saved;
  }
  crpc__free(&m->mem, tmp);
  return rv;
}
