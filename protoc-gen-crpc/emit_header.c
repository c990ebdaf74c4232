/*
 * emit_header.c: foo.crpc.h. Declarations only; names come from model.c.
 * The API it declares is documented in protoc-gen-crpc/README.md.
 */
#include "gen.h"

static const char *kind_name(cg_kind k) {
  switch (k) {
  case CG_UNARY:
    return "unary";
  case CG_SERVER_STREAMING:
    return "server streaming";
  case CG_CLIENT_STREAMING:
    return "client streaming";
  case CG_BIDI_STREAMING:
    return "bidirectional streaming";
  }
  return "?";
}

static void decl(cg_printer *p, cg_arena *a, const char *ret, const char *name,
                 const char *const *params, size_t n) {
  cg_print_call(p, cg_sprintf(a, "%s%s", ret, name), params, n, ";");
}

static void emit_client(cg_printer *p, cg_arena *a, const cg_method *m) {
  const char *P = m->prefix;
  const char *req = cg_sprintf(a, "const %s *req", m->in_c);
  const char *resp_out = cg_sprintf(a, "%s **resp", m->out_c);
  const char *call_out = "crpc_call **call";
  const char *ch = "crpc_channel *ch";
  const char *opts = "const crpc_call_opts *opts";

  switch (m->kind) {
  case CG_UNARY: {
    cg_print(p,
             "/* Blocking call. On CRPC_OK *resp is yours: free it with\n"
             " *   %s(*resp, allocator)\n"
             " * (allocator: the channel's msg_allocator, NULL by "
             "default). */\n",
             m->out_free);
    const char *ps[] = {ch, opts, req, resp_out, "crpc_status *st"};
    decl(p, a, "crpc_code ", cg_sprintf(a, "%s__call", P), ps, 5);
    cg_print(p, "/* Completion of __call_async(): runs on the channel's "
                "reactor thread (do\n"
                " * not block in it); resp (NULL unless st->code is CRPC_OK) "
                "and st are\n"
                " * borrowed until it returns. */\n");
    const char *cb[] = {"crpc_call *call", "const crpc_status *st",
                        cg_sprintf(a, "const %s *resp", m->out_c),
                        "void *user_data"};
    cg_print_call(p, cg_sprintf(a, "typedef void (*%s)", m->done_type), cb, 4,
                  ";");
    cg_print(p, "/* Starts the call without waiting. Returns 0 and later "
                "calls done exactly\n"
                " * once, or returns a negative CRPC_E* and never calls "
                "it. */\n");
    const char *pa[] = {ch, opts, req, cg_sprintf(a, "%s done", m->done_type),
                        "void *user_data"};
    decl(p, a, "int ", cg_sprintf(a, "%s__call_async", P), pa, 5);
    break;
  }
  case CG_SERVER_STREAMING: {
    cg_print(p, "/* Starts the call and sends req. Returns 0 or a "
                "crpc_call_start() error;\n"
                " * once started, read until false, then finish and "
                "crpc_call_free(). */\n");
    const char *ps[] = {call_out, ch, opts, req};
    decl(p, a, "int ", cg_sprintf(a, "%s__start", P), ps, 4);
    break;
  }
  case CG_CLIENT_STREAMING:
  case CG_BIDI_STREAMING: {
    cg_print(p, "/* Starts the call. Returns 0 or a crpc_call_start() "
                "error; once started,\n"
                " * finish and crpc_call_free() it. */\n");
    const char *ps[] = {call_out, ch, opts};
    decl(p, a, "int ", cg_sprintf(a, "%s__start", P), ps, 3);
    break;
  }
  }

  /* the callback API (crpc_call_start_cb, channel.h) */
  if (m->kind == CG_UNARY || m->kind == CG_SERVER_STREAMING) {
    cg_print(p, "/* Callback API: starts the call, sends req and "
                "half-closes; then cbs's\n"
                " * callbacks (on_message gets %s). Returns as\n"
                " * crpc_call_start_cb(). */\n",
             m->out_c);
    const char *ps[] = {call_out, ch, opts, req,
                        "const crpc_call_callbacks *cbs", "void *user_data"};
    decl(p, a, "int ", cg_sprintf(a, "%s__start_cb", P), ps, 6);
  } else {
    cg_print(p, "/* Callback API: starts the call; then cbs's callbacks "
                "(on_message gets\n"
                " * %s). Returns as crpc_call_start_cb(). */\n",
             m->out_c);
    const char *ps[] = {call_out, ch, opts, "const crpc_call_callbacks *cbs",
                        "void *user_data"};
    decl(p, a, "int ", cg_sprintf(a, "%s__start_cb", P), ps, 5);
    cg_print(p, "/* Callback API: sends one message (borrowed), the next "
                "after on_write_done.\n"
                " * Returns as crpc_call_write_async(). */\n");
    const char *pw[] = {"crpc_call *call", req};
    decl(p, a, "int ", cg_sprintf(a, "%s__write_async", P), pw, 2);
  }
  if (m->kind == CG_CLIENT_STREAMING || m->kind == CG_BIDI_STREAMING) {
    cg_print(p, "/* Sends one message (borrowed). False once the call has "
                "ended. */\n");
    const char *ps[] = {"crpc_call *call", req};
    decl(p, a, "bool ", cg_sprintf(a, "%s__write", P), ps, 2);
  }
  if (m->kind == CG_BIDI_STREAMING) {
    cg_print(p, "/* No more messages from this side. */\n");
    const char *ps[] = {"crpc_call *call"};
    decl(p, a, "bool ", cg_sprintf(a, "%s__writes_done", P), ps, 1);
  }
  if (m->kind == CG_SERVER_STREAMING || m->kind == CG_BIDI_STREAMING) {
    cg_print(p,
             "/* The next response, or false at the end (status: "
             "__finish). *resp is\n"
             " * yours: %s(*resp, allocator). */\n",
             m->out_free);
    const char *ps[] = {"crpc_call *call", resp_out};
    decl(p, a, "bool ", cg_sprintf(a, "%s__read", P), ps, 2);
  }
  if (m->kind == CG_CLIENT_STREAMING) {
    cg_print(p, "/* Half-closes, waits for the one response (*resp, yours) "
                "and the status. */\n");
    const char *ps[] = {"crpc_call *call", resp_out, "crpc_status *st"};
    decl(p, a, "crpc_code ", cg_sprintf(a, "%s__finish", P), ps, 3);
  } else if (m->kind != CG_UNARY) {
    cg_print(p, "/* Waits for the end of the call; its status. */\n");
    const char *ps[] = {"crpc_call *call", "crpc_status *st"};
    decl(p, a, "crpc_code ", cg_sprintf(a, "%s__finish", P), ps, 2);
  }
}

