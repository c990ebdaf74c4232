/*
 * emit_source.c: foo.crpc.c. The method table, the service object with
 * its trampolines, and thin typed wrappers over the generic runtime calls.
 *
 * Wrappers never cast T ** to ProtobufCMessage ** (strict aliasing): they
 * unpack into a local ProtobufCMessage * and convert the pointer. Casting
 * T * to ProtobufCMessage * is fine, the base being the first member; a
 * message's base may be renamed ((pb_c_msg).base_field_name), so it is
 * never named.
 */
#include <string.h>

#include "gen.h"

static const char *kind_enum(cg_kind k) {
  switch (k) {
  case CG_UNARY:
    return "CRPC_UNARY";
  case CG_SERVER_STREAMING:
    return "CRPC_SERVER_STREAMING";
  case CG_CLIENT_STREAMING:
    return "CRPC_CLIENT_STREAMING";
  case CG_BIDI_STREAMING:
    return "CRPC_BIDI_STREAMING";
  }
  return "CRPC_UNARY";
}

static void defn(cg_printer *p, cg_arena *a, const char *ret, const char *name,
                 const char *const *params, size_t n) {
  cg_print_call(p, cg_sprintf(a, "%s%s", ret, name), params, n, " {");
  cg_indent(p);
}

static void end_defn(cg_printer *p) {
  cg_outdent(p);
  cg_print(p, "}\n\n");
}

static void emit_trampoline(cg_printer *p, cg_arena *a, const cg_service *sv,
                            const cg_method *m) {
  const char *ps[] = {"crpc_call *call", "const void *handlers",
                      "const ProtobufCMessage *req", "ProtobufCMessage *resp",
                      "void *user_data"};
  defn(p, a, "static crpc_code ", m->trampoline, ps, 5);
  cg_print(p, "const %s *h = handlers;\n", sv->handlers_type);
  cg_print(p, "if (h->%s == NULL) {\n", m->lc);
  cg_indent(p);
  const char *msg =
      cg_sprintf(a, "\"method %s is not implemented\"", m->path + 1);
  const char *sp[] = {"call", msg};
  cg_print_call(p, "crpc_call_set_status_message", sp, 2, ";");
  cg_print(p, "return CRPC_UNIMPLEMENTED;\n");
  cg_outdent(p);
  cg_print(p, "}\n");
  const char *in = cg_sprintf(a, "(const %s *)req", m->in_c);
  const char *out = cg_sprintf(a, "(%s *)resp", m->out_c);
  const char *head = cg_sprintf(a, "return h->%s", m->lc);
  switch (m->kind) {
  case CG_UNARY: {
    const char *cp[] = {"call", in, out, "user_data"};
    cg_print_call(p, head, cp, 4, ";");
    break;
  }
  case CG_SERVER_STREAMING: {
    cg_print(p, "(void)resp;\n");
    const char *cp[] = {"call", in, "user_data"};
    cg_print_call(p, head, cp, 3, ";");
    break;
  }
  case CG_CLIENT_STREAMING: {
    cg_print(p, "(void)req;\n");
    const char *cp[] = {"call", out, "user_data"};
    cg_print_call(p, head, cp, 3, ";");
    break;
  }
  case CG_BIDI_STREAMING: {
    cg_print(p, "(void)req;\n(void)resp;\n");
    const char *cp[] = {"call", "user_data"};
    cg_print_call(p, head, cp, 2, ";");
    break;
  }
  }
  end_defn(p);
}

/* "<head> = {" on one line, or broken after the type when too long. */
static void open_array(cg_printer *p, const char *type, const char *name,
                       size_t n) {
  cg_arena a = {0};
  const char *one = cg_sprintf(&a, "%s %s[%zu] = {", type, name, n);
  if (strlen(one) <= 80)
    cg_print(p, "%s\n", one);
  else
    cg_print(p, "%s\n    %s[%zu] = {\n", type, name, n);
  cg_arena_free(&a);
}

/* The FileDescriptorProto of the file and of each import, and the records
 * crpc's reflection service reads them through (crpc_file_descriptor). A
 * byte array, not a string: ISO C caps string literals at 4095 bytes. */
