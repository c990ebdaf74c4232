/*
 * greeter_server.c: the helloworld Greeter service, answering
 * SayHello(name) with "Hello <name>".
 *
 *   helloworld-server [--port=N] [--host=ADDR] [--reflection=BOOL]
 *                     [--metrics_file=PATH] [--access_log]
 *                     [--server_id=ID] [--max_connection_age_ms=N]
 *
 * It serves the health service (grpc.health.v1.Health) and, unless
 * --reflection=false, server reflection (grpc.reflection.v1 and v1alpha),
 * so that grpcurl and other reflection clients can list, describe and
 * call it without helloworld.proto.
 *
 * Listens on 127.0.0.1:50051 by default; --port=0 picks a free port. Once
 * serving it prints one line, "crpc helloworld server listening on
 * HOST:PORT", and stops cleanly on SIGINT or SIGTERM.
 *
 * Request metadata whose key starts with "x-echo-" comes back as trailers,
 * which lets tests see metadata cross the wire both ways.
 *
 * --metrics_file=PATH rewrites PATH every second with the server's gRPC
 * metrics (gRFC A66 names) in the Prometheus text format; --access_log
 * writes one line per call to stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>

#include "metrics_file.h"

#include "helloworld.crpc.h"

#define ECHO_PREFIX "x-echo-"

static const char *server_id; /* --server_id: the x-served-by trailer */

static crpc_code say_hello(crpc_call *call, const Helloworld__HelloRequest *req,
                           Helloworld__HelloReply *resp, void *user_data) {
  static const char greeting[] = "Hello ";
  const char *name = req->name != NULL ? req->name : "";
  size_t n = strlen(name);

  /* The reply is packed after we return: its string lives in the call's
   * arena, freed with the call. */
  char *msg = crpc_call_arena_alloc(call, sizeof(greeting) + n);
  if (msg == NULL) {
    crpc_call_set_status_message(call, "out of memory");
    return CRPC_RESOURCE_EXHAUSTED;
  }
  memcpy(msg, greeting, sizeof(greeting) - 1);
  memcpy(msg + sizeof(greeting) - 1, name, n + 1);
  resp->message = msg;
  if (server_id)
    crpc_call_add_trailing_metadata(call, "x-served-by",
                                    (const uint8_t *)server_id,
                                    strlen(server_id));

  const crpc_metadata *md = crpc_call_request_metadata(call);
  size_t count = crpc_metadata_count(md);
  for (size_t i = 0; i < count; i++) {
    const char *key;
    const uint8_t *value;
    size_t len;
    if (crpc_metadata_at(md, i, &key, &value, &len) == 0 &&
        strncmp(key, ECHO_PREFIX, strlen(ECHO_PREFIX)) == 0) {
      int rv = crpc_call_add_trailing_metadata(call, key, value, len);
      if (rv != 0) {
        fprintf(stderr, "cannot echo %s: %s\n", key, crpc_strerror(rv));
      }
    }
  }
  return CRPC_OK;
}

