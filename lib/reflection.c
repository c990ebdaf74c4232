/*
 * reflection.c: grpc.reflection.v1 and v1alpha ServerReflection over the
 * generic server API.
 *
 * Where the descriptors come from: every crpc_service registered on the
 * server points at its file's crpc_file_descriptor (generated code embeds
 * the serialized FileDescriptorProto of the file and of all its imports),
 * and crpc's own services (health, reflection) are described by a
 * FileDescriptorSet that the build embeds in the library. Files are known
 * by name, the first registration of a name winning, so two generated
 * files that both import common.proto share one copy.
 *
 * The index (files, symbols, extensions, service names) is built once, on
 * the first request of any stream, under a mutex: by then the server has
 * started and its registrations are fixed. After that it is read-only and
 * every reactor thread reads it without a lock.
 *
 * The handler is NONBLOCKING: it runs on the reactor once per request and
 * queues its answer with crpc_call_write(), which packs it at once (so the
 * response may point at the index and at the request) and never waits; a
 * client that does not read its answers has its stream ended
 * RESOURCE_EXHAUSTED once its connection's output budget is full
 * (answers_unread()).
 *
 * The protobuf-c bindings of descriptor.proto and reflection.proto are
 * generated at build time with renamed symbols (lib/CMakeLists.txt).
 * v1alpha's messages are v1's field for field, so v1's bindings serve
 * both paths.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "call_internal.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "internal.h"
#include "server_ext.h"

typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto msg_proto;
typedef Google__Protobuf__EnumDescriptorProto enum_proto;
typedef Google__Protobuf__FieldDescriptorProto field_proto;
typedef Grpc__Reflection__V1__ServerReflectionRequest refl_req;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_resp;

#define REQ(x)                                                                 \
  GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define RESP(x)                                                                \
  GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

/* lib/CMakeLists.txt: health.proto and both reflection.protos, packed. */
extern const unsigned char crpc__builtin_descriptors[];
extern const size_t crpc__builtin_descriptors_size;

/* Nesting deeper than this in a descriptor is not indexed: protoc accepts
 * far less, and a recursion must have a bound. */
#define MAX_DEPTH 64
/* How much of a name an error message repeats. */
#define ECHO_MAX 128

static const crpc_method v1_method = {
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    CRPC_BIDI_STREAMING,
    &crpc__reflection_v1__server_reflection_request__descriptor,
    &crpc__reflection_v1__server_reflection_response__descriptor};
static const crpc_method v1alpha_method = {
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    CRPC_BIDI_STREAMING,
    &crpc__reflection_v1__server_reflection_request__descriptor,
    &crpc__reflection_v1__server_reflection_response__descriptor};

typedef struct rfile {
  const char *name;    /* fd->name */
  const uint8_t *data; /* the serialized FileDescriptorProto */
  size_t size;
  file_proto *fd; /* parsed; owns the strings the index points at */
  size_t *deps;   /* indices of the imports found, in import order */
  size_t ndeps;
} rfile;

enum { SYM_MESSAGE, SYM_OTHER };

typedef struct rsym {
  const char *name; /* "pkg.Outer.Inner" (in |strs|) */
  size_t file;
  int kind;
} rsym;

typedef struct rext {
  const char *extendee; /* "pkg.Msg", no leading dot (in the fd) */
  int32_t number;
  size_t file;
} rext;

typedef struct refl_index {
  rfile *files;
  size_t nfiles, capfiles;
  rsym *syms;
  size_t nsyms, capsyms;
  rext *exts;
  size_t nexts, capexts;
  char **strs; /* every string the refl_index allocated */
  size_t nstrs, capstrs;
  char **svcs; /* service names, sorted, unique (in |strs|) */
  size_t nsvcs;
  bool oom;
} refl_index;

typedef struct refl {
  crpc__server_ext ext; /* first: the server frees us through it */
  crpc_server *srv;
  pthread_mutex_t mu;
  bool built; /* [mu] then read-only: |ix| is complete */
  refl_index ix;
} refl;

