/* Uses the generated API of proto/hello/greet.proto against an installed
 * crpc: the service table, handler registration, and (linked, not called:
 * there is no server) every client stub. */
#include <stdio.h>
#include <string.h>

#include "hello/greet.crpc.h"

static crpc_code greet(crpc_call *call,
                       const Consumer__Hello__GreetRequest *req,
                       Consumer__Hello__GreetReply *resp, void *user_data) {
  (void)call;
  (void)user_data;
  resp->text = req->name;
  return CRPC_OK;
}

static crpc_code chat(crpc_call *call, void *user_data) {
  Consumer__Hello__GreetRequest *req;
  (void)user_data;
  while (consumer__hello__greeter__chat__server_read(call, &req)) {
    Consumer__Hello__GreetReply reply = CONSUMER__HELLO__GREET_REPLY__INIT;
    reply.text = req->name;
    bool ok = consumer__hello__greeter__chat__server_write(call, &reply);
    consumer__hello__greet_request__free_unpacked(req, NULL);
    if (!ok)
      break;
  }
  return CRPC_OK;
}

int main(void) {
  const crpc_service *svc = &consumer__hello__greeter__crpc_service;
  if (strcmp(svc->name, "consumer.hello.Greeter") != 0 ||
      svc->n_methods != 2 ||
      strcmp(svc->methods[0].path, "/consumer.hello.Greeter/Greet") != 0 ||
      svc->methods[1].kind != CRPC_BIDI_STREAMING ||
      svc->methods[0].input != &consumer__hello__greet_request__descriptor) {
    fprintf(stderr, "unexpected service table\n");
    return 1;
  }

  crpc_server *server = NULL;
  int rv = crpc_server_new(&server, NULL);
  if (rv != 0) {
    fprintf(stderr, "crpc_server_new: %s\n", crpc_strerror(rv));
    return 1;
  }
  Consumer__Hello__Greeter_CrpcHandlers handlers = {.greet = greet,
                                                    .chat = chat};
  rv = consumer__hello__greeter__crpc_register(server, &handlers, NULL);
  crpc_server_free(server);
  if (rv != 0) {
    fprintf(stderr, "register: %s\n", crpc_strerror(rv));
    return 1;
  }

  /* Linked in: the client side of both methods. */
  volatile crpc_fn stubs[] = {
      (crpc_fn)consumer__hello__greeter__greet__call,
      (crpc_fn)consumer__hello__greeter__greet__call_async,
      (crpc_fn)consumer__hello__greeter__chat__start,
      (crpc_fn)consumer__hello__greeter__chat__write,
      (crpc_fn)consumer__hello__greeter__chat__writes_done,
      (crpc_fn)consumer__hello__greeter__chat__read,
      (crpc_fn)consumer__hello__greeter__chat__finish};
  for (size_t i = 0; i < sizeof(stubs) / sizeof(stubs[0]); i++)
    if (stubs[i] == NULL)
      return 1;

  printf("crpc %s: %s with %zu methods\n", crpc_version(), svc->name,
         svc->n_methods);
  return 0;
}