static int parse_port(const char *s, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 65535) {
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* "true"/"1" or "false"/"0". */
static int parse_bool(const char *s, bool *out) {
  if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
    *out = true;
  else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
    *out = false;
  else
    return -1;
  return 0;
}

static void usage(FILE *f) {
  fprintf(f, "usage: helloworld-server [--port=N] [--host=ADDR] "
             "[--reflection=BOOL] [--metrics_file=PATH] [--access_log]\n"
             "         [--server_id=ID] [--max_connection_age_ms=N]\n"
             "  --port=N     port to listen on (default 50051, 0: any free)\n"
             "  --host=ADDR  address to bind (default 127.0.0.1)\n"
             "  --reflection=true|false  serve server reflection (default "
             "true)\n"
             "  --metrics_file=PATH  rewrite PATH every second with the "
             "metrics\n"
             "                       (Prometheus text format)\n"
             "  --access_log  one line per call to stderr\n"
             "  --server_id=ID  add the trailer x-served-by: ID to replies\n"
             "  --max_connection_age_ms=N  GOAWAY connections older than N "
             "ms\n"
             "               (+-10%%), so clients reconnect and rebalance\n");
}

int main(int argc, char **argv) {
  long long max_age_ms = 0;
  int port = 50051;
  const char *host = "127.0.0.1";
  bool reflection = true;
  const char *metrics_path = NULL;
  bool access_log = false;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--port=", 7) == 0) {
      if (parse_port(argv[i] + 7, &port) != 0) {
        fprintf(stderr, "bad port: %s\n", argv[i] + 7);
        return 2;
      }
    } else if (strncmp(argv[i], "--host=", 7) == 0) {
      host = argv[i] + 7;
    } else if (strncmp(argv[i], "--reflection=", 13) == 0) {
      if (parse_bool(argv[i] + 13, &reflection) != 0) {
        fprintf(stderr, "bad --reflection: %s\n", argv[i] + 13);
        return 2;
      }
    } else if (strncmp(argv[i], "--metrics_file=", 15) == 0 &&
               argv[i][15]) {
      metrics_path = argv[i] + 15;
    } else if (strcmp(argv[i], "--access_log") == 0 ||
               strcmp(argv[i], "--access_log=true") == 0) {
      access_log = true;
    } else if (strncmp(argv[i], "--server_id=", 12) == 0 && argv[i][12]) {
      server_id = argv[i] + 12;
    } else if (strncmp(argv[i], "--max_connection_age_ms=", 24) == 0) {
      char *end;
      max_age_ms = strtoll(argv[i] + 24, &end, 10);
      if (*end || max_age_ms < 1) {
        fprintf(stderr, "bad --max_connection_age_ms: %s\n", argv[i] + 24);
        return 2;
      }
    } else if (strcmp(argv[i], "--access_log=false") == 0) {
      access_log = false;
    } else if (strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  /* Block the stop signals before crpc starts threads (they inherit the
   * mask), so that only sigwait() below sees them: no work in a signal
   * handler. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  crpc_server *server = NULL;
  crpc_health *health = NULL;
  crpc_metrics *metrics = NULL;
  metrics_file *mfile = NULL;
  crpc_server_opts opts = {0};
  opts.max_connection_age_ms = max_age_ms;
  int rv = metrics_path ? crpc_metrics_new(&metrics, NULL) : 0;
  opts.metrics = metrics;
  if (rv == 0)
    rv = crpc_server_new(&server, &opts);
  if (rv == 0 && access_log)
    rv = crpc_server_set_access_log(server, crpc_access_log_stderr, NULL);
  if (rv != 0) {
    fprintf(stderr, "crpc_server_new: %s\n", crpc_strerror(rv));
    crpc_server_free(server);
    crpc_metrics_free(metrics);
    return 1;
  }
  const Helloworld__Greeter_CrpcHandlers handlers = {.say_hello = say_hello};
  rv = helloworld__greeter__crpc_register(server, &handlers, NULL);
  if (rv == 0)
    rv = crpc_health_new(&health);
  if (rv == 0)
    rv = crpc_health_register(health, server);
  if (rv == 0)
    rv = crpc_health_set(health, "helloworld.Greeter", CRPC_HEALTH_SERVING);
  if (rv == 0 && reflection)
    rv = crpc_server_enable_reflection(server);
  if (rv != 0) {
    fprintf(stderr, "register: %s\n", crpc_strerror(rv));
    goto fail;
  }

  /* An IPv6 literal needs brackets before the port. */
  char addr[300];
  bool v6 = strchr(host, ':') != NULL && host[0] != '[';
  snprintf(addr, sizeof(addr), v6 ? "[%s]:%d" : "%s:%d", host, port);
  rv = crpc_server_listen(server, addr, NULL, &port);
  if (rv != 0) {
    fprintf(stderr, "cannot listen on %s: %s\n", addr, crpc_strerror(rv));
    goto fail;
  }
  rv = crpc_server_start(server);
  if (rv != 0) {
    fprintf(stderr, "crpc_server_start: %s\n", crpc_strerror(rv));
    goto fail;
  }
  if (metrics && metrics_file_start(&mfile, metrics, metrics_path) != 0)
    goto fail;
  printf(v6 ? "crpc helloworld server listening on [%s]:%d\n"
            : "crpc helloworld server listening on %s:%d\n",
         host, port);
  fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  fprintf(stderr, "helloworld-server: %s, shutting down\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM");
  crpc_health_shutdown(health); /* watchers leave before the grace */
  crpc_server_shutdown(server, 5000);
  metrics_file_stop(mfile); /* last write: every call is in */
  crpc_server_free(server);
  crpc_health_free(health);
  crpc_metrics_free(metrics);
  return 0;

fail:
  crpc_server_free(server);
  crpc_health_free(health);
  crpc_metrics_free(metrics);
  return 1;
}
