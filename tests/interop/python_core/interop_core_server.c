/*
 * interop_core_server.c: crpc's side of the crpc.test.Echo interop service
 * (interop_core.proto), with blocking handlers for all four kinds of RPC.
 * py_server.py implements the same behaviour in Python grpcio.
 *
 *   interop-core-server [--port=0]
 *
 * Binds 127.0.0.1, prints "crpc echo server listening on 127.0.0.1:PORT",
 * serves until SIGINT or SIGTERM, then shuts down and exits 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <crpc/crpc.h>

#include "interop_core.crpc.h"

#define ECHO_PREFIX "x-echo-"
#define TAG_MAX 128
#define OUTCOME_SLOTS 256
#define MAX_RESPONSE_SIZE (16 * 1024 * 1024)

/* ---- outcomes of tagged calls, for GetOutcome ---- */

typedef struct outcome {
  char tag[TAG_MAX];
  bool cancelled;
  int64_t time_left_ms;
  int32_t messages;
} outcome;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* signalled when an outcome is recorded */
  outcome items[OUTCOME_SLOTS];
  size_t next; /* a ring: the oldest outcomes are forgotten */
} g_outcomes = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static outcome *outcome_find_locked(const char *tag) {
  for (size_t i = 0; i < OUTCOME_SLOTS; i++) {
    if (g_outcomes.items[i].tag[0] != '\0' &&
        strcmp(g_outcomes.items[i].tag, tag) == 0) {
      return &g_outcomes.items[i];
    }
  }
  return NULL;
}

/* Records how a tagged call ended; the first record of a tag wins. */
static void outcome_record(const char *tag, bool cancelled, int64_t time_left,
                           int32_t messages) {
  if (tag == NULL || tag[0] == '\0') {
    return;
  }
  pthread_mutex_lock(&g_outcomes.mu);
  if (outcome_find_locked(tag) == NULL) {
    outcome *o = &g_outcomes.items[g_outcomes.next++ % OUTCOME_SLOTS];
    snprintf(o->tag, sizeof(o->tag), "%s", tag);
    o->cancelled = cancelled;
    o->time_left_ms = time_left;
    o->messages = messages;
    pthread_cond_broadcast(&g_outcomes.cv);
  }
  pthread_mutex_unlock(&g_outcomes.mu);
}

static bool outcome_wait(const char *tag, int32_t wait_ms, outcome *out) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += wait_ms / 1000;
  until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  bool found = false;
  pthread_mutex_lock(&g_outcomes.mu);
  for (;;) {
    const outcome *o = outcome_find_locked(tag);
    if (o != NULL) {
      *out = *o;
      found = true;
      break;
    }
    if (pthread_cond_timedwait(&g_outcomes.cv, &g_outcomes.mu, &until) ==
        ETIMEDOUT) {
      break;
    }
  }
  pthread_mutex_unlock(&g_outcomes.mu);
  return found;
}

/* ---- helpers shared by the handlers ---- */

/* Sleeps |ms|, waking early if the call is cancelled or expires. crpc has
 * no "wait for cancellation" primitive, so poll at a fine grain. Returns
 * false when the call ended meanwhile. */
