/*
 * docs/getting-started.md, compiled and run by ctest (docs_example_getting_
 * started): a Greeter server on a free port and a client calling it, in one
 * program. Every ```c block of the guide is a piece of this file.
 */
#include <stdio.h>
#include <string.h>

#include "helloworld.crpc.h"

// [server-handler]
static crpc_code say_hello(crpc_call *call, const Helloworld__HelloRequest *req,
                           Helloworld__HelloReply *resp, void *user_data) {
  (void)user_data;
  size_t n = strlen(req->name) + sizeof("Hello ");
  resp->message = crpc_call_arena_alloc(call, n); /* freed with the call */
  if (resp->message == NULL)
    return CRPC_RESOURCE_EXHAUSTED;
  snprintf(resp->message, n, "Hello %s", req->name);
  return CRPC_OK;
}
// [server-handler]

static int run_client(const char *target) {
  // [client]
  crpc_channel *ch;
  int rv = crpc_channel_new(&ch, target, NULL);
  if (rv != 0) {
    fprintf(stderr, "channel: %s\n", crpc_strerror(rv));
    return 1;
  }
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = "world";
  Helloworld__HelloReply *reply = NULL;
  crpc_status st = {0};
  crpc_call_opts opts = {.timeout_ms = 2000};
  crpc_code code =
      helloworld__greeter__say_hello__call(ch, &opts, &req, &reply, &st);
  if (code == CRPC_OK) {
    printf("%s\n", reply->message);
    helloworld__hello_reply__free_unpacked(reply, NULL);
  } else {
    fprintf(stderr, "SayHello: %s: %s\n", crpc_code_name(code),
            crpc_status_message(&st));
  }
  crpc_status_clear(&st);
  crpc_channel_free(ch);
  // [client]
  return code == CRPC_OK ? 0 : 1;
}

int main(void) {
  // [server]
  crpc_server *srv;
  int port = 0;
  if (crpc_server_new(&srv, NULL) != 0)
    return 1;
  Helloworld__Greeter_CrpcHandlers handlers = {.say_hello = say_hello};
  int rv = helloworld__greeter__crpc_register(srv, &handlers, NULL);
  if (rv == 0)
    rv = crpc_server_listen(srv, "127.0.0.1:0", NULL, &port);
  if (rv == 0)
    rv = crpc_server_start(srv);
  if (rv != 0) {
    fprintf(stderr, "server: %s\n", crpc_strerror(rv));
    crpc_server_free(srv);
    return 1;
  }
  // [server]
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  int result = run_client(target);
  // [shutdown]
  crpc_server_shutdown(srv, 1000); /* let running calls finish for 1 s */
  crpc_server_free(srv);
  // [shutdown]
  return result;
}
