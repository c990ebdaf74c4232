/*
 * metrics_file.h: what the example servers' --metrics_file=PATH and
 * --access_log flags do, shared by them: a thread of the example's own
 * rewrites PATH every second with the server's metrics in the Prometheus
 * text format (atomically: the node_exporter textfile collector reads it),
 * and the access log goes to stderr. The library itself starts no thread
 * for this.
 */
#ifndef CRPC_EXAMPLE_METRICS_FILE_H
#define CRPC_EXAMPLE_METRICS_FILE_H

#include <crpc/crpc.h>

typedef struct metrics_file metrics_file;

/* Writes |path| now, then every second until metrics_file_stop(). Returns
 * 0, or a CRPC_E* code (with a message on stderr). */
int metrics_file_start(metrics_file **out, const crpc_metrics *m,
                       const char *path);

/* Writes the file a last time, stops and joins the thread, frees |w|
 * (NULL is a no-op). */
void metrics_file_stop(metrics_file *w);

#endif