static void emit_embeds(cg_printer *p, const cg_file *f) {
  cg_print(p, "\n/* ---- file descriptors, for server reflection ---- */\n");
  for (size_t i = 0; i < f->n_embeds; i++) {
    const cg_embed *e = &f->embeds[i];
    cg_print(p, "\n/* %s */\n", e->name);
    open_array(p, "static const uint8_t", e->data_var, e->size);
    cg_indent(p);
    for (size_t j = 0; j < e->size; j += 12) {
      cg_buf line = {0};
      for (size_t k = j; k < e->size && k < j + 12; k++)
        cg_buf_printf(&line, "%s0x%02x,", k == j ? "" : " ", e->data[k]);
      cg_print(p, "%s\n", line.data);
      cg_buf_free(&line);
    }
    cg_outdent(p);
    cg_print(p, "};\n");
    if (e->deps_var) {
      open_array(p, "static const crpc_file_descriptor *const", e->deps_var,
                 e->n_deps);
      cg_indent(p);
      for (size_t j = 0; j < e->n_deps; j++)
        cg_print(p, "&%s,\n", e->dep_vars[j]);
      cg_outdent(p);
      cg_print(p, "};\n");
    }
    cg_arena a = {0};
    const char *head =
        cg_sprintf(&a, "static const crpc_file_descriptor %s = {", e->var);
    if (strlen(head) <= 80)
      cg_print(p, "%s\n", head);
    else
      cg_print(p, "static const crpc_file_descriptor\n    %s = {\n", e->var);
    cg_arena_free(&a);
    cg_print(p,
             "  .name = \"%s\",\n"
             "  .data = %s,\n"
             "  .size = %zu,\n"
             "  .n_deps = %zu,\n"
             "  .deps = %s,\n"
             "};\n",
             e->name, e->data_var, e->size, e->n_deps,
             e->deps_var ? e->deps_var : "NULL");
  }
}

static void emit_tables(cg_printer *p, cg_arena *a, const cg_file *f,
                        const cg_service *sv) {
  cg_print(p, "const crpc_method %s[%zu] = {\n", sv->methods_var,
           sv->n_methods);
  cg_indent(p);
  for (size_t i = 0; i < sv->n_methods; i++) {
    const cg_method *m = &sv->methods[i];
    cg_print(p,
             "{\n"
             "  .path = \"%s\",\n"
             "  .kind = %s,\n"
             "  .input = &%s,\n"
             "  .output = &%s,\n"
             "},\n",
             m->path, kind_enum(m->kind), m->in_desc, m->out_desc);
  }
  cg_outdent(p);
  cg_print(p, "};\n\n");

  for (size_t i = 0; i < sv->n_methods; i++)
    emit_trampoline(p, a, sv, &sv->methods[i]);

  cg_print(p, "static const crpc_method_trampoline %s[%zu] = {\n",
           sv->trampolines_var, sv->n_methods);
  cg_indent(p);
  for (size_t i = 0; i < sv->n_methods; i++)
    cg_print(p, "%s,\n", sv->methods[i].trampoline);
  cg_outdent(p);
  cg_print(p, "};\n\n");

  cg_print(p,
           "const crpc_service %s = {\n"
           "  .name = \"%s\",\n"
           "  .n_methods = %zu,\n"
           "  .methods = %s,\n"
           "  .trampolines = %s,\n"
           "  .handlers_size = sizeof(%s),\n"
           "  .pbc = &%s,\n"
           "  .file = &%s,\n"
           "};\n\n",
           sv->service_var, sv->full_name, sv->n_methods, sv->methods_var,
           sv->trampolines_var, sv->handlers_type, sv->pbc_desc,
           f->embeds[f->n_embeds - 1].var);

  const char *ps[] = {"crpc_server *s",
                      cg_sprintf(a, "const %s *handlers", sv->handlers_type),
                      "void *user_data"};
  defn(p, a, "int ", sv->register_fn, ps, 3);
  const char *rp[] = {"s", cg_sprintf(a, "&%s", sv->service_var), "handlers",
                      "0", "user_data"};
  cg_print_call(p, "return crpc_server_register_service", rp, 5, ";");
  end_defn(p);
}

/* "ProtobufCMessage *m = NULL; <call>; *out = (T *)m;" */
static void emit_read_into(cg_printer *p, cg_arena *a, const char *ret_decl,
                           const char *fn, const char *const *args, size_t n,
                           const char *out, const char *type, const char *ret) {
  cg_print(p, "ProtobufCMessage *m = NULL;\n");
  cg_print_call(p, cg_sprintf(a, "%s = %s", ret_decl, fn), args, n, ";");
  cg_print(p, "*%s = (%s *)m;\n", out, type);
  cg_print(p, "return %s;\n", ret);
}

