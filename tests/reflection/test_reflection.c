/*
 * test_reflection.c: crpc's server reflection (lib/reflection.c) with a
 * crpc client in process: the API's errors, answers checked field by field,
 * and a client that never reads its answers, which must cost the server no
 * more than its connection's output budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <crpc/crpc.h>

#include "grpc/reflection/v1/reflection.crpc.h"
#include "refl_test.crpc.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

#define SAFETY_MS 30000 /* a deadline on every call, so nothing hangs */
#define BUDGET (64 * 1024)

typedef struct fixture {
  crpc_server *srv;
  crpc_channel *ch;
  char target[64];
} fixture;

static crpc_code echo(crpc_call *call, const Crpc__Refltest__Event *req,
                      Crpc__Refltest__Event *resp, void *user_data) {
  (void)call;
  (void)user_data;
  resp->name = req->name;
  return CRPC_OK;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  crpc_server_opts so = {.reactor_threads = 1, .max_conn_output_bytes = BUDGET};
  const Crpc__Refltest__Events_CrpcHandlers h = {.echo = echo};
  int port = 0;
  if (!f || crpc_server_new(&f->srv, &so) != 0 ||
      crpc_server_enable_reflection(f->srv) != 0 ||
      crpc__refltest__events__crpc_register(f->srv, &h, NULL) != 0 ||
      crpc_server_listen(f->srv, "127.0.0.1:0", NULL, &port) != 0 ||
      crpc_server_start(f->srv) != 0)
    return -1;
  snprintf(f->target, sizeof f->target, "127.0.0.1:%d", port);
  if (crpc_channel_new(&f->ch, f->target, NULL) != 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  crpc_channel_free(f->ch);
  crpc_server_free(f->srv);
  free(f);
  return 0;
}

static void test_api_errors(void **state) {
  (void)state;
  crpc_server *s;
  assert_int_equal(crpc_server_enable_reflection(NULL), CRPC_EINVAL);
  assert_int_equal(crpc_server_new(&s, NULL), 0);
  assert_int_equal(crpc_server_enable_reflection(s), 0);
  assert_int_equal(crpc_server_enable_reflection(s), CRPC_EEXIST);
  crpc_server_free(s);

  assert_int_equal(crpc_server_new(&s, NULL), 0);
  assert_int_equal(crpc_server_listen(s, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(crpc_server_start(s), 0);
  assert_int_equal(crpc_server_enable_reflection(s), CRPC_ESTATE);
  crpc_server_free(s);
}

/* Sends |n| requests on one stream, then reads |n| answers into |out|. */
static void ask(fixture *f, req_t *const *reqs, size_t n, resp_t **out) {
  crpc_call *c;
  crpc_call_opts o = {.timeout_ms = SAFETY_MS};
  assert_int_equal(
      grpc__reflection__v1__server_reflection__server_reflection_info__start(
          &c, f->ch, &o),
      0);
  for (size_t i = 0; i < n; i++)
    assert_true(
        grpc__reflection__v1__server_reflection__server_reflection_info__write(
            c, reqs[i]));
  assert_true(
      grpc__reflection__v1__server_reflection__server_reflection_info__writes_done(
          c));
  for (size_t i = 0; i < n; i++)
    assert_true(
        grpc__reflection__v1__server_reflection__server_reflection_info__read(
            c, &out[i]));
  resp_t *extra = NULL;
  assert_false(
      grpc__reflection__v1__server_reflection__server_reflection_info__read(
          c, &extra));
  crpc_status st = {0};
  assert_int_equal(
      grpc__reflection__v1__server_reflection__server_reflection_info__finish(
          c, &st),
      CRPC_OK);
  crpc_status_clear(&st);
  crpc_call_free(c);
}

/* The name field 1 of a serialized FileDescriptorProto. */
static void file_name(const ProtobufCBinaryData *b, char *out, size_t cap) {
  assert_true(b->len > 2 && b->data[0] == 0x0a && b->data[1] < 0x80);
  size_t n = b->data[1];
  assert_true(n + 2 <= b->len && n < cap);
  memcpy(out, b->data + 2, n);
  out[n] = '\0';
}

static void test_answers(void **state) {
  fixture *f = *state;
  req_t r[5];
  for (int i = 0; i < 5; i++)
    grpc__reflection__v1__server_reflection_request__init(&r[i]);
  r[0].message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  r[0].list_services = "";
  r[1].message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  r[1].file_containing_symbol = "crpc.refltest.Event.Detail.KIND_LOUD";
  r[2].message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  r[2].file_by_filename = "../refl_test.proto";
  r[3].message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  r[3].all_extension_numbers_of_type = "crpc.refltest.Event";
  r[4].host = "example.test"; /* no kind: UNIMPLEMENTED, host echoed */
  req_t *rp[5] = {&r[0], &r[1], &r[2], &r[3], &r[4]};
  resp_t *a[5] = {0};
  ask(f, rp, 5, a);

  /* list: sorted, the built-ins included */
  assert_int_equal(
      a[0]->message_response_case,
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
  const char *want[] = {"crpc.refltest.Events",
                        "grpc.reflection.v1.ServerReflection",
                        "grpc.reflection.v1alpha.ServerReflection"};
  assert_int_equal(a[0]->list_services_response->n_service, 3);
  for (int i = 0; i < 3; i++)
    assert_string_equal(a[0]->list_services_response->service[i]->name,
                        want[i]);

  /* the file first, then its imports */
  const Grpc__Reflection__V1__FileDescriptorResponse *fr =
      a[1]->file_descriptor_response;
  assert_non_null(fr);
  assert_int_equal(fr->n_file_descriptor_proto, 3);
  char name[64];
  file_name(&fr->file_descriptor_proto[0], name, sizeof name);
  assert_string_equal(name, "refl_test.proto");
  file_name(&fr->file_descriptor_proto[1], name, sizeof name);
  assert_string_equal(name, "google/protobuf/descriptor.proto");
  file_name(&fr->file_descriptor_proto[2], name, sizeof name);
  assert_string_equal(name, "google/protobuf/timestamp.proto");

  assert_non_null(a[2]->error_response);
  assert_int_equal(a[2]->error_response->error_code, CRPC_NOT_FOUND);
  assert_string_equal(a[2]->original_request->file_by_filename,
                      "../refl_test.proto");

  const Grpc__Reflection__V1__ExtensionNumberResponse *er =
      a[3]->all_extension_numbers_response;
  assert_non_null(er);
  assert_int_equal(er->n_extension_number, 2);
  assert_int_equal(er->extension_number[0] + er->extension_number[1], 250);

  assert_non_null(a[4]->error_response);
  assert_int_equal(a[4]->error_response->error_code, CRPC_UNIMPLEMENTED);
  assert_string_equal(a[4]->valid_host, "example.test");
  for (int i = 0; i < 5; i++)
    grpc__reflection__v1__server_reflection_response__free_unpacked(a[i], NULL);
}

/* A client that writes requests and never reads: the server queues at
 * most its connection budget (plus the answer that crossed it), then takes
 * no more of its requests (the handler is held back until the output
 * drains: the client's deadline ends the call), and keeps serving other
 * connections. */
static void test_never_reads(void **state) {
  fixture *f = *state;
  crpc_call *c;
  crpc_call_opts o = {.timeout_ms = 2000};
  assert_int_equal(
      grpc__reflection__v1__server_reflection__server_reflection_info__start(
          &c, f->ch, &o),
      0);
  req_t r;
  grpc__reflection__v1__server_reflection_request__init(&r);
  r.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  r.file_by_filename = "refl_test.proto"; /* ~10 KB of answer each */
  size_t written = 0;
  /* 4000 answers would be 40 MB; the server stops reading long before,
   * and the writes then wait until the deadline */
  while (written < 4000 &&
         grpc__reflection__v1__server_reflection__server_reflection_info__write(
             c, &r))
    written++;
  crpc_status st = {0};
  crpc_code code =
      grpc__reflection__v1__server_reflection__server_reflection_info__finish(
          c, &st);
  crpc_status_clear(&st);
  crpc_call_free(c);
  size_t peak = 0;
  crpc_server_output_bytes(f->srv, &peak);
  print_message("never-reading client: %zu requests written, %s, server "
                "output peak %zu bytes\n",
                written, crpc_code_name(code), peak);
  assert_true(code == CRPC_DEADLINE_EXCEEDED ||
              code == CRPC_RESOURCE_EXHAUSTED);
  /* the budget, plus the answer that filled it, plus frame overhead */
  assert_true(peak <= BUDGET + 32 * 1024);

  /* and the server still answers, on a new connection */
  crpc_channel *ch2;
  assert_int_equal(crpc_channel_new(&ch2, f->target, NULL), 0);
  crpc_channel *keep = f->ch;
  f->ch = ch2;
  req_t q;
  grpc__reflection__v1__server_reflection_request__init(&q);
  q.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  q.list_services = "";
  req_t *qp = &q;
  resp_t *a = NULL;
  ask(f, &qp, 1, &a);
  assert_int_equal(a->list_services_response->n_service, 3);
  grpc__reflection__v1__server_reflection_response__free_unpacked(a, NULL);
  f->ch = keep;
  crpc_channel_free(ch2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_api_errors),
      cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_never_reads, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
