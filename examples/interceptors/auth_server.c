/*
 * auth_server.c: the helloworld Greeter behind two server interceptors
 * (crpc/interceptor.h): a logging one (one line per call on stderr:
 * method, kind, final status) and a bearer-token check that answers
 * UNAUTHENTICATED unless the request carries "authorization: Bearer T".
 *
 *   interceptors-server [--port=N] [--token=T]
 *
 * Listens on 127.0.0.1 (--port=0: a free port), prints "crpc interceptors
 * server listening on 127.0.0.1:PORT" and stops on SIGINT or SIGTERM.
 * The logger is registered first, so it is the outermost: it also logs
 * the calls the token check refuses.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>

#include "helloworld.crpc.h"

static const char *const kind_names[] = {"unary", "server-streaming",
                                         "client-streaming", "bidi"};

static crpc_code log_start(crpc_call *call, const crpc_method *m, void *ud) {
  (void)ud;
  unsigned k = (unsigned)m->kind;
  fprintf(stderr, "call %s (%s) from %s\n", m->path,
          k < 4 ? kind_names[k] : "?", crpc_call_peer(call));
  return CRPC_OK;
}

static void log_finish(crpc_call *call, crpc_code code, void *ud) {
  (void)ud;
  fprintf(stderr, "done %s: %s\n", crpc_call_method(call),
          crpc_code_name(code));
}

static const crpc_server_interceptor logging = {
    .on_start = log_start, .on_finish = log_finish};

/* The token check: |ud| is the expected token. */
static crpc_code check_token(crpc_call *call, const crpc_method *m,
                             void *ud) {
  (void)m;
  const char *token = ud;
  size_t len;
  const uint8_t *v =
      crpc_metadata_get(crpc_call_request_metadata(call), "authorization",
                        &len);
  size_t tlen = strlen(token);
  if (v && len == 7 + tlen && memcmp(v, "Bearer ", 7) == 0 &&
      memcmp(v + 7, token, tlen) == 0)
    return CRPC_OK;
  crpc_call_set_status_message(call, v ? "invalid bearer token"
                                       : "missing bearer token");
  return CRPC_UNAUTHENTICATED;
}

static const crpc_server_interceptor bearer = {.on_start = check_token};

static crpc_code say_hello(crpc_call *call, const Helloworld__HelloRequest *req,
                           Helloworld__HelloReply *resp, void *ud) {
  (void)ud;
  const char *name = req->name ? req->name : "";
  char *msg = crpc_call_arena_alloc(call, strlen(name) + 7);
  if (!msg)
    return CRPC_RESOURCE_EXHAUSTED;
  sprintf(msg, "Hello %s", name);
  resp->message = msg;
  return CRPC_OK;
}

int main(int argc, char **argv) {
  int port = 50051;
  const char *token = "crpc-demo-token";
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--port=", 7) == 0) {
      char *end;
      errno = 0;
      long v = strtol(argv[i] + 7, &end, 10);
      if (errno || *end || end == argv[i] + 7 || v < 0 || v > 65535) {
        fprintf(stderr, "bad port: %s\n", argv[i] + 7);
        return 2;
      }
      port = (int)v;
    } else if (strncmp(argv[i], "--token=", 8) == 0) {
      token = argv[i] + 8;
    } else {
      fprintf(stderr, "usage: interceptors-server [--port=N] [--token=T]\n");
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  crpc_server *server = NULL;
  int rv = crpc_server_new(&server, NULL);
  const Helloworld__Greeter_CrpcHandlers handlers = {.say_hello = say_hello};
  if (rv == 0)
    rv = helloworld__greeter__crpc_register(server, &handlers, NULL);
  if (rv == 0) /* first registered: outermost, sees every call */
    rv = crpc_server_add_interceptor(server, &logging, NULL);
  if (rv == 0)
    rv = crpc_server_add_interceptor(server, &bearer, (void *)token);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  if (rv == 0)
    rv = crpc_server_listen(server, addr, NULL, &port);
  if (rv == 0)
    rv = crpc_server_start(server);
  if (rv != 0) {
    fprintf(stderr, "interceptors-server: %s\n", crpc_strerror(rv));
    crpc_server_free(server);
    return 1;
  }
  printf("crpc interceptors server listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  int sig;
  sigwait(&stop, &sig);
  crpc_server_shutdown(server, 5000);
  crpc_server_free(server);
  return 0;
}
