/*
 * refl_server.c: a crpc server for the reflection tests (py_reflection.py)
 * whose proto imports well-known types and declares extensions, which the
 * example servers' protos do not. It serves crpc.refltest.Events (Echo
 * answers its request), health and reflection, prints "listening on
 * 127.0.0.1:PORT", and shuts down when stdin reaches EOF, so the test
 * decides when it ends.
 */
#include <stdio.h>
#include <string.h>

#include <crpc/crpc.h>

#include "refl_test.crpc.h"

static crpc_code echo(crpc_call *call, const Crpc__Refltest__Event *req,
                      Crpc__Refltest__Event *resp, void *user_data) {
  (void)call;
  (void)user_data;
  /* |req| lives until the response is packed, after we return */
  resp->name = req->name;
  return CRPC_OK;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:0";
  bool reflection = true;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--reflection=false") == 0) {
      reflection = false;
    } else {
      fprintf(stderr, "usage: %s [--reflection=false]\n", argv[0]);
      return 2;
    }
  }
  crpc_server *s = NULL;
  crpc_health *h = NULL;
  const Crpc__Refltest__Events_CrpcHandlers handlers = {.echo = echo};
  int port = 0, rv;
  if ((rv = crpc_server_new(&s, NULL)) != 0 ||
      (rv = crpc__refltest__events__crpc_register(s, &handlers, NULL)) != 0 ||
      (rv = crpc_health_new(&h)) != 0 ||
      (rv = crpc_health_register(h, s)) != 0 ||
      (reflection && (rv = crpc_server_enable_reflection(s)) != 0) ||
      (rv = crpc_server_listen(s, addr, NULL, &port)) != 0 ||
      (rv = crpc_server_start(s)) != 0) {
    fprintf(stderr, "refl_server: %s\n", crpc_strerror(rv));
    crpc_server_free(s);
    crpc_health_free(h);
    return 1;
  }
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  char buf[256];
  while (fgets(buf, sizeof buf, stdin))
    ;
  crpc_health_shutdown(h);
  crpc_server_shutdown(s, 1000);
  crpc_server_free(s);
  crpc_health_free(h);
  return 0;
}
