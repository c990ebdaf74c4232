/*
 * The code of docs/errors-and-status.md, deadlines-and-cancellation.md,
 * metadata.md, tls.md, compression-and-limits.md, deploying.md and
 * performance.md, on proto/helloworld.proto. Compiled by ctest's build;
 * every ```c block of those guides is a piece of this file.
 */
#include <stdio.h>
#include <string.h>

#include "helloworld.crpc.h"

/* ---- errors and status ---- */

// [errors-api]
static int make_channel(crpc_channel **ch, const char *target) {
  int rv = crpc_channel_new(ch, target, NULL);
  if (rv < 0) /* an API error: negative CRPC_E* */
    fprintf(stderr, "crpc_channel_new: %s (%s)\n", crpc_strerror(rv),
            crpc_err_name(rv));
  return rv;
}
// [errors-api]

// [errors-rpc]
static void call_and_report(crpc_channel *ch) {
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = "x";
  Helloworld__HelloReply *reply = NULL;
  crpc_status st = {0};
  crpc_code code =
      helloworld__greeter__say_hello__call(ch, NULL, &req, &reply, &st);
  switch (code) {
  case CRPC_OK:
    helloworld__hello_reply__free_unpacked(reply, NULL);
    break;
  case CRPC_UNAVAILABLE: /* not connected: retry later */
  case CRPC_DEADLINE_EXCEEDED:
  default:
    fprintf(stderr, "%s: %s (%zu bytes of details)\n", crpc_code_name(code),
            crpc_status_message(&st), st.details_len);
  }
  crpc_status_clear(&st); /* frees message and details */
}
// [errors-rpc]

// [errors-server]
static crpc_code say_hello_strict(crpc_call *call,
                                  const Helloworld__HelloRequest *req,
                                  Helloworld__HelloReply *resp,
                                  void *user_data) {
  (void)user_data;
  if (req->name == NULL || req->name[0] == '\0') {
    crpc_call_set_status_message(call, "name must not be empty");
    return CRPC_INVALID_ARGUMENT;
  }
  resp->message = "hello";
  return CRPC_OK;
}
// [errors-server]

/* ---- deadlines and cancellation ---- */

// [deadline-client]
static crpc_code with_deadline(crpc_channel *ch,
                               const Helloworld__HelloRequest *req) {
  crpc_call_opts opts = {.timeout_ms = 250}; /* sent as grpc-timeout */
  Helloworld__HelloReply *reply = NULL;
  crpc_code code =
      helloworld__greeter__say_hello__call(ch, &opts, req, &reply, NULL);
  if (code == CRPC_OK)
    helloworld__hello_reply__free_unpacked(reply, NULL);
  return code; /* CRPC_DEADLINE_EXCEEDED when 250 ms passed */
}
// [deadline-client]

// [deadline-server]
static crpc_code slow_handler(crpc_call *call,
                              const Helloworld__HelloRequest *req,
                              Helloworld__HelloReply *resp, void *user_data) {
  (void)req;
  (void)user_data;
  for (int step = 0; step < 100; step++) {
    if (crpc_call_is_cancelled(call) || crpc_call_time_left_ms(call) == 0)
      return CRPC_CANCELLED; /* nobody is waiting for the answer */
    /* ... one slice of the work ... */
  }
  resp->message = "done";
  return CRPC_OK;
}
// [deadline-server]

// [cancel-client]
static void stream_until_enough(crpc_channel *ch) {
  crpc_call *call;
  crpc_call_opts opts = {.flags = CRPC_CALL_WAIT_FOR_READY};
  if (crpc_call_start(&call, ch, &helloworld__greeter__crpc_methods[0],
                      &opts) != 0)
    return;
  crpc_call_cancel(call); /* any thread; the call ends CANCELLED */
  crpc_call_free(call);   /* also cancels a call that has not finished */
}
// [cancel-client]

/* ---- metadata ---- */

// [metadata-client]
static void with_metadata(crpc_channel *ch) {
  crpc_metadata *md, *headers, *trailers;
  crpc_metadata_new(&md);
  crpc_metadata_new(&headers);
  crpc_metadata_new(&trailers);
  crpc_metadata_add_str(md, "x-request-id", "42");
  const uint8_t token[4] = {0, 1, 2, 3};
  crpc_metadata_add(md, "x-token-bin", token, sizeof(token)); /* binary */

  crpc_call_opts opts = {.metadata = md,
                         .initial_metadata_out = headers,
                         .trailing_metadata_out = trailers};
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = "md";
  Helloworld__HelloReply *reply = NULL;
  if (helloworld__greeter__say_hello__call(ch, &opts, &req, &reply, NULL) ==
      CRPC_OK)
    helloworld__hello_reply__free_unpacked(reply, NULL);

  for (size_t i = 0; i < crpc_metadata_count(trailers); i++) {
    const char *key;
    const uint8_t *value;
    size_t len;
    crpc_metadata_at(trailers, i, &key, &value, &len);
    printf("trailer %s (%zu bytes)\n", key, len);
  }
  crpc_metadata_free(md);
  crpc_metadata_free(headers);
  crpc_metadata_free(trailers);
}
// [metadata-client]

