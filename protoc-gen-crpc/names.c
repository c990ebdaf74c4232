/*
 * names.c: protoc-c 1.4.1's naming rules, re-implemented in C, and the list
 * of every name protoc-c emits for a file.
 *
 * Generated code must name protoc-c's types and descriptors exactly as
 * protoc-c does (protobuf-c/protobuf-c protoc-c/c_helpers.cc: CamelToLower,
 * CamelToUpper, ToCamel, FullNameTo{Lower,Upper,C}, OverrideFullName,
 * FilenameIdentifier), so these functions follow that code's behaviour
 * character for character, including its quirks: CamelToLower keeps runs
 * of capitals together ("HTTPGet" -> "httpget"), ToCamel drops every "_",
 * and ctype's classification runs in the C locale on plain bytes.
 * tests/plugin checks them against real protoc-c output.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

/* ctype on a byte, as protoc-c's isupper(name[i]) in the "C" locale. */
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static char to_lower(char c) { return is_upper(c) ? (char)(c - 'A' + 'a') : c; }
static char to_upper(char c) { return is_lower(c) ? (char)(c - 'a' + 'A') : c; }

static char *camel_to(cg_arena *a, const char *name, bool upper) {
  cg_buf b = {0};
  bool was_upper = true; /* no "_" before a leading capital */
  for (const char *p = name; *p; p++) {
    bool up = is_upper(*p);
    if (up && !was_upper)
      cg_buf_putc(&b, '_');
    cg_buf_putc(&b, upper ? to_upper(*p) : to_lower(*p));
    was_upper = up;
  }
  char *s = cg_strndup(a, b.data ? b.data : "", b.len);
  cg_buf_free(&b);
  return s;
}

char *cg_camel_to_lower(cg_arena *a, const char *name) {
  return camel_to(a, name, false);
}

char *cg_camel_to_upper(cg_arena *a, const char *name) {
  return camel_to(a, name, true);
}

char *cg_to_camel(cg_arena *a, const char *name) {
  size_t n = strlen(name);
  char *s = cg_alloc(a, n + 1);
  size_t j = 0;
  bool next_upper = true;
  for (size_t i = 0; i < n; i++) {
    if (name[i] == '_') {
      next_upper = true;
    } else if (next_upper) {
      s[j++] = to_upper(name[i]);
      next_upper = false;
    } else {
      s[j++] = name[i];
    }
  }
  s[j] = '\0';
  return s;
}

char *cg_override_full_name(cg_arena *a, const char *full_name,
                            const cg_scope *scope) {
  if (scope->c_package == NULL)
    return cg_strdup(a, full_name);
  size_t plen = strlen(scope->package);
  /* protoc-c takes full_name.substr(package.length()): the rest starts
   * with "." when there is a package; without one it adds the ".". */
  const char *rest = strlen(full_name) >= plen ? full_name + plen : "";
  return cg_sprintf(a, "%s%s%s", scope->c_package, plen == 0 ? "." : "", rest);
}

typedef char *(*piece_fn)(cg_arena *a, const char *piece);

static char *full_name_to(cg_arena *a, const char *full_name,
                          const cg_scope *scope, piece_fn fn) {
  char *name = cg_override_full_name(a, full_name, scope);
  cg_buf b = {0};
  const char *p = name;
  while (*p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n > 0) { /* empty pieces are skipped, as SplitStringUsing does */
      if (b.len > 0)
        cg_buf_puts(&b, "__");
      char *piece = cg_strndup(a, p, n);
      cg_buf_puts(&b, fn(a, piece));
    }
    p += n;
    if (*p == '.')
      p++;
  }
  char *s = cg_strndup(a, b.data ? b.data : "", b.len);
  cg_buf_free(&b);
  return s;
}

char *cg_full_name_to_lower(cg_arena *a, const char *full_name,
                            const cg_scope *scope) {
  return full_name_to(a, full_name, scope, cg_camel_to_lower);
}

char *cg_full_name_to_upper(cg_arena *a, const char *full_name,
                            const cg_scope *scope) {
  return full_name_to(a, full_name, scope, cg_camel_to_upper);
}

