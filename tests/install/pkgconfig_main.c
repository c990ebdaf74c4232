/* The pkg-config consumer: generated with the plugin pkg-config names,
 * built with `pkg-config --cflags --libs crpc`. */
#include <stdio.h>
#include <string.h>

#include "hello/greet.crpc.h"

int main(void) {
  const crpc_service *svc = &consumer__hello__greeter__crpc_service;
  crpc_status st = {0};
  if (strcmp(crpc_status_message(&st), "OK") != 0 ||
      strcmp(svc->methods[1].path, "/consumer.hello.Greeter/Chat") != 0)
    return 1;
  printf("crpc %s via pkg-config: %s\n", crpc_version(), svc->name);
  return 0;
}