static void emit_server_helpers(cg_printer *p, cg_arena *a,
                                const cg_method *m) {
  if (m->kind == CG_SERVER_STREAMING || m->kind == CG_BIDI_STREAMING) {
    cg_print(p, "/* Server side: sends one response (borrowed). False when "
                "the call was\n"
                " * cancelled. */\n");
    const char *ps[] = {"crpc_call *call",
                        cg_sprintf(a, "const %s *resp", m->out_c)};
    decl(p, a, "bool ", cg_sprintf(a, "%s__server_write", m->prefix), ps, 2);
  }
  if (m->kind == CG_CLIENT_STREAMING || m->kind == CG_BIDI_STREAMING) {
    cg_print(p,
             "/* Server side: the next request, or false at the end. "
             "*req is yours:\n"
             " * %s(*req, NULL). */\n",
             m->in_free);
    const char *ps[] = {"crpc_call *call", cg_sprintf(a, "%s **req", m->in_c)};
    decl(p, a, "bool ", cg_sprintf(a, "%s__server_read", m->prefix), ps, 2);
  }
}

static void emit_handlers(cg_printer *p, cg_arena *a, const cg_service *sv) {
  cg_print(p, "/*\n"
              " * Server side: one handler per method, NULL for "
              "UNIMPLEMENTED. Requests\n"
              " * passed in are borrowed until the handler returns; a unary "
              "or client\n"
              " * streaming handler fills *resp (crpc's, packed after it "
              "returns: point\n"
              " * its fields at static or crpc_call_arena_alloc() memory). "
              "The return\n"
              " * value is the call's status.\n"
              " */\n");
  cg_print(p, "typedef struct %s {\n", sv->handlers_type);
  cg_indent(p);
  for (size_t i = 0; i < sv->n_methods; i++) {
    const cg_method *m = &sv->methods[i];
    const char *head = cg_sprintf(a, "crpc_code (*%s)", m->lc);
    const char *call = "crpc_call *call";
    const char *req = cg_sprintf(a, "const %s *req", m->in_c);
    const char *resp = cg_sprintf(a, "%s *resp", m->out_c);
    const char *ud = "void *user_data";
    switch (m->kind) {
    case CG_UNARY: {
      const char *ps[] = {call, req, resp, ud};
      cg_print_call(p, head, ps, 4, ";");
      break;
    }
    case CG_SERVER_STREAMING: {
      const char *ps[] = {call, req, ud};
      cg_print_call(p, head, ps, 3, ";");
      break;
    }
    case CG_CLIENT_STREAMING: {
      const char *ps[] = {call, resp, ud};
      cg_print_call(p, head, ps, 3, ";");
      break;
    }
    case CG_BIDI_STREAMING: {
      const char *ps[] = {call, ud};
      cg_print_call(p, head, ps, 2, ";");
      break;
    }
    }
  }
  cg_outdent(p);
  cg_print(p, "} %s;\n\n", sv->handlers_type);

  cg_print(p, "/* Registers every method with crpc_server_register_service()"
              " (handlers is\n"
              " * copied). Before crpc_server_start(). Returns 0 or a "
              "CRPC_E* error. */\n");
  const char *ps[] = {"crpc_server *s",
                      cg_sprintf(a, "const %s *handlers", sv->handlers_type),
                      "void *user_data"};
  decl(p, a, "int ", sv->register_fn, ps, 3);
}

