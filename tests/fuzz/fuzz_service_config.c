/* Fuzz target: the service config JSON (lib/service_config.c). Any input
 * either fails with a message that names the service config, or parses
 * into a config whose values hold the parser's promises. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "service_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  crpc_mem mem;
  crpc__service_config *sc = NULL;
  char err[256];
  crpc__mem_init(&mem, NULL);
  int rv = crpc__service_config_parse((const char *)data, size, &mem, &sc,
                                      err, sizeof err);
  if (rv != 0) {
    FUZZ_CHECK(sc == NULL);
    FUZZ_CHECK(strncmp(err, "service config: ", 16) == 0);
    return 0;
  }
  FUZZ_CHECK(sc != NULL);
  for (size_t i = 0; i < sc->nmethods; i++) {
    const crpc__method_config *mc = &sc->methods[i];
    FUZZ_CHECK(mc->timeout_ms >= 0);
    FUZZ_CHECK(mc->wait_for_ready >= -1 && mc->wait_for_ready <= 1);
    if (mc->has_retry) {
      FUZZ_CHECK(mc->retry.max_attempts >= 2 &&
                 mc->retry.max_attempts <= CRPC__RETRY_MAX_ATTEMPTS);
      FUZZ_CHECK(mc->retry.initial_backoff_us > 0);
      FUZZ_CHECK(mc->retry.max_backoff_us > 0);
      FUZZ_CHECK(mc->retry.multiplier > 0);
      FUZZ_CHECK(mc->retry.codes != 0 && !(mc->retry.codes & 1u));
    }
  }
  for (size_t i = 0; i < sc->nnames; i++) {
    const crpc__method_name *n = &sc->names[i];
    FUZZ_CHECK(n->service || !n->method);
    if (n->service && n->method) {
      char path[512];
      size_t sl = strlen(n->service), ml = strlen(n->method);
      if (sl + ml + 3 <= sizeof path && !strchr(n->service, '/')) {
        path[0] = '/';
        memcpy(path + 1, n->service, sl);
        path[sl + 1] = '/';
        memcpy(path + sl + 2, n->method, ml + 1);
        FUZZ_CHECK(crpc__service_config_find(sc, path) == n->cfg);
      }
    }
  }
  if (sc->has_throttle)
    FUZZ_CHECK(sc->max_tokens_milli > 0 && sc->token_ratio_milli > 0);
  crpc__service_config_free(sc, &mem);
  return 0;
}
