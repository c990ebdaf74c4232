/* Unit tests for lib/service_config.c: the service config JSON (gRFC A2,
 * A6): good configs, method matching, and every bad input named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service_config.h"

static crpc_mem mem;

static crpc__service_config *good(const char *json) {
  crpc__service_config *sc = NULL;
  char err[256];
  int rv = crpc__service_config_parse(json, strlen(json), &mem, &sc, err,
                                      sizeof err);
  if (rv != 0)
    fail_msg("rejected (%d): %s\n%s", rv, err, json);
  assert_non_null(sc);
  return sc;
}

/* |json| must fail with a message containing |want|. */
static void bad(const char *json, const char *want) {
  crpc__service_config *sc = (void *)1;
  char err[256] = "";
  int rv = crpc__service_config_parse(json, strlen(json), &mem, &sc, err,
                                      sizeof err);
  if (rv != CRPC_EINVAL)
    fail_msg("accepted (%d): %s", rv, json);
  assert_null(sc);
  if (!strstr(err, want) || strncmp(err, "service config: ", 16) != 0)
    fail_msg("error \"%s\" does not say \"%s\"", err, want);
}

#define RETRY(body)                                                            \
  "{\"methodConfig\":[{\"name\":[{\"service\":\"s\"}],\"retryPolicy\":{" body \
  "}}]}"
#define RP_OK_TAIL                                                             \
  "\"initialBackoff\":\"0.1s\",\"maxBackoff\":\"1s\",\"backoffMultiplier\":2," \
  "\"retryableStatusCodes\":[\"UNAVAILABLE\"]"

static void test_full(void **state) {
  (void)state;
  crpc__service_config *sc = good(
      "{\"loadBalancingConfig\":[{\"grpclb\":{}},{\"round_robin\":{}}],"
      "\"methodConfig\":[{\"name\":[{\"service\":\"helloworld.Greeter\","
      "\"method\":\"SayHello\"}],\"timeout\":\"1.5s\",\"waitForReady\":true,"
      "\"maxRequestMessageBytes\":1024,\"maxResponseMessageBytes\":\"2048\","
      "\"retryPolicy\":{\"maxAttempts\":4,\"initialBackoff\":\"0.01s\","
      "\"maxBackoff\":\"0.3s\",\"backoffMultiplier\":1.5,"
      "\"retryableStatusCodes\":[\"UNAVAILABLE\",\"resource_exhausted\",4]}}],"
      "\"retryThrottling\":{\"maxTokens\":10,\"tokenRatio\":0.1234},"
      "\"someFutureField\":{\"x\":[1,2,3]}}");
  assert_string_equal(sc->lb_policy, "round_robin");
  assert_int_equal(sc->nmethods, 1);
  const crpc__method_config *mc =
      crpc__service_config_find(sc, "/helloworld.Greeter/SayHello");
  assert_non_null(mc);
  assert_int_equal(mc->timeout_ms, 1500);
  assert_int_equal(mc->wait_for_ready, 1);
  assert_int_equal(mc->max_request_bytes, 1024);
  assert_int_equal(mc->max_response_bytes, 2048);
  assert_true(mc->has_retry);
  assert_int_equal(mc->retry.max_attempts, 4);
  assert_int_equal(mc->retry.initial_backoff_us, 10000);
  assert_int_equal(mc->retry.max_backoff_us, 300000);
  assert_true(mc->retry.multiplier == 1.5);
  assert_int_equal(mc->retry.codes, (1u << CRPC_UNAVAILABLE) |
                                        (1u << CRPC_RESOURCE_EXHAUSTED) |
                                        (1u << CRPC_DEADLINE_EXCEEDED));
  assert_true(sc->has_throttle);
  assert_int_equal(sc->max_tokens_milli, 10000);
  assert_int_equal(sc->token_ratio_milli, 123); /* 3 decimals, rest cut */
  assert_null(crpc__service_config_find(sc, "/helloworld.Greeter/Other"));
  crpc__service_config_free(sc, &mem);
}

