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

/* --help. The same list of errors is in protoc-gen-crpc.1 (the man page);
 * tests/plugin/check_help.cmake keeps the two and the sources together. */
static const char help_text[] =
    "usage: protoc --plugin=protoc-gen-crpc=PATH --c_out=DIR --crpc_out=DIR\n"
    "              [-I DIR]... foo.proto...\n"
    "       protoc-gen-crpc --help | --version\n"
    "\n"
    "A protoc plugin: protoc runs it, writing a CodeGeneratorRequest to its\n"
    "stdin. For every foo.proto that declares a service it writes\n"
    "foo.crpc.h and foo.crpc.c (named as protoc names foo.pb-c.h: by the\n"
    "proto's path below its -I directory) beside protoc-c's output; a file\n"
    "without a service gets none. It takes no options. Names follow\n"
    "protoc-c's: prefix <pkg>__<service>__<method>__ (call, call_async,\n"
    "start, write, writes_done, read, finish, server_read, server_write,\n"
    "start_cb, write_async),\n"
    "types <Pkg>__<Service>_CrpcHandlers, <Pkg>__<Service>__<Method>_CrpcDone.\n"
    "See protoc-gen-crpc(1).\n"
    "\n"
    "Errors (protoc prints \"--crpc_out: FILE: ...\" and fails; fix):\n"
    "  generated name \"X\" (...) collides with \"Y\" (...)\n"
    "      two names, ours or protoc-c's, are the same C identifier\n"
    "      (e.g. methods Say and Say_Call): rename the method or service.\n"
    "  method M: protoc-c names its member \"do\", a C keyword\n"
    "      rename the method (rpc Do -> rpc DoIt).\n"
    "  protoc-gen-crpc takes no options\n"
    "      drop --crpc_opt and the \"opts:\" part of --crpc_out.\n"
    "  protoc-c generates no code for this file ((pb_c_file).no_generate\n"
    "      remove the option, or declare the service in another file.\n"
    "  method M: input|output type T comes from F, for which protoc-c\n"
    "  generates no code\n"
    "      use a message from a file protoc-c generates.\n"
    "  method M: input|output type T is not a message of the request\n"
    "      the type must be a message, and its file imported.\n"
    "  method M has no input|output type\n"
    "      give the rpc its request and response messages.\n"
    "  has no valid name / has no valid C name / without a valid name\n"
    "      service, method and type names must make C identifiers:\n"
    "      ASCII letters, digits and _.\n"
    "  the package name is not a dotted identifier\n"
    "  (pb_c_file).c_package \"X\" is not a dotted identifier\n"
    "      use a.b.c with identifiers between the dots.\n"
    "  the file name cannot be used in an #include\n"
    "      rename the file: no control characters, '\"', '\\', '/*' or '*/'.\n"
    "  import \"F\": the file name cannot be used in a C string\n"
    "      the same rule for an imported file, whose name and descriptor\n"
    "      the generated code embeds (for server reflection).\n"
    "  F imports itself (an import cycle)\n"
    "      a broken request: protoc refuses import cycles.\n"
    "  malformed protobuf-c option (extension 1019)\n"
    "      fix the (pb_c_file) / (pb_c_msg) options: import\n"
    "      protobuf-c/protobuf-c.proto and use its fields.\n"
    "  import \"F\" is not in the request / file to generate \"F\" is not in\n"
    "  the request / a file in the request has no name\n"
    "      a broken request: run the plugin through protoc 3 or later.\n"
    "On stderr, exit status 1: \"stdin is not a CodeGeneratorRequest\" (run\n"
    "it through protoc, not by hand), \"request larger than 512 MiB\",\n"
    "\"reading stdin\" / \"writing stdout\" (an I/O error, with errno's text).\n";

int main(int argc, char **argv) {
  if (argc > 1) {
    if (strcmp(argv[1], "--version") == 0) {
      puts("protoc-gen-crpc (crpc) for protoc-c 1.4.1 naming");
      return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
      fputs(help_text, stdout);
      return 0;
    }
    fprintf(stderr,
            "usage: protoc --plugin=protoc-gen-crpc=%s --crpc_out=DIR "
            "foo.proto\n"
            "(a protoc plugin: reads a CodeGeneratorRequest on stdin; "
            "--help for more)\n",
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