static const char refl_key; /* our crpc__server_ext key */

/* ---- building the refl_index ---- */

static bool grow(refl_index *ix, void **v, size_t *cap, size_t n, size_t elem) {
  if (n < *cap)
    return true;
  size_t ncap = *cap ? 2 * *cap : 16;
  void *nv = realloc(*v, ncap * elem);
  if (!nv) {
    ix->oom = true;
    return false;
  }
  *v = nv;
  *cap = ncap;
  return true;
}

/* |a| + "." + |b|, or |b| when |a| is empty; kept until the refl_index goes. */
static char *join(refl_index *ix, const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  if (!grow(ix, (void **)&ix->strs, &ix->capstrs, ix->nstrs, sizeof(char *)))
    return NULL;
  char *s = malloc(na + nb + 2);
  if (!s) {
    ix->oom = true;
    return NULL;
  }
  if (na) {
    memcpy(s, a, na);
    s[na++] = '.';
  }
  memcpy(s + na, b, nb + 1);
  ix->strs[ix->nstrs++] = s;
  return s;
}

static void add_sym(refl_index *ix, const char *scope, const char *name,
                    size_t file, int kind, const char **full) {
  if (full)
    *full = NULL;
  if (!name || !*name)
    return;
  char *s = join(ix, scope, name);
  if (!s ||
      !grow(ix, (void **)&ix->syms, &ix->capsyms, ix->nsyms, sizeof(rsym)))
    return;
  ix->syms[ix->nsyms++] = (rsym){s, file, kind};
  if (full)
    *full = s;
}

static void add_ext(refl_index *ix, const field_proto *f, size_t file) {
  if (!f->extendee || !f->has_number)
    return;
  if (!grow(ix, (void **)&ix->exts, &ix->capexts, ix->nexts, sizeof(rext)))
    return;
  const char *e = f->extendee[0] == '.' ? f->extendee + 1 : f->extendee;
  ix->exts[ix->nexts++] = (rext){e, f->number, file};
}

/* Enum values are scoped beside their enum, as in C++ and in protobuf's
 * own DescriptorPool: "pkg.RED" for pkg.Color.RED. */
static void index_enum(refl_index *ix, const char *scope, const enum_proto *e,
                       size_t file) {
  add_sym(ix, scope, e->name, file, SYM_OTHER, NULL);
  for (size_t i = 0; i < e->n_value; i++)
    add_sym(ix, scope, e->value[i]->name, file, SYM_OTHER, NULL);
}

static void index_message(refl_index *ix, const char *scope, const msg_proto *m,
                          size_t file, int depth) {
  const char *full;
  if (depth > MAX_DEPTH)
    return;
  add_sym(ix, scope, m->name, file, SYM_MESSAGE, &full);
  if (!full)
    return;
  for (size_t i = 0; i < m->n_field; i++)
    add_sym(ix, full, m->field[i]->name, file, SYM_OTHER, NULL);
  for (size_t i = 0; i < m->n_oneof_decl; i++)
    add_sym(ix, full, m->oneof_decl[i]->name, file, SYM_OTHER, NULL);
  for (size_t i = 0; i < m->n_extension; i++) {
    add_sym(ix, full, m->extension[i]->name, file, SYM_OTHER, NULL);
    add_ext(ix, m->extension[i], file);
  }
  for (size_t i = 0; i < m->n_enum_type; i++)
    index_enum(ix, full, m->enum_type[i], file);
  for (size_t i = 0; i < m->n_nested_type; i++)
    index_message(ix, full, m->nested_type[i], file, depth + 1);
}

