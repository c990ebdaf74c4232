/*
 * protoc-gen-crpc on bad input: it runs as a child process fed bytes on
 * stdin, and must answer every input either with a CodeGeneratorResponse
 * (exit 0; problems in .error) or with a message on stderr (exit 1), never
 * with a signal or a sanitizer report.
 *
 *   test_plugin_input PLUGIN EDGE_SET.pb WORK_DIR
 *
 * EDGE_SET.pb is the edge-case protos' FileDescriptorSet (with imports),
 * from which the valid requests are built.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "google/protobuf/compiler/plugin.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"

extern char **environ;

typedef Google__Protobuf__Compiler__CodeGeneratorRequest Request;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse Response;

static const char *plugin, *set_path, *work_dir;
static Google__Protobuf__FileDescriptorSet *set;

typedef struct result {
  int exit_code; /* -1: killed by a signal */
  uint8_t *out;
  size_t out_len;
  char *err; /* NUL-terminated */
} result;

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap + 1);
  assert_non_null(buf);
  size_t r;
  while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
      assert_non_null(buf);
    }
  }
  fclose(f);
  buf[n] = 0;
  *len = n;
  return buf;
}

static void spit(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

/* Runs the plugin with |in| on stdin. Sanitizers get their own exit code
 * so that a report cannot pass for the plugin's exit 1. */
static result run(const void *in, size_t len) {
  char in_path[512], out_path[512], err_path[512];
  snprintf(in_path, sizeof(in_path), "%s/in.bin", work_dir);
  snprintf(out_path, sizeof(out_path), "%s/out.bin", work_dir);
  snprintf(err_path, sizeof(err_path), "%s/err.txt", work_dir);
  spit(in_path, in, len);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path,
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path,
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  char *argv[] = {(char *)plugin, NULL};
  pid_t pid;
  int rv = posix_spawn(&pid, plugin, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  assert_int_equal(rv, 0);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    assert_int_equal(errno, EINTR);

  result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out_path, &r.out_len);
  size_t n;
  r.err = (char *)slurp(err_path, &n);
  return r;
}

static void result_free(result *r) {
  free(r->out);
  free(r->err);
}

/* Every run: no signal, no sanitizer report; exit 0 with a response that
 * parses, or exit 1 with nothing on stdout and a message on stderr. */
static Response *check_sane(const result *r) {
  if (r->exit_code < 0 || strstr(r->err, "Sanitizer") ||
      strstr(r->err, "runtime error"))
    fail_msg("plugin crashed (exit %d):\n%s", r->exit_code, r->err);
  if (r->exit_code == 1) {
    assert_int_equal(r->out_len, 0);
    assert_non_null(strstr(r->err, "protoc-gen-crpc: "));
    return NULL;
  }
  if (r->exit_code != 0)
    fail_msg("unexpected exit %d:\n%s", r->exit_code, r->err);
  Response *resp = google__protobuf__compiler__code_generator_response__unpack(
      NULL, r->out_len, r->out);
  assert_non_null(resp);
  return resp;
}

/* A request for |file| over the whole descriptor set, packed. */
static uint8_t *pack_request(Request *req, size_t *len) {
  *len =
      google__protobuf__compiler__code_generator_request__get_packed_size(req);
  uint8_t *buf = malloc(*len ? *len : 1);
  assert_non_null(buf);
  google__protobuf__compiler__code_generator_request__pack(req, buf);
  return buf;
}

static void init_request(Request *req, char **files, size_t n_files) {
  google__protobuf__compiler__code_generator_request__init(req);
  req->n_file_to_generate = n_files;
  req->file_to_generate = files;
  req->n_proto_file = set->n_file;
  req->proto_file = set->file;
}

static void test_garbage(void **state) {
  (void)state;
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7a};
  result r = run(junk, sizeof(junk));
  assert_null(check_sane(&r));
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "not a CodeGeneratorRequest"));
  result_free(&r);
}

static void test_empty_request(void **state) {
  (void)state;
  /* Zero bytes are a valid, empty request: nothing to do. */
  result r = run("", 0);
  Response *resp = check_sane(&r);
  assert_non_null(resp);
  assert_null(resp->error);
  assert_int_equal(resp->n_file, 0);
  google__protobuf__compiler__code_generator_response__free_unpacked(resp,
                                                                     NULL);
  result_free(&r);
}

