/*
 * model.c: from one file of a CodeGeneratorRequest to the services,
 * methods and C names the emitters print, and the check that none of our
 * names clashes with protoc-c's (or with another of ours).
 *
 * The request is parsed input: a string may be missing (protobuf-c leaves
 * NULL) or hold anything, so every name that ends up in generated code is
 * checked to be an identifier first.
 */
#include <stdlib.h>
#include <string.h>

#include "gen.h"

typedef Google__Protobuf__Compiler__CodeGeneratorRequest Request;
typedef Google__Protobuf__FileDescriptorProto FileProto;
typedef Google__Protobuf__DescriptorProto MessageProto;
typedef Google__Protobuf__ServiceDescriptorProto ServiceProto;
typedef Google__Protobuf__MethodDescriptorProto MethodProto;

const FileProto *cg_find_file(const Request *req, const char *name) {
  for (size_t i = 0; i < req->n_proto_file; i++)
    if (req->proto_file[i]->name && strcmp(req->proto_file[i]->name, name) == 0)
      return req->proto_file[i];
  return NULL;
}

/* Where a message type (".pkg.Outer.Inner") is defined. */
typedef struct type_entry {
  const char *dotted; /* ".pkg.Outer.Inner" */
  const char *full;   /* "pkg.Outer.Inner" */
  const FileProto *file;
} type_entry;

typedef struct type_table {
  type_entry *v;
  size_t n, cap;
} type_table;

static void types_add(cg_arena *a, type_table *t, const char *full,
                      const FileProto *f) {
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 64;
    t->v = cg_xrealloc(t->v, t->cap * sizeof(*t->v));
  }
  t->v[t->n++] = (type_entry){cg_sprintf(a, ".%s", full), full, f};
}

static void types_add_message(cg_arena *a, type_table *t, const char *scope,
                              const MessageProto *m, const FileProto *f) {
  if (m->name == NULL)
    return;
  const char *full = *scope ? cg_sprintf(a, "%s.%s", scope, m->name) : m->name;
  types_add(a, t, full, f);
  for (size_t i = 0; i < m->n_nested_type; i++)
    types_add_message(a, t, full, m->nested_type[i], f);
}

static int by_dotted(const void *x, const void *y) {
  return strcmp(((const type_entry *)x)->dotted,
                ((const type_entry *)y)->dotted);
}

static const type_entry *types_find(const type_table *t, const char *dotted) {
  type_entry key = {dotted, NULL, NULL};
  return bsearch(&key, t->v, t->n, sizeof(*t->v), by_dotted);
}

typedef struct build_ctx {
  cg_arena *a;
  const Request *req;
  const FileProto *fd;
  type_table types;
  cg_nameset names;
  const char *err;
} build_ctx;

static int fail(build_ctx *c, const char *msg) {
  c->err = cg_sprintf(c->a, "%s: %s", c->fd->name, msg);
  return -1;
}

/* Names protoc-c emits in every header our header includes: the file's
 * own and, transitively, its imports'. */
static int add_pbc_names(build_ctx *c, const FileProto *f,
                         const FileProto **seen, size_t *n_seen) {
  for (size_t i = 0; i < *n_seen; i++)
    if (seen[i] == f)
      return 0;
  seen[(*n_seen)++] = f;
  const char *err = NULL;
  if (cg_pbc_names(c->a, &c->names, f, &err) != 0)
    return fail(c, cg_sprintf(c->a, "%s: %s", f->name, err));
  for (size_t i = 0; i < f->n_dependency; i++) {
    const FileProto *d = cg_find_file(c->req, f->dependency[i]);
    if (d == NULL)
      return fail(c, cg_sprintf(c->a, "import \"%s\" is not in the request",
                                f->dependency[i]));
    if (add_pbc_names(c, d, seen, n_seen) != 0)
      return -1;
  }
  return 0;
}