static void index_file(refl_index *ix, size_t file) {
  const file_proto *fd = ix->files[file].fd;
  const char *pkg = fd->package ? fd->package : "";
  if (*pkg)
    add_sym(ix, "", pkg, file, SYM_OTHER, NULL); /* as C++ finds packages */
  for (size_t i = 0; i < fd->n_message_type; i++)
    index_message(ix, pkg, fd->message_type[i], file, 0);
  for (size_t i = 0; i < fd->n_enum_type; i++)
    index_enum(ix, pkg, fd->enum_type[i], file);
  for (size_t i = 0; i < fd->n_extension; i++) {
    add_sym(ix, pkg, fd->extension[i]->name, file, SYM_OTHER, NULL);
    add_ext(ix, fd->extension[i], file);
  }
  for (size_t i = 0; i < fd->n_service; i++) {
    const char *svc;
    add_sym(ix, pkg, fd->service[i]->name, file, SYM_OTHER, &svc);
    for (size_t j = 0; svc && j < fd->service[i]->n_method; j++)
      add_sym(ix, svc, fd->service[i]->method[j]->name, file, SYM_OTHER, NULL);
  }
}

static ssize_t find_file(const refl_index *ix, const char *name) {
  for (size_t i = 0; i < ix->nfiles; i++)
    if (strcmp(ix->files[i].name, name) == 0)
      return (ssize_t)i;
  return -1;
}

/* Adds one parsed file (taking |fd|) unless its name is known already. */
static void add_parsed(refl_index *ix, file_proto *fd, const uint8_t *data,
                       size_t size) {
  if (!fd->name || find_file(ix, fd->name) >= 0 ||
      !grow(ix, (void **)&ix->files, &ix->capfiles, ix->nfiles,
            sizeof(rfile))) {
    crpc__pb__file_descriptor_proto__free_unpacked(fd, NULL);
    return;
  }
  ix->files[ix->nfiles++] = (rfile){fd->name, data, size, fd, NULL, 0};
}

/* A generated record and, depth first, the records of its imports. */
static void add_record(refl_index *ix, const crpc_file_descriptor *f,
                       int depth) {
  if (!f || !f->name || !f->data || depth > MAX_DEPTH ||
      find_file(ix, f->name) >= 0)
    return;
  file_proto *fd =
      crpc__pb__file_descriptor_proto__unpack(NULL, f->size, f->data);
  if (!fd) {
    crpc__log_warn("reflection: the descriptor of %s does not parse; "
                   "it is left out",
                   f->name);
    return;
  }
  if (!fd->name || strcmp(fd->name, f->name) != 0) {
    crpc__log_warn("reflection: the descriptor of %s names itself %s; it is "
                   "left out",
                   f->name, fd->name ? fd->name : "(nothing)");
    crpc__pb__file_descriptor_proto__free_unpacked(fd, NULL);
    return;
  }
  add_parsed(ix, fd, f->data, f->size);
  for (size_t i = 0; i < f->n_deps; i++)
    add_record(ix, f->deps ? f->deps[i] : NULL, depth + 1);
}

/* Whether a method of service |svc| ("pkg.Svc") is registered on |s|. */
static bool has_service(const crpc_server *s, const char *svc) {
  size_t n = strlen(svc);
  const char *p;
  for (size_t i = 0; (p = crpc__server_method_path(s, i)) != NULL; i++)
    if (p[0] == '/' && strncmp(p + 1, svc, n) == 0 && p[n + 1] == '/')
      return true;
  return false;
}

/* crpc's own files, for the services of theirs registered on |s|. The
 * bytes of each file are those inside the set: a FileDescriptorSet is its
 * files, each as field 1, so the set is parsed to find them and each file
 * keeps pointing into the library's copy of the set. */
