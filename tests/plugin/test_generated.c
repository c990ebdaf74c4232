/*
 * The generated API of tests/plugin/protos/edge/my_pkg/edge.proto, run
 * against the runtime over loopback: every method kind through the typed
 * client stubs, handler table and server helpers, the async unary call,
 * and a NULL handler answering UNIMPLEMENTED.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "my_pkg/edge.crpc.h"

typedef MyPkg__V1__HelloRequest HelloRequest;
typedef MyPkg__V1__HTTPReply HTTPReply;
typedef MyPkg__V1__HelloRequest__NestedThing Thing;
typedef Other__CommonV2__Outer__Inner Inner;

static crpc_server *server;
static crpc_channel *channel;

/* ---- server side ---- */

static crpc_code say_hello(crpc_call *call, const HelloRequest *req,
                           HTTPReply *resp, void *user_data) {
  /* No cmocka asserts here: handlers run on the server's threads. */
  if (user_data != &server) {
    crpc_call_set_status_message(call, "wrong user_data");
    return CRPC_INTERNAL;
  }
  if (req->the_choice_case != MY_PKG__V1__HELLO_REQUEST__THE_CHOICE_A) {
    crpc_call_set_status_message(call, "want the_choice = a");
    return CRPC_INVALID_ARGUMENT;
  }
  char *text = crpc_call_arena_alloc(call, strlen(req->name) + 32);
  if (text == NULL)
    return CRPC_RESOURCE_EXHAUSTED;
  int n = sprintf(text, "hello %s %d", req->name, (int)req->a);
  resp->body.data = (uint8_t *)text;
  resp->body.len = (size_t)n;
  return CRPC_OK;
}