static int scope_of(build_ctx *c, const FileProto *f, cg_scope *scope,
                    bool *no_generate) {
  cg_pbc_file_opts fo;
  const char *err = NULL;
  if (cg_pbc_file_opts_get(c->a, f->options, &fo, &err) != 0)
    return fail(c, cg_sprintf(c->a, "%s: %s", f->name, err));
  scope->package = f->package ? f->package : "";
  scope->c_package = fo.c_package;
  if (no_generate)
    *no_generate = fo.no_generate;
  return 0;
}

/* Every dot-separated piece of a package or c_package must be an
 * identifier, or the C names built from it are not. */
static bool is_dotted_identifier(cg_arena *a, const char *s) {
  if (s == NULL)
    return false;
  const char *p = s;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (!cg_is_identifier(cg_strndup(a, p, n)))
      return false;
    if (dot == NULL)
      return true;
    p = dot + 1;
  }
}

/* A file name goes into #include "..." and comments. */
static bool is_safe_filename(const char *s) {
  if (s == NULL || *s == '\0')
    return false;
  for (const char *p = s; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\' ||
        (ch == '*' && p[1] == '/') || (ch == '/' && p[1] == '*'))
      return false;
  }
  return true;
}

typedef struct msg_names {
  const char *c;
  const char *lc;
} msg_names;

static int resolve_type(build_ctx *c, const char *dotted, const char *what,
                        const char *method, msg_names *out) {
  if (dotted == NULL)
    return fail(c, cg_sprintf(c->a, "method %s has no %s type", method, what));
  const type_entry *t = types_find(&c->types, dotted);
  if (t == NULL)
    return fail(c, cg_sprintf(c->a,
                              "method %s: %s type %s is not a message "
                              "of the request",
                              method, what, dotted));
  cg_scope scope;
  bool no_generate = false;
  if (scope_of(c, t->file, &scope, &no_generate) != 0)
    return -1;
  if (no_generate)
    return fail(c, cg_sprintf(c->a,
                              "method %s: %s type %s comes from %s, for "
                              "which protoc-c generates no code "
                              "((pb_c_file).no_generate)",
                              method, what, t->full, t->file->name));
  out->c = cg_full_name_to_c(c->a, t->full, &scope);
  out->lc = cg_full_name_to_lower(c->a, t->full, &scope);
  if (!cg_is_identifier(out->c) || !cg_is_identifier(out->lc))
    return fail(c, cg_sprintf(c->a, "method %s: type %s has no valid C name",
                              method, t->full));
  return 0;
}

/* protoc-c emits foo__free_unpacked only for messages with pack helpers
 * (by default top-level ones); the generic function frees any message. */
static const char *free_fn(build_ctx *c, const char *lc) {
  const char *fn = cg_sprintf(c->a, "%s__free_unpacked", lc);
  for (size_t i = 0; i < c->names.n; i++)
    if (!c->names.v[i].ours && strcmp(c->names.v[i].name, fn) == 0)
      return fn;
  return "protobuf_c_message_free_unpacked";
}

static void ours(build_ctx *c, const char *name, cg_name_kind kind,
                 const char *what, const char *full) {
  cg_nameset_add(&c->names, name, kind, true,
                 cg_sprintf(c->a, "crpc's %s for %s", what, full));
}

