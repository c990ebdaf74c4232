/*
 * gen.h: the plugin's internal interfaces.
 *
 *   printer.c      arena, growable buffer, indenting printer
 *   names.c        protoc-c 1.4.1's naming rules and every name it emits
 *   model.c        CodeGeneratorRequest file -> services, methods, names;
 *                  collision check
 *   emit_header.c  foo.crpc.h
 *   emit_source.c  foo.crpc.c
 *   main.c         stdin -> CodeGeneratorRequest -> stdout
 *
 * The plugin is a short-lived process: allocation failure ends it with a
 * message (cg_xmalloc), and every string it builds lives in one arena that
 * is freed at exit.
 */
#ifndef CRPC_GEN_H
#define CRPC_GEN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "google/protobuf/compiler/plugin.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"

#if defined(__GNUC__) || defined(__clang__)
#define CG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CG_PRINTF(f, a)
#endif

/* ---- printer.c ---- */

/* malloc/realloc that end the process with a message on failure. */
void *cg_xmalloc(size_t n);
void *cg_xrealloc(void *p, size_t n);

typedef struct cg_arena_block cg_arena_block;
typedef struct cg_arena {
  cg_arena_block *head;
} cg_arena;

void *cg_alloc(cg_arena *a, size_t n); /* zeroed */
char *cg_strdup(cg_arena *a, const char *s);
char *cg_strndup(cg_arena *a, const char *s, size_t n);
char *cg_sprintf(cg_arena *a, const char *fmt, ...) CG_PRINTF(2, 3);
void cg_arena_free(cg_arena *a);

typedef struct cg_buf {
  char *data; /* NUL-terminated once anything was appended */
  size_t len;
  size_t cap;
} cg_buf;

void cg_buf_append(cg_buf *b, const char *s, size_t n);
void cg_buf_puts(cg_buf *b, const char *s);
void cg_buf_putc(cg_buf *b, char c);
void cg_buf_vprintf(cg_buf *b, const char *fmt, va_list ap);
void cg_buf_printf(cg_buf *b, const char *fmt, ...) CG_PRINTF(2, 3);
void cg_buf_free(cg_buf *b);

/* Output with indentation: each non-empty line gets 2 * indent spaces. */
typedef struct cg_printer {
  cg_buf out;
  int indent;
  bool at_line_start;
} cg_printer;

void cg_print(cg_printer *p, const char *fmt, ...) CG_PRINTF(2, 3);
void cg_indent(cg_printer *p);
void cg_outdent(cg_printer *p);

/*
 * Prints "<head>(<params>)<tail>\n" as one line if it fits in 80 columns,
 * else breaks after "(" and fills the parameters on lines indented by 4,
 * as clang-format does. |head| ends with the function's name.
 */
void cg_print_call(cg_printer *p, const char *head, const char *const *params,
                   size_t n_params, const char *tail);

/* ---- names.c: protoc-c 1.4.1's naming rules, ported ---- */

/* "HTTPGet" -> "httpget", "SayHello" -> "say_hello", "Say_Hello" ->
 * "say__hello" (an upper-case letter after a non-upper one gets a "_"). */
char *cg_camel_to_lower(cg_arena *a, const char *name);
/* As cg_camel_to_lower, upper-cased: "SayHello" -> "SAY_HELLO". */
char *cg_camel_to_upper(cg_arena *a, const char *name);
/* "my_pkg" -> "MyPkg", "hello_request" -> "HelloRequest": drops "_" and
 * upper-cases the letter after it, and the first. */
char *cg_to_camel(cg_arena *a, const char *name);

/*
 * The scope protoc-c names a file's types in: its package and the
 * (pb_c_file).c_package option that overrides it.
 */
typedef struct cg_scope {
  const char *package;   /* "" when the file has none */
  const char *c_package; /* NULL when the option is not set */
} cg_scope;

