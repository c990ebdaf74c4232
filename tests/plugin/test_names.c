/*
 * Unit tests of protoc-gen-crpc/names.c (protoc-c's naming rules, option
 * decoding, name sets) and printer.c's line wrapping. The expected strings
 * are protoc-c 1.4.1's, checked by running it (see also names_check.c,
 * which compares against protoc-c's real output).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gen.h"

static cg_arena arena;

static int teardown(void **state) {
  (void)state;
  cg_arena_free(&arena);
  return 0;
}

static void test_camel_to_lower(void **state) {
  (void)state;
  static const char *const cases[][2] = {{"SayHello", "say_hello"},
                                         {"HTTPGet", "httpget"},
                                         {"Say_Hello", "say__hello"},
                                         {"GetURLList", "get_urllist"},
                                         {"ping", "ping"},
                                         {"aB", "a_b"},
                                         {"A1B", "a1_b"},
                                         {"HTTPReply", "httpreply"},
                                         {"Nested_Thing", "nested__thing"},
                                         {"_x", "_x"},
                                         {"", ""}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_string_equal(cg_camel_to_lower(&arena, cases[i][0]), cases[i][1]);
}

static void test_camel_to_upper(void **state) {
  (void)state;
  assert_string_equal(cg_camel_to_upper(&arena, "SayHello"), "SAY_HELLO");
  assert_string_equal(cg_camel_to_upper(&arena, "my_pkg"), "MY_PKG");
  assert_string_equal(cg_camel_to_upper(&arena, "HTTPReply"), "HTTPREPLY");
  assert_string_equal(cg_camel_to_upper(&arena, "The_Choice"), "THE__CHOICE");
  assert_string_equal(cg_camel_to_upper(&arena, "aA"), "A_A");
}

static void test_to_camel(void **state) {
  (void)state;
  static const char *const cases[][2] = {{"my_pkg", "MyPkg"},
                                         {"hello_request", "HelloRequest"},
                                         {"Nested_Thing", "NestedThing"},
                                         {"v1", "V1"},
                                         {"__x__y", "XY"},
                                         {"HTTPGet", "HTTPGet"},
                                         {"second_service", "SecondService"},
                                         {"q_x", "QX"},
                                         {"common_v2", "CommonV2"}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_string_equal(cg_to_camel(&arena, cases[i][0]), cases[i][1]);
}

static void test_full_names(void **state) {
  (void)state;
  cg_scope scope = {"my_pkg.v1", NULL};
  const char *n = "my_pkg.v1.HelloRequest.Nested_Thing";
  assert_string_equal(cg_full_name_to_lower(&arena, n, &scope),
                      "my_pkg__v1__hello_request__nested__thing");
  assert_string_equal(cg_full_name_to_upper(&arena, n, &scope),
                      "MY_PKG__V1__HELLO_REQUEST__NESTED__THING");
  assert_string_equal(cg_full_name_to_c(&arena, n, &scope),
                      "MyPkg__V1__HelloRequest__NestedThing");

  cg_scope none = {"", NULL};
  assert_string_equal(cg_full_name_to_lower(&arena, "Greeter", &none),
                      "greeter");
  assert_string_equal(cg_full_name_to_c(&arena, "Req", &none), "Req");
}

static void test_c_package(void **state) {
  (void)state;
  /* c_package replaces the package... */
  cg_scope s1 = {"foo.bar", "Zed.q_x"};
  assert_string_equal(cg_override_full_name(&arena, "foo.bar.M.N", &s1),
                      "Zed.q_x.M.N");
  assert_string_equal(cg_full_name_to_c(&arena, "foo.bar.M.N", &s1),
                      "Zed__QX__M__N");
  assert_string_equal(cg_full_name_to_lower(&arena, "foo.bar.M.N", &s1),
                      "zed__q_x__m__n");
  assert_string_equal(cg_full_name_to_upper(&arena, "foo.bar.M.N", &s1),
                      "ZED__Q_X__M__N");
  /* ...or is put in front when there is none... */
  cg_scope s2 = {"", "renamed.c_pkg"};
  assert_string_equal(cg_full_name_to_lower(&arena, "Ping.Pong", &s2),
                      "renamed__c_pkg__ping__pong");
  /* ...and an empty one removes the package. */
  cg_scope s3 = {"foo", ""};
  assert_string_equal(cg_full_name_to_c(&arena, "foo.M", &s3), "M");
}

static void test_files(void **state) {
  (void)state;
  assert_string_equal(cg_filename_identifier(&arena, "my_pkg/edge.proto"),
                      "my_5fpkg_2fedge_2eproto");
  assert_string_equal(cg_filename_identifier(&arena, "a-b.proto"),
                      "a_2db_2eproto");
  assert_string_equal(cg_strip_proto(&arena, "x/y.proto"), "x/y");
  assert_string_equal(cg_strip_proto(&arena, "x.protodevel"), "x");
  assert_string_equal(cg_strip_proto(&arena, "x.txt"), "x.txt");
}

