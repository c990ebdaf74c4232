/*
 * event_greeter_server.c: the helloworld Greeter on a libevent event_base,
 * in one thread: crpc starts none (crpc/event.h).
 *
 *   event-greeter-server [--port=N]
 *
 * Listens on 127.0.0.1 (--port=0 picks a free port) and prints
 * "event-greeter-server listening on 127.0.0.1:PORT". SIGINT or SIGTERM
 * stop it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>
#include <crpc/event.h>

#include "helloworld.crpc.h"

/* NONBLOCKING: runs on the event_base's thread, inside crpc's callback. */
static crpc_code say_hello(crpc_call *call, const Helloworld__HelloRequest *req,
                           Helloworld__HelloReply *resp, void *user_data) {
  (void)user_data;
  const char *name = req->name ? req->name : "";
  char *msg = crpc_call_arena_alloc(call, strlen(name) + 7);
  if (!msg)
    return CRPC_RESOURCE_EXHAUSTED;
  sprintf(msg, "Hello %s", name);
  resp->message = msg;
  return CRPC_OK;
}

static void on_signal(evutil_socket_t sig, short what, void *base) {
  (void)sig, (void)what;
  event_base_loopbreak(base);
}

int main(int argc, char **argv) {
  int port = 50051;
  for (int i = 1; i < argc; i++) {
    char *end;
    long v;
    if (strncmp(argv[i], "--port=", 7) != 0 ||
        (errno = 0, v = strtol(argv[i] + 7, &end, 10), errno) || *end ||
        end == argv[i] + 7 || v < 0 || v > 65535) {
      fprintf(stderr, "usage: event-greeter-server [--port=N]\n");
      return 2;
    }
    port = (int)v;
  }
  struct event_base *base = event_base_new();
  crpc_event *ce;
  int rv = crpc_event_new(&ce, base, NULL);
  if (rv != 0) {
    fprintf(stderr, "crpc_event_new: %s\n", crpc_strerror(rv));
    return 1;
  }
  crpc_server *srv;
  crpc_server_opts so = {.loop = crpc_event_loop(ce)};
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
  printf("event-greeter-server listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
  struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
  event_add(sigint, NULL);
  event_add(sigterm, NULL);
  event_base_dispatch(base);
  crpc_server_shutdown(srv, 1000); /* drives crpc's loop while it waits */
  crpc_server_free(srv);
  crpc_event_free(ce);
  event_free(sigint);
  event_free(sigterm);
  event_base_free(base);
  return 0;
}