static void emit_method(cg_printer *p, cg_arena *a, const cg_service *sv,
                        size_t index, const cg_method *m) {
  const char *P = m->prefix;
  const char *mref = cg_sprintf(a, "&%s[%zu]", sv->methods_var, index);
  const char *req = cg_sprintf(a, "const %s *req", m->in_c);
  const char *resp_out = cg_sprintf(a, "%s **resp", m->out_c);
  const char *ch = "crpc_channel *ch";
  const char *opts = "const crpc_call_opts *opts";
  const char *reqmsg = "(const ProtobufCMessage *)req";

  switch (m->kind) {
  case CG_UNARY: {
    const char *ps[] = {ch, opts, req, resp_out, "crpc_status *st"};
    defn(p, a, "crpc_code ", cg_sprintf(a, "%s__call", P), ps, 5);
    const char *args[] = {"ch", mref, "opts", reqmsg, "&m", "st"};
    emit_read_into(p, a, "crpc_code code", "crpc_unary", args, 6, "resp",
                   m->out_c, "code");
    end_defn(p);

    const char *ap[] = {"crpc_fn typed_cb", "crpc_call *call",
                        "const crpc_status *st", "const ProtobufCMessage *resp",
                        "void *user_data"};
    defn(p, a, "static void ", m->adapter, ap, 5);
    const char *dl =
        cg_sprintf(a, "%s done = (%s)typed_cb;", m->done_type, m->done_type);
    if (strlen(dl) + 2 > 80)
      cg_print(p, "%s done =\n    (%s)typed_cb;\n", m->done_type, m->done_type);
    else
      cg_print(p, "%s\n", dl);
    const char *dp[] = {
        "call", "st", cg_sprintf(a, "(const %s *)resp", m->out_c), "user_data"};
    cg_print_call(p, "done", dp, 4, ";");
    end_defn(p);

    const char *cp[] = {ch, opts, req, cg_sprintf(a, "%s done", m->done_type),
                        "void *user_data"};
    defn(p, a, "int ", cg_sprintf(a, "%s__call_async", P), cp, 5);
    const char *args2[] = {
        "ch", mref, "opts", reqmsg, m->adapter, "(crpc_fn)done", "user_data"};
    cg_print_call(p, "return crpc_unary_async_typed", args2, 7, ";");
    end_defn(p);
    break;
  }
  case CG_SERVER_STREAMING: {
    const char *ps[] = {"crpc_call **call", ch, opts, req};
    defn(p, a, "int ", cg_sprintf(a, "%s__start", P), ps, 4);
    const char *sa[] = {"call", "ch", mref, "opts"};
    cg_print_call(p, "int rv = crpc_call_start", sa, 4, ";");
    cg_print(p, "if (rv != 0)\n  return rv;\n");
    cg_print(p, "/* Started even if the write fails: the status then comes "
                "from finish. */\n");
    cg_print(p, "(void)crpc_call_write(*call, %s);\n", reqmsg);
    cg_print(p, "(void)crpc_call_writes_done(*call);\n");
    cg_print(p, "return 0;\n");
    end_defn(p);
    break;
  }
  case CG_CLIENT_STREAMING:
  case CG_BIDI_STREAMING: {
    const char *ps[] = {"crpc_call **call", ch, opts};
    defn(p, a, "int ", cg_sprintf(a, "%s__start", P), ps, 3);
    const char *sa[] = {"call", "ch", mref, "opts"};
    cg_print_call(p, "return crpc_call_start", sa, 4, ";");
    end_defn(p);
    break;
  }
  }

  /* the callback API */
  if (m->kind == CG_UNARY || m->kind == CG_SERVER_STREAMING) {
    const char *ps[] = {"crpc_call **call", ch, opts, req,
                        "const crpc_call_callbacks *cbs", "void *user_data"};
    defn(p, a, "int ", cg_sprintf(a, "%s__start_cb", P), ps, 6);
    const char *sa[] = {"call", "ch", mref, "opts", "cbs", "user_data"};
    cg_print_call(p, "int rv = crpc_call_start_cb", sa, 6, ";");
    cg_print(p, "if (rv != 0)\n  return rv;\n");
    cg_print(p, "/* Started even if the write fails: on_done tells. */\n");
    cg_print(p, "(void)crpc_call_write_async(*call, %s, 0);\n", reqmsg);
    cg_print(p, "(void)crpc_call_writes_done(*call);\n");
    cg_print(p, "return 0;\n");
    end_defn(p);
  } else {
    const char *ps[] = {"crpc_call **call", ch, opts,
                        "const crpc_call_callbacks *cbs", "void *user_data"};
    defn(p, a, "int ", cg_sprintf(a, "%s__start_cb", P), ps, 5);
    const char *sa[] = {"call", "ch", mref, "opts", "cbs", "user_data"};
    cg_print_call(p, "return crpc_call_start_cb", sa, 6, ";");
    end_defn(p);
    const char *pw[] = {"crpc_call *call", req};
    defn(p, a, "int ", cg_sprintf(a, "%s__write_async", P), pw, 2);
    cg_print(p, "return crpc_call_write_async(call, %s, 0);\n", reqmsg);
    end_defn(p);
  }
  if (m->kind == CG_CLIENT_STREAMING || m->kind == CG_BIDI_STREAMING) {
    const char *ps[] = {"crpc_call *call", req};
    defn(p, a, "bool ", cg_sprintf(a, "%s__write", P), ps, 2);
    cg_print(p, "return crpc_call_write(call, %s);\n", reqmsg);
    end_defn(p);
  }
  if (m->kind == CG_BIDI_STREAMING) {
    const char *ps[] = {"crpc_call *call"};
    defn(p, a, "bool ", cg_sprintf(a, "%s__writes_done", P), ps, 1);
    cg_print(p, "return crpc_call_writes_done(call);\n");
    end_defn(p);
  }
  if (m->kind == CG_SERVER_STREAMING || m->kind == CG_BIDI_STREAMING) {
    const char *ps[] = {"crpc_call *call", resp_out};
    defn(p, a, "bool ", cg_sprintf(a, "%s__read", P), ps, 2);
    const char *args[] = {"call", "&m"};
    emit_read_into(p, a, "bool ok", "crpc_call_read", args, 2, "resp", m->out_c,
                   "ok");
    end_defn(p);
  }
  if (m->kind == CG_CLIENT_STREAMING) {
    const char *ps[] = {"crpc_call *call", resp_out, "crpc_status *st"};
    defn(p, a, "crpc_code ", cg_sprintf(a, "%s__finish", P), ps, 3);
    const char *args[] = {"call", "&m", "st"};
    emit_read_into(p, a, "crpc_code code", "crpc_call_finish_with_response",
                   args, 3, "resp", m->out_c, "code");
    end_defn(p);
  } else if (m->kind != CG_UNARY) {
    const char *ps[] = {"crpc_call *call", "crpc_status *st"};
    defn(p, a, "crpc_code ", cg_sprintf(a, "%s__finish", P), ps, 2);
    cg_print(p, "return crpc_call_finish(call, st);\n");
    end_defn(p);
  }

  if (m->kind == CG_SERVER_STREAMING || m->kind == CG_BIDI_STREAMING) {
    const char *ps[] = {"crpc_call *call",
                        cg_sprintf(a, "const %s *resp", m->out_c)};
    defn(p, a, "bool ", cg_sprintf(a, "%s__server_write", P), ps, 2);
    cg_print(p, "return crpc_call_write(call, (const ProtobufCMessage "
                "*)resp);\n");
    end_defn(p);
  }
  if (m->kind == CG_CLIENT_STREAMING || m->kind == CG_BIDI_STREAMING) {
    const char *ps[] = {"crpc_call *call", cg_sprintf(a, "%s **req", m->in_c)};
    defn(p, a, "bool ", cg_sprintf(a, "%s__server_read", P), ps, 2);
    const char *args[] = {"call", "&m"};
    emit_read_into(p, a, "bool ok", "crpc_call_read", args, 2, "req", m->in_c,
                   "ok");
    end_defn(p);
  }
}

