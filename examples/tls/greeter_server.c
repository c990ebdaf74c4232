/*
 * greeter_server.c: the helloworld Greeter over mutual TLS.
 *
 *   tls-greeter-server [--port=N] [--host=ADDR] [--certs=DIR]
 *                      [--cert=FILE] [--key=FILE] [--ca=FILE]
 *                      [--client_auth=require|request|none]
 *                      [--allow=PREFIX] [--token=TOKEN]
 *
 * By default it reads DIR/server.pem, DIR/server.key and DIR/ca.pem (DIR:
 * "certs", as made by make_certs.sh) and requires every client to present
 * a certificate signed by that CA. An authorization hook then runs before
 * the handler: with --allow, the client certificate must carry a
 * subjectAltName starting with PREFIX (e.g. a SPIFFE ID,
 * --allow=spiffe://crpc.test/); with --token, the call must carry
 * "authorization: Bearer TOKEN". The reply trailer x-client-subject says
 * who the server saw.
 *
 * Once serving it prints "crpc tls greeter listening on HOST:PORT".
 * SIGHUP reloads the certificate and key (after rotating the files); new
 * connections use them. SIGINT / SIGTERM stop it.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>

#include "helloworld.crpc.h"

typedef struct policy {
  const char *allow; /* SAN prefix, or NULL */
  const char *token; /* bearer token, or NULL */
} policy;

/* Runs before every handler, on the handler's thread. */
static crpc_code authorize(crpc_call *call, void *user_data) {
  const policy *p = user_data;
  if (p->token) {
    size_t n = 0;
    const uint8_t *v = crpc_metadata_get(crpc_call_request_metadata(call),
                                         "authorization", &n);
    size_t tlen = strlen(p->token);
    if (!v || n != 7 + tlen || memcmp(v, "Bearer ", 7) != 0 ||
        memcmp(v + 7, p->token, tlen) != 0) {
      crpc_call_set_status_message(call, v ? "invalid bearer token"
                                           : "missing bearer token");
      return CRPC_UNAUTHENTICATED;
    }
  }
  if (p->allow) {
    size_t count = crpc_call_peer_cert_san_count(call);
    for (size_t i = 0; i < count; i++) {
      const char *san = crpc_call_peer_cert_san(call, i);
      const char *id = strchr(san, ':') + 1; /* after "URI:" / "DNS:" */
      if (strncmp(id, p->allow, strlen(p->allow)) == 0)
        return CRPC_OK;
    }
    crpc_call_set_status_message(call, "client identity not allowed");
    return crpc_call_peer_cert_subject(call) ? CRPC_PERMISSION_DENIED
                                             : CRPC_UNAUTHENTICATED;
  }
  return CRPC_OK;
}

static crpc_code say_hello(crpc_call *call, const Helloworld__HelloRequest *req,
                           Helloworld__HelloReply *resp, void *user_data) {
  (void)user_data;
  const char *name = req->name ? req->name : "";
  size_t n = strlen(name) + sizeof "Hello ";
  char *msg = crpc_call_arena_alloc(call, n);
  if (!msg)
    return CRPC_RESOURCE_EXHAUSTED;
  snprintf(msg, n, "Hello %s", name);
  resp->message = msg;
  const char *subject = crpc_call_peer_cert_subject(call);
  if (!subject)
    subject = crpc_call_peer_is_tls(call) ? "(no client certificate)"
                                          : "(clear text)";
  crpc_call_add_trailing_metadata(call, "x-client-subject", subject,
                                  strlen(subject));
  fprintf(stderr, "SayHello(%s) from %s, %s\n", name, crpc_call_peer(call),
          subject);
  return CRPC_OK;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: tls-greeter-server [--port=N] [--host=ADDR] [--certs=DIR]\n"
          "    [--cert=FILE] [--key=FILE] [--ca=FILE]\n"
          "    [--client_auth=require|request|none] [--allow=PREFIX]\n"
          "    [--token=TOKEN]\n");
}

static const char *in_dir(const char *dir, const char *file, char *buf,
                          size_t n) {
  snprintf(buf, n, "%s/%s", dir, file);
  return buf;
}

