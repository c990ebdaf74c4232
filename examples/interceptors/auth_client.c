/*
 * auth_client.c: calls Greeter.SayHello through a client interceptor that
 * adds "authorization: Bearer T" to every call (crpc/interceptor.h).
 *
 *   interceptors-client [--target=HOST:PORT] [--token=T] [--name=NAME]
 *
 * Without --token no header is added. Prints "Greeter received: ..." and
 * exits 0, or prints the status ("UNAUTHENTICATED: ...") to stderr and
 * exits 1.
 */
#include <stdio.h>
#include <string.h>

#include <crpc/crpc.h>

#include "helloworld.crpc.h"

/* |ud| is the token. Runs on the thread starting each call. */
static crpc_code add_token(crpc_call *call, const crpc_method *m,
                           crpc_metadata *md, void *ud) {
  (void)call;
  (void)m;
  char value[512];
  int n = snprintf(value, sizeof value, "Bearer %s", (const char *)ud);
  if (n < 0 || (size_t)n >= sizeof value)
    return CRPC_INVALID_ARGUMENT; /* the call fails locally, unsent */
  return crpc_metadata_add_str(md, "authorization", value) == 0
             ? CRPC_OK
             : CRPC_RESOURCE_EXHAUSTED;
}

static const crpc_client_interceptor bearer = {.on_start = add_token};

int main(int argc, char **argv) {
  const char *target = "localhost:50051", *token = NULL, *name = "world";
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--target=", 9) == 0) {
      target = argv[i] + 9;
    } else if (strncmp(argv[i], "--token=", 8) == 0) {
      token = argv[i] + 8;
    } else if (strncmp(argv[i], "--name=", 7) == 0) {
      name = argv[i] + 7;
    } else {
      fprintf(stderr, "usage: interceptors-client [--target=HOST:PORT] "
                      "[--token=T] [--name=NAME]\n");
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  crpc_channel *ch = NULL;
  int rv = crpc_channel_new(&ch, target, NULL);
  if (rv == 0 && token)
    rv = crpc_channel_add_interceptor(ch, &bearer, (void *)token);
  if (rv != 0) {
    fprintf(stderr, "interceptors-client: %s\n", crpc_strerror(rv));
    crpc_channel_free(ch);
    return 1;
  }
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = (char *)name;
  Helloworld__HelloReply *reply = NULL;
  crpc_status st = {0};
  crpc_code code =
      helloworld__greeter__say_hello__call(ch, NULL, &req, &reply, &st);
  int exit_code = 0;
  if (code == CRPC_OK) {
    printf("Greeter received: %s\n", reply->message);
    helloworld__hello_reply__free_unpacked(reply, NULL);
  } else {
    fprintf(stderr, "%s: %s\n", crpc_code_name(code),
            crpc_status_message(&st));
    exit_code = 1;
  }
  crpc_status_clear(&st);
  crpc_channel_free(ch);
  return exit_code;
}