static void add_builtins(refl_index *ix, const crpc_server *s) {
  const uint8_t *p = crpc__builtin_descriptors;
  const uint8_t *end = p + crpc__builtin_descriptors_size;
  while (p < end && !ix->oom) {
    /* tag 0x0a (field 1, length-delimited), then a varint length */
    if (*p++ != 0x0a)
      return;
    size_t len = 0;
    for (unsigned shift = 0; p < end && shift < 35; shift += 7) {
      len |= (size_t)(*p & 0x7f) << shift;
      if (!(*p++ & 0x80))
        break;
    }
    if (len > (size_t)(end - p))
      return;
    file_proto *fd = crpc__pb__file_descriptor_proto__unpack(NULL, len, p);
    if (fd) {
      bool used = false;
      for (size_t i = 0; i < fd->n_service && !used; i++) {
        const char *pkg = fd->package ? fd->package : "";
        char *full =
            join(ix, pkg, fd->service[i]->name ? fd->service[i]->name : "");
        used = full && has_service(s, full);
      }
      if (used)
        add_parsed(ix, fd, p, len);
      else
        crpc__pb__file_descriptor_proto__free_unpacked(fd, NULL);
    }
    p += len;
  }
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const rsym *)a)->name, ((const rsym *)b)->name);
}

static int by_ext(const void *a, const void *b) {
  const rext *x = a, *y = b;
  int c = strcmp(x->extendee, y->extendee);
  if (c)
    return c;
  return (x->number > y->number) - (x->number < y->number);
}

static int by_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void index_free(refl_index *ix) {
  for (size_t i = 0; i < ix->nfiles; i++) {
    crpc__pb__file_descriptor_proto__free_unpacked(ix->files[i].fd, NULL);
    free(ix->files[i].deps);
  }
  for (size_t i = 0; i < ix->nstrs; i++)
    free(ix->strs[i]);
  free(ix->files);
  free(ix->syms);
  free(ix->exts);
  free(ix->strs);
  free(ix->svcs);
  memset(ix, 0, sizeof *ix);
}

/* The service names of every registered method path. */
static void list_services(refl_index *ix, const crpc_server *s) {
  size_t n = 0;
  while (crpc__server_method_path(s, n))
    n++;
  ix->svcs = calloc(n + 1, sizeof *ix->svcs);
  if (!ix->svcs) {
    ix->oom = true;
    return;
  }
  const char *p;
  for (size_t i = 0; (p = crpc__server_method_path(s, i)) != NULL; i++) {
    const char *slash = p[0] == '/' ? strchr(p + 1, '/') : NULL;
    if (!slash || slash == p + 1)
      continue;
    size_t len = (size_t)(slash - p - 1);
    bool seen = false;
    for (size_t j = 0; j < ix->nsvcs && !seen; j++)
      seen = strlen(ix->svcs[j]) == len && memcmp(ix->svcs[j], p + 1, len) == 0;
    if (seen)
      continue;
    char *name = crpc__strndup(crpc__mem_libc(), p + 1, len);
    if (!name || !grow(ix, (void **)&ix->strs, &ix->capstrs, ix->nstrs,
                       sizeof(char *))) {
      free(name);
      ix->oom = true;
      return;
    }
    ix->strs[ix->nstrs++] = name;
    ix->svcs[ix->nsvcs++] = name;
  }
  qsort(ix->svcs, ix->nsvcs, sizeof *ix->svcs, by_str);
}

static int index_build(refl_index *ix, const crpc_server *s) {
  const crpc_service *const *svcs;
  size_t n = crpc__server_services(s, &svcs);
  for (size_t i = 0; i < n; i++)
    add_record(ix, svcs[i]->file, 0);
  add_builtins(ix, s);
  for (size_t i = 0; i < ix->nfiles && !ix->oom; i++) {
    rfile *f = &ix->files[i];
    f->deps = calloc(f->fd->n_dependency + 1, sizeof *f->deps);
    if (!f->deps) {
      ix->oom = true;
      break;
    }
    for (size_t j = 0; j < f->fd->n_dependency; j++) {
      ssize_t d = find_file(ix, f->fd->dependency[j]);
      if (d >= 0)
        f->deps[f->ndeps++] = (size_t)d;
      else
        crpc__log_warn("reflection: %s imports %s, which is not known", f->name,
                       f->fd->dependency[j]);
    }
    index_file(ix, i);
  }
  list_services(ix, s);
  if (ix->oom) {
    index_free(ix);
    return CRPC_ENOMEM;
  }
  if (ix->nsyms) /* qsort's array must not be NULL, even when empty */
    qsort(ix->syms, ix->nsyms, sizeof *ix->syms, by_name);
  if (ix->nexts)
    qsort(ix->exts, ix->nexts, sizeof *ix->exts, by_ext);
  return 0;
}