static void test_identifiers(void **state) {
  (void)state;
  assert_true(cg_is_identifier("say_hello"));
  assert_true(cg_is_identifier("_X1"));
  assert_false(cg_is_identifier("1x"));
  assert_false(cg_is_identifier("a b"));
  assert_false(cg_is_identifier("a*/"));
  assert_false(cg_is_identifier(""));
  assert_false(cg_is_identifier(NULL));
  assert_true(cg_is_c_keyword("do"));
  assert_true(cg_is_c_keyword("_Bool"));
  assert_false(cg_is_c_keyword("new"));
  assert_false(cg_is_c_keyword("say_hello"));
}

/* An unknown field as protobuf-c keeps it: tag, then length + payload. */
static ProtobufCMessageUnknownField ext(uint8_t *buf, const uint8_t *payload,
                                        size_t n) {
  buf[0] = (uint8_t)n;
  memcpy(buf + 1, payload, n);
  ProtobufCMessageUnknownField u = {1019, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
                                    n + 1, buf};
  return u;
}

static void test_file_options(void **state) {
  (void)state;
  Google__Protobuf__FileOptions fo;
  google__protobuf__file_options__init(&fo);
  cg_pbc_file_opts o;
  const char *err = NULL;

  assert_int_equal(cg_pbc_file_opts_get(&arena, NULL, &o, &err), 0);
  assert_true(o.gen_pack_helpers);
  assert_true(o.gen_init_helpers);
  assert_false(o.has_gen_pack_helpers);
  assert_null(o.c_package);

  /* c_package = "Zed.q_x" (field 6), const_strings (4, skipped), then a
   * second occurrence: gen_pack_helpers = false, c_package = "b". */
  static const uint8_t p1[] = {0x32, 7,   'Z', 'e',  'd', '.',
                               'q',  '_', 'x', 0x20, 1};
  static const uint8_t p2[] = {0x10, 0x00, 0x32, 1, 'b'};
  uint8_t b1[32], b2[32];
  ProtobufCMessageUnknownField u[2] = {ext(b1, p1, sizeof(p1)),
                                       ext(b2, p2, sizeof(p2))};
  fo.base.n_unknown_fields = 1;
  fo.base.unknown_fields = u;
  assert_int_equal(cg_pbc_file_opts_get(&arena, &fo, &o, &err), 0);
  assert_string_equal(o.c_package, "Zed.q_x");
  assert_true(o.gen_pack_helpers);

  fo.base.n_unknown_fields = 2; /* later occurrences win */
  assert_int_equal(cg_pbc_file_opts_get(&arena, &fo, &o, &err), 0);
  assert_string_equal(o.c_package, "b");
  assert_true(o.has_gen_pack_helpers);
  assert_false(o.gen_pack_helpers);

  /* Other extensions are not ours. */
  u[0].tag = 1020;
  fo.base.n_unknown_fields = 1;
  assert_int_equal(cg_pbc_file_opts_get(&arena, &fo, &o, &err), 0);
  assert_null(o.c_package);
  u[0].tag = 1019;

  /* Malformed: length prefix disagrees, wrong wire type, truncated
   * string, a group. */
  b1[0] = 99;
  assert_int_equal(cg_pbc_file_opts_get(&arena, &fo, &o, &err), -1);
  assert_non_null(strstr(err, "1019"));
  b1[0] = sizeof(p1);
  u[0].wire_type = PROTOBUF_C_WIRE_TYPE_VARINT;
  assert_int_equal(cg_pbc_file_opts_get(&arena, &fo, &o, &err), -1);
  u[0].wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
  static const uint8_t p3[] = {0x32, 9, 'a'};
  u[0] = ext(b1, p3, sizeof(p3));
  assert_int_equal(cg_pbc_file_opts_get(&arena, &fo, &o, &err), -1);
  static const uint8_t p4[] = {0x3b};
  u[0] = ext(b1, p4, sizeof(p4));
  assert_int_equal(cg_pbc_file_opts_get(&arena, &fo, &o, &err), -1);
}

static void test_message_options(void **state) {
  (void)state;
  Google__Protobuf__MessageOptions mo;
  google__protobuf__message_options__init(&mo);
  cg_pbc_msg_opts o;
  const char *err = NULL;
  assert_int_equal(cg_pbc_msg_opts_get(&arena, &mo, &o, &err), 0);
  assert_false(o.has_gen_pack_helpers);
  assert_false(o.gen_pack_helpers);
  assert_true(o.gen_init_helpers);

  /* gen_pack_helpers = true, gen_init_helpers = false, base_field_name */
  static const uint8_t p[] = {0x08, 1, 0x10, 0, 0x1a, 2, 'b', 'b'};
  uint8_t b[16];
  ProtobufCMessageUnknownField u = ext(b, p, sizeof(p));
  mo.base.n_unknown_fields = 1;
  mo.base.unknown_fields = &u;
  assert_int_equal(cg_pbc_msg_opts_get(&arena, &mo, &o, &err), 0);
  assert_true(o.has_gen_pack_helpers && o.gen_pack_helpers);
  assert_true(o.has_gen_init_helpers);
  assert_false(o.gen_init_helpers);
}

