/*
 * uv_greeter_client.c: calls a Greeter from a libuv loop, in one thread.
 *
 *   uv-greeter-client --target=HOST:PORT [--name=NAME]
 *
 * Prints "Greeter received: Hello NAME" (the server's reply) and exits 0,
 * or prints the status and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include <crpc/crpc.h>
#include <crpc/uv.h>

#include "helloworld.crpc.h"

static int exit_code = 1;

static void on_reply(crpc_call *call, const crpc_status *st,
                     const Helloworld__HelloReply *reply, void *ud) {
  (void)call;
  uv_loop_t *uv = ud;
  if (st->code == CRPC_OK) {
    printf("Greeter received: %s\n", reply->message ? reply->message : "");
    exit_code = 0;
  } else {
    fprintf(stderr, "SayHello failed: %s: %s\n", crpc_code_name(st->code),
            crpc_status_message(st));
  }
  uv_stop(uv);
}

int main(int argc, char **argv) {
  const char *target = NULL, *name = "world";
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--target=", 9) == 0)
      target = argv[i] + 9;
    else if (strncmp(argv[i], "--name=", 7) == 0)
      name = argv[i] + 7;
    else
      target = NULL, i = argc;
  }
  if (!target) {
    fprintf(stderr, "usage: uv-greeter-client --target=HOST:PORT "
                    "[--name=NAME]\n");
    return 2;
  }
  uv_loop_t *uv = uv_default_loop();
  crpc_uv *cu;
  crpc_channel *ch;
  int rv = crpc_uv_new(&cu, uv, NULL);
  crpc_channel_opts co = {.loop = rv == 0 ? crpc_uv_loop(cu) : NULL};
  if (rv != 0 || (rv = crpc_channel_new(&ch, target, &co)) != 0) {
    fprintf(stderr, "cannot use %s: %s\n", target, crpc_strerror(rv));
    return 2;
  }
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = (char *)name;
  crpc_call_opts o = {.timeout_ms = 10000};
  rv = helloworld__greeter__say_hello__call_async(ch, &o, &req, on_reply, uv);
  if (rv != 0) {
    fprintf(stderr, "SayHello: %s\n", crpc_strerror(rv));
    return 1;
  }
  uv_run(uv, UV_RUN_DEFAULT);
  crpc_channel_free(ch);
  crpc_uv_free(cu);
  uv_run(uv, UV_RUN_DEFAULT); /* the adapter's handles close */
  uv_loop_close(uv);
  return exit_code;
}