/* ---- lookups ---- */

static const rsym *find_sym(const refl_index *ix, const char *name) {
  rsym key = {name, 0, 0};
  return ix->nsyms
             ? bsearch(&key, ix->syms, ix->nsyms, sizeof *ix->syms, by_name)
             : NULL;
}

/* The file at |first| and its imports, transitively, each once, into
 * |out| (room for every file). Returns the count. Iterative: |out| is the
 * work list. */
static size_t closure(const refl_index *ix, size_t first, size_t *out,
                      bool *seen) {
  size_t n = 0;
  memset(seen, 0, ix->nfiles * sizeof *seen);
  out[n++] = first;
  seen[first] = true;
  for (size_t i = 0; i < n; i++) {
    const rfile *f = &ix->files[out[i]];
    for (size_t j = 0; j < f->ndeps; j++)
      if (!seen[f->deps[j]]) {
        seen[f->deps[j]] = true;
        out[n++] = f->deps[j];
      }
  }
  return n;
}

/* ---- the handler ---- */

/* "unknown symbol: <name>", the name cut at ECHO_MAX bytes and reduced to
 * printable ASCII: error_message is a proto3 string (UTF-8 only), and a
 * 64 KiB name need not come back twice. */
static void error_text(char *buf, size_t cap, const char *what,
                       const char *name) {
  size_t n = (size_t)snprintf(buf, cap, "%s: \"", what);
  size_t i = 0;
  for (; name[i] && i < ECHO_MAX && n + 5 < cap; i++)
    buf[n++] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
  if (name[i] && n + 5 < cap)
    n += (size_t)snprintf(buf + n, cap - n, "...");
  snprintf(buf + n, cap - n, "\"");
}

typedef struct answer {
  refl_resp resp;
  Grpc__Reflection__V1__FileDescriptorResponse files;
  Grpc__Reflection__V1__ExtensionNumberResponse nums;
  Grpc__Reflection__V1__ListServiceResponse list;
  Grpc__Reflection__V1__ErrorResponse err;
  char text[ECHO_MAX + 64];
  /* freed after the write */
  ProtobufCBinaryData *blobs;
  size_t *order;
  bool *seen;
  int32_t *numbers;
  Grpc__Reflection__V1__ServiceResponse *svcs;
  Grpc__Reflection__V1__ServiceResponse **svcp;
} answer;

static void answer_error(answer *a, crpc_code code, const char *what,
                         const char *name) {
  error_text(a->text, sizeof a->text, what, name ? name : "");
  a->err.error_code = (int32_t)code;
  a->err.error_message = a->text;
  a->resp.message_response_case = RESP(ERROR_RESPONSE);
  a->resp.error_response = &a->err;
}

/* Returns false when out of memory. */
static bool answer_files(answer *a, const refl_index *ix, size_t file) {
  a->order = malloc(ix->nfiles * sizeof *a->order);
  a->seen = malloc(ix->nfiles * sizeof *a->seen);
  a->blobs = malloc(ix->nfiles * sizeof *a->blobs);
  if (!a->order || !a->seen || !a->blobs)
    return false;
  size_t n = closure(ix, file, a->order, a->seen);
  for (size_t i = 0; i < n; i++) {
    a->blobs[i].data = (uint8_t *)ix->files[a->order[i]].data;
    a->blobs[i].len = ix->files[a->order[i]].size;
  }
  a->files.n_file_descriptor_proto = n;
  a->files.file_descriptor_proto = a->blobs;
  a->resp.message_response_case = RESP(FILE_DESCRIPTOR_RESPONSE);
  a->resp.file_descriptor_response = &a->files;
  return true;
}