char *cg_full_name_to_c(cg_arena *a, const char *full_name,
                        const cg_scope *scope) {
  return full_name_to(a, full_name, scope, cg_to_camel);
}

char *cg_filename_identifier(cg_arena *a, const char *filename) {
  cg_buf b = {0};
  for (const char *p = filename; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (is_upper((char)c) || is_lower((char)c) || is_digit((char)c))
      cg_buf_putc(&b, (char)c);
    else
      cg_buf_printf(&b, "_%x", c);
  }
  char *s = cg_strndup(a, b.data ? b.data : "", b.len);
  cg_buf_free(&b);
  return s;
}

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

char *cg_strip_proto(cg_arena *a, const char *filename) {
  size_t n = strlen(filename);
  if (has_suffix(filename, ".protodevel"))
    return cg_strndup(a, filename, n - strlen(".protodevel"));
  if (has_suffix(filename, ".proto"))
    return cg_strndup(a, filename, n - strlen(".proto"));
  return cg_strdup(a, filename);
}

bool cg_is_identifier(const char *s) {
  if (s == NULL || !(is_upper(*s) || is_lower(*s) || *s == '_'))
    return false;
  for (const char *p = s + 1; *p; p++)
    if (!(is_upper(*p) || is_lower(*p) || is_digit(*p) || *p == '_'))
      return false;
  return true;
}

bool cg_is_c_keyword(const char *s) {
  static const char *const kw[] = {
      "auto",       "break",     "case",           "char",
      "const",      "continue",  "default",        "do",
      "double",     "else",      "enum",           "extern",
      "float",      "for",       "goto",           "if",
      "inline",     "int",       "long",           "register",
      "restrict",   "return",    "short",          "signed",
      "sizeof",     "static",    "struct",         "switch",
      "typedef",    "union",     "unsigned",       "void",
      "volatile",   "while",     "_Alignas",       "_Alignof",
      "_Atomic",    "_Bool",     "_Complex",       "_Generic",
      "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local"};
  for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
    if (strcmp(s, kw[i]) == 0)
      return true;
  return false;
}

/* ---- protoc-c's options, extension 1019, from unknown fields ---- */

#define PBC_EXTENSION 1019

typedef struct reader {
  const uint8_t *p;
  const uint8_t *end;
} reader;

static bool read_varint(reader *r, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end)
      return false;
    uint8_t b = *r->p++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return true;
    }
  }
  return false;
}

/* Skips a field's value; false when malformed or a group. */
static bool skip_value(reader *r, unsigned wire_type) {
  uint64_t v;
  switch (wire_type) {
  case 0:
    return read_varint(r, &v);
  case 1:
    if (r->end - r->p < 8)
      return false;
    r->p += 8;
    return true;
  case 2:
    if (!read_varint(r, &v) || v > (uint64_t)(r->end - r->p))
      return false;
    r->p += v;
    return true;
  case 5:
    if (r->end - r->p < 4)
      return false;
    r->p += 4;
    return true;
  default:
    return false;
  }
}

/*
 * protobuf-c keeps an unknown length-delimited field as its length varint
 * followed by the payload. Gives the payload, or false when malformed.
 */
static bool unknown_payload(const ProtobufCMessageUnknownField *u,
                            reader *payload) {
  if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || u->data == NULL)
    return false;
  reader r = {u->data, u->data + u->len};
  uint64_t len;
  if (!read_varint(&r, &len) || len != (uint64_t)(r.end - r.p))
    return false;
  *payload = r;
  return true;
}

typedef bool (*opt_field_fn)(cg_arena *a, unsigned field, unsigned wire_type,
                             reader *r, void *out);

/* Walks every (extension 1019) occurrence in order, so later values win,
 * as protobuf merges repeated occurrences of a message field. */
