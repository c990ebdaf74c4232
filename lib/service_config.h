/*
 * service_config.h: a channel's service config (gRFC A2) parsed from JSON
 * (crpc_channel_opts.service_config_json) into plain C: the chosen load
 * balancing policy, the per-method settings and retry policies (gRFC A6),
 * and retry throttling. Pure: no I/O, no threads. Never installed.
 */
#ifndef CRPC_SERVICE_CONFIG_H
#define CRPC_SERVICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* gRFC A6: maxAttempts above this are treated as this. */
#define CRPC__RETRY_MAX_ATTEMPTS 5

typedef struct crpc__retry_policy {
  int max_attempts;          /* 2..CRPC__RETRY_MAX_ATTEMPTS */
  int64_t initial_backoff_us; /* > 0 */
  int64_t max_backoff_us;     /* > 0 */
  double multiplier;          /* > 0 */
  uint32_t codes;             /* bit (1u << code) per retryable code */
} crpc__retry_policy;

typedef struct crpc__method_config {
  char *service; /* "pkg.Service"; NULL: every service (the default) */
  char *method;  /* NULL: every method of |service| */
  int64_t timeout_ms;      /* 0: none */
  int wait_for_ready;      /* -1: unset; 0; 1 */
  int64_t max_request_bytes;  /* -1: unset */
  int64_t max_response_bytes; /* -1: unset */
  bool has_retry;
  crpc__retry_policy retry;
} crpc__method_config;

/* One entry of a methodConfig's name list points at its config. */
typedef struct crpc__method_name {
  char *service, *method; /* as crpc__method_config's */
  const crpc__method_config *cfg;
} crpc__method_name;

typedef struct crpc__service_config {
  const char *lb_policy; /* static "pick_first" / "round_robin"; NULL */
  crpc__method_config *methods;
  size_t nmethods;
  crpc__method_name *names;
  size_t nnames;
  bool has_throttle;
  int64_t max_tokens_milli; /* maxTokens * 1000, (0, 1000000] */
  int64_t token_ratio_milli; /* tokenRatio * 1000, > 0 */
} crpc__service_config;

/* Parses |json| into |*out| (allocated from |mem|). Returns 0; CRPC_EINVAL
 * with a message naming the field in |err| (e.g. "service config:
 * methodConfig[0].timeout: \"1x\" is not a duration"); CRPC_ENOMEM. */
int crpc__service_config_parse(const char *json, size_t len,
                               const crpc_mem *mem,
                               crpc__service_config **out, char *err,
                               size_t errlen);
void crpc__service_config_free(crpc__service_config *sc, const crpc_mem *mem);
/* The config for |path| ("/pkg.Service/Method"): the exact method, else
 * the service's, else the default; NULL when none applies (gRFC A2). */
const crpc__method_config *
crpc__service_config_find(const crpc__service_config *sc, const char *path);
/* "1.5s" (proto3 JSON Duration, >= 0) into microseconds; -1 if not one. */
int64_t crpc__duration_parse_us(const char *s);

#endif