static bool sleep_cancellable(crpc_call *call, int32_t ms) {
  int64_t end = now_ms() + (ms > 0 ? ms : 0);
  for (;;) {
    if (crpc_call_is_cancelled(call)) {
      return false;
    }
    int64_t left = end - now_ms();
    if (left <= 0) {
      return true;
    }
    struct timespec ts = {0, (long)(left < 5 ? left : 5) * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* Echoes "x-echo-*" request metadata as response headers and trailers. */
static void echo_metadata(crpc_call *call) {
  const crpc_metadata *md = crpc_call_request_metadata(call);
  size_t n = crpc_metadata_count(md);
  for (size_t i = 0; i < n; i++) {
    const char *key;
    const uint8_t *value;
    size_t len;
    if (crpc_metadata_at(md, i, &key, &value, &len) != 0 ||
        strncmp(key, ECHO_PREFIX, strlen(ECHO_PREFIX)) != 0) {
      continue;
    }
    int rv = crpc_call_add_initial_metadata(call, key, value, len);
    if (rv == 0) {
      rv = crpc_call_add_trailing_metadata(call, key, value, len);
    }
    if (rv != 0) {
      fprintf(stderr, "cannot echo %s: %s\n", key, crpc_strerror(rv));
    }
  }
}

static crpc_code status_from(crpc_call *call,
                             const Crpc__Test__EchoRequest *req) {
  crpc_call_set_status_message(call, req->status_message);
  if (req->status_code < 1 || req->status_code > 16) {
    return CRPC_UNKNOWN;
  }
  return (crpc_code)req->status_code;
}

static void fill_pattern(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)((i * 7 + 3) & 0xFF);
  }
}

/* The payload a response to |req| carries, in the call's arena (unary and
 * client streaming responses are packed after the handler returns). */
static bool response_payload(crpc_call *call,
                             const Crpc__Test__EchoRequest *req,
                             ProtobufCBinaryData *out) {
  size_t n =
      req->response_size > 0 ? (size_t)req->response_size : req->payload.len;
  out->len = n;
  out->data = NULL;
  if (n == 0) {
    return true;
  }
  if (n > MAX_RESPONSE_SIZE ||
      (out->data = crpc_call_arena_alloc(call, n)) == NULL) {
    return false;
  }
  if (req->response_size > 0) {
    fill_pattern(out->data, n);
  } else {
    memcpy(out->data, req->payload.data, n);
  }
  return true;
}

static void copy_tag(char tag[TAG_MAX], const char *from) {
  if (tag[0] == '\0' && from != NULL) {
    snprintf(tag, TAG_MAX, "%s", from);
  }
}

/* ---- handlers ---- */

static crpc_code unary(crpc_call *call, const Crpc__Test__EchoRequest *req,
                       Crpc__Test__EchoResponse *resp, void *user_data) {
  echo_metadata(call);
  int64_t time_left = crpc_call_time_left_ms(call);
  if (!sleep_cancellable(call, req->sleep_ms)) {
    outcome_record(req->tag, true, time_left, 0);
    return CRPC_CANCELLED;
  }
  outcome_record(req->tag, false, time_left, 0);
  if (req->status_code != 0) {
    return status_from(call, req);
  }
  resp->message = crpc_call_arena_strdup(call, req->message);
  if (resp->message == NULL || !response_payload(call, req, &resp->payload)) {
    crpc_call_set_status_message(call, "response too large");
    return CRPC_RESOURCE_EXHAUSTED;
  }
  resp->time_left_ms = time_left;
  return CRPC_OK;
}

static crpc_code server_stream(crpc_call *call,
                               const Crpc__Test__EchoRequest *req,
                               void *user_data) {
  echo_metadata(call);
  int64_t time_left = crpc_call_time_left_ms(call);
  ProtobufCBinaryData payload;
  if (!response_payload(call, req, &payload)) {
    crpc_call_set_status_message(call, "response too large");
    return CRPC_RESOURCE_EXHAUSTED;
  }
  int32_t sent = 0;
  for (int32_t i = 0; i < req->response_count; i++) {
    Crpc__Test__EchoResponse r = CRPC__TEST__ECHO_RESPONSE__INIT;
    r.message = req->message;
    r.payload = payload;
    r.index = i;
    r.time_left_ms = time_left;
    if (!sleep_cancellable(call, req->sleep_ms) ||
        !crpc__test__echo__server_stream__server_write(call, &r)) {
      outcome_record(req->tag, true, time_left, sent);
      return CRPC_CANCELLED;
    }
    sent++;
  }
  outcome_record(req->tag, false, time_left, sent);
  return req->status_code != 0 ? status_from(call, req) : CRPC_OK;
}

/* A growable byte buffer for client streaming's concatenation. */
typedef struct buf {
  uint8_t *data;
  size_t len, cap;
} buf;

static bool buf_append(buf *b, const void *p, size_t n) {
  if (n > MAX_RESPONSE_SIZE - b->len) {
    return false;
  }
  if (b->len + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + n + 1) {
      ncap *= 2;
    }
    uint8_t *nd = realloc(b->data, ncap);
    if (nd == NULL) {
      return false;
    }
    b->data = nd;
    b->cap = ncap;
  }
  if (n > 0) {
    memcpy(b->data + b->len, p, n);
  }
  b->len += n;
  b->data[b->len] = 0;
  return true;
}

static crpc_code client_stream(crpc_call *call, Crpc__Test__EchoResponse *resp,
                               void *user_data) {
  echo_metadata(call);
  int64_t time_left = crpc_call_time_left_ms(call);
  char tag[TAG_MAX] = "";
  buf message = {0}, payload = {0};
  int32_t count = 0;
  crpc_code code = CRPC_OK;
  Crpc__Test__EchoRequest *req;
  while (crpc__test__echo__client_stream__server_read(call, &req)) {
    copy_tag(tag, req->tag);
    if (req->status_code != 0) {
      code = status_from(call, req);
    } else if (!buf_append(&message, req->message, strlen(req->message)) ||
               !buf_append(&payload, req->payload.data, req->payload.len)) {
      crpc_call_set_status_message(call, "requests too large");
      code = CRPC_RESOURCE_EXHAUSTED;
    }
    crpc__test__echo_request__free_unpacked(req, NULL);
    if (code != CRPC_OK) {
      break;
    }
    count++;
  }
  if (code == CRPC_OK && crpc_call_is_cancelled(call)) {
    code = CRPC_CANCELLED;
  }
  outcome_record(tag, code == CRPC_CANCELLED, time_left, 0);
  if (code == CRPC_OK) {
    resp->message = crpc_call_arena_strdup(
        call, message.data != NULL ? (char *)message.data : "");
    resp->payload.len = payload.len;
    if (payload.len > 0 && (resp->payload.data = crpc_call_arena_alloc(
                                call, payload.len)) != NULL) {
      memcpy(resp->payload.data, payload.data, payload.len);
    }
    if (resp->message == NULL ||
        (payload.len > 0 && resp->payload.data == NULL)) {
      code = CRPC_RESOURCE_EXHAUSTED;
    }
    resp->count = count;
    resp->time_left_ms = time_left;
  }
  free(message.data);
  free(payload.data);
  return code;
}

