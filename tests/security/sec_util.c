#define _POSIX_C_SOURCE 200809L
/*
 * sec_util.c: see sec_util.h.
 */
#include "sec_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *certs;

void sec_init(int argc, char **argv) {
  certs = argc > 1 ? argv[1] : getenv("CRPC_TEST_CERTS");
  if (!certs) {
    fprintf(stderr, "usage: %s CERT_DIR (made by make_test_certs.sh)\n",
            argv[0]);
    exit(2);
  }
}

const char *sec_path(const char *file) {
  static __thread char ring[16][512];
  static __thread int next;
  char *p = ring[next++ % 16];
  snprintf(p, 512, "%s/%s", certs, file);
  return p;
}

const char *sec_target(const char *host, int port) {
  static __thread char ring[4][128];
  static __thread int next;
  char *p = ring[next++ % 4];
  snprintf(p, 128, "%s:%d", host, port);
  return p;
}

const char *sec_md(const crpc_metadata *md, const char *key) {
  static __thread char buf[1024];
  size_t n = 0;
  const uint8_t *v = crpc_metadata_get(md, key, &n);
  if (!v)
    return "";
  if (n >= sizeof buf)
    n = sizeof buf - 1;
  memcpy(buf, v, n);
  buf[n] = '\0';
  return buf;
}

const crpc_method sec_stream_method = {
    "/sec.Test/Stream", CRPC_SERVER_STREAMING,
    &helloworld__hello_request__descriptor,
    &helloworld__hello_reply__descriptor};
const crpc_method sec_bidi_method = {"/sec.Test/Bidi", CRPC_BIDI_STREAMING,
                                     &helloworld__hello_request__descriptor,
                                     &helloworld__hello_reply__descriptor};

const crpc_method sec_big_method = {"/sec.Test/Big", CRPC_UNARY,
                                    &helloworld__hello_request__descriptor,
                                    &helloworld__hello_reply__descriptor};

static crpc_code big(crpc_call *call, const ProtobufCMessage *reqm,
                     ProtobufCMessage *respm, void *ud) {
  const Helloworld__HelloRequest *req = (const void *)reqm;
  Helloworld__HelloReply *resp = (void *)respm;
  sec_server *s = ud;
  pthread_mutex_lock(&s->mu);
  atomic_fetch_add(&s->calls, 1);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  size_t n = req->name ? strtoul(req->name, NULL, 10) : 0;
  if (n > 16u << 20)
    return CRPC_INVALID_ARGUMENT;
  char *msg = crpc_call_arena_alloc(call, n + 1);
  if (!msg)
    return CRPC_RESOURCE_EXHAUSTED;
  memset(msg, 'x', n);
  msg[n] = '\0';
  resp->message = msg;
  return CRPC_OK;
}

static void trailer(crpc_call *call, const char *k, const char *v) {
  crpc_call_add_trailing_metadata(call, k, v, strlen(v));
}

static crpc_code say_hello(crpc_call *call, const Helloworld__HelloRequest *req,
                           Helloworld__HelloReply *resp, void *ud) {
  sec_server *s = ud;
  atomic_fetch_add(&s->calls, 1);
  const char *name = req->name ? req->name : "";
  size_t n = strlen(name) + 7;
  char *msg = crpc_call_arena_alloc(call, n);
  snprintf(msg, n, "Hello %s", name);
  resp->message = msg;
  trailer(call, "x-peer-tls", crpc_call_peer_is_tls(call) ? "1" : "0");
  const char *subj = crpc_call_peer_cert_subject(call);
  trailer(call, "x-peer-subject", subj ? subj : "-");
  char sans[1024] = "";
  for (size_t i = 0; i < crpc_call_peer_cert_san_count(call); i++) {
    if (i)
      strncat(sans, ",", sizeof sans - strlen(sans) - 1);
    strncat(sans, crpc_call_peer_cert_san(call, i),
            sizeof sans - strlen(sans) - 1);
  }
  trailer(call, "x-peer-sans", sans);
  size_t alen = 0;
  const uint8_t *auth = crpc_metadata_get(crpc_call_request_metadata(call),
                                          "authorization", &alen);
  char abuf[256] = "-";
  if (auth && alen < sizeof abuf) {
    memcpy(abuf, auth, alen);
    abuf[alen] = '\0';
  }
  trailer(call, "x-authorization", abuf);
  return CRPC_OK;
}