static int walk_pbc_ext(cg_arena *a, const ProtobufCMessage *m, opt_field_fn fn,
                        void *out, const char **err) {
  for (unsigned i = 0; i < m->n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
    if (u->tag != PBC_EXTENSION)
      continue;
    reader r;
    if (!unknown_payload(u, &r))
      goto bad;
    while (r.p < r.end) {
      uint64_t key;
      if (!read_varint(&r, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
        goto bad;
      if (!fn(a, (unsigned)(key >> 3), (unsigned)(key & 7), &r, out))
        goto bad;
    }
  }
  return 0;
bad:
  *err = "malformed protobuf-c option (extension 1019)";
  return -1;
}

static bool read_bool(unsigned wire_type, reader *r, bool *v) {
  uint64_t x;
  if (wire_type != 0 || !read_varint(r, &x))
    return false;
  *v = x != 0;
  return true;
}

static bool file_opt_field(cg_arena *a, unsigned field, unsigned wire_type,
                           reader *r, void *out) {
  cg_pbc_file_opts *o = out;
  switch (field) {
  case 1:
    return read_bool(wire_type, r, &o->no_generate);
  case 2:
    o->has_gen_pack_helpers = true;
    return read_bool(wire_type, r, &o->gen_pack_helpers);
  case 3:
    return read_bool(wire_type, r, &o->gen_init_helpers);
  case 6: {
    uint64_t len;
    if (wire_type != 2 || !read_varint(r, &len) ||
        len > (uint64_t)(r->end - r->p))
      return false;
    if (memchr(r->p, '\0', (size_t)len) != NULL)
      return false;
    o->c_package = cg_strndup(a, (const char *)r->p, (size_t)len);
    r->p += len;
    return true;
  }
  default: /* const_strings, use_oneof_field_name, ...: names unchanged */
    return skip_value(r, wire_type);
  }
}

static bool msg_opt_field(cg_arena *a, unsigned field, unsigned wire_type,
                          reader *r, void *out) {
  (void)a;
  cg_pbc_msg_opts *o = out;
  switch (field) {
  case 1:
    o->has_gen_pack_helpers = true;
    return read_bool(wire_type, r, &o->gen_pack_helpers);
  case 2:
    o->has_gen_init_helpers = true;
    return read_bool(wire_type, r, &o->gen_init_helpers);
  default: /* base_field_name: generated code never names the member */
    return skip_value(r, wire_type);
  }
}

int cg_pbc_file_opts_get(cg_arena *a, const Google__Protobuf__FileOptions *o,
                         cg_pbc_file_opts *out, const char **err) {
  memset(out, 0, sizeof(*out));
  out->gen_pack_helpers = true;
  out->gen_init_helpers = true;
  if (o == NULL)
    return 0;
  return walk_pbc_ext(a, &o->base, file_opt_field, out, err);
}

int cg_pbc_msg_opts_get(cg_arena *a, const Google__Protobuf__MessageOptions *o,
                        cg_pbc_msg_opts *out, const char **err) {
  memset(out, 0, sizeof(*out));
  out->gen_init_helpers = true;
  if (o == NULL)
    return 0;
  return walk_pbc_ext(a, &o->base, msg_opt_field, out, err);
}

/* ---- name sets ---- */

void cg_nameset_add(cg_nameset *s, const char *name, cg_name_kind kind,
                    bool ours, const char *origin) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 256;
    s->v = cg_xrealloc(s->v, s->cap * sizeof(*s->v));
  }
  s->v[s->n] = (cg_name){name, origin, kind, ours, s->n};
  s->n++;
}