static int build_method(build_ctx *c, const cg_service *sv, const char *svc_c,
                        const MethodProto *mp, cg_method *m) {
  cg_arena *a = c->a;
  if (!cg_is_identifier(mp->name))
    return fail(c, cg_sprintf(a,
                              "service %s has a method without a valid "
                              "name",
                              sv->full_name));
  const char *full = cg_sprintf(a, "%s.%s", sv->full_name, mp->name);
  m->name = mp->name;
  m->lc = cg_camel_to_lower(a, mp->name);
  if (cg_is_c_keyword(m->lc))
    return fail(c, cg_sprintf(a,
                              "method %s: protoc-c names its member \"%s\", a "
                              "C keyword; rename the method",
                              full, m->lc));
  m->path = cg_sprintf(a, "/%s/%s", sv->full_name, mp->name);
  bool cs = mp->has_client_streaming && mp->client_streaming;
  bool ss = mp->has_server_streaming && mp->server_streaming;
  m->kind = cs ? (ss ? CG_BIDI_STREAMING : CG_CLIENT_STREAMING)
               : (ss ? CG_SERVER_STREAMING : CG_UNARY);

  msg_names in, out;
  if (resolve_type(c, mp->input_type, "input", full, &in) != 0 ||
      resolve_type(c, mp->output_type, "output", full, &out) != 0)
    return -1;
  m->in_c = in.c;
  m->out_c = out.c;
  m->in_desc = cg_sprintf(a, "%s__descriptor", in.lc);
  m->out_desc = cg_sprintf(a, "%s__descriptor", out.lc);
  m->in_free = free_fn(c, in.lc);
  m->out_free = free_fn(c, out.lc);

  m->prefix = cg_sprintf(a, "%s__%s", sv->lc, m->lc);
  m->done_type =
      cg_sprintf(a, "%s__%s_CrpcDone", svc_c, cg_to_camel(a, mp->name));
  m->trampoline = cg_sprintf(a, "%s__crpc_trampoline", m->prefix);
  m->adapter = cg_sprintf(a, "%s__crpc_adapter", m->prefix);

  /* Register every name this method's code declares. */
  static const char *const unary[] = {"call", "call_async", "start_cb"};
  static const char *const server[] = {"start", "read", "finish",
                                       "server_write", "start_cb"};
  static const char *const client[] = {"start", "write", "finish",
                                       "server_read", "start_cb",
                                       "write_async"};
  static const char *const bidi[] = {
      "start",       "write",    "writes_done", "read",       "finish",
      "server_write", "server_read", "start_cb", "write_async"};
  const char *const *fns = unary;
  size_t n_fns = 3;
  switch (m->kind) {
  case CG_UNARY:
    break;
  case CG_SERVER_STREAMING:
    fns = server;
    n_fns = 5;
    break;
  case CG_CLIENT_STREAMING:
    fns = client;
    n_fns = 6;
    break;
  case CG_BIDI_STREAMING:
    fns = bidi;
    n_fns = 9;
    break;
  }
  for (size_t i = 0; i < n_fns; i++)
    ours(c, cg_sprintf(a, "%s__%s", m->prefix, fns[i]), CG_NAME_IDENT,
         cg_sprintf(a, "%s function", fns[i]), full);
  if (m->kind == CG_UNARY) {
    ours(c, m->done_type, CG_NAME_IDENT, "callback type", full);
    ours(c, m->adapter, CG_NAME_IDENT, "callback adapter", full);
  }
  ours(c, m->trampoline, CG_NAME_IDENT, "handler trampoline", full);
  ours(c, m->lc, CG_NAME_MEMBER, "handler table member", full);
  return 0;
}