/* Sends 2 + c replies, "0", "1", ... */
static crpc_code httpget(crpc_call *call, const Thing *req, void *user_data) {
  (void)user_data;
  for (int i = 0; i < 2 + (int)req->c; i++) {
    char digit = (char)('0' + i);
    HTTPReply reply = MY_PKG__V1__HTTPREPLY__INIT;
    reply.body.data = (uint8_t *)&digit;
    reply.body.len = 1;
    if (!my_pkg__v1__greeter__httpget__server_write(call, &reply))
      return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

/* Wants exactly three requests named "r". */
static crpc_code say__hello(crpc_call *call, Other__CommonV2__Empty *resp,
                            void *user_data) {
  (void)resp;
  (void)user_data;
  int n = 0;
  HelloRequest *req;
  while (my_pkg__v1__greeter__say__hello__server_read(call, &req)) {
    if (strcmp(req->name, "r") == 0)
      n++;
    my_pkg__v1__hello_request__free_unpacked(req, NULL);
  }
  if (n != 3) {
    crpc_call_set_status_message(call, "want three requests");
    return CRPC_INVALID_ARGUMENT;
  }
  return CRPC_OK;
}

/* Echoes each Inner{x} as HelloRequest{name = "x=<x>"}. */
static crpc_code chat(crpc_call *call, void *user_data) {
  (void)user_data;
  Inner *in;
  while (my_pkg__v1__greeter__chat__server_read(call, &in)) {
    char name[32];
    snprintf(name, sizeof(name), "x=%d", (int)in->x);
    /* Nested: protoc-c gives it no __free_unpacked. */
    protobuf_c_message_free_unpacked((ProtobufCMessage *)in, NULL);
    HelloRequest out = MY_PKG__V1__HELLO_REQUEST__INIT;
    out.name = name;
    if (!my_pkg__v1__greeter__chat__server_write(call, &out))
      return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

static int setup(void **state) {
  (void)state;
  int port = 0;
  if (crpc_server_new(&server, NULL) != 0 ||
      crpc_server_listen(server, "127.0.0.1:0", NULL, &port) != 0)
    return -1;
  MyPkg__V1__Greeter_CrpcHandlers greeter = {.say_hello = say_hello,
                                             .httpget = httpget,
                                             .say__hello = say__hello,
                                             .chat = chat};
  /* second_service: every handler NULL, so UNIMPLEMENTED. */
  MyPkg__V1__SecondService_CrpcHandlers second = {0};
  if (my_pkg__v1__greeter__crpc_register(server, &greeter, &server) != 0 ||
      my_pkg__v1__second_service__crpc_register(server, &second, NULL) != 0 ||
      crpc_server_start(server) != 0)
    return -1;
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  return crpc_channel_new(&channel, target, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  crpc_channel_free(channel);
  crpc_server_shutdown(server, 1000);
  crpc_server_free(server);
  return 0;
}

/* ---- client side ---- */

static const crpc_call_opts opts = {.timeout_ms = 10000};

static void test_unary(void **state) {
  (void)state;
  HelloRequest req = MY_PKG__V1__HELLO_REQUEST__INIT;
  req.name = "crpc";
  req.the_choice_case = MY_PKG__V1__HELLO_REQUEST__THE_CHOICE_A;
  req.a = 7;
  HTTPReply *resp = NULL;
  crpc_status st = {0};
  crpc_code code =
      my_pkg__v1__greeter__say_hello__call(channel, &opts, &req, &resp, &st);
  assert_int_equal(code, CRPC_OK);
  assert_non_null(resp);
  assert_int_equal(resp->body.len, strlen("hello crpc 7"));
  assert_memory_equal(resp->body.data, "hello crpc 7", resp->body.len);
  my_pkg__v1__httpreply__free_unpacked(resp, NULL);
  crpc_status_clear(&st);

  /* The handler's status and message come back; *resp stays NULL. */
  req.the_choice_case = MY_PKG__V1__HELLO_REQUEST__THE_CHOICE__NOT_SET;
  code = my_pkg__v1__greeter__say_hello__call(channel, &opts, &req, &resp, &st);
  assert_int_equal(code, CRPC_INVALID_ARGUMENT);
  assert_null(resp);
  assert_string_equal(crpc_status_message(&st), "want the_choice = a");
  crpc_status_clear(&st);
}

typedef struct async_wait {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  crpc_code code;
  char body[64];
} async_wait;

static void on_done(crpc_call *call, const crpc_status *st,
                    const HTTPReply *resp, void *user_data) {
  (void)call;
  async_wait *w = user_data;
  pthread_mutex_lock(&w->mu);
  w->code = st->code;
  if (resp != NULL && resp->body.len < sizeof(w->body))
    memcpy(w->body, resp->body.data, resp->body.len);
  w->done = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void test_unary_async(void **state) {
  (void)state;
  async_wait w = {PTHREAD_MUTEX_INITIALIZER,
                  PTHREAD_COND_INITIALIZER,
                  false,
                  CRPC_UNKNOWN,
                  {0}};
  HelloRequest req = MY_PKG__V1__HELLO_REQUEST__INIT;
  req.name = "async";
  req.the_choice_case = MY_PKG__V1__HELLO_REQUEST__THE_CHOICE_A;
  req.a = 1;
  assert_int_equal(my_pkg__v1__greeter__say_hello__call_async(
                       channel, &opts, &req, on_done, &w),
                   0);
  pthread_mutex_lock(&w.mu);
  while (!w.done)
    pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  assert_int_equal(w.code, CRPC_OK);
  assert_string_equal(w.body, "hello async 1");
}

static void test_server_streaming(void **state) {
  (void)state;
  Thing req = MY_PKG__V1__HELLO_REQUEST__NESTED__THING__INIT;
  req.c = MY_PKG__V1__HELLO_REQUEST__NESTED__THING__COLOR__GREEN; /* 1 */
  crpc_call *call = NULL;
  assert_int_equal(
      my_pkg__v1__greeter__httpget__start(&call, channel, &opts, &req), 0);
  HTTPReply *resp;
  int n = 0;
  while (my_pkg__v1__greeter__httpget__read(call, &resp)) {
    assert_int_equal(resp->body.len, 1);
    assert_int_equal(resp->body.data[0], '0' + n);
    my_pkg__v1__httpreply__free_unpacked(resp, NULL);
    n++;
  }
  assert_null(resp);
  crpc_status st = {0};
  assert_int_equal(my_pkg__v1__greeter__httpget__finish(call, &st), CRPC_OK);
  assert_int_equal(n, 3);
  crpc_status_clear(&st);
  crpc_call_free(call);
}

static void test_client_streaming(void **state) {
  (void)state;
  for (int want = 2; want <= 3; want++) {
    crpc_call *call = NULL;
    assert_int_equal(
        my_pkg__v1__greeter__say__hello__start(&call, channel, &opts), 0);
    HelloRequest req = MY_PKG__V1__HELLO_REQUEST__INIT;
    req.name = "r";
    for (int i = 0; i < want; i++)
      assert_true(my_pkg__v1__greeter__say__hello__write(call, &req));
    Other__CommonV2__Empty *resp = NULL;
    crpc_status st = {0};
    crpc_code code = my_pkg__v1__greeter__say__hello__finish(call, &resp, &st);
    if (want == 3) {
      assert_int_equal(code, CRPC_OK);
      assert_non_null(resp);
      other__common_v2__empty__free_unpacked(resp, NULL);
    } else {
      assert_int_equal(code, CRPC_INVALID_ARGUMENT);
      assert_null(resp);
    }
    crpc_status_clear(&st);
    crpc_call_free(call);
  }
}

static void test_bidi(void **state) {
  (void)state;
  crpc_call *call = NULL;
  assert_int_equal(my_pkg__v1__greeter__chat__start(&call, channel, &opts), 0);
  for (int i = 0; i < 3; i++) {
    Inner in = OTHER__COMMON_V2__OUTER__INNER__INIT;
    in.x = 10 + i;
    assert_true(my_pkg__v1__greeter__chat__write(call, &in));
    HelloRequest *out;
    assert_true(my_pkg__v1__greeter__chat__read(call, &out));
    char want[32];
    snprintf(want, sizeof(want), "x=%d", 10 + i);
    assert_string_equal(out->name, want);
    my_pkg__v1__hello_request__free_unpacked(out, NULL);
  }
  assert_true(my_pkg__v1__greeter__chat__writes_done(call));
  HelloRequest *out;
  assert_false(my_pkg__v1__greeter__chat__read(call, &out));
  crpc_status st = {0};
  assert_int_equal(my_pkg__v1__greeter__chat__finish(call, &st), CRPC_OK);
  crpc_status_clear(&st);
  crpc_call_free(call);
}

static void test_unimplemented(void **state) {
  (void)state;
  Other__CommonV2__Empty req = OTHER__COMMON_V2__EMPTY__INIT;
  Other__CommonV2__Empty *resp = NULL;
  crpc_status st = {0};
  crpc_code code =
      my_pkg__v1__second_service__ping__call(channel, &opts, &req, &resp, &st);
  assert_int_equal(code, CRPC_UNIMPLEMENTED);
  assert_null(resp);
  assert_string_equal(crpc_status_message(&st),
                      "method my_pkg.v1.second_service/ping is not "
                      "implemented");
  crpc_status_clear(&st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_unary_async),
      cmocka_unit_test(test_server_streaming),
      cmocka_unit_test(test_client_streaming),
      cmocka_unit_test(test_bidi),
      cmocka_unit_test(test_unimplemented),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
