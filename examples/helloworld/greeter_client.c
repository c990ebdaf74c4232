/*
 * greeter_client.c: calls Greeter.SayHello once and prints the reply.
 *
 *   helloworld-client [--target=HOST:PORT] [--name=NAME]
 *
 * Prints "Greeter received: Hello NAME" and exits 0; on failure prints the
 * status code's name and message to stderr and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include <crpc/crpc.h>

#include "helloworld.crpc.h"

static void usage(FILE *f) {
  fprintf(f, "usage: helloworld-client [--target=HOST:PORT] [--name=NAME]\n"
             "  --target  server address (default localhost:50051)\n"
             "  --name    who to greet (default world)\n");
}

int main(int argc, char **argv) {
  const char *target = "localhost:50051";
  const char *name = "world";
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--target=", 9) == 0) {
      target = argv[i] + 9;
    } else if (strncmp(argv[i], "--name=", 7) == 0) {
      name = argv[i] + 7;
    } else if (strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  crpc_channel *ch = NULL;
  int rv = crpc_channel_new(&ch, target, NULL);
  if (rv != 0) {
    fprintf(stderr, "cannot create a channel to %s: %s\n", target,
            crpc_strerror(rv));
    return 1;
  }

  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = (char *)name; /* borrowed: packed before the call returns */
  Helloworld__HelloReply *reply = NULL;
  crpc_status st = {0};
  crpc_code code =
      helloworld__greeter__say_hello__call(ch, NULL, &req, &reply, &st);
  int exit_code = 0;
  if (code == CRPC_OK) {
    printf("Greeter received: %s\n", reply->message);
    helloworld__hello_reply__free_unpacked(reply, NULL);
  } else {
    fprintf(stderr, "SayHello failed: %s: %s\n", crpc_code_name(code),
            crpc_status_message(&st));
    exit_code = 1;
  }
  crpc_status_clear(&st);
  crpc_channel_free(ch);
  return exit_code;
}
