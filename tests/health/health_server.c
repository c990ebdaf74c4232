#define _POSIX_C_SOURCE 200809L
/*
 * health_server.c: a crpc server with only the health service, driven
 * line by line on stdin by a test (py_health.py), so that the test decides
 * when statuses change without guessing at times:
 *
 *   set <service|-> <UNKNOWN|SERVING|NOT_SERVING|SERVICE_UNKNOWN>  ("-": "")
 *   watchers <n>     wait until n Watch handlers run; prints "watchers <n>"
 *   shutdown         crpc_health_shutdown()
 *
 * Every command answers one line ("ok ...", or "error ..."). EOF (or
 * "quit") shuts the server down and exits 0. It prints "listening on
 * 127.0.0.1:PORT" first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>

#include "../../lib/health_internal.h"

static int parse_status(const char *s, crpc_health_status *out) {
  static const char *const names[] = {"UNKNOWN", "SERVING", "NOT_SERVING",
                                      "SERVICE_UNKNOWN"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = (crpc_health_status)i;
      return 0;
    }
  return -1;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:0";
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--addr=", 7) == 0)
      addr = argv[i] + 7;
    else {
      fprintf(stderr, "usage: %s [--addr=127.0.0.1:0]\n", argv[0]);
      return 2;
    }
  }
  crpc_server *s;
  crpc_health *h;
  int port = 0, rv;
  if ((rv = crpc_server_new(&s, NULL)) != 0 ||
      (rv = crpc_health_new(&h)) != 0 ||
      (rv = crpc_health_register(h, s)) != 0 ||
      (rv = crpc_server_listen(s, addr, NULL, &port)) != 0 ||
      (rv = crpc_server_start(s)) != 0) {
    fprintf(stderr, "health_server: %s\n", crpc_strerror(rv));
    return 1;
  }
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);

  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[32], a[256], b[64];
    int n = sscanf(line, "%31s %255s %63s", cmd, a, b);
    if (n < 1)
      continue;
    if (strcmp(cmd, "quit") == 0)
      break;
    if (strcmp(cmd, "set") == 0 && n == 3) {
      crpc_health_status st;
      if (parse_status(b, &st) != 0) {
        printf("error bad status %s\n", b);
      } else {
        rv = crpc_health_set(h, strcmp(a, "-") == 0 ? "" : a, st);
        if (rv == 0)
          printf("ok set\n");
        else
          printf("error %s\n", crpc_err_name(rv));
      }
    } else if (strcmp(cmd, "watchers") == 0 && n == 2) {
      size_t now;
      if (crpc__health_wait_watchers(h, strtoul(a, NULL, 10), 10000, &now) ==
          0)
        printf("ok watchers %zu\n", now);
      else
        printf("error watchers %zu\n", now);
    } else if (strcmp(cmd, "shutdown") == 0) {
      crpc_health_shutdown(h);
      printf("ok shutdown\n");
    } else {
      printf("error unknown command\n");
    }
    fflush(stdout);
  }
  crpc_health_shutdown(h);
  crpc_server_shutdown(s, 5000);
  crpc_server_free(s);
  crpc_health_free(h);
  return 0;
}