static crpc_code stream(crpc_call *call, const ProtobufCMessage *reqm,
                        ProtobufCMessage *resp, void *ud) {
  const Helloworld__HelloRequest *req = (const Helloworld__HelloRequest *)reqm;
  sec_server *s = ud;
  (void)resp;
  atomic_fetch_add(&s->calls, 1);
  unsigned count = 0, size = 0;
  if (!req->name || sscanf(req->name, "%u:%u", &count, &size) != 2)
    return CRPC_INVALID_ARGUMENT;
  char *body = malloc(size + 1);
  memset(body, 'x', size);
  body[size] = '\0';
  Helloworld__HelloReply r = HELLOWORLD__HELLO_REPLY__INIT;
  r.message = body;
  unsigned i;
  for (i = 0; i < count; i++) {
    if (!crpc_call_write(call, &r.base))
      break;
    pthread_mutex_lock(&s->mu);
    s->writes++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
  free(body);
  pthread_mutex_lock(&s->mu);
  s->streams_done++;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return i == count ? CRPC_OK : CRPC_CANCELLED;
}

static crpc_code bidi(crpc_call *call, const ProtobufCMessage *reqm,
                      ProtobufCMessage *resp, void *ud) {
  sec_server *s = ud;
  ProtobufCMessage *m;
  (void)reqm;
  (void)resp;
  atomic_fetch_add(&s->calls, 1);
  while (crpc_call_read(call, &m)) {
    Helloworld__HelloRequest *req = (Helloworld__HelloRequest *)m;
    char buf[300];
    snprintf(buf, sizeof buf, "echo:%.250s", req->name ? req->name : "");
    Helloworld__HelloReply r = HELLOWORLD__HELLO_REPLY__INIT;
    r.message = buf;
    bool ok = crpc_call_write(call, &r.base);
    protobuf_c_message_free_unpacked(m, NULL);
    if (!ok)
      return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

int sec_server_start(sec_server *s, const crpc_server_opts *opts,
                     const crpc_tls_server_opts *tls, crpc_auth_hook hook,
                     void *hook_ud) {
  memset(s, 0, sizeof *s);
  atomic_init(&s->calls, 0);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  crpc_server_opts o = {0};
  if (opts)
    o = *opts;
  if (!o.reactor_threads)
    o.reactor_threads = 1;
  int rv = crpc_server_new(&s->srv, &o);
  if (rv != 0)
    return rv;
  Helloworld__Greeter_CrpcHandlers h = {.say_hello = say_hello};
  if ((rv = helloworld__greeter__crpc_register(s->srv, &h, s)) != 0 ||
      (rv = crpc_server_register(s->srv, &sec_stream_method, stream, 0,
                                 s)) != 0 ||
      (rv = crpc_server_register(s->srv, &sec_bidi_method, bidi, 0, s)) !=
          0 ||
      (rv = crpc_server_register(s->srv, &sec_big_method, big, 0, s)) != 0 ||
      (hook && (rv = crpc_server_set_auth_hook(s->srv, hook, hook_ud)) != 0) ||
      (rv = crpc_server_listen(s->srv, "127.0.0.1:0", tls, &s->port)) != 0 ||
      (rv = crpc_server_start(s->srv)) != 0) {
    crpc_server_free(s->srv);
    s->srv = NULL;
    return rv;
  }
  return 0;
}

void sec_server_stop(sec_server *s) {
  crpc_server_free(s->srv);
  s->srv = NULL;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
}

static void deadline_in(struct timespec *ts, int ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000;
  if (ts->tv_nsec >= 1000000000) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000;
  }
}

long sec_wait_stall(sec_server *s, int stall_ms, int timeout_ms) {
  struct timespec end, step;
  deadline_in(&end, timeout_ms);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    long before = s->writes;
    deadline_in(&step, stall_ms);
    int rv = 0;
    while (s->writes == before && rv == 0)
      rv = pthread_cond_timedwait(&s->cv, &s->mu, &step);
    if (s->writes == before) /* no progress for stall_ms */
      break;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec > end.tv_sec ||
        (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
      break;
  }
  long n = s->writes;
  pthread_mutex_unlock(&s->mu);
  return n;
}

bool sec_wait_calls(sec_server *s, int n, int timeout_ms) {
  struct timespec end;
  deadline_in(&end, timeout_ms);
  pthread_mutex_lock(&s->mu);
  int rv = 0;
  while (atomic_load(&s->calls) < n && rv == 0)
    rv = pthread_cond_timedwait(&s->cv, &s->mu, &end);
  bool ok = atomic_load(&s->calls) >= n;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

bool sec_wait_streams_done(sec_server *s, int n, int timeout_ms) {
  struct timespec end;
  deadline_in(&end, timeout_ms);
  pthread_mutex_lock(&s->mu);
  int rv = 0;
  while (s->streams_done < n && rv == 0)
    rv = pthread_cond_timedwait(&s->cv, &s->mu, &end);
  bool ok = s->streams_done >= n;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

crpc_code sec_hello(crpc_channel *ch, const crpc_call_opts *copts,
                    const char *name, crpc_metadata *trailers,
                    crpc_status *st) {
  crpc_call_opts o = {0};
  if (copts)
    o = *copts;
  if (!o.timeout_ms)
    o.timeout_ms = SEC_TMO;
  if (trailers)
    o.trailing_metadata_out = trailers;
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  req.name = (char *)name;
  Helloworld__HelloReply *reply = NULL;
  crpc_code code =
      helloworld__greeter__say_hello__call(ch, &o, &req, &reply, st);
  if (code == CRPC_OK) {
    char want[300];
    snprintf(want, sizeof want, "Hello %s", name);
    if (!reply || !reply->message || strcmp(reply->message, want) != 0) {
      fprintf(stderr, "unexpected reply '%s'\n",
              reply && reply->message ? reply->message : "(null)");
      code = CRPC_DATA_LOSS;
    }
  }
  if (reply)
    helloworld__hello_reply__free_unpacked(reply, NULL);
  return code;
}