void cg_emit_header(cg_printer *p, const cg_file *f) {
  cg_arena arena = {0};
  cg_arena *a = &arena;
  cg_print(p,
           "/* Generated by protoc-gen-crpc.  DO NOT EDIT! */\n"
           "/* Generated from: %s */\n"
           "\n"
           "#ifndef %s\n"
           "#define %s\n"
           "\n"
           "#include <stdbool.h>\n"
           "\n"
           "#include <crpc/crpc.h>\n"
           "\n"
           "#include \"%s.pb-c.h\"\n"
           "\n"
           "#ifdef __cplusplus\n"
           "extern \"C\" {\n"
           "#endif\n",
           f->proto_name, f->guard, f->guard, f->base);

  for (size_t i = 0; i < f->n_services; i++) {
    const cg_service *sv = &f->services[i];
    cg_print(p, "\n/* ---- service %s ---- */\n\n", sv->full_name);
    if (sv->n_methods == 0) {
      cg_print(p, "/* No methods: nothing to generate. */\n");
      continue;
    }
    cg_print(p, "/* The method table (paths, kinds, protoc-c descriptors) and"
                " the service\n"
                " * that crpc_server_register_service() takes. */\n");
    cg_print(p, "extern const crpc_method %s[%zu];\n", sv->methods_var,
             sv->n_methods);
    cg_print(p, "extern const crpc_service %s;\n", sv->service_var);
    for (size_t j = 0; j < sv->n_methods; j++) {
      const cg_method *m = &sv->methods[j];
      cg_print(p, "\n/* %s: %s */\n\n", m->path, kind_name(m->kind));
      emit_client(p, a, m);
      emit_server_helpers(p, a, m);
    }
    cg_print(p, "\n");
    emit_handlers(p, a, sv);
  }

  cg_print(p,
           "\n"
           "#ifdef __cplusplus\n"
           "}\n"
           "#endif\n"
           "\n"
           "#endif /* %s */\n",
           f->guard);
  cg_arena_free(a);
}