static void test_nameset(void **state) {
  (void)state;
  cg_nameset s = {0};
  const cg_name *ours, *other;
  cg_nameset_add(&s, "a__b", CG_NAME_IDENT, false, "theirs 1");
  cg_nameset_add(&s, "a__b", CG_NAME_IDENT, false, "theirs 2");
  cg_nameset_add(&s, "say", CG_NAME_MEMBER, false, "their member");
  cg_nameset_add(&s, "say", CG_NAME_MEMBER, true, "our member");
  cg_nameset_add(&s, "x__y", CG_NAME_IDENT, true, "our function");
  /* protoc-c's own duplicates and members in different structs: fine */
  assert_false(cg_nameset_find_clash(&s, &ours, &other));

  /* A member under one of their macros is a clash. */
  cg_nameset_add(&s, "say", CG_NAME_MACRO, false, "their macro");
  assert_true(cg_nameset_find_clash(&s, &ours, &other));
  assert_string_equal(ours->origin, "our member");
  assert_string_equal(other->origin, "their macro");
  cg_nameset_free(&s);

  /* Two of ours, and one of ours against theirs: theirs is reported. */
  cg_nameset_add(&s, "m__call", CG_NAME_IDENT, true, "ours A");
  cg_nameset_add(&s, "m__call", CG_NAME_IDENT, true, "ours B");
  cg_nameset_add(&s, "n__call", CG_NAME_IDENT, true, "ours C");
  cg_nameset_add(&s, "n__call", CG_NAME_IDENT, false, "theirs");
  assert_true(cg_nameset_find_clash(&s, &ours, &other));
  assert_string_equal(ours->origin, "ours C");
  assert_string_equal(other->origin, "theirs");
  cg_nameset_free(&s);

  cg_nameset_add(&s, "m__call", CG_NAME_IDENT, true, "ours A");
  cg_nameset_add(&s, "m__call", CG_NAME_IDENT, true, "ours B");
  assert_true(cg_nameset_find_clash(&s, &ours, &other));
  assert_string_equal(ours->origin, "ours A");
  assert_string_equal(other->origin, "ours B");
  cg_nameset_free(&s);
}

static void test_print_call(void **state) {
  (void)state;
  cg_printer p = {0};
  p.at_line_start = true;
  const char *shortp[] = {"int a", "int b"};
  cg_print_call(&p, "int f", shortp, 2, ";");
  assert_string_equal(p.out.data, "int f(int a, int b);\n");
  cg_buf_free(&p.out);

  /* Too long: break after "(", fill lines of at most 80 columns, indent 4
   * past the current indentation. */
  const char *longp[] = {"crpc_channel *ch", "const crpc_call_opts *opts",
                         "const My__Long__TypeName__HelloRequest *req",
                         "My__Long__TypeName__HelloReply **resp",
                         "crpc_status *st"};
  cg_indent(&p);
  cg_print_call(&p, "crpc_code my__long__type_name__greeter__say_hello__call",
                longp, 5, " {");
  const char *want =
      "  crpc_code my__long__type_name__greeter__say_hello__call(\n"
      "      crpc_channel *ch, const crpc_call_opts *opts,\n"
      "      const My__Long__TypeName__HelloRequest *req,\n"
      "      My__Long__TypeName__HelloReply **resp, crpc_status *st) {\n";
  assert_string_equal(p.out.data, want);
  cg_buf_free(&p.out);

  /* Empty lines get no indentation. */
  cg_print(&p, "a\n\nb\n");
  assert_string_equal(p.out.data, "  a\n\n  b\n");
  cg_buf_free(&p.out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_camel_to_lower, teardown),
      cmocka_unit_test_teardown(test_camel_to_upper, teardown),
      cmocka_unit_test_teardown(test_to_camel, teardown),
      cmocka_unit_test_teardown(test_full_names, teardown),
      cmocka_unit_test_teardown(test_c_package, teardown),
      cmocka_unit_test_teardown(test_files, teardown),
      cmocka_unit_test_teardown(test_identifiers, teardown),
      cmocka_unit_test_teardown(test_file_options, teardown),
      cmocka_unit_test_teardown(test_message_options, teardown),
      cmocka_unit_test_teardown(test_nameset, teardown),
      cmocka_unit_test_teardown(test_print_call, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