static int build_service(build_ctx *c, const cg_scope *scope,
                         const ServiceProto *sp, cg_service *sv) {
  cg_arena *a = c->a;
  if (!cg_is_identifier(sp->name))
    return fail(c, "a service has no valid name");
  sv->full_name = *scope->package
                      ? cg_sprintf(a, "%s.%s", scope->package, sp->name)
                      : sp->name;
  const char *svc_c = cg_full_name_to_c(a, sv->full_name, scope);
  sv->lc = cg_full_name_to_lower(a, sv->full_name, scope);
  if (!cg_is_identifier(svc_c) || !cg_is_identifier(sv->lc))
    return fail(c,
                cg_sprintf(a, "service %s has no valid C name", sv->full_name));
  sv->pbc_desc = cg_sprintf(a, "%s__descriptor", sv->lc);
  sv->handlers_type = cg_sprintf(a, "%s_CrpcHandlers", svc_c);
  sv->methods_var = cg_sprintf(a, "%s__crpc_methods", sv->lc);
  sv->service_var = cg_sprintf(a, "%s__crpc_service", sv->lc);
  sv->register_fn = cg_sprintf(a, "%s__crpc_register", sv->lc);
  sv->trampolines_var = cg_sprintf(a, "%s__crpc_trampolines", sv->lc);
  ours(c, sv->handlers_type, CG_NAME_IDENT, "handler table type",
       sv->full_name);
  ours(c, sv->methods_var, CG_NAME_IDENT, "method table", sv->full_name);
  ours(c, sv->service_var, CG_NAME_IDENT, "service", sv->full_name);
  ours(c, sv->register_fn, CG_NAME_IDENT, "register function", sv->full_name);
  ours(c, sv->trampolines_var, CG_NAME_IDENT, "trampoline table",
       sv->full_name);

  sv->n_methods = sp->n_method;
  sv->methods = cg_alloc(a, sp->n_method * sizeof(*sv->methods));
  for (size_t i = 0; i < sp->n_method; i++)
    if (build_method(c, sv, svc_c, sp->method[i], &sv->methods[i]) != 0)
      return -1;
  return 0;
}

/* The FileDescriptorProto as reflection serves it: what protoc sent,
 * minus source_code_info (comments and spans, which protoc sends only for
 * the files to generate and gRPC's own servers never serve). */
static void embed_pack(cg_arena *a, const FileProto *f, cg_embed *e) {
  FileProto copy = *f; /* shallow: packing only reads it */
  copy.source_code_info = NULL;
  e->size = google__protobuf__file_descriptor_proto__get_packed_size(&copy);
  e->data = cg_alloc(a, e->size ? e->size : 1);
  google__protobuf__file_descriptor_proto__pack(&copy, e->data);
}

static size_t file_index(const Request *req, const FileProto *f) {
  for (size_t i = 0; i < req->n_proto_file; i++)
    if (req->proto_file[i] == f)
      return i;
  return req->n_proto_file;
}

/* Adds |f| after its imports (depth first), once each. |state| per file
 * of the request: 0 unseen, 1 on the current path, 2 embedded. Returns
 * the embed's var, or NULL after fail(). */
static const char *add_embed(build_ctx *c, const FileProto *f,
                             unsigned char *state, cg_file *out) {
  cg_arena *a = c->a;
  size_t i = file_index(c->req, f);
  if (state[i] == 1) {
    fail(c, cg_sprintf(a, "%s imports itself (an import cycle)", f->name));
    return NULL;
  }
  if (state[i] == 2) {
    for (size_t j = 0; j < out->n_embeds; j++)
      if (strcmp(out->embeds[j].name, f->name) == 0)
        return out->embeds[j].var;
  }
  if (!is_safe_filename(f->name)) {
    fail(c, cg_sprintf(a, "import \"%s\": the file name cannot be used in a "
                          "C string",
                       f->name ? f->name : "(null)"));
    return NULL;
  }
  state[i] = 1;
  const char **deps = cg_alloc(a, (f->n_dependency + 1) * sizeof(*deps));
  for (size_t d = 0; d < f->n_dependency; d++) {
    const FileProto *dep = cg_find_file(c->req, f->dependency[d]);
    if (dep == NULL) {
      fail(c, cg_sprintf(a, "import \"%s\" is not in the request",
                         f->dependency[d]));
      return NULL;
    }
    if ((deps[d] = add_embed(c, dep, state, out)) == NULL)
      return NULL;
  }
  state[i] = 2;
  cg_embed *e = &out->embeds[out->n_embeds++];
  e->name = f->name;
  e->var = cg_sprintf(a, "crpc_fd__%s", cg_filename_identifier(a, f->name));
  e->data_var = cg_sprintf(a, "%s__data", e->var);
  e->deps_var = f->n_dependency ? cg_sprintf(a, "%s__deps", e->var) : NULL;
  e->dep_vars = deps;
  e->n_deps = f->n_dependency;
  embed_pack(a, f, e);
  const char *what = cg_sprintf(a, "crpc's file descriptor of %s", f->name);
  cg_nameset_add(&c->names, e->var, CG_NAME_IDENT, true, what);
  cg_nameset_add(&c->names, e->data_var, CG_NAME_IDENT, true, what);
  if (e->deps_var)
    cg_nameset_add(&c->names, e->deps_var, CG_NAME_IDENT, true, what);
  return e->var;
}