static void test_matching(void **state) {
  (void)state;
  crpc__service_config *sc = good(
      "{\"methodConfig\":["
      "{\"name\":[{}],\"timeout\":\"1s\"},"
      "{\"name\":[{\"service\":\"a.S\"}],\"timeout\":\"2s\"},"
      "{\"name\":[{\"service\":\"a.S\",\"method\":\"M\"},"
      "{\"service\":\"b.T\",\"method\":\"\"}],\"timeout\":\"3s\"}]}");
  assert_int_equal(crpc__service_config_find(sc, "/a.S/M")->timeout_ms, 3000);
  assert_int_equal(crpc__service_config_find(sc, "/a.S/N")->timeout_ms, 2000);
  assert_int_equal(crpc__service_config_find(sc, "/b.T/X")->timeout_ms, 3000);
  assert_int_equal(crpc__service_config_find(sc, "/c.U/M")->timeout_ms, 1000);
  assert_int_equal(crpc__service_config_find(sc, "/a.SS/M")->timeout_ms, 1000);
  assert_null(crpc__service_config_find(sc, "nonsense"));
  crpc__service_config_free(sc, &mem);
}

static void test_defaults_and_unknown(void **state) {
  (void)state;
  crpc__service_config *sc = good("{}");
  assert_null(sc->lb_policy);
  assert_null(crpc__service_config_find(sc, "/a.S/M"));
  crpc__service_config_free(sc, &mem);
  sc = good("{\"loadBalancingPolicy\":\"ROUND_ROBIN\",\"bogus\":1,"
            "\"methodConfig\":[{\"name\":[{\"service\":\"a.S\"}],"
            "\"hedgingPolicy\":{\"x\":1},\"unknown\":null}]}");
  assert_string_equal(sc->lb_policy, "round_robin");
  const crpc__method_config *mc = crpc__service_config_find(sc, "/a.S/M");
  assert_int_equal(mc->wait_for_ready, -1);
  assert_int_equal(mc->max_request_bytes, -1);
  assert_int_equal(mc->timeout_ms, 0);
  assert_false(mc->has_retry);
  crpc__service_config_free(sc, &mem);
  /* loadBalancingConfig wins over the deprecated field */
  sc = good("{\"loadBalancingPolicy\":\"round_robin\","
            "\"loadBalancingConfig\":[{\"pick_first\":{}}]}");
  assert_string_equal(sc->lb_policy, "pick_first");
  crpc__service_config_free(sc, &mem);
}

static void test_max_attempts_capped(void **state) {
  (void)state;
  crpc__service_config *sc =
      good(RETRY("\"maxAttempts\":1000," RP_OK_TAIL));
  assert_int_equal(crpc__service_config_find(sc, "/s/m")->retry.max_attempts,
                   5);
  crpc__service_config_free(sc, &mem);
  sc = good(RETRY("\"maxAttempts\":\"3\"," RP_OK_TAIL));
  assert_int_equal(crpc__service_config_find(sc, "/s/m")->retry.max_attempts,
                   3);
  crpc__service_config_free(sc, &mem);
}

static void test_durations(void **state) {
  (void)state;
  assert_int_equal(crpc__duration_parse_us("0s"), 0);
  assert_int_equal(crpc__duration_parse_us("1s"), 1000000);
  assert_int_equal(crpc__duration_parse_us("1.5s"), 1500000);
  assert_int_equal(crpc__duration_parse_us("0.000000001s"), 1);
  assert_int_equal(crpc__duration_parse_us("315576000000s"),
                   INT64_C(315576000000) * 1000000);
  const char *no[] = {"1x", "-1s", "1.5", "", "s", ".5s", "1.s", "1.5ss",
                      "1.0000000001s", "315576000001s", " 1s", "1s ",
                      "99999999999999999999s", "+1s", "1e3s"};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (crpc__duration_parse_us(no[i]) != -1)
      fail_msg("\"%s\" accepted", no[i]);
}

static void test_malformed_json(void **state) {
  (void)state;
  bad("", "malformed JSON");
  bad("{", "malformed JSON");
  bad("{\"methodConfig\":[}", "malformed JSON");
  bad("{a:1}", "malformed JSON");
  bad("{} x", "malformed JSON");
  bad("{\"a\":1,}", "malformed JSON");
  bad("[]", "want a JSON object");
  bad("null", "want a JSON object");
  bad("\"x\"", "want a JSON object");
  /* nesting past the tokener's depth */
  char deep[200];
  memset(deep, '[', sizeof deep - 1);
  deep[sizeof deep - 1] = 0;
  bad(deep, "malformed JSON");
  crpc__service_config *sc;
  char err[64];
  assert_int_equal(crpc__service_config_parse("{}\0{}", 5, &mem, &sc, err,
                                              sizeof err),
                   CRPC_EINVAL);
}