static bool answer_list(answer *a, const refl_index *ix) {
  a->svcs = calloc(ix->nsvcs + 1, sizeof *a->svcs);
  a->svcp = calloc(ix->nsvcs + 1, sizeof *a->svcp);
  if (!a->svcs || !a->svcp)
    return false;
  for (size_t i = 0; i < ix->nsvcs; i++) {
    crpc__reflection_v1__service_response__init(&a->svcs[i]);
    a->svcs[i].name = ix->svcs[i];
    a->svcp[i] = &a->svcs[i];
  }
  a->list.n_service = ix->nsvcs;
  a->list.service = a->svcp;
  a->resp.message_response_case = RESP(LIST_SERVICES_RESPONSE);
  a->resp.list_services_response = &a->list;
  return true;
}

static bool answer_ext_numbers(answer *a, const refl_index *ix,
                               const char *type) {
  const rsym *s = find_sym(ix, type);
  if (!s || s->kind != SYM_MESSAGE) {
    answer_error(a, CRPC_NOT_FOUND, "unknown message type", type);
    return true;
  }
  size_t n = 0;
  for (size_t i = 0; i < ix->nexts; i++)
    n += strcmp(ix->exts[i].extendee, type) == 0;
  a->numbers = malloc((n + 1) * sizeof *a->numbers);
  if (!a->numbers)
    return false;
  n = 0;
  for (size_t i = 0; i < ix->nexts; i++)
    if (strcmp(ix->exts[i].extendee, type) == 0)
      a->numbers[n++] = ix->exts[i].number;
  a->nums.base_type_name = (char *)s->name;
  a->nums.n_extension_number = n;
  a->nums.extension_number = a->numbers;
  a->resp.message_response_case = RESP(ALL_EXTENSION_NUMBERS_RESPONSE);
  a->resp.all_extension_numbers_response = &a->nums;
  return true;
}

/* Fills |a| for request |r|. Returns false when out of memory. */
static bool answer_request(answer *a, const refl_index *ix, const refl_req *r) {
  switch (r->message_request_case) {
  case REQ(LIST_SERVICES):
    return answer_list(a, ix);
  case REQ(FILE_BY_FILENAME): {
    /* an exact name among those registered: "../x" and "/etc/passwd"
     * are just names that no file has */
    ssize_t f = find_file(ix, r->file_by_filename);
    if (f < 0) {
      answer_error(a, CRPC_NOT_FOUND, "unknown file", r->file_by_filename);
      return true;
    }
    return answer_files(a, ix, (size_t)f);
  }
  case REQ(FILE_CONTAINING_SYMBOL): {
    const rsym *s = find_sym(ix, r->file_containing_symbol);
    if (!s) {
      answer_error(a, CRPC_NOT_FOUND, "unknown symbol",
                   r->file_containing_symbol);
      return true;
    }
    return answer_files(a, ix, s->file);
  }
  case REQ(FILE_CONTAINING_EXTENSION): {
    const Grpc__Reflection__V1__ExtensionRequest *e =
        r->file_containing_extension;
    const char *type = e && e->containing_type ? e->containing_type : "";
    rext key = {type, e ? e->extension_number : 0, 0};
    const rext *x =
        ix->nexts ? bsearch(&key, ix->exts, ix->nexts, sizeof *ix->exts, by_ext)
                  : NULL;
    if (!x) {
      answer_error(a, CRPC_NOT_FOUND, "unknown extension of", type);
      return true;
    }
    return answer_files(a, ix, x->file);
  }
  case REQ(ALL_EXTENSION_NUMBERS_OF_TYPE):
    return answer_ext_numbers(a, ix, r->all_extension_numbers_of_type);
  default:
    /* a kind of request newer than reflection.proto as we know it */
    answer_error(a, CRPC_UNIMPLEMENTED, "request kind not implemented", "");
    return true;
  }
}

