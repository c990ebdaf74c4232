/*
 * greeter_client.c: calls Greeter.SayHello over mutual TLS.
 *
 *   tls-greeter-client [--target=HOST:PORT] [--name=NAME] [--certs=DIR]
 *                      [--ca=FILE] [--cert=FILE] [--key=FILE]
 *                      [--no_client_cert] [--server_name=NAME]
 *                      [--token=TOKEN]
 *
 * Trusts DIR/ca.pem and presents DIR/client.pem + DIR/client.key (DIR:
 * "certs", as made by make_certs.sh); the server's certificate must be
 * valid for the target's host name (or --server_name). --token sends
 * "authorization: Bearer TOKEN" with the call, through call credentials,
 * which crpc only ever sends over TLS.
 *
 * Prints "Greeter received: Hello NAME" and the identity the server saw,
 * and exits 0; on failure prints the status and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>

#include "helloworld.crpc.h"

/* Call credentials: run before each call, adding metadata. */
static crpc_code bearer(const char *method, crpc_metadata *md, void *ud) {
  (void)method;
  char value[512];
  snprintf(value, sizeof value, "Bearer %s", (const char *)ud);
  return crpc_metadata_add_str(md, "authorization", value) == 0
             ? CRPC_OK
             : CRPC_UNAUTHENTICATED;
}

static const char *in_dir(const char *dir, const char *file, char *buf,
                          size_t n) {
  snprintf(buf, n, "%s/%s", dir, file);
  return buf;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: tls-greeter-client [--target=HOST:PORT] [--name=NAME]\n"
          "    [--certs=DIR] [--ca=FILE] [--cert=FILE] [--key=FILE]\n"
          "    [--no_client_cert] [--server_name=NAME] [--token=TOKEN]\n");
}

int main(int argc, char **argv) {
  const char *target = "localhost:50051", *name = "world", *dir = "certs";
  const char *ca = NULL, *cert = NULL, *key = NULL, *server_name = NULL;
  const char *token = NULL;
  int no_client_cert = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--target=", 9) == 0)
      target = a + 9;
    else if (strncmp(a, "--name=", 7) == 0)
      name = a + 7;
    else if (strncmp(a, "--certs=", 8) == 0)
      dir = a + 8;
    else if (strncmp(a, "--ca=", 5) == 0)
      ca = a + 5;
    else if (strncmp(a, "--cert=", 7) == 0)
      cert = a + 7;
    else if (strncmp(a, "--key=", 6) == 0)
      key = a + 6;
    else if (strcmp(a, "--no_client_cert") == 0)
      no_client_cert = 1;
    else if (strncmp(a, "--server_name=", 14) == 0)
      server_name = a + 14;
    else if (strncmp(a, "--token=", 8) == 0)
      token = a + 8;
    else {
      usage(strcmp(a, "--help") == 0 ? stdout : stderr);
      return strcmp(a, "--help") == 0 ? 0 : 2;
    }
  }
  char cab[512], certb[512], keyb[512];
  crpc_tls_opts tls = {
      .ca_file = ca ? ca : in_dir(dir, "ca.pem", cab, sizeof cab),
      .server_name_override = server_name,
  };
  if (!no_client_cert) {
    tls.cert_file = cert ? cert : in_dir(dir, "client.pem", certb,
                                         sizeof certb);
    tls.key_file = key ? key : in_dir(dir, "client.key", keyb, sizeof keyb);
  }
  crpc_channel_opts opts = {.tls = &tls};
  if (token) {
    opts.call_creds = bearer;
    opts.call_creds_user_data = (void *)token;
  }
  crpc_channel *ch = NULL;
  int rv = crpc_channel_new(&ch, target, &opts);
  if (rv != 0) {
    /* e.g. CRPC_ETLS: a CA, certificate or key file that cannot be used */
    fprintf(stderr, "cannot create a TLS channel to %s: %s\n", target,
            crpc_strerror(rv));
    return 1;
  }

  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = (char *)name;
  Helloworld__HelloReply *reply = NULL;
  crpc_metadata *trailers = NULL;
  crpc_metadata_new(&trailers);
  crpc_call_opts copts = {.timeout_ms = 10000,
                          .trailing_metadata_out = trailers};
  crpc_status st = {0};
  crpc_code code =
      helloworld__greeter__say_hello__call(ch, &copts, &req, &reply, &st);
  int exit_code = 0;
  if (code == CRPC_OK) {
    size_t n = 0;
    const uint8_t *who = crpc_metadata_get(trailers, "x-client-subject", &n);
    printf("Greeter received: %s\n", reply->message);
    if (who)
      printf("The server saw: %.*s\n", (int)n, (const char *)who);
    helloworld__hello_reply__free_unpacked(reply, NULL);
  } else {
    /* TLS failures arrive as UNAVAILABLE with the reason, e.g. "TLS
     * handshake failed: server certificate verify failed: certificate has
     * expired" */
    fprintf(stderr, "SayHello failed: %s: %s\n", crpc_code_name(code),
            crpc_status_message(&st));
    exit_code = 1;
  }
  crpc_metadata_free(trailers);
  crpc_status_clear(&st);
  crpc_channel_free(ch);
  return exit_code;
}
