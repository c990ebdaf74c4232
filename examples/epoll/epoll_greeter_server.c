/*
 * epoll_greeter_server.c: the helloworld Greeter in a hand-written epoll
 * loop, one thread, crpc driven through its one descriptor (crpc/loop.h):
 * the loop also watches a signalfd of its own next to crpc's.
 *
 *   epoll-greeter-server [--port=N]
 *
 * Prints "epoll-greeter-server listening on 127.0.0.1:PORT"; SIGINT or
 * SIGTERM stop it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <crpc/crpc.h>

#include "helloworld.crpc.h"

static crpc_code say_hello(crpc_call *call, const Helloworld__HelloRequest *req,
                           Helloworld__HelloReply *resp, void *user_data) {
  (void)user_data;
  const char *name = req->name ? req->name : "";
  char *msg = crpc_call_arena_alloc(call, strlen(name) + 7);
  if (!msg)
    return CRPC_RESOURCE_EXHAUSTED;
  sprintf(msg, "Hello %s", name);
  resp->message = msg;
  return CRPC_OK;
}

int main(int argc, char **argv) {
  int port = 50051;
  for (int i = 1; i < argc; i++) {
    char *end;
    long v;
    if (strncmp(argv[i], "--port=", 7) != 0 ||
        (errno = 0, v = strtol(argv[i] + 7, &end, 10), errno) || *end ||
        end == argv[i] + 7 || v < 0 || v > 65535) {
      fprintf(stderr, "usage: epoll-greeter-server [--port=N]\n");
      return 2;
    }
    port = (int)v;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, NULL);
  int sfd = signalfd(-1, &stop, SFD_CLOEXEC);

  crpc_loop *loop;
  int rv = crpc_loop_new(&loop, NULL); /* one-descriptor mode */
  crpc_server *srv = NULL;
  crpc_server_opts so = {.loop = loop};
  Helloworld__Greeter_CrpcHandlers h = {.say_hello = say_hello};
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  if (rv != 0 || (rv = crpc_server_new(&srv, &so)) != 0 ||
      (rv = crpc_server_register_service(srv, &helloworld__greeter__crpc_service,
                                         &h, CRPC_HANDLER_NONBLOCKING,
                                         NULL)) != 0 ||
      (rv = crpc_server_listen(srv, addr, NULL, &port)) != 0 ||
      (rv = crpc_server_start(srv)) != 0) {
    fprintf(stderr, "cannot serve on %s: %s\n", addr, crpc_strerror(rv));
    return 1;
  }
  /* our loop: crpc's descriptor and our signalfd */
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = crpc_loop_fd(loop)};
  epoll_ctl(ep, EPOLL_CTL_ADD, crpc_loop_fd(loop), &ev);
  ev.data.fd = sfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
  printf("epoll-greeter-server listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  for (bool running = true; running;) {
    struct epoll_event got[8];
    int64_t t = crpc_loop_timeout_ms(loop);
    int n = epoll_wait(ep, got, 8, t < 0 ? -1 : (t > 60000 ? 60000 : (int)t));
    for (int i = 0; i < n; i++)
      if (got[i].data.fd == sfd)
        running = false;
    crpc_loop_run_once(loop, 0); /* whatever is ready, never blocking */
  }
  crpc_server_shutdown(srv, 1000);
  crpc_server_free(srv);
  crpc_loop_free(loop);
  close(ep);
  close(sfd);
  return 0;
}