int main(int argc, char **argv) {
  long port = 50051;
  const char *host = "127.0.0.1", *dir = "certs";
  const char *cert = NULL, *key = NULL, *ca = NULL, *auth = "require";
  policy pol = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--port=", 7) == 0) {
      char *end;
      errno = 0;
      port = strtol(a + 7, &end, 10);
      if (errno || *end || port < 0 || port > 65535) {
        fprintf(stderr, "bad port: %s\n", a + 7);
        return 2;
      }
    } else if (strncmp(a, "--host=", 7) == 0) {
      host = a + 7;
    } else if (strncmp(a, "--certs=", 8) == 0) {
      dir = a + 8;
    } else if (strncmp(a, "--cert=", 7) == 0) {
      cert = a + 7;
    } else if (strncmp(a, "--key=", 6) == 0) {
      key = a + 6;
    } else if (strncmp(a, "--ca=", 5) == 0) {
      ca = a + 5;
    } else if (strncmp(a, "--client_auth=", 14) == 0) {
      auth = a + 14;
    } else if (strncmp(a, "--allow=", 8) == 0) {
      pol.allow = a + 8;
    } else if (strncmp(a, "--token=", 8) == 0) {
      pol.token = a + 8;
    } else {
      usage(strcmp(a, "--help") == 0 ? stdout : stderr);
      return strcmp(a, "--help") == 0 ? 0 : 2;
    }
  }
  /* crpc copies what it needs: the file names are read again only by
   * crpc_server_reload_tls(), from its own copies */
  char certb[512], keyb[512], cab[512];
  crpc_tls_server_opts tls = {
      .cert_file = cert ? cert : in_dir(dir, "server.pem", certb, 512),
      .key_file = key ? key : in_dir(dir, "server.key", keyb, 512),
      .ca_file = ca ? ca : in_dir(dir, "ca.pem", cab, 512),
  };
  if (strcmp(auth, "require") == 0)
    tls.client_auth = CRPC_CLIENT_AUTH_REQUIRE;
  else if (strcmp(auth, "request") == 0)
    tls.client_auth = CRPC_CLIENT_AUTH_REQUEST;
  else if (strcmp(auth, "none") == 0)
    tls.client_auth = CRPC_CLIENT_AUTH_NONE;
  else {
    fprintf(stderr, "bad --client_auth: %s\n", auth);
    return 2;
  }

  /* Signals are taken by sigwait() below, never by a handler: block them
   * before crpc starts threads, which inherit the mask. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  crpc_server *server = NULL;
  int rv = crpc_server_new(&server, NULL);
  if (rv != 0) {
    fprintf(stderr, "crpc_server_new: %s\n", crpc_strerror(rv));
    return 1;
  }
  const Helloworld__Greeter_CrpcHandlers handlers = {.say_hello = say_hello};
  char addr[300];
  bool v6 = strchr(host, ':') && host[0] != '[';
  snprintf(addr, sizeof addr, v6 ? "[%s]:%ld" : "%s:%ld", host, port);
  int bound = 0;
  if ((rv = helloworld__greeter__crpc_register(server, &handlers, NULL)) ||
      (rv = crpc_server_set_auth_hook(server, authorize, &pol))) {
    fprintf(stderr, "register: %s\n", crpc_strerror(rv));
    goto fail;
  }
  /* A certificate or key that cannot be loaded fails here (CRPC_ETLS),
   * with the reason in crpc's log (set CRPC_LOG=info to see it). */
  if ((rv = crpc_server_listen(server, addr, &tls, &bound)) != 0) {
    fprintf(stderr, "cannot listen on %s with TLS (%s, %s): %s\n", addr,
            tls.cert_file, tls.key_file, crpc_strerror(rv));
    goto fail;
  }
  if ((rv = crpc_server_start(server)) != 0) {
    fprintf(stderr, "crpc_server_start: %s\n", crpc_strerror(rv));
    goto fail;
  }
  printf(v6 ? "crpc tls greeter listening on [%s]:%d\n"
            : "crpc tls greeter listening on %s:%d\n",
         host, bound);
  fflush(stdout);

  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig != SIGHUP)
      break;
    rv = crpc_server_reload_tls(server);
    fprintf(stderr, "SIGHUP: certificate reload %s\n",
            rv == 0 ? "done" : crpc_strerror(rv));
  }
  crpc_server_shutdown(server, 5000);
  crpc_server_free(server);
  return 0;
fail:
  crpc_server_free(server);
  return 1;
}
