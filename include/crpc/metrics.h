/**
 * \file
 * metrics.h: per-call metrics with gRPC's OpenTelemetry names (gRFC A66),
 * a stats callback, a Prometheus text writer, and the server access log.
 *
 * A program makes a recorder with crpc_metrics_new() and attaches it to
 * servers (crpc_server_opts.metrics) and channels
 * (crpc_channel_opts.metrics); one recorder may serve many of both. Every
 * finished call then counts into it, per method and status:
 *
 * | A66 instrument | type | unit | labels |
 * |---|---|---|---|
 * | grpc.client.attempt.started | counter | {attempt} | grpc.method |
 * | grpc.client.attempt.duration | histogram | s | grpc.method, grpc.status |
 * | grpc.client.attempt.sent_total_compressed_message_size | histogram | By | grpc.method, grpc.status |
 * | grpc.client.attempt.rcvd_total_compressed_message_size | histogram | By | grpc.method, grpc.status |
 * | grpc.client.call.duration | histogram | s | grpc.method, grpc.status |
 * | grpc.server.call.started | counter | {call} | grpc.method |
 * | grpc.server.call.duration | histogram | s | grpc.method, grpc.status |
 * | grpc.server.call.sent_total_compressed_message_size | histogram | By | grpc.method, grpc.status |
 * | grpc.server.call.rcvd_total_compressed_message_size | histogram | By | grpc.method, grpc.status |
 *
 * Histograms use A66's bucket boundaries (latency: 0, 10 us ... 100 s;
 * size: 0, 1 KiB ... 4 GiB). grpc.method is "package.Service/Method"
 * without the leading slash. A server counts calls to methods it has not
 * registered under "other" (A66: a client must not be able to grow the
 * label set). A client records the method it calls; its table is bounded
 * (crpc_metrics_opts.max_methods), and methods past the bound count under
 * "other", so a program calling 100 000 distinct paths does not grow the
 * recorder. grpc.target is not recorded (one recorder may serve many
 * channels; give each target its own recorder to tell them apart).
 *
 * Recording takes no lock: each (method, status) pair has its slots of
 * atomic counters, made the first time the pair is seen (never per call).
 * Sizes are message bytes as sent (after compression, without the 5-byte
 * gRPC prefix, without metadata), as A66 defines them. A call retried
 * under its retry policy (gRFC A6), or transparently, counts one attempt
 * per try, each with its own status, duration and bytes (replayed
 * messages count again); the call's duration covers them all.
 */
#ifndef CRPC_METRICS_H
#define CRPC_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "common.h"
#include "server.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Options of crpc_metrics_new(); {0} or NULL: the defaults. */
typedef struct crpc_metrics_opts {
  const crpc_mem *mem;  /**< NULL: libc; copied. The recorder's memory
                           comes from it; must stay usable until
                           crpc_metrics_free() returns */
  unsigned max_methods; /**< distinct methods recorded per side (client,
                           server) before the rest count as "other";
                           0: 256; at most 65536 */
} crpc_metrics_opts;

/** What a #crpc_call_stats record describes. */
typedef enum crpc_stats_kind {
  CRPC_STATS_CLIENT_ATTEMPT = 0, /**< one attempt of a client call */
  CRPC_STATS_CLIENT_CALL = 1,    /**< a client call, as the program saw it */
  CRPC_STATS_SERVER_CALL = 2     /**< a call a server answered */
} crpc_stats_kind;

/** One finished call or attempt, as given to a #crpc_stats_cb and a
 * #crpc_access_log_cb. Every pointer is borrowed for the callback only. */
typedef struct crpc_call_stats {
  crpc_stats_kind kind; /**< client attempt, client call or server call */
  const char *method;   /**< the grpc.method label: "pkg.Service/Method"
                           or "other"; never NULL */
  const char *path;     /**< the :path as sent or received, e.g.
                           "/pkg.Service/Method" (on a server, what the
                           client sent: untrusted); "" when none came */
  const char *peer;     /**< server: the client's address, e.g.
                           "ipv4:127.0.0.1:40512"; client: "" */
  crpc_code status;     /**< the call's final status */
  double duration_s;    /**< seconds: server from the request headers to
                           the trailers; client attempt from its start to
                           the status; client call from crpc_call_start()
                           (before the request is packed) to the status */
  uint64_t sent_bytes;  /**< message bytes sent (compressed, no prefix);
                           a client call's record repeats its last
                           attempt's */
  uint64_t rcvd_bytes;  /**< message bytes received (compressed, no
                           prefix) */
} crpc_call_stats;

/**
 * Receives one record per finished call (server), and per finished client
 * attempt and client call (a call's last attempt's record, then the
 * call's; a retried call's earlier attempts each had theirs when they
 * ended).
 * It runs on the connection's loop thread (a reactor thread, the
 * program's own loop, or a blocking caller running the channel's loop),
 * possibly on several threads at once: it must be thread-safe, must not
 * block and must not call back into crpc for the call it reports.
 */
typedef void (*crpc_stats_cb)(const crpc_call_stats *st, void *user_data);