static crpc_code bidi(crpc_call *call, void *user_data) {
  echo_metadata(call);
  int64_t time_left = crpc_call_time_left_ms(call);
  char tag[TAG_MAX] = "";
  int32_t sent = 0;
  crpc_code code = CRPC_OK;
  Crpc__Test__EchoRequest *req;
  while (crpc__test__echo__bidi__server_read(call, &req)) {
    copy_tag(tag, req->tag);
    if (!sleep_cancellable(call, req->sleep_ms)) {
      code = CRPC_CANCELLED;
    } else if (req->status_code != 0) {
      code = status_from(call, req);
    } else {
      /* Written messages are packed at once: borrow the request's data. */
      Crpc__Test__EchoResponse r = CRPC__TEST__ECHO_RESPONSE__INIT;
      r.message = req->message;
      r.payload = req->payload;
      r.index = sent;
      r.time_left_ms = time_left;
      uint8_t *pattern = NULL;
      if (req->response_size > 0 && req->response_size <= MAX_RESPONSE_SIZE &&
          (pattern = malloc((size_t)req->response_size)) != NULL) {
        fill_pattern(pattern, (size_t)req->response_size);
        r.payload.data = pattern;
        r.payload.len = (size_t)req->response_size;
      }
      if (crpc__test__echo__bidi__server_write(call, &r)) {
        sent++;
      } else {
        code = CRPC_CANCELLED;
      }
      free(pattern);
    }
    crpc__test__echo_request__free_unpacked(req, NULL);
    if (code != CRPC_OK) {
      break;
    }
  }
  if (code == CRPC_OK && crpc_call_is_cancelled(call)) {
    code = CRPC_CANCELLED;
  }
  outcome_record(tag, code == CRPC_CANCELLED, time_left, sent);
  return code;
}

static crpc_code get_outcome(crpc_call *call,
                             const Crpc__Test__OutcomeRequest *req,
                             Crpc__Test__Outcome *resp, void *user_data) {
  outcome o;
  if (outcome_wait(req->tag, req->wait_ms, &o)) {
    resp->found = true;
    resp->cancelled = o.cancelled;
    resp->time_left_ms = o.time_left_ms;
    resp->messages = o.messages;
  }
  return CRPC_OK;
}

/* ---- main ---- */

int main(int argc, char **argv) {
  int port = 0;
  for (int i = 1; i < argc; i++) {
    char *end;
    if (strncmp(argv[i], "--port=", 7) == 0) {
      long v = strtol(argv[i] + 7, &end, 10);
      if (*end != '\0' || v < 0 || v > 65535) {
        fprintf(stderr, "bad port %s\n", argv[i] + 7);
        return 2;
      }
      port = (int)v;
    } else {
      fprintf(stderr, "usage: interop-core-server [--port=N]\n");
      return 2;
    }
  }

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&g_outcomes.cv, &ca);
  pthread_condattr_destroy(&ca);

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  crpc_server *server = NULL;
  int rv = crpc_server_new(&server, NULL);
  if (rv != 0) {
    fprintf(stderr, "crpc_server_new: %s\n", crpc_strerror(rv));
    return 1;
  }
  /* Unimplemented stays NULL: crpc answers it UNIMPLEMENTED. */
  const Crpc__Test__Echo_CrpcHandlers handlers = {
      .unary = unary,
      .server_stream = server_stream,
      .client_stream = client_stream,
      .bidi = bidi,
      .get_outcome = get_outcome,
  };
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  if ((rv = crpc__test__echo__crpc_register(server, &handlers, NULL)) != 0 ||
      (rv = crpc_server_listen(server, addr, NULL, &port)) != 0 ||
      (rv = crpc_server_start(server)) != 0) {
    fprintf(stderr, "cannot start the server: %s\n", crpc_strerror(rv));
    crpc_server_free(server);
    return 1;
  }
  printf("crpc echo server listening on 127.0.0.1:%d\n", port);
  fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  crpc_server_shutdown(server, 2000);
  crpc_server_free(server);
  pthread_cond_destroy(&g_outcomes.cv);
  return 0;
}