void cg_emit_source(cg_printer *p, const cg_file *f) {
  cg_arena arena = {0};
  cg_arena *a = &arena;
  cg_print(p,
           "/* Generated by protoc-gen-crpc.  DO NOT EDIT! */\n"
           "/* Generated from: %s */\n"
           "\n"
           "#include \"%s.crpc.h\"\n",
           f->proto_name, f->base);
  bool any = false;
  for (size_t i = 0; i < f->n_services; i++)
    any = any || f->services[i].n_methods > 0;
  if (any) /* else nothing would use them: unused statics */
    emit_embeds(p, f);
  for (size_t i = 0; i < f->n_services; i++) {
    const cg_service *sv = &f->services[i];
    if (sv->n_methods == 0)
      continue;
    cg_print(p, "\n/* ---- service %s ---- */\n\n", sv->full_name);
    emit_tables(p, a, f, sv);
    for (size_t j = 0; j < sv->n_methods; j++)
      emit_method(p, a, sv, j, &sv->methods[j]);
  }
  /* Each function ends with a blank line; the file ends with one '\n'. */
  while (p->out.len >= 2 && p->out.data[p->out.len - 1] == '\n' &&
         p->out.data[p->out.len - 2] == '\n')
    p->out.data[--p->out.len] = '\0';
  cg_arena_free(a);
}