static int build(build_ctx *c, cg_file *out) {
  cg_arena *a = c->a;
  const FileProto *fd = c->fd;
  if (!is_safe_filename(fd->name))
    return fail(c, "the file name cannot be used in an #include");

  cg_scope scope;
  bool no_generate = false;
  if (scope_of(c, fd, &scope, &no_generate) != 0)
    return -1;
  if (no_generate)
    return fail(c, "protoc-c generates no code for this file "
                   "((pb_c_file).no_generate = true), so crpc cannot "
                   "generate its services");
  if (*scope.package && !is_dotted_identifier(a, scope.package))
    return fail(c, "the package name is not a dotted identifier");
  if (scope.c_package && *scope.c_package &&
      !is_dotted_identifier(a, scope.c_package))
    return fail(c, cg_sprintf(a,
                              "(pb_c_file).c_package \"%s\" is not a "
                              "dotted identifier",
                              scope.c_package));

  for (size_t i = 0; i < c->req->n_proto_file; i++) {
    const FileProto *f = c->req->proto_file[i];
    const char *pkg = f->package ? f->package : "";
    for (size_t j = 0; j < f->n_message_type; j++)
      types_add_message(a, &c->types, pkg, f->message_type[j], f);
  }
  if (c->types.n > 0)
    qsort(c->types.v, c->types.n, sizeof(*c->types.v), by_dotted);

  const FileProto **seen =
      cg_alloc(a, (c->req->n_proto_file + 1) * sizeof(*seen));
  size_t n_seen = 0;
  if (add_pbc_names(c, fd, seen, &n_seen) != 0)
    return -1;

  out->proto_name = fd->name;
  out->base = cg_strip_proto(a, fd->name);
  out->guard =
      cg_sprintf(a, "CRPC_%s__INCLUDED", cg_filename_identifier(a, fd->name));
  cg_nameset_add(&c->names, out->guard, CG_NAME_MACRO, true,
                 cg_sprintf(a, "crpc's include guard for %s", fd->name));
  /* Every file of the import closure is in the request (protoc sends
   * them all), so the generated code can carry them for reflection. */
  unsigned char *state = cg_alloc(a, c->req->n_proto_file + 1);
  out->embeds = cg_alloc(a, (c->req->n_proto_file + 1) * sizeof(cg_embed));
  if (add_embed(c, fd, state, out) == NULL)
    return -1;

  out->n_services = fd->n_service;
  out->services = cg_alloc(a, fd->n_service * sizeof(*out->services));
  for (size_t i = 0; i < fd->n_service; i++)
    if (build_service(c, &scope, fd->service[i], &out->services[i]) != 0)
      return -1;

  const cg_name *mine, *other;
  if (cg_nameset_find_clash(&c->names, &mine, &other))
    return fail(c, cg_sprintf(a,
                              "generated name \"%s\" (%s) collides with "
                              "\"%s\" (%s); rename the method or service",
                              mine->name, mine->origin, other->name,
                              other->origin));
  return 0;
}

int cg_model_build(cg_arena *a, const Request *req, const FileProto *fd,
                   cg_file *out, const char **err) {
  build_ctx c = {a, req, fd, {0}, {0}, NULL};
  memset(out, 0, sizeof(*out));
  if (fd->name == NULL) {
    *err = "a file in the request has no name";
    return -1;
  }
  int rv = build(&c, out);
  free(c.types.v);
  cg_nameset_free(&c.names);
  if (rv != 0)
    *err = c.err;
  return rv;
}