/* protoc-c's OverrideFullName(): |full_name| (no leading dot) with the
 * package replaced by c_package when that is set. */
char *cg_override_full_name(cg_arena *a, const char *full_name,
                            const cg_scope *scope);
/* FullNameToLower/Upper/C: dot-separated pieces, each converted, joined by
 * "__": "my_pkg.v1.HelloRequest" -> "my_pkg__v1__hello_request",
 * "MY_PKG__V1__HELLO_REQUEST", "MyPkg__V1__HelloRequest". */
char *cg_full_name_to_lower(cg_arena *a, const char *full_name,
                            const cg_scope *scope);
char *cg_full_name_to_upper(cg_arena *a, const char *full_name,
                            const cg_scope *scope);
char *cg_full_name_to_c(cg_arena *a, const char *full_name,
                        const cg_scope *scope);

/* "my_pkg/edge.proto" -> "my_5fpkg_2fedge_2eproto" (non-alnum bytes
 * become "_" + lower-case hex). */
char *cg_filename_identifier(cg_arena *a, const char *filename);
/* Drops a trailing ".protodevel" or ".proto". */
char *cg_strip_proto(cg_arena *a, const char *filename);

/* Whether |s| is a C identifier ([A-Za-z_][A-Za-z0-9_]*). */
bool cg_is_identifier(const char *s);
/* Whether |s| is a C11 keyword. */
bool cg_is_c_keyword(const char *s);

/* protoc-c's own options, extension 1019 of FileOptions / MessageOptions
 * (protobuf-c/protobuf-c.proto), decoded from the unknown fields. */
typedef struct cg_pbc_file_opts {
  bool no_generate;
  bool has_gen_pack_helpers;
  bool gen_pack_helpers; /* default true */
  bool gen_init_helpers; /* default true */
  const char *c_package; /* NULL when unset */
} cg_pbc_file_opts;

typedef struct cg_pbc_msg_opts {
  bool has_gen_pack_helpers;
  bool gen_pack_helpers; /* default false */
  bool has_gen_init_helpers;
  bool gen_init_helpers; /* default true */
} cg_pbc_msg_opts;

/* Return 0, or -1 with *err set when the option bytes are malformed. */
int cg_pbc_file_opts_get(cg_arena *a, const Google__Protobuf__FileOptions *o,
                         cg_pbc_file_opts *out, const char **err);
int cg_pbc_msg_opts_get(cg_arena *a, const Google__Protobuf__MessageOptions *o,
                        cg_pbc_msg_opts *out, const char **err);

/* A set of C names and where they come from, to find collisions. */
typedef enum cg_name_kind {
  CG_NAME_IDENT,  /* function, object, type, tag, enum constant */
  CG_NAME_MACRO,  /* #define: clashes with anything */
  CG_NAME_MEMBER, /* struct member: clashes only with macros */
} cg_name_kind;

typedef struct cg_name {
  const char *name;
  const char *origin; /* "protoc-c: message foo.Bar (descriptor)" */
  cg_name_kind kind;
  bool ours;
  size_t seq; /* insertion order, for stable reports */
} cg_name;

typedef struct cg_nameset {
  cg_name *v;
  size_t n;
  size_t cap;
} cg_nameset;

void cg_nameset_add(cg_nameset *s, const char *name, cg_name_kind kind,
                    bool ours, const char *origin);
/* Finds the first (in insertion order of ours) name of ours that clashes
 * with another entry. Returns false when there is none. Sorts the set. */
bool cg_nameset_find_clash(cg_nameset *s, const cg_name **ours,
                           const cg_name **other);
void cg_nameset_free(cg_nameset *s);

/*
 * Adds every name protoc-c 1.4.1 emits in foo.pb-c.h/.c for |fd|: types,
 * functions, descriptors, macros, enum constants and file-scope statics.
 * Returns 0, or -1 with *err set (bad option bytes).
 */
