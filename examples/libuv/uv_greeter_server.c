/*
 * uv_greeter_server.c: the helloworld Greeter on a libuv loop, in one
 * thread: crpc starts none (crpc/uv.h).
 *
 *   uv-greeter-server [--port=N] [--upstream=HOST:PORT]
 *
 * Listens on 127.0.0.1 (--port=0 picks a free port) and prints
 * "uv-greeter-server listening on 127.0.0.1:PORT". SayHello answers
 * "Hello NAME"; with --upstream it asks that Greeter instead, from inside
 * the handler, on the same loop, and answers with its reply (an
 * asynchronous handler: crpc_call_defer, crpc_call_answer). SIGINT or
 * SIGTERM stop it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>
#include <crpc/uv.h>

#include "helloworld.crpc.h"

static crpc_channel *upstream; /* NULL: answer ourselves */

typedef struct pending {
  crpc_call *call;             /* the call we answer */
  Helloworld__HelloReply *resp; /* its response, valid until answered */
} pending;

/* The upstream's answer, on the loop's thread: becomes ours. */
static void on_upstream(crpc_call *inner, const crpc_status *st,
                        const Helloworld__HelloReply *reply, void *ud) {
  pending *p = ud;
  (void)inner;
  if (reply && reply->message)
    p->resp->message = crpc_call_arena_strdup(p->call, reply->message);
  else
    crpc_call_set_status_message(p->call, crpc_status_message(st));
  crpc_call_answer(p->call, st->code);
  free(p);
}

static crpc_code say_hello(crpc_call *call, const Helloworld__HelloRequest *req,
                           Helloworld__HelloReply *resp, void *user_data) {
  (void)user_data;
  const char *name = req->name ? req->name : "";
  if (upstream) {
    pending *p = malloc(sizeof *p);
    if (!p)
      return CRPC_RESOURCE_EXHAUSTED;
    p->call = call;
    p->resp = resp;
    crpc_call_opts o = {.timeout_ms = crpc_call_time_left_ms(call)};
    if (crpc_call_defer(call) != 0 ||
        helloworld__greeter__say_hello__call_async(upstream, &o, req,
                                                   on_upstream, p) != 0) {
      free(p);
      crpc_call_answer(call, CRPC_UNAVAILABLE);
      return CRPC_UNAVAILABLE;
    }
    return CRPC_OK; /* answered from on_upstream */
  }
  char *msg = crpc_call_arena_alloc(call, strlen(name) + 7);
  if (!msg)
    return CRPC_RESOURCE_EXHAUSTED;
  sprintf(msg, "Hello %s", name);
  resp->message = msg;
  return CRPC_OK;
}

static uv_signal_t sigint, sigterm;

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_stop(s->loop);
}

int main(int argc, char **argv) {
  int port = 50051;
  const char *up = NULL;
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
    } else if (strncmp(argv[i], "--upstream=", 11) == 0) {
      up = argv[i] + 11;
    } else {
      fprintf(stderr,
              "usage: uv-greeter-server [--port=N] [--upstream=HOST:PORT]\n");
      return 2;
    }
  }
  uv_loop_t *uv = uv_default_loop();
  crpc_uv *cu;
  int rv = crpc_uv_new(&cu, uv, NULL);
  if (rv != 0) {
    fprintf(stderr, "crpc_uv_new: %s\n", crpc_strerror(rv));
    return 1;
  }
  crpc_server *srv = NULL;
  crpc_server_opts so = {.loop = crpc_uv_loop(cu)};
  Helloworld__Greeter_CrpcHandlers h = {.say_hello = say_hello};
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  if ((rv = crpc_server_new(&srv, &so)) != 0 ||
      (rv = crpc_server_register_service(srv, &helloworld__greeter__crpc_service,
                                         &h, CRPC_HANDLER_NONBLOCKING,
                                         NULL)) != 0 ||
      (rv = crpc_server_listen(srv, addr, NULL, &port)) != 0 ||
      (rv = crpc_server_start(srv)) != 0) {
    fprintf(stderr, "cannot serve on %s: %s\n", addr, crpc_strerror(rv));
    return 1;
  }
  if (up) {
    crpc_channel_opts co = {.loop = crpc_uv_loop(cu)};
    if ((rv = crpc_channel_new(&upstream, up, &co)) != 0) {
      fprintf(stderr, "bad --upstream %s: %s\n", up, crpc_strerror(rv));
      return 2;
    }
  }
  printf("uv-greeter-server listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  uv_signal_init(uv, &sigint);
  uv_signal_init(uv, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_run(uv, UV_RUN_DEFAULT);
  /* stopped: shut down on this same thread (crpc drives its loop while it
   * waits), then let libuv close the handles */
  crpc_server_shutdown(srv, 1000);
  crpc_server_free(srv);
  crpc_channel_free(upstream);
  crpc_uv_free(cu);
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_run(uv, UV_RUN_DEFAULT);
  uv_loop_close(uv);
  return 0;
}