// [metadata-server]
static crpc_code echo_request_id(crpc_call *call,
                                 const Helloworld__HelloRequest *req,
                                 Helloworld__HelloReply *resp,
                                 void *user_data) {
  (void)req;
  (void)user_data;
  size_t len;
  const uint8_t *id =
      crpc_metadata_get(crpc_call_request_metadata(call), "x-request-id", &len);
  if (id != NULL)
    crpc_call_add_initial_metadata(call, "x-request-id", id, len);
  crpc_call_add_trailing_metadata(call, "x-served-by", "docs", 4);
  resp->message = "ok";
  return CRPC_OK;
}
// [metadata-server]

/* ---- TLS and mutual TLS ---- */

// [tls-client]
static int tls_channel(crpc_channel **ch) {
  crpc_tls_opts tls = {
      .ca_file = "ca.pem",          /* NULL: the system trust store */
      .cert_file = "client.pem",    /* mutual TLS: our certificate */
      .key_file = "client.key",
  };
  crpc_channel_opts o = {.tls = &tls}; /* copied: may live on the stack */
  return crpc_channel_new(ch, "greeter.example.com:443", &o);
}
// [tls-client]

// [tls-server]
static crpc_code require_client_cn(crpc_call *call, void *user_data) {
  (void)user_data;
  const char *subject = crpc_call_peer_cert_subject(call);
  if (subject == NULL || strstr(subject, "CN=client") == NULL) {
    crpc_call_set_status_message(call, "client certificate not allowed");
    return CRPC_PERMISSION_DENIED;
  }
  return CRPC_OK;
}

static int tls_listen(crpc_server *srv, int *port) {
  crpc_tls_server_opts tls = {
      .cert_file = "server.pem",
      .key_file = "server.key",
      .ca_file = "ca.pem", /* CAs that sign client certificates */
      .client_auth = CRPC_CLIENT_AUTH_REQUIRE,
  };
  int rv = crpc_server_set_auth_hook(srv, require_client_cn, NULL);
  if (rv == 0)
    rv = crpc_server_listen(srv, "0.0.0.0:50051", &tls, port);
  return rv; /* later, after rotating the files: crpc_server_reload_tls() */
}
// [tls-server]

// [call-creds]
static crpc_code bearer_token(const char *method_path, crpc_metadata *md,
                              void *user_data) {
  (void)method_path;
  const char *token = user_data;
  char value[256];
  snprintf(value, sizeof(value), "Bearer %s", token);
  return crpc_metadata_add_str(md, "authorization", value) == 0
             ? CRPC_OK
             : CRPC_UNAUTHENTICATED;
}

static int channel_with_token(crpc_channel **ch, const crpc_tls_opts *tls,
                              char *token) {
  crpc_channel_opts o = {.tls = tls,
                         .call_creds = bearer_token,
                         .call_creds_user_data = token};
  return crpc_channel_new(ch, "greeter.example.com:443", &o);
}
// [call-creds]

/* ---- compression and limits ---- */

// [compression-client]
static int compressed_channel(crpc_channel **ch, const char *target) {
  crpc_channel_opts o = {
      .compression = "gzip",                  /* every call's messages */
      .max_recv_msg_size = 16u * 1024 * 1024, /* default 4 MiB */
      .max_send_msg_size = 16u * 1024 * 1024, /* default: no limit */
  };
  return crpc_channel_new(ch, target, &o);
}
// [compression-client]

// [compression-server]
static crpc_code compressed_reply(crpc_call *call,
                                  const Helloworld__HelloRequest *req,
                                  Helloworld__HelloReply *resp,
                                  void *user_data) {
  (void)req;
  (void)user_data;
  /* Only if the client accepts gzip (grpc-accept-encoding); else plain. */
  crpc_call_set_compression(call, "gzip");
  resp->message = "a long and very repetitive reply reply reply reply";
  return CRPC_OK;
}

static int limited_server(crpc_server **srv) {
  crpc_server_opts o = {
      .max_recv_msg_size = 1024 * 1024, /* larger: RESOURCE_EXHAUSTED */
      .max_concurrent_streams = 200,    /* per connection; default 100 */
      .max_connections = 10000,
      .idle_timeout_ms = 5 * 60 * 1000,
  };
  return crpc_server_new(srv, &o);
}
// [compression-server]

/* ---- deploying: health ---- */