static int by_name_then_seq(const void *x, const void *y) {
  const cg_name *a = x, *b = y;
  int c = strcmp(a->name, b->name);
  if (c != 0)
    return c;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static bool clash(const cg_name *a, const cg_name *b) {
  if (!a->ours && !b->ours)
    return false; /* protoc-c's own business */
  if (a->kind == CG_NAME_MEMBER || b->kind == CG_NAME_MEMBER)
    return a->kind == CG_NAME_MACRO || b->kind == CG_NAME_MACRO;
  return true;
}

bool cg_nameset_find_clash(cg_nameset *s, const cg_name **ours,
                           const cg_name **other) {
  if (s->n == 0)
    return false;
  qsort(s->v, s->n, sizeof(*s->v), by_name_then_seq);
  const cg_name *best_ours = NULL, *best_other = NULL;
  size_t i = 0;
  while (i < s->n) {
    size_t j = i + 1;
    while (j < s->n && strcmp(s->v[i].name, s->v[j].name) == 0)
      j++;
    for (size_t x = i; x < j; x++) {
      if (!s->v[x].ours)
        continue;
      for (size_t y = i; y < j; y++) {
        if (y == x || !clash(&s->v[x], &s->v[y]))
          continue;
        /* Report a clash with protoc-c before one among our own names. */
        const cg_name *o = &s->v[y];
        bool better =
            best_ours == NULL || (best_other->ours && !o->ours) ||
            (best_other->ours == o->ours && s->v[x].seq < best_ours->seq);
        if (better) {
          best_ours = &s->v[x];
          best_other = o;
        }
      }
    }
    i = j;
  }
  if (best_ours == NULL)
    return false;
  *ours = best_ours;
  *other = best_other;
  return true;
}

void cg_nameset_free(cg_nameset *s) {
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}

/* ---- every name protoc-c 1.4.1 emits for a file ---- */

typedef struct pbc_ctx {
  cg_arena *a;
  cg_nameset *s;
  cg_scope scope;
  bool optimize_code_size;
  const char *err;
} pbc_ctx;

static void add(pbc_ctx *c, const char *name, cg_name_kind kind,
                const char *what, const char *full) {
  cg_nameset_add(c->s, name, kind, false,
                 cg_sprintf(c->a, "protoc-c's %s for %s", what, full));
}

static void add_enum(pbc_ctx *c, const char *full,
                     const Google__Protobuf__EnumDescriptorProto *e) {
  const char *cn = cg_full_name_to_c(c->a, full, &c->scope);
  const char *lc = cg_full_name_to_lower(c->a, full, &c->scope);
  const char *uc = cg_full_name_to_upper(c->a, full, &c->scope);
  add(c, cn, CG_NAME_IDENT, "enum type", full);
  add(c, cg_sprintf(c->a, "_%s", cn), CG_NAME_IDENT, "enum tag", full);
  for (size_t i = 0; i < e->n_value; i++) {
    const char *v = e->value[i]->name ? e->value[i]->name : "";
    add(c, cg_sprintf(c->a, "%s__%s", uc, v), CG_NAME_IDENT, "enum value",
        full);
  }
  add(c, cg_sprintf(c->a, "_%s_IS_INT_SIZE", uc), CG_NAME_IDENT,
      "enum size value", full);
  static const char *const sfx[] = {"descriptor", "enum_values_by_number",
                                    "value_ranges", "enum_values_by_name"};
  /* optimize_for = CODE_SIZE drops the by-name index */
  size_t n = sizeof(sfx) / sizeof(sfx[0]) - (c->optimize_code_size ? 1 : 0);
  for (size_t i = 0; i < n; i++)
    add(c, cg_sprintf(c->a, "%s__%s", lc, sfx[i]), CG_NAME_IDENT,
        "enum descriptor", full);
}

static const char *join(cg_arena *a, const char *scope, const char *name) {
  return *scope ? cg_sprintf(a, "%s.%s", scope, name) : cg_strdup(a, name);
}

static bool has_type(const Google__Protobuf__FieldDescriptorProto *f,
                     Google__Protobuf__FieldDescriptorProto__Type t) {
  return f->has_type && f->type == t;
}

/* MessageGenerator, with its gen_pack/gen_init inheritance: a message
 * option overrides the inherited setting; below a top-level message that
 * did not get a file-wide setting, nested messages take the parent's
 * (pb_c_msg).gen_pack_helpers, which defaults to false. */
static int add_message(pbc_ctx *c, const char *full,
                       const Google__Protobuf__DescriptorProto *m,
                       bool is_pack_deep, bool gen_pack, bool gen_init) {
  cg_pbc_msg_opts mo;
  if (cg_pbc_msg_opts_get(c->a, m->options, &mo, &c->err) != 0)
    return -1;
  if (mo.has_gen_pack_helpers)
    gen_pack = mo.gen_pack_helpers;
  if (mo.has_gen_init_helpers)
    gen_init = mo.gen_init_helpers;

  for (size_t i = 0; i < m->n_nested_type; i++) {
    const char *name = m->nested_type[i]->name ? m->nested_type[i]->name : "";
    bool nested_pack = !is_pack_deep ? mo.gen_pack_helpers : gen_pack;
    if (add_message(c, join(c->a, full, name), m->nested_type[i], true,
                    nested_pack, gen_init) != 0)
      return -1;
  }
  for (size_t i = 0; i < m->n_enum_type; i++) {
    const char *name = m->enum_type[i]->name ? m->enum_type[i]->name : "";
    add_enum(c, join(c->a, full, name), m->enum_type[i]);
  }

  const char *cn = cg_full_name_to_c(c->a, full, &c->scope);
  const char *lc = cg_full_name_to_lower(c->a, full, &c->scope);
  const char *uc = cg_full_name_to_upper(c->a, full, &c->scope);
  add(c, cn, CG_NAME_IDENT, "message type", full);
  add(c, cg_sprintf(c->a, "%s_Closure", cn), CG_NAME_IDENT, "closure type",
      full);
  add(c, cg_sprintf(c->a, "%s__INIT", uc), CG_NAME_MACRO, "init macro", full);
  add(c, cg_sprintf(c->a, "%s__descriptor", lc), CG_NAME_IDENT, "descriptor",
      full);
  /* Without fields these three are #defines to NULL. */
  cg_name_kind tables = m->n_field ? CG_NAME_IDENT : CG_NAME_MACRO;
  add(c, cg_sprintf(c->a, "%s__field_descriptors", lc), tables,
      "field descriptors", full);
  if (!m->n_field || !c->optimize_code_size)
    add(c, cg_sprintf(c->a, "%s__field_indices_by_name", lc), tables,
        "field index", full);
  add(c, cg_sprintf(c->a, "%s__number_ranges", lc), tables, "number ranges",
      full);
  if (gen_init)
    add(c, cg_sprintf(c->a, "%s__init", lc), CG_NAME_IDENT, "init function",
        full);
  if (gen_pack) {
    static const char *const fns[] = {
        "get_packed_size", "pack", "pack_to_buffer", "unpack", "free_unpacked"};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
      add(c, cg_sprintf(c->a, "%s__%s", lc, fns[i]), CG_NAME_IDENT,
          "helper function", full);
  }

  for (size_t i = 0; i < m->n_oneof_decl; i++) {
    const char *on = m->oneof_decl[i]->name ? m->oneof_decl[i]->name : "";
    const char *ofull = join(c->a, full, on);
    const char *ouc = cg_camel_to_upper(c->a, on);
    add(c,
        cg_sprintf(c->a, "%sCase", cg_full_name_to_c(c->a, ofull, &c->scope)),
        CG_NAME_IDENT, "oneof case type", ofull);
    add(c, cg_sprintf(c->a, "%s__%s__NOT_SET", uc, ouc), CG_NAME_IDENT,
        "oneof case value", ofull);
    add(c, cg_sprintf(c->a, "_%s__%s__CASE_IS_INT_SIZE", uc, ouc),
        CG_NAME_IDENT, "oneof case size value", ofull);
    add(c, cg_sprintf(c->a, "%s_case", cg_camel_to_lower(c->a, on)),
        CG_NAME_MEMBER, "oneof case member", ofull);
    for (size_t j = 0; j < m->n_field; j++) {
      const Google__Protobuf__FieldDescriptorProto *f = m->field[j];
      if (!f->has_oneof_index || f->oneof_index < 0 ||
          (size_t)f->oneof_index != i)
        continue;
      add(c,
          cg_sprintf(c->a, "%s__%s_%s", uc, ouc,
                     cg_camel_to_upper(c->a, f->name ? f->name : "")),
          CG_NAME_IDENT, "oneof case value", ofull);
    }
  }

  for (size_t i = 0; i < m->n_field; i++) {
    const Google__Protobuf__FieldDescriptorProto *f = m->field[i];
    if (f->default_value == NULL)
      continue;
    const char *fl = cg_camel_to_lower(c->a, f->name ? f->name : "");
    const char *dv = cg_sprintf(c->a, "%s__%s__default_value", lc, fl);
    add(c, dv, CG_NAME_IDENT, "default value", full);
    if (has_type(f, GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES))
      add(c, cg_sprintf(c->a, "%s_data", dv), CG_NAME_IDENT, "default value",
          full);
  }
  return 0;
}

static void add_service(pbc_ctx *c, const char *full,
                        const Google__Protobuf__ServiceDescriptorProto *sv) {
  const char *cn = cg_full_name_to_c(c->a, full, &c->scope);
  const char *lc = cg_full_name_to_lower(c->a, full, &c->scope);
  const char *uc = cg_full_name_to_upper(c->a, full, &c->scope);
  add(c, cg_sprintf(c->a, "%s_Service", cn), CG_NAME_IDENT, "service type",
      full);
  add(c, cg_sprintf(c->a, "%s_ServiceDestroy", cn), CG_NAME_IDENT,
      "service destroy type", full);
  add(c, cg_sprintf(c->a, "%s__init", lc), CG_NAME_IDENT,
      "service init function", full);
  add(c, cg_sprintf(c->a, "%s__BASE_INIT", uc), CG_NAME_MACRO,
      "service init macro", full);
  add(c, cg_sprintf(c->a, "%s__INIT", uc), CG_NAME_MACRO, "service init macro",
      full);
  add(c, cg_sprintf(c->a, "%s__descriptor", lc), CG_NAME_IDENT,
      "service descriptor", full);
  add(c, cg_sprintf(c->a, "%s__method_descriptors", lc), CG_NAME_IDENT,
      "method descriptors", full);
  if (!c->optimize_code_size)
    add(c, cg_sprintf(c->a, "%s__method_indices_by_name", lc), CG_NAME_IDENT,
        "method index", full);
  for (size_t i = 0; i < sv->n_method; i++) {
    const char *mn = sv->method[i]->name ? sv->method[i]->name : "";
    const char *mfull = cg_sprintf(c->a, "%s.%s", full, mn);
    const char *ml = cg_camel_to_lower(c->a, mn);
    add(c, cg_sprintf(c->a, "%s__%s", lc, ml), CG_NAME_IDENT,
        "closure-API function", mfull);
    add(c, ml, CG_NAME_MEMBER, "closure-API member", mfull);
  }
}

int cg_pbc_names(cg_arena *a, cg_nameset *s,
                 const Google__Protobuf__FileDescriptorProto *fd,
                 const char **err) {
  cg_pbc_file_opts fo;
  if (cg_pbc_file_opts_get(a, fd->options, &fo, err) != 0)
    return -1;
  if (fo.no_generate)
    return 0;
  bool code_size = fd->options && fd->options->has_optimize_for &&
                   fd->options->optimize_for ==
                       GOOGLE__PROTOBUF__FILE_OPTIONS__OPTIMIZE_MODE__CODE_SIZE;
  pbc_ctx c = {
      a, s, {fd->package ? fd->package : "", fo.c_package}, code_size, NULL};
  const char *fname = fd->name ? fd->name : "";
  add(&c,
      cg_sprintf(a, "PROTOBUF_C_%s__INCLUDED",
                 cg_filename_identifier(a, fname)),
      CG_NAME_MACRO, "include guard", fname);
  const char *pkg = c.scope.package;
  for (size_t i = 0; i < fd->n_enum_type; i++)
    add_enum(&c,
             join(a, pkg, fd->enum_type[i]->name ? fd->enum_type[i]->name : ""),
             fd->enum_type[i]);
  for (size_t i = 0; i < fd->n_message_type; i++) {
    const Google__Protobuf__DescriptorProto *m = fd->message_type[i];
    if (add_message(&c, join(a, pkg, m->name ? m->name : ""), m,
                    fo.has_gen_pack_helpers, fo.gen_pack_helpers,
                    fo.gen_init_helpers) != 0) {
      *err = c.err;
      return -1;
    }
  }
  for (size_t i = 0; i < fd->n_service; i++)
    add_service(&c,
                join(a, pkg, fd->service[i]->name ? fd->service[i]->name : ""),
                fd->service[i]);
  return 0;
}
