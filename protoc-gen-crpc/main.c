/*
 * protoc-gen-crpc: a protoc plugin. protoc writes a CodeGeneratorRequest
 * to our stdin; we answer with a CodeGeneratorResponse on stdout holding
 * foo.crpc.h and foo.crpc.c for every requested foo.proto that declares a
 * service (none for a file without one).
 *
 * Problems with the .proto (a name that would collide with protoc-c's, an
 * option we cannot honour) go back in CodeGeneratorResponse.error, which
 * protoc prints; bytes that are not a request at all get a message on
 * stderr and exit status 1.
 *
 *   protoc --plugin=protoc-gen-crpc=path/to/protoc-gen-crpc \
 *          --c_out=OUT --crpc_out=OUT foo.proto
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

typedef Google__Protobuf__Compiler__CodeGeneratorRequest Request;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse Response;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse__File ResponseFile;

/* Far above any real request; keeps a runaway producer from eating RAM. */
#define MAX_REQUEST (512u * 1024u * 1024u)

static int read_all(FILE *in, cg_buf *b) {
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0) {
    if (b->len + n > MAX_REQUEST) {
      fputs("protoc-gen-crpc: request larger than 512 MiB\n", stderr);
      return -1;
    }
    cg_buf_append(b, chunk, n);
  }
  if (ferror(in)) {
    perror("protoc-gen-crpc: reading stdin");
    return -1;
  }
  return 0;
}

static ResponseFile *new_file(cg_arena *a, const char *name, cg_buf *content) {
  ResponseFile *f = cg_alloc(a, sizeof(*f));
  google__protobuf__compiler__code_generator_response__file__init(f);
  f->name = cg_strdup(a, name);
  f->content = cg_strndup(a, content->data ? content->data : "", content->len);
  return f;
}

/* Fills |resp|; returns the error for CodeGeneratorResponse.error or NULL. */
static const char *generate(cg_arena *a, const Request *req, Response *resp) {
  if (req->parameter != NULL && req->parameter[0] != '\0')
    return cg_sprintf(a, "protoc-gen-crpc takes no options (got \"%s\")",
                      req->parameter);
  resp->file = cg_alloc(a, 2 * req->n_file_to_generate * sizeof(*resp->file));
  for (size_t i = 0; i < req->n_file_to_generate; i++) {
    const char *name = req->file_to_generate[i];
    const Google__Protobuf__FileDescriptorProto *fd =
        name ? cg_find_file(req, name) : NULL;
    if (fd == NULL)
      return cg_sprintf(a, "file to generate \"%s\" is not in the request",
                        name ? name : "(null)");
    if (fd->n_service == 0)
      continue; /* nothing of ours: no output at all */
    cg_file model;
    const char *err = NULL;
    if (cg_model_build(a, req, fd, &model, &err) != 0)
      return err;

    cg_printer h = {0}, c = {0};
    h.at_line_start = c.at_line_start = true;
    cg_emit_header(&h, &model);
    cg_emit_source(&c, &model);
    resp->file[resp->n_file++] =
        new_file(a, cg_sprintf(a, "%s.crpc.h", model.base), &h.out);
    resp->file[resp->n_file++] =
        new_file(a, cg_sprintf(a, "%s.crpc.c", model.base), &c.out);
    cg_buf_free(&h.out);
    cg_buf_free(&c.out);
  }
  return NULL;
}

static int write_response(const Response *resp) {
  size_t n =
      google__protobuf__compiler__code_generator_response__get_packed_size(
          resp);
  uint8_t *out = cg_xmalloc(n);
  google__protobuf__compiler__code_generator_response__pack(resp, out);
  size_t w = fwrite(out, 1, n, stdout);
  free(out);
  if (w != n || fflush(stdout) != 0) {
    perror("protoc-gen-crpc: writing stdout");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1) {
    if (strcmp(argv[1], "--version") == 0) {
      puts("protoc-gen-crpc (crpc) for protoc-c 1.4.1 naming");
      return 0;
    }
    fprintf(stderr,
            "usage: protoc --plugin=protoc-gen-crpc=%s --crpc_out=DIR "
            "foo.proto\n"
            "(a protoc plugin: reads a CodeGeneratorRequest on stdin)\n",
            argv[0]);
    return 1;
  }

  cg_buf in = {0};
  if (read_all(stdin, &in) != 0) {
    cg_buf_free(&in);
    return 1;
  }
  Request *req = google__protobuf__compiler__code_generator_request__unpack(
      NULL, in.len, (const uint8_t *)(in.data ? in.data : ""));
  cg_buf_free(&in);
  if (req == NULL) {
    fputs("protoc-gen-crpc: stdin is not a CodeGeneratorRequest (run me "
          "through protoc: --plugin=protoc-gen-crpc=... --crpc_out=DIR)\n",
          stderr);
    return 1;
  }

  cg_arena arena = {0};
  Response resp;
  google__protobuf__compiler__code_generator_response__init(&resp);
  /* Proto3 optional fields change nothing in our output. */
  resp.has_supported_features = 1;
  resp.supported_features =
      GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL;
  const char *err = generate(&arena, req, &resp);
  if (err != NULL) {
    resp.error = (char *)err;
    resp.n_file = 0; /* protoc ignores files on error; send none */
  }
  int rv = write_response(&resp);
  google__protobuf__compiler__code_generator_request__free_unpacked(req, NULL);
  cg_arena_free(&arena);
  return rv == 0 ? 0 : 1;
}
