#define _POSIX_C_SOURCE 200809L
/*
 * greeter_client.c: calls Greeter.SayHello and prints the reply.
 *
 *   helloworld-client [--target=HOST:PORT] [--name=NAME] [--count=N]
 *                     [--lb_policy=pick_first|round_robin]
 *                     [--service_config=JSON] [--wait_for_ready]
 *                     [--timeout_ms=N] [--min_resolution_interval_ms=N]
 *                     [--print_calls]
 *
 * One call (the default): prints "Greeter received: Hello NAME" and exits
 * 0; on failure prints the status code's name and message to stderr and
 * exits 1. With --count=N it makes N calls one after the other on one
 * channel and prints one summary line,
 *
 *   calls=N ok=K failed=F status: OK=K UNAVAILABLE=F ...
 *
 * (the codes that occurred, in code order), exiting 0 when every call
 * succeeded, 1 otherwise. --print_calls adds a line per call before it:
 * "call I MS CODE SERVED_BY" (MS: when the call ended, in CLOCK_MONOTONIC
 * milliseconds, comparable across processes on the machine; SERVED_BY:
 * the server's x-served-by trailer, helloworld-server --server_id, or
 * "-"), each line flushed as it is written.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <crpc/crpc.h>

#include "helloworld.crpc.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: helloworld-client [--target=HOST:PORT] [--name=NAME] "
          "[--count=N]\n"
          "         [--lb_policy=pick_first|round_robin] "
          "[--service_config=JSON]\n"
          "         [--wait_for_ready] [--timeout_ms=N] "
          "[--min_resolution_interval_ms=N] [--print_calls]\n"
          "  --target  server address (default localhost:50051): host:port,\n"
          "            dns:///name:port, ipv4:a:p,b:p, unix:path\n"
          "  --name    who to greet (default world)\n"
          "  --count   calls to make (default 1); more than one prints a\n"
          "            summary line: calls=N ok=K failed=F status: CODE=n ...\n"
          "  --lb_policy  load balancing over the target's addresses\n"
          "  --service_config  the channel's service config (gRPC JSON)\n"
          "  --wait_for_ready  calls wait for a connection instead of failing\n"
          "  --timeout_ms  each call's deadline (default none)\n"
          "  --min_resolution_interval_ms  least time between two name\n"
          "            resolutions (default 30000)\n"
          "  --print_calls  one line per call: call I MS CODE SERVED_BY\n"
          "            (MS: the call's end, CLOCK_MONOTONIC milliseconds)\n");
}

static int parse_long(const char *s, long min, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min)
    return -1;
  *out = v;
  return 0;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  const char *target = "localhost:50051";
  const char *name = "world";
  crpc_channel_opts copts = {0};
  crpc_call_opts call_opts = {0};
  long count = 1, v;
  bool print_calls = false;
  char err[512];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--target=", 9) == 0) {
      target = a + 9;
    } else if (strncmp(a, "--name=", 7) == 0) {
      name = a + 7;
    } else if (strncmp(a, "--count=", 8) == 0 &&
               parse_long(a + 8, 1, &count) == 0) {
    } else if (strncmp(a, "--lb_policy=", 12) == 0) {
      copts.lb_policy = a + 12;
    } else if (strncmp(a, "--service_config=", 17) == 0) {
      copts.service_config_json = a + 17;
    } else if (strcmp(a, "--wait_for_ready") == 0) {
      call_opts.flags |= CRPC_CALL_WAIT_FOR_READY;
    } else if (strncmp(a, "--timeout_ms=", 13) == 0 &&
               parse_long(a + 13, 1, &v) == 0) {
      call_opts.timeout_ms = v;
    } else if (strncmp(a, "--min_resolution_interval_ms=", 29) == 0 &&
               parse_long(a + 29, 1, &v) == 0) {
      copts.min_resolution_interval_ms = v;
    } else if (strcmp(a, "--print_calls") == 0) {
      print_calls = true;
    } else if (strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "helloworld-client: bad argument: %s\n", a);
      usage(stderr);
      return 2;
    }
  }

  copts.error_buf = err;
  copts.error_buf_size = sizeof err;
  crpc_channel *ch = NULL;
  int rv = crpc_channel_new(&ch, target, &copts);
  if (rv != 0) {
    fprintf(stderr, "cannot create a channel to %s: %s%s%s\n", target,
            crpc_strerror(rv), err[0] ? ": " : "", err);
    return rv == CRPC_EINVAL ? 2 : 1;
  }

  crpc_metadata *trailers = NULL;
  if (print_calls && crpc_metadata_new(&trailers) != 0) {
    fprintf(stderr, "out of memory\n");
    crpc_channel_free(ch);
    return 1;
  }
  call_opts.trailing_metadata_out = trailers;
  if (print_calls)
    setvbuf(stdout, NULL, _IOLBF, 0); /* a reader sees each call as it ends */
  long per_code[CRPC_UNAUTHENTICATED + 1] = {0};
  long ok = 0;
  for (long i = 0; i < count; i++) {
    Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
    req.name = (char *)name; /* borrowed: packed before the call returns */
    Helloworld__HelloReply *reply = NULL;
    crpc_status st = {0};
    if (trailers)
      crpc_metadata_clear(trailers);
    crpc_code code = helloworld__greeter__say_hello__call(ch, &call_opts,
                                                          &req, &reply, &st);
    if ((unsigned)code <= CRPC_UNAUTHENTICATED)
      per_code[code]++;
    if (code == CRPC_OK)
      ok++;
    if (print_calls) {
      size_t len = 0;
      const uint8_t *by =
          crpc_metadata_get(trailers, "x-served-by", &len);
      printf("call %ld %lld %s %.*s\n", i, (long long)now_ms(),
             crpc_code_name(code), by ? (int)len : 1,
             by ? (const char *)by : "-");
    }
    if (count == 1) {
      if (code == CRPC_OK)
        printf("Greeter received: %s\n", reply->message);
      else
        fprintf(stderr, "SayHello failed: %s: %s\n", crpc_code_name(code),
                crpc_status_message(&st));
    } else if (code != CRPC_OK && per_code[code] == 1) {
      /* the first failure of each kind says why */
      fprintf(stderr, "call %ld: %s: %s\n", i, crpc_code_name(code),
              crpc_status_message(&st));
    }
    if (reply)
      helloworld__hello_reply__free_unpacked(reply, NULL);
    crpc_status_clear(&st);
  }
  if (count > 1) {
    printf("calls=%ld ok=%ld failed=%ld status:", count, ok, count - ok);
    for (int c = 0; c <= CRPC_UNAUTHENTICATED; c++)
      if (per_code[c])
        printf(" %s=%ld", crpc_code_name((crpc_code)c), per_code[c]);
    printf("\n");
  }
  crpc_metadata_free(trailers);
  crpc_channel_free(ch);
  return ok == count ? 0 : 1;
}