// [health]
static int serve_with_health(crpc_server *srv, crpc_health **out) {
  crpc_health *h;
  int rv = crpc_health_new(&h); /* "" (the whole server): SERVING */
  if (rv != 0)
    return rv;
  rv = crpc_health_register(h, srv); /* before crpc_server_start() */
  if (rv == 0)
    rv = crpc_health_set(h, "helloworld.Greeter", CRPC_HEALTH_SERVING);
  if (rv == 0)
    rv = crpc_server_start(srv);
  *out = h;
  return rv;
}

static void drain_and_stop(crpc_server *srv, crpc_health *h) {
  crpc_health_shutdown(h);         /* probes and watchers: NOT_SERVING */
  crpc_server_shutdown(srv, 5000); /* GOAWAY; running calls get 5 s */
  crpc_server_free(srv);
  crpc_health_free(h);
}
// [health]

/* ---- deploying: metrics ---- */

// [metrics]
static void log_line(const crpc_call_stats *st, const char *line, void *ud) {
  (void)st;
  (void)ud;
  fprintf(stderr, "access: %s\n", line); /* or syslog, or a file */
}

static int serve_with_metrics(crpc_server **srv, crpc_metrics **out) {
  crpc_metrics *m;
  int rv = crpc_metrics_new(&m, NULL);
  if (rv != 0)
    return rv;
  crpc_server_opts o = {.metrics = m}; /* channels: crpc_channel_opts */
  rv = crpc_server_new(srv, &o);
  if (rv == 0) /* before crpc_server_start() */
    rv = crpc_server_set_access_log(*srv, log_line, NULL);
  *out = m; /* crpc_metrics_free() after the server */
  return rv;
}

/* Every few seconds, from a thread or timer of the program's own. */
static int export_metrics(const crpc_metrics *m) {
  return crpc_metrics_write_file(m, "/var/lib/node_exporter/crpc.prom");
}
// [metrics]

/* ---- deploying: connection management ---- */

// [conn-mgmt]
static int recycling_server(crpc_server **srv) {
  crpc_server_opts o = {
      .max_connection_age_ms = 5 * 60 * 1000,   /* ±10% jitter */
      .max_connection_age_grace_ms = 30 * 1000, /* then cancel what is left */
      .max_connection_idle_ms = 10 * 60 * 1000, /* = idle_timeout_ms */
      .keepalive_min_time_ms = 60 * 1000,       /* clients may ping each min */
      .permit_keepalive_without_calls = true,
  };
  return crpc_server_new(srv, &o);
}
// [conn-mgmt]

/* ---- performance ---- */

// [perf-server]
/* A generic handler (crpc_handler): the messages are protoc-c's. */
static crpc_code fast_hello(crpc_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, void *user_data) {
  (void)call;
  (void)req;
  (void)user_data;
  Helloworld__HelloReply *reply = (Helloworld__HelloReply *)resp;
  reply->message = "hi"; /* no blocking here: it runs on the reactor */
  return CRPC_OK;
}

static int fast_server(crpc_server **srv) {
  crpc_server_opts o = {.reactor_threads = 0, /* 0: one per CPU */
                        .max_workers = 64};   /* blocking handlers' pool */
  int rv = crpc_server_new(srv, &o);
  if (rv != 0)
    return rv;
  return crpc_server_register(*srv, &helloworld__greeter__crpc_methods[0],
                              fast_hello,
                              CRPC_HANDLER_NONBLOCKING, NULL);
}
// [perf-server]

int docs_features(void);
int docs_features(void) {
  crpc_channel *ch = NULL;
  crpc_server *srv = NULL;
  crpc_health *h = NULL;
  int port;
  char token[] = "t";
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  int rv = make_channel(&ch, "localhost:1");
  call_and_report(ch);
  rv += (int)with_deadline(ch, &req);
  stream_until_enough(ch);
  with_metadata(ch);
  crpc_channel_free(ch);
  rv += tls_channel(&ch) + channel_with_token(&ch, NULL, token) +
        compressed_channel(&ch, "localhost:1");
  rv += recycling_server(&srv);
  crpc_server_free(srv);
  rv += limited_server(&srv) + fast_server(&srv) + tls_listen(srv, &port) +
        serve_with_health(srv, &h);
  drain_and_stop(srv, h);
  crpc_metrics *m = NULL;
  rv += serve_with_metrics(&srv, &m);
  rv += export_metrics(m);
  crpc_server_free(srv);
  crpc_metrics_free(m);
  Helloworld__Greeter_CrpcHandlers handlers = {
      .say_hello = say_hello_strict};
  handlers.say_hello = slow_handler;
  handlers.say_hello = echo_request_id;
  handlers.say_hello = compressed_reply;
  (void)handlers;
  return rv;
}

int main(void) { return 0; }