int cg_pbc_names(cg_arena *a, cg_nameset *s,
                 const Google__Protobuf__FileDescriptorProto *fd,
                 const char **err);

/* ---- model.c ---- */

typedef enum cg_kind {
  CG_UNARY = 0,
  CG_SERVER_STREAMING = 1,
  CG_CLIENT_STREAMING = 2,
  CG_BIDI_STREAMING = 3
} cg_kind;

typedef struct cg_method {
  const char *name; /* "SayHello", as in the .proto */
  const char *lc;   /* "say_hello": protoc-c's closure member name */
  const char *path; /* "/helloworld.Greeter/SayHello" */
  cg_kind kind;
  const char *in_c;    /* "Helloworld__HelloRequest" */
  const char *out_c;   /* "Helloworld__HelloReply" */
  const char *in_desc; /* "helloworld__hello_request__descriptor" */
  const char *out_desc;
  const char *in_free; /* "helloworld__hello_request__free_unpacked", or
                          "protobuf_c_message_free_unpacked" for a message
                          protoc-c gives no helpers */
  const char *out_free;
  const char *prefix;     /* "helloworld__greeter__say_hello": + "__call" */
  const char *done_type;  /* "Helloworld__Greeter__SayHello_CrpcDone" */
  const char *trampoline; /* static: prefix + "__crpc_trampoline" */
  const char *adapter;    /* static: prefix + "__crpc_adapter" */
} cg_method;

typedef struct cg_service {
  const char *full_name;       /* "helloworld.Greeter" */
  const char *lc;              /* "helloworld__greeter" */
  const char *pbc_desc;        /* "helloworld__greeter__descriptor" */
  const char *handlers_type;   /* "Helloworld__Greeter_CrpcHandlers" */
  const char *methods_var;     /* lc + "__crpc_methods" */
  const char *service_var;     /* lc + "__crpc_service" */
  const char *register_fn;     /* lc + "__crpc_register" */
  const char *trampolines_var; /* static: lc + "__crpc_trampolines" */
  cg_method *methods;
  size_t n_methods;
} cg_service;

/* A .proto file whose serialized FileDescriptorProto the generated code
 * embeds for server reflection: the generated file and every file it
 * imports, transitively. */
typedef struct cg_embed {
  const char *name;     /* "my_pkg/edge.proto" */
  const char *var;      /* "crpc_fd__my_5fpkg_2fedge_2eproto" */
  const char *data_var; /* var + "__data" */
  const char *deps_var; /* var + "__deps"; NULL without imports */
  unsigned char *data;  /* the FileDescriptorProto, packed */
  size_t size;
  const char **dep_vars; /* the imports' var, in dependency order */
  size_t n_deps;
} cg_embed;

typedef struct cg_file {
  const char *proto_name; /* "my_pkg/edge.proto" */
  const char *base;       /* "my_pkg/edge" */
  const char *guard;      /* "CRPC_my_5fpkg_2fedge_2eproto__INCLUDED" */
  cg_service *services;
  size_t n_services;
  cg_embed *embeds; /* imports before their importers; the file is last */
  size_t n_embeds;
} cg_file;

/*
 * Builds the model of |fd| (one of req's proto_file) and checks that no
 * name it will emit clashes with protoc-c's. Returns 0, or -1 with *err
 * set to a message for CodeGeneratorResponse.error.
 */
int cg_model_build(cg_arena *a,
                   const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                   const Google__Protobuf__FileDescriptorProto *fd,
                   cg_file *out, const char **err);

/* Finds a file of the request by name; NULL when absent. */
const Google__Protobuf__FileDescriptorProto *
cg_find_file(const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
             const char *name);

/* ---- emit_header.c, emit_source.c ---- */

void cg_emit_header(cg_printer *p, const cg_file *f);
void cg_emit_source(cg_printer *p, const cg_file *f);

#endif /* CRPC_GEN_H */