static void test_bad_values(void **state) {
  (void)state;
  bad("{\"methodConfig\":[{\"timeout\":\"1x\"}]}",
      "methodConfig[0].timeout: \"1x\" is not a duration");
  bad("{\"methodConfig\":[{},{\"timeout\":\"-1s\"}]}",
      "methodConfig[1].timeout: \"-1s\" is not a duration");
  bad("{\"methodConfig\":[{\"timeout\":\"1.5\"}]}",
      "methodConfig[0].timeout: \"1.5\" is not a duration");
  bad("{\"methodConfig\":[{\"timeout\":1}]}", "methodConfig[0].timeout: 1 is "
                                              "not a duration");
  bad("{\"methodConfig\":[{\"waitForReady\":\"yes\"}]}",
      "methodConfig[0].waitForReady: want true or false, not string");
  bad("{\"methodConfig\":[{\"maxRequestMessageBytes\":-1}]}",
      "methodConfig[0].maxRequestMessageBytes: -1 is out of range");
  bad("{\"methodConfig\":[{\"maxResponseMessageBytes\":1.5}]}",
      "methodConfig[0].maxResponseMessageBytes: 1.5 is not an integer");
  bad("{\"methodConfig\":[{\"maxResponseMessageBytes\":\"12ab\"}]}",
      "methodConfig[0].maxResponseMessageBytes: \"12ab\" is not an integer");
  bad("{\"methodConfig\":[{\"maxRequestMessageBytes\":[]}]}",
      "want an integer, not array");
  bad("{\"methodConfig\":{}}", "methodConfig: want a list, not object");
  bad("{\"methodConfig\":[1]}", "methodConfig[0]: want an object, not int");
  bad("{\"methodConfig\":[{\"name\":{}}]}", "methodConfig[0].name: want a "
                                            "list");
  bad("{\"methodConfig\":[{\"name\":[{\"method\":\"M\"}]}]}",
      "methodConfig[0].name[0]: a method needs its service");
  bad("{\"methodConfig\":[{\"name\":[{\"service\":1}]}]}",
      "must be strings");
  bad("{\"methodConfig\":[{\"name\":[{\"service\":\"a\"}]},"
      "{\"name\":[{\"service\":\"a\"}]}]}",
      "methodConfig[1].name[0]: duplicate name");
  bad("{\"loadBalancingConfig\":[{\"grpclb\":{}}]}", "no policy crpc knows");
  bad("{\"loadBalancingConfig\":{}}", "loadBalancingConfig: want a list");
  bad("{\"loadBalancingConfig\":[{\"a\":{},\"b\":{}}]}",
      "loadBalancingConfig[0]: want an object with one policy name");
  bad("{\"loadBalancingConfig\":[{\"round_robin\":1}]}",
      "round_robin: want an object");
  bad("{\"loadBalancingPolicy\":\"random\"}",
      "loadBalancingPolicy: \"random\" is not a policy");
  bad("{\"loadBalancingPolicy\":3}", "loadBalancingPolicy: want a string");
  bad("{\"retryThrottling\":{\"maxTokens\":0,\"tokenRatio\":1}}",
      "retryThrottling.maxTokens: 0 is out of range");
  bad("{\"retryThrottling\":{\"maxTokens\":1001,\"tokenRatio\":1}}",
      "retryThrottling.maxTokens: 1001 is out of range");
  bad("{\"retryThrottling\":{\"maxTokens\":10}}",
      "retryThrottling.tokenRatio: required");
  bad("{\"retryThrottling\":{\"maxTokens\":10,\"tokenRatio\":0}}",
      "retryThrottling.tokenRatio: must be at least 0.001");
  bad("{\"retryThrottling\":{\"maxTokens\":10,\"tokenRatio\":\"1\"}}",
      "retryThrottling.tokenRatio: want a number");
  bad("{\"retryThrottling\":[]}", "retryThrottling: want an object");
}

