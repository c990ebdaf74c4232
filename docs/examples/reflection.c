/*
 * The code of docs/reflection.md: a Greeter server with health and
 * reflection, and a crpc client that lists its services through
 * reflection alone (stubs from gRPC's own reflection.proto). Compiled and
 * run by ctest (docs_example_reflection).
 */
#include <stdio.h>

#include "grpc/reflection/v1/reflection.crpc.h"
#include "helloworld.crpc.h"

static crpc_code say_hello(crpc_call *call, const Helloworld__HelloRequest *req,
                           Helloworld__HelloReply *resp, void *user_data) {
  (void)call;
  (void)req;
  (void)user_data;
  resp->message = "Hello";
  return CRPC_OK;
}

// [reflection-server]
static int serve(crpc_server **out, crpc_health **health, int *port) {
  crpc_server *s = NULL;
  const Helloworld__Greeter_CrpcHandlers handlers = {.say_hello = say_hello};
  int rv = crpc_server_new(&s, NULL);
  if (rv == 0)
    rv = helloworld__greeter__crpc_register(s, &handlers, NULL);
  if (rv == 0)
    rv = crpc_health_new(health);
  if (rv == 0)
    rv = crpc_health_register(*health, s);
  if (rv == 0) /* describes everything registered on s by start */
    rv = crpc_server_enable_reflection(s);
  if (rv == 0)
    rv = crpc_server_listen(s, "127.0.0.1:0", NULL, port);
  if (rv == 0)
    rv = crpc_server_start(s);
  if (rv != 0) {
    fprintf(stderr, "server: %s\n", crpc_strerror(rv));
    crpc_server_free(s);
    return rv;
  }
  *out = s;
  return 0;
}
// [reflection-server]

// [reflection-list]
/* Asks the server at |ch| which services it has, as grpcurl list does. */
static int list_services(crpc_channel *ch) {
  crpc_call *call;
  crpc_call_opts opts = {.timeout_ms = 5000};
  int rv =
      grpc__reflection__v1__server_reflection__server_reflection_info__start(
          &call, ch, &opts);
  if (rv != 0)
    return rv;
  Grpc__Reflection__V1__ServerReflectionRequest req =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  req.list_services = "";
  grpc__reflection__v1__server_reflection__server_reflection_info__write(call,
                                                                         &req);
  grpc__reflection__v1__server_reflection__server_reflection_info__writes_done(
      call);
  Grpc__Reflection__V1__ServerReflectionResponse *resp = NULL;
  while (grpc__reflection__v1__server_reflection__server_reflection_info__read(
      call, &resp)) {
    if (resp->message_response_case ==
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE)
      for (size_t i = 0; i < resp->list_services_response->n_service; i++)
        printf("%s\n", resp->list_services_response->service[i]->name);
    grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
  }
  crpc_status st = {0};
  crpc_code code =
      grpc__reflection__v1__server_reflection__server_reflection_info__finish(
          call, &st);
  if (code != CRPC_OK)
    fprintf(stderr, "reflection: %s\n", crpc_status_message(&st));
  crpc_status_clear(&st);
  crpc_call_free(call);
  return code == CRPC_OK ? 0 : -1;
}
// [reflection-list]

int main(void) {
  crpc_server *s = NULL;
  crpc_health *health = NULL;
  int port = 0;
  if (serve(&s, &health, &port) != 0)
    return 1;
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  crpc_channel *ch = NULL;
  int rv = crpc_channel_new(&ch, target, NULL);
  if (rv == 0)
    rv = list_services(ch);
  crpc_channel_free(ch);
  crpc_health_shutdown(health);
  crpc_server_free(s);
  crpc_health_free(health);
  return rv == 0 ? 0 : 1;
}