static void test_valid_request(void **state) {
  (void)state;
  char *files[] = {"my_pkg/edge.proto", "common.proto"};
  Request req;
  init_request(&req, files, 2);
  size_t len;
  uint8_t *in = pack_request(&req, &len);
  result r = run(in, len);
  Response *resp = check_sane(&r);
  assert_non_null(resp);
  assert_null(resp->error);
  /* edge.proto has services, common.proto none: two files only. */
  assert_int_equal(resp->n_file, 2);
  assert_string_equal(resp->file[0]->name, "my_pkg/edge.crpc.h");
  assert_string_equal(resp->file[1]->name, "my_pkg/edge.crpc.c");
  assert_true(resp->has_supported_features);
  google__protobuf__compiler__code_generator_response__free_unpacked(resp,
                                                                     NULL);
  result_free(&r);

  /* Every truncation of a valid request: a clean answer either way. */
  for (size_t cut = 0; cut < len; cut += len / 61 + 1) {
    result t = run(in, cut);
    Response *tr = check_sane(&t);
    if (tr)
      google__protobuf__compiler__code_generator_response__free_unpacked(tr,
                                                                         NULL);
    result_free(&t);
  }

  /* Flipped bytes (a fixed pseudo-random sequence). */
  uint32_t x = 12345;
  for (int i = 0; i < 40; i++) {
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, in, len);
    for (int k = 0; k < 3; k++) {
      x = x * 1103515245u + 12345u;
      bad[(x >> 8) % len] ^= (uint8_t)(1u << ((x >> 4) % 8));
    }
    result t = run(bad, len);
    Response *tr = check_sane(&t);
    if (tr)
      google__protobuf__compiler__code_generator_response__free_unpacked(tr,
                                                                         NULL);
    result_free(&t);
    free(bad);
  }
  free(in);
}

static void expect_error(Request *req, const char *needle) {
  size_t len;
  uint8_t *in = pack_request(req, &len);
  result r = run(in, len);
  Response *resp = check_sane(&r);
  assert_non_null(resp);
  if (resp->error == NULL || strstr(resp->error, needle) == NULL)
    fail_msg("expected an error with \"%s\", got \"%s\"", needle,
             resp->error ? resp->error : "(none)");
  assert_int_equal(resp->n_file, 0);
  google__protobuf__compiler__code_generator_response__free_unpacked(resp,
                                                                     NULL);
  result_free(&r);
  free(in);
}

static Google__Protobuf__FileDescriptorProto *find(const char *name) {
  for (size_t i = 0; i < set->n_file; i++)
    if (strcmp(set->file[i]->name, name) == 0)
      return set->file[i];
  fail_msg("%s not in the set", name);
  return NULL;
}

static void test_inconsistent_requests(void **state) {
  (void)state;
  char *files[] = {"my_pkg/edge.proto"};
  Request req;

  /* A file to generate that the request does not carry. */
  char *missing[] = {"nope.proto"};
  init_request(&req, missing, 1);
  expect_error(&req, "\"nope.proto\" is not in the request");

  /* Imports missing from the request. */
  Google__Protobuf__FileDescriptorProto *edge = find("my_pkg/edge.proto");
  init_request(&req, files, 1);
  req.n_proto_file = 1;
  req.proto_file = &edge;
  expect_error(&req, "is not in the request");

  /* Names that are not identifiers must never reach generated code. */
  init_request(&req, files, 1);
  Google__Protobuf__MethodDescriptorProto *m = edge->service[0]->method[0];
  char *saved = m->name;
  m->name = "Say */ Hello";
  expect_error(&req, "without a valid name");
  m->name = NULL;
  expect_error(&req, "without a valid name");
  m->name = saved;

  saved = m->input_type;
  m->input_type = ".my_pkg.v1.NoSuchType";
  expect_error(&req, "is not a message of the request");
  m->input_type = NULL;
  expect_error(&req, "has no input type");
  m->input_type = saved;

  saved = edge->package;
  edge->package = "my pkg";
  expect_error(&req, "package name is not a dotted identifier");
  edge->package = saved;

  saved = edge->name;
  edge->name = "my_pkg/\"edge.proto";
  char *quoted[] = {edge->name};
  init_request(&req, quoted, 1);
  expect_error(&req, "cannot be used in an #include");
  edge->name = saved;

  /* Options. */
  init_request(&req, files, 1);
  req.parameter = "x=y";
  expect_error(&req, "takes no options");
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s PLUGIN EDGE_SET.pb WORK_DIR\n", argv[0]);
    return 2;
  }
  plugin = argv[1];
  set_path = argv[2];
  work_dir = argv[3];
  mkdir(work_dir, 0755);

  /* A sanitizer report must not look like the plugin's own exit 1. */
  setenv("ASAN_OPTIONS", "exitcode=86:detect_leaks=1", 0);
  setenv("UBSAN_OPTIONS", "exitcode=87:print_stacktrace=1", 0);

  FILE *f = fopen(set_path, "rb");
  if (f == NULL) {
    perror(set_path);
    return 2;
  }
  fclose(f);
  size_t len;
  uint8_t *data = slurp(set_path, &len);
  set = google__protobuf__file_descriptor_set__unpack(NULL, len, data);
  free(data);
  if (set == NULL) {
    fprintf(stderr, "%s: not a FileDescriptorSet\n", set_path);
    return 2;
  }

  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_empty_request),
      cmocka_unit_test(test_valid_request),
      cmocka_unit_test(test_inconsistent_requests),
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
  return rv;
}