static void answer_free(answer *a) {
  free(a->blobs);
  free(a->order);
  free(a->seen);
  free(a->numbers);
  free(a->svcs);
  free(a->svcp);
}

/* The refl_index, built by whichever request comes first. */
static const refl_index *get_index(refl *r) {
  pthread_mutex_lock(&r->mu);
  if (!r->built && index_build(&r->ix, r->srv) == 0)
    r->built = true;
  bool ok = r->built;
  pthread_mutex_unlock(&r->mu);
  return ok ? &r->ix : NULL;
}

/* Whether the call's answers are piling up unread: its queue or its
 * connection's output budget is full. The server goes on handing a
 * NONBLOCKING handler the requests that have arrived, and each small
 * request can ask for a large answer, so without this a client that never
 * reads could make the server queue answers without bound. */
static bool answers_unread(crpc_call *c) {
  pthread_mutex_lock(&c->mu);
  bool blocked = crpc__call_out_blocked(c);
  pthread_mutex_unlock(&c->mu);
  return blocked;
}

/* On the reactor, once per request; then with |req| NULL at the end of the
 * stream or on cancellation, with nothing to free: each request is
 * answered before the handler returns. */
static crpc_code on_request(crpc_call *c, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, void *user_data) {
  CRPC__UNUSED(resp);
  if (!req)
    return CRPC_OK;
  const refl_index *ix = get_index(user_data);
  if (!ix) {
    crpc_call_set_status_message(c, "out of memory indexing descriptors");
    return CRPC_RESOURCE_EXHAUSTED;
  }
  if (answers_unread(c)) {
    crpc__log_warn("reflection: %s does not read its answers; ending its "
                   "stream",
                   crpc_call_peer(c));
    crpc_call_set_status_message(c, "reflection answers not read");
    return CRPC_RESOURCE_EXHAUSTED;
  }
  const refl_req *r = (const refl_req *)req;
  answer a;
  memset(&a, 0, sizeof a);
  crpc__reflection_v1__server_reflection_response__init(&a.resp);
  crpc__reflection_v1__file_descriptor_response__init(&a.files);
  crpc__reflection_v1__extension_number_response__init(&a.nums);
  crpc__reflection_v1__list_service_response__init(&a.list);
  crpc__reflection_v1__error_response__init(&a.err);
  a.resp.valid_host = r->host;
  a.resp.original_request = (refl_req *)r;
  bool ok = answer_request(&a, ix, r);
  /* packs now: the answer may point into |r|, the refl_index and the stack */
  bool sent = ok && crpc_call_write(c, &a.resp.base);
  answer_free(&a);
  if (!ok) {
    crpc_call_set_status_message(c, "out of memory answering reflection");
    return CRPC_RESOURCE_EXHAUSTED;
  }
  /* not sent: the call is over (cancelled, or over the send limit) and
   * ends with the status it already has */
  return sent ? CRPC_OK : CRPC_CANCELLED;
}

static void refl_free(crpc__server_ext *e) {
  refl *r = (refl *)e;
  index_free(&r->ix);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

int crpc_server_enable_reflection(crpc_server *s) {
  if (!s)
    return CRPC_EINVAL;
  if (crpc__server_ext_find(s, &refl_key))
    return CRPC_EEXIST;
  refl *r = calloc(1, sizeof *r);
  if (!r)
    return CRPC_ENOMEM;
  r->ext.key = &refl_key;
  r->ext.free = refl_free;
  r->srv = s;
  pthread_mutex_init(&r->mu, NULL);
  int rv = crpc_server_register(s, &v1_method, on_request,
                                CRPC_HANDLER_NONBLOCKING, r);
  if (rv == 0) {
    rv = crpc_server_register(s, &v1alpha_method, on_request,
                              CRPC_HANDLER_NONBLOCKING, r);
    /* v1 stays registered and uses |r|: the server must free it */
    crpc__server_ext_add(s, &r->ext);
    return rv;
  }
  pthread_mutex_destroy(&r->mu);
  free(r);
  return rv;
}