/**
 * Makes a recorder. |opts| may be NULL (the defaults).
 *
 * Returns 0 and sets |*out|; CRPC_EINVAL (|out| NULL or max_methods over
 * 65536); CRPC_ENOMEM. Free with crpc_metrics_free() after every server
 * and channel using it is freed. Thread safety: any thread.
 */
CRPC_API int crpc_metrics_new(crpc_metrics **out,
                              const crpc_metrics_opts *opts);

/**
 * Frees |m| (NULL is a no-op). Every server and channel it was attached to
 * must have been freed first. Thread safety: no other use of |m| at the
 * same time.
 */
CRPC_API void crpc_metrics_free(crpc_metrics *m);

/**
 * Sets the stats callback of |m| (NULL: none, the default), so a program
 * can feed its own system (an OpenTelemetry SDK, a log) one record per
 * finished call. The counters are recorded either way.
 *
 * Returns 0; CRPC_EINVAL when |m| is NULL. Thread safety: call before |m|
 * is attached to a server or channel.
 */
CRPC_API int crpc_metrics_set_callback(crpc_metrics *m, crpc_stats_cb cb,
                                       void *user_data);

/**
 * Writes every metric of |m| to |f| in the Prometheus text exposition
 * format (version 0.0.4): "# HELP" and "# TYPE" lines, counters with
 * "_total", histograms with "_bucket{le=...}", "_sum" and "_count", names
 * as Prometheus spells A66's (grpc_server_call_duration_seconds,
 * grpc_client_attempt_sent_total_compressed_message_size_bytes, labels
 * grpc_method and grpc_status).
 *
 * Returns 0; CRPC_EINVAL (NULL argument); CRPC_ESYS when writing failed
 * (see errno). The values are read while calls go on: each is exact, a
 * histogram's buckets may be a call apart. Thread safety: any thread,
 * while calls run.
 */
CRPC_API int crpc_metrics_write_prometheus(const crpc_metrics *m, FILE *f);

/**
 * Replaces the file |path| with crpc_metrics_write_prometheus()'s output,
 * atomically (the node_exporter textfile collector's convention): writes a
 * temporary file in the same directory, fsyncs it, then renames it over
 * |path|, so a reader sees the old file or the new one, never a part. The
 * file is made readable by everyone (0644).
 *
 * Returns 0; CRPC_EINVAL (NULL argument); CRPC_ENOMEM; CRPC_ESYS (a system
 * call failed, see errno; the temporary file is removed). Thread safety:
 * any thread; two writers of the same |path| at once are safe (the last
 * rename wins).
 */
CRPC_API int crpc_metrics_write_file(const crpc_metrics *m, const char *path);

/**
 * Reads a counter: |name| is the A66 name ("grpc.server.call.started" or
 * "grpc.client.attempt.started"), |method| the label ("pkg.Service/Method"
 * or "other").
 *
 * Returns the count, 0 when nothing was recorded (or a NULL or unknown
 * argument). Thread safety: any thread.
 */
CRPC_API uint64_t crpc_metrics_counter(const crpc_metrics *m,
                                       const char *name, const char *method);

/**
 * Reads a histogram: |name| is one of the A66 histogram names above,
 * |method| the label, |status| the grpc.status label. Sets |*count| to the
 * number of observations and |*sum| (may be NULL) to their sum (seconds
 * or bytes).
 *
 * Returns 0 (also when nothing was recorded: count 0); CRPC_EINVAL for a
 * NULL or unknown argument. Thread safety: any thread.
 */
CRPC_API int crpc_metrics_histogram(const crpc_metrics *m, const char *name,
                                    const char *method, crpc_code status,
                                    uint64_t *count, double *sum);

/**
 * Bytes the recorder holds (its tables, method names and slots), for
 * checking that it stays bounded. Thread safety: any thread.
 */
CRPC_API size_t crpc_metrics_memory(const crpc_metrics *m);

/**
 * Receives one access log line per finished server call: |line| reads
 * e.g. `peer=ipv4:127.0.0.1:40512 method=/helloworld.Greeter/SayHello
 * status=OK duration_ms=0.214 req_bytes=7 resp_bytes=13` (NUL-terminated,
 * no newline; a client's path has spaces, quotes, backslashes and bytes
 * outside ASCII as `\xHH`, and is cut at 200 bytes, ending "..."); |st|
 * has the same facts as values. Both are borrowed for the call. It runs on the
 * connection's loop thread, possibly on several at once: thread-safe,
 * non-blocking.
 */
typedef void (*crpc_access_log_cb)(const crpc_call_stats *st,
                                   const char *line, void *user_data);

/**
 * Turns the server's access log on (|cb| not NULL) or off (NULL, the
 * default). While it is off nothing is measured or formatted for it.
 *
 * Returns 0; CRPC_EINVAL (|s| NULL); CRPC_ESTATE (the server has started).
 * Thread safety: before crpc_server_start(), on the thread that owns |s|.
 */
CRPC_API int crpc_server_set_access_log(crpc_server *s, crpc_access_log_cb cb,
                                        void *user_data);

/**
 * A #crpc_access_log_cb that writes "crpc access: LINE\n" to stderr in one
 * call (lines from different threads stay whole). |st| and |user_data| are
 * unused.
 */
CRPC_API void crpc_access_log_stderr(const crpc_call_stats *st,
                                     const char *line, void *user_data);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_METRICS_H */