static void test_bad_retry(void **state) {
  (void)state;
  bad(RETRY("\"maxAttempts\":0," RP_OK_TAIL),
      "retryPolicy.maxAttempts: 0: must be at least 2");
  bad(RETRY("\"maxAttempts\":1," RP_OK_TAIL),
      "retryPolicy.maxAttempts: 1: must be at least 2");
  bad(RETRY(RP_OK_TAIL), "retryPolicy.maxAttempts: required");
  bad(RETRY("\"maxAttempts\":true," RP_OK_TAIL),
      "retryPolicy.maxAttempts: want an integer, not boolean");
  bad(RETRY("\"maxAttempts\":3,\"initialBackoff\":\"0s\",\"maxBackoff\":\"1s\","
            "\"backoffMultiplier\":2,\"retryableStatusCodes\":[14]"),
      "retryPolicy.initialBackoff: must be greater than 0");
  bad(RETRY("\"maxAttempts\":3,\"initialBackoff\":\"1s\",\"maxBackoff\":\"0s\","
            "\"backoffMultiplier\":2,\"retryableStatusCodes\":[14]"),
      "retryPolicy.maxBackoff: must be greater than 0");
  bad(RETRY("\"maxAttempts\":3,\"initialBackoff\":\"1s\",\"maxBackoff\":\"1s\","
            "\"backoffMultiplier\":0,\"retryableStatusCodes\":[14]"),
      "retryPolicy.backoffMultiplier: 0: must be greater than 0");
  bad(RETRY("\"maxAttempts\":3,\"initialBackoff\":\"1s\",\"maxBackoff\":\"1s\","
            "\"backoffMultiplier\":2,\"retryableStatusCodes\":[]"),
      "retryPolicy.retryableStatusCodes: must not be empty");
  bad(RETRY("\"maxAttempts\":3,\"initialBackoff\":\"1s\",\"maxBackoff\":\"1s\","
            "\"backoffMultiplier\":2,\"retryableStatusCodes\":[\"NOPE\"]"),
      "retryPolicy.retryableStatusCodes[0]: \"NOPE\" is not a retryable "
      "status code");
  bad(RETRY("\"maxAttempts\":3,\"initialBackoff\":\"1s\",\"maxBackoff\":\"1s\","
            "\"backoffMultiplier\":2,\"retryableStatusCodes\":[14,0]"),
      "retryableStatusCodes[1]: 0 is not");
  bad(RETRY("\"maxAttempts\":3,\"initialBackoff\":\"1s\",\"maxBackoff\":\"1s\","
            "\"backoffMultiplier\":2,\"retryableStatusCodes\":\"UNAVAILABLE\""),
      "retryableStatusCodes: want a list");
  bad(RETRY("\"maxAttempts\":3,\"initialBackoff\":\"1x\",\"maxBackoff\":\"1s\","
            "\"backoffMultiplier\":2,\"retryableStatusCodes\":[14]"),
      "retryPolicy.initialBackoff: \"1x\" is not a duration");
  bad("{\"methodConfig\":[{\"retryPolicy\":5}]}",
      "methodConfig[0].retryPolicy: want an object");
}

/* Every allocation freed on every failure path (failmalloc-like: a mem
 * that fails the nth allocation). */
static int budget;
static void *lim_malloc(size_t n, void *ud) {
  (void)ud;
  return budget-- > 0 ? malloc(n) : NULL;
}
static void *lim_calloc(size_t a, size_t n, void *ud) {
  (void)ud;
  return budget-- > 0 ? calloc(a, n) : NULL;
}
static void *lim_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return budget-- > 0 ? realloc(p, n) : NULL;
}
static void lim_free(void *p, void *ud) {
  (void)ud;
  free(p);
}

static void test_oom(void **state) {
  (void)state;
  const char *json =
      "{\"methodConfig\":[{\"name\":[{\"service\":\"a.S\",\"method\":\"M\"},"
      "{\"service\":\"b\"}],\"timeout\":\"1s\"},{\"name\":[{}]}]}";
  crpc_mem lim = {.malloc = lim_malloc, .calloc = lim_calloc,
                  .realloc = lim_realloc, .free = lim_free};
  crpc_mem m;
  crpc__mem_init(&m, &lim);
  for (int n = 0; n < 20; n++) {
    crpc__service_config *sc;
    char err[128];
    budget = n;
    int rv = crpc__service_config_parse(json, strlen(json), &m, &sc, err,
                                        sizeof err);
    if (rv == 0) {
      crpc__service_config_free(sc, &m);
      return;
    }
    assert_int_equal(rv, CRPC_ENOMEM);
  }
  fail_msg("never succeeded");
}

int main(void) {
  crpc__mem_init(&mem, NULL);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full),
      cmocka_unit_test(test_matching),
      cmocka_unit_test(test_defaults_and_unknown),
      cmocka_unit_test(test_max_attempts_capped),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_malformed_json),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_bad_retry),
      cmocka_unit_test(test_oom),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
