#define _POSIX_C_SOURCE 200809L
/*
 * test_health.c: grpc.health.v1.Health (crpc_health_*) on an in-process
 * server, called through stubs generated from gRPC's own health.proto.
 *
 * The client side links its own grpc__health__v1__* bindings next to
 * libcrpc.a, which carries its private (renamed) copy: building this file
 * is itself the check that the two never clash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/crpc.h>

#include "../../lib/health_internal.h"
#include "grpc/health/v1/health.crpc.h"

typedef Grpc__Health__V1__HealthCheckRequest Req;
typedef Grpc__Health__V1__HealthCheckResponse Resp;

#define SAFETY_MS 30000 /* a deadline on every call, so nothing hangs */
#define WAIT_MS 10000   /* how long a watcher may take to return */

typedef struct fixture {
  crpc_server *srv;
  crpc_health *h;
  crpc_channel *ch;
} fixture;

static int setup_with(void **state, unsigned max_workers) {
  fixture *f = calloc(1, sizeof *f);
  crpc_server_opts so = {.reactor_threads = 1, .max_workers = max_workers};
  int port = 0;
  char target[64];
  if (!f || crpc_server_new(&f->srv, &so) != 0 ||
      crpc_health_new(&f->h) != 0 || crpc_health_register(f->h, f->srv) != 0 ||
      crpc_server_listen(f->srv, "127.0.0.1:0", NULL, &port) != 0 ||
      crpc_server_start(f->srv) != 0)
    return -1;
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  if (crpc_channel_new(&f->ch, target, NULL) != 0)
    return -1;
  *state = f;
  return 0;
}

static int setup(void **state) { return setup_with(state, 0); }
static int setup_one_worker(void **state) { return setup_with(state, 1); }

static int teardown(void **state) {
  fixture *f = *state;
  crpc_channel_free(f->ch);
  crpc_health_shutdown(f->h);
  crpc_server_free(f->srv);
  crpc_health_free(f->h);
  free(f);
  return 0;
}

/* Check(|svc|): returns the call's code and the status in |*out|. */
static crpc_code check(fixture *f, const char *svc, int *out) {
  Req req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  Resp *resp = NULL;
  crpc_status st = {0};
  crpc_call_opts o = {.timeout_ms = SAFETY_MS};
  req.service = (char *)svc;
  crpc_code code =
      grpc__health__v1__health__check__call(f->ch, &o, &req, &resp, &st);
  *out = -1;
  if (resp) {
    *out = (int)resp->status;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
  }
  if (code == CRPC_NOT_FOUND)
    assert_string_equal(crpc_status_message(&st), "unknown service");
  crpc_status_clear(&st);
  return code;
}

static crpc_call *watch(fixture *f, const char *svc, int64_t timeout_ms) {
  Req req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  crpc_call_opts o = {.timeout_ms = timeout_ms};
  crpc_call *c = NULL;
  req.service = (char *)svc;
  assert_int_equal(grpc__health__v1__health__watch__start(&c, f->ch, &o, &req),
                   0);
  return c;
}

/* The next status a watcher gets; -1 when the stream ended. */
static int next(crpc_call *c) {
  Resp *resp = NULL;
  if (!grpc__health__v1__health__watch__read(c, &resp))
    return -1;
  int st = (int)resp->status;
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return st;
}

static crpc_code finish(crpc_call *c) {
  crpc_code code = grpc__health__v1__health__watch__finish(c, NULL);
  crpc_call_free(c);
  return code;
}

static void assert_watchers(fixture *f, size_t n) {
  size_t now = 0;
  if (crpc__health_wait_watchers(f->h, n, WAIT_MS, &now) != 0)
    fail_msg("%zu Watch handlers running, expected %zu", now, n);
}

/* ---- API ---- */

static void test_api_errors(void **state) {
  crpc_health *h;
  crpc_server *s;
  assert_int_equal(crpc_health_new(NULL), CRPC_EINVAL);
  assert_int_equal(crpc_health_new(&h), 0);
  assert_int_equal(crpc_health_set(NULL, "", CRPC_HEALTH_SERVING),
                   CRPC_EINVAL);
  assert_int_equal(crpc_health_set(h, NULL, CRPC_HEALTH_SERVING),
                   CRPC_EINVAL);
  assert_int_equal(crpc_health_set(h, "x", (crpc_health_status)4),
                   CRPC_EINVAL);
  assert_int_equal(crpc_health_set(h, "x", (crpc_health_status)-1),
                   CRPC_EINVAL);
  /* forgetting a service that was never set is not an error */
  assert_int_equal(crpc_health_set(h, "x", CRPC_HEALTH_SERVICE_UNKNOWN), 0);
  assert_int_equal(crpc_health_register(NULL, NULL), CRPC_EINVAL);
  assert_int_equal(crpc_health_register(h, NULL), CRPC_EINVAL);
  assert_int_equal(crpc_server_new(&s, NULL), 0);
  assert_int_equal(crpc_health_register(NULL, s), CRPC_EINVAL);
  assert_int_equal(crpc_health_register(h, s), 0);
  assert_int_equal(crpc_health_register(h, s), CRPC_EEXIST);
  assert_int_equal(crpc_server_listen(s, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(crpc_server_start(s), 0);
  crpc_health *h2;
  assert_int_equal(crpc_health_new(&h2), 0);
  crpc_server *s2;
  assert_int_equal(crpc_server_new(&s2, NULL), 0);
  assert_int_equal(crpc_health_register(h2, s2), 0); /* a second server */
  crpc_server_free(s2);
  crpc_health_free(h2);
  crpc_server_free(s);
  crpc_health_shutdown(h);
  crpc_health_shutdown(h); /* idempotent */
  assert_int_equal(crpc_health_set(h, "x", CRPC_HEALTH_SERVING), CRPC_ECLOSED);
  crpc_health_free(h);
  crpc_health_shutdown(NULL);
  crpc_health_free(NULL);
}

/* Registered on a started server: ESTATE, from crpc_server_register. */
static void test_register_after_start(void **state) {
  fixture *f = *state;
  crpc_health *h;
  assert_int_equal(crpc_health_new(&h), 0);
  assert_int_equal(crpc_health_register(h, f->srv), CRPC_ESTATE);
  crpc_health_free(h);
}

/* ---- Check ---- */

static void test_check_whole_server(void **state) {
  fixture *f = *state;
  int st;
  assert_int_equal(check(f, "", &st), CRPC_OK);
  assert_int_equal(st, CRPC_HEALTH_SERVING);
  assert_int_equal(crpc_health_set(f->h, "", CRPC_HEALTH_NOT_SERVING), 0);
  assert_int_equal(check(f, "", &st), CRPC_OK);
  assert_int_equal(st, CRPC_HEALTH_NOT_SERVING);
}

static void test_check_known_and_unknown(void **state) {
  fixture *f = *state;
  int st;
  assert_int_equal(check(f, "pkg.Svc", &st), CRPC_NOT_FOUND);
  assert_int_equal(check(f, "pkg.Svc2", &st), CRPC_NOT_FOUND);
  assert_int_equal(crpc_health_set(f->h, "pkg.Svc", CRPC_HEALTH_SERVING), 0);
  assert_int_equal(crpc_health_set(f->h, "pkg.Svc2", CRPC_HEALTH_UNKNOWN), 0);
  assert_int_equal(check(f, "pkg.Svc", &st), CRPC_OK);
  assert_int_equal(st, CRPC_HEALTH_SERVING);
  assert_int_equal(check(f, "pkg.Svc2", &st), CRPC_OK);
  assert_int_equal(st, CRPC_HEALTH_UNKNOWN);
  assert_int_equal(check(f, "pkg.svc", &st), CRPC_NOT_FOUND); /* exact */
  assert_int_equal(check(f, "nope", &st), CRPC_NOT_FOUND);
  /* SERVICE_UNKNOWN forgets a service; the others stay */
  assert_int_equal(
      crpc_health_set(f->h, "pkg.Svc", CRPC_HEALTH_SERVICE_UNKNOWN), 0);
  assert_int_equal(check(f, "pkg.Svc", &st), CRPC_NOT_FOUND);
  assert_int_equal(check(f, "pkg.Svc2", &st), CRPC_OK);
  assert_int_equal(check(f, "", &st), CRPC_OK);
  /* many services: the table grows */
  char name[32];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "svc%d", i);
    assert_int_equal(crpc_health_set(f->h, name, i % 2 + 1), 0);
  }
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "svc%d", i);
    assert_int_equal(check(f, name, &st), CRPC_OK);
    assert_int_equal(st, i % 2 + 1);
  }
}

/* Check never needs a worker: with the only one taken by a watcher, it is
 * still answered (on the reactor). */
static void test_check_runs_on_reactor(void **state) {
  fixture *f = *state;
  int st;
  crpc_call *w = watch(f, "", SAFETY_MS);
  assert_int_equal(next(w), CRPC_HEALTH_SERVING); /* the worker is busy */
  assert_int_equal(check(f, "", &st), CRPC_OK);
  assert_int_equal(st, CRPC_HEALTH_SERVING);
  crpc_call_cancel(w);
  assert_int_equal(finish(w), CRPC_CANCELLED);
  assert_watchers(f, 0);
}

/* ---- Watch ---- */

static void test_watch_changes_in_order(void **state) {
  fixture *f = *state;
  crpc_health *h = f->h;
  assert_int_equal(crpc_health_set(h, "svc", CRPC_HEALTH_SERVING), 0);
  crpc_call *w = watch(f, "svc", SAFETY_MS);
  assert_int_equal(next(w), CRPC_HEALTH_SERVING);
  assert_int_equal(crpc_health_set(h, "svc", CRPC_HEALTH_NOT_SERVING), 0);
  assert_int_equal(next(w), CRPC_HEALTH_NOT_SERVING);
  assert_int_equal(crpc_health_set(h, "svc", CRPC_HEALTH_SERVING), 0);
  assert_int_equal(next(w), CRPC_HEALTH_SERVING);
  /* no message for a set that changes nothing, nor for other services */
  assert_int_equal(crpc_health_set(h, "svc", CRPC_HEALTH_SERVING), 0);
  assert_int_equal(crpc_health_set(h, "other", CRPC_HEALTH_NOT_SERVING), 0);
  assert_int_equal(crpc_health_set(h, "", CRPC_HEALTH_NOT_SERVING), 0);
  assert_int_equal(crpc_health_set(h, "svc", CRPC_HEALTH_UNKNOWN), 0);
  assert_int_equal(next(w), CRPC_HEALTH_UNKNOWN);
  /* forgotten: watchers are told, and the call stays open */
  assert_int_equal(crpc_health_set(h, "svc", CRPC_HEALTH_SERVICE_UNKNOWN), 0);
  assert_int_equal(next(w), CRPC_HEALTH_SERVICE_UNKNOWN);
  assert_int_equal(crpc_health_set(h, "svc", CRPC_HEALTH_NOT_SERVING), 0);
  assert_int_equal(next(w), CRPC_HEALTH_NOT_SERVING);
  crpc_call_cancel(w);
  assert_int_equal(next(w), -1);
  assert_int_equal(finish(w), CRPC_CANCELLED);
  assert_watchers(f, 0);
}

static void test_watch_unknown_then_serving(void **state) {
  fixture *f = *state;
  crpc_call *w = watch(f, "later.Svc", SAFETY_MS);
  assert_int_equal(next(w), CRPC_HEALTH_SERVICE_UNKNOWN);
  assert_int_equal(crpc_health_set(f->h, "later.Svc", CRPC_HEALTH_SERVING),
                   0);
  assert_int_equal(next(w), CRPC_HEALTH_SERVING);
  crpc_call_cancel(w);
  assert_int_equal(finish(w), CRPC_CANCELLED);
  assert_watchers(f, 0);
}

/* Several watchers of the same and of different services. */
static void test_watch_many(void **state) {
  fixture *f = *state;
  crpc_call *a1 = watch(f, "a", SAFETY_MS), *a2 = watch(f, "a", SAFETY_MS);
  crpc_call *b = watch(f, "b", SAFETY_MS);
  assert_int_equal(next(a1), CRPC_HEALTH_SERVICE_UNKNOWN);
  assert_int_equal(next(a2), CRPC_HEALTH_SERVICE_UNKNOWN);
  assert_int_equal(next(b), CRPC_HEALTH_SERVICE_UNKNOWN);
  assert_watchers(f, 3);
  assert_int_equal(crpc_health_set(f->h, "a", CRPC_HEALTH_SERVING), 0);
  assert_int_equal(crpc_health_set(f->h, "b", CRPC_HEALTH_NOT_SERVING), 0);
  assert_int_equal(next(a1), CRPC_HEALTH_SERVING);
  assert_int_equal(next(a2), CRPC_HEALTH_SERVING);
  assert_int_equal(next(b), CRPC_HEALTH_NOT_SERVING);
  /* cancelling one leaves the others */
  crpc_call_cancel(a1);
  assert_int_equal(finish(a1), CRPC_CANCELLED);
  assert_watchers(f, 2);
  assert_int_equal(crpc_health_set(f->h, "a", CRPC_HEALTH_NOT_SERVING), 0);
  assert_int_equal(next(a2), CRPC_HEALTH_NOT_SERVING);
  crpc_call_cancel(a2);
  crpc_call_cancel(b);
  assert_int_equal(finish(a2), CRPC_CANCELLED);
  assert_int_equal(finish(b), CRPC_CANCELLED);
  assert_watchers(f, 0);
}

/* A cancelled Watch returns (its worker is free again); ASan checks that
 * everything it had is freed. */
static void test_watch_cancel(void **state) {
  fixture *f = *state;
  crpc_call *w = watch(f, "", SAFETY_MS);
  assert_int_equal(next(w), CRPC_HEALTH_SERVING);
  assert_watchers(f, 1);
  crpc_call_free(w); /* cancels: RST_STREAM(CANCEL) */
  assert_watchers(f, 0);
  /* and the server still serves */
  int st;
  assert_int_equal(check(f, "", &st), CRPC_OK);
  w = watch(f, "", SAFETY_MS);
  assert_int_equal(next(w), CRPC_HEALTH_SERVING);
  crpc_call_cancel(w);
  assert_int_equal(finish(w), CRPC_CANCELLED);
  assert_watchers(f, 0);
}

/* The client's deadline ends a Watch on both sides. */
static void test_watch_deadline(void **state) {
  fixture *f = *state;
  crpc_call *w = watch(f, "", 1000);
  assert_int_equal(next(w), CRPC_HEALTH_SERVING);
  assert_int_equal(next(w), -1);
  assert_int_equal(finish(w), CRPC_DEADLINE_EXCEEDED);
  assert_watchers(f, 0);
}

/* crpc_health_shutdown: NOT_SERVING to every watcher, then the calls end
 * UNAVAILABLE; Check keeps answering; set is refused. */
static void test_shutdown_ends_watchers(void **state) {
  fixture *f = *state;
  int st;
  assert_int_equal(crpc_health_set(f->h, "svc", CRPC_HEALTH_SERVING), 0);
  crpc_call *w1 = watch(f, "", SAFETY_MS), *w2 = watch(f, "svc", SAFETY_MS);
  crpc_call *w3 = watch(f, "unknown", SAFETY_MS);
  assert_int_equal(next(w1), CRPC_HEALTH_SERVING);
  assert_int_equal(next(w2), CRPC_HEALTH_SERVING);
  assert_int_equal(next(w3), CRPC_HEALTH_SERVICE_UNKNOWN);
  crpc_health_shutdown(f->h);
  assert_int_equal(next(w1), CRPC_HEALTH_NOT_SERVING);
  assert_int_equal(next(w1), -1);
  assert_int_equal(finish(w1), CRPC_UNAVAILABLE);
  assert_int_equal(next(w2), CRPC_HEALTH_NOT_SERVING);
  assert_int_equal(next(w2), -1);
  assert_int_equal(finish(w2), CRPC_UNAVAILABLE);
  assert_int_equal(next(w3), -1); /* still unknown: nothing more to say */
  assert_int_equal(finish(w3), CRPC_UNAVAILABLE);
  assert_watchers(f, 0);

  assert_int_equal(crpc_health_set(f->h, "svc", CRPC_HEALTH_SERVING),
                   CRPC_ECLOSED);
  assert_int_equal(check(f, "svc", &st), CRPC_OK);
  assert_int_equal(st, CRPC_HEALTH_NOT_SERVING);
  assert_int_equal(check(f, "", &st), CRPC_OK);
  assert_int_equal(st, CRPC_HEALTH_NOT_SERVING);
  /* a late Watch gets the status and ends */
  crpc_call *w4 = watch(f, "svc", SAFETY_MS);
  assert_int_equal(next(w4), CRPC_HEALTH_NOT_SERVING);
  assert_int_equal(next(w4), -1);
  assert_int_equal(finish(w4), CRPC_UNAVAILABLE);
  /* nothing holds the grace period now: waiting for ever returns */
  crpc_server_shutdown(f->srv, -1);
}

/* Without crpc_health_shutdown, the server's own shutdown cancels open
 * watchers, and they return. */
static void test_server_shutdown_cancels_watchers(void **state) {
  fixture *f = *state;
  crpc_call *w = watch(f, "", SAFETY_MS);
  assert_int_equal(next(w), CRPC_HEALTH_SERVING);
  crpc_server_shutdown(f->srv, 0);
  assert_watchers(f, 0);
  assert_int_equal(next(w), -1);
  crpc_code code = finish(w);
  assert_true(code == CRPC_CANCELLED || code == CRPC_UNAVAILABLE);
}

/* Watchers beyond CRPC_HEALTH_MAX_WATCHERS are refused at once. */
static void test_max_watchers(void **state) {
  fixture *f = *state;
  crpc_call *w[CRPC_HEALTH_MAX_WATCHERS];
  for (int i = 0; i < CRPC_HEALTH_MAX_WATCHERS; i++)
    w[i] = watch(f, "", SAFETY_MS);
  for (int i = 0; i < CRPC_HEALTH_MAX_WATCHERS; i++)
    assert_int_equal(next(w[i]), CRPC_HEALTH_SERVING);
  crpc_call *extra = watch(f, "", SAFETY_MS);
  assert_int_equal(next(extra), -1);
  assert_int_equal(finish(extra), CRPC_RESOURCE_EXHAUSTED);
  crpc_call_cancel(w[0]);
  assert_int_equal(finish(w[0]), CRPC_CANCELLED);
  assert_watchers(f, CRPC_HEALTH_MAX_WATCHERS - 1);
  extra = watch(f, "", SAFETY_MS); /* room again */
  assert_int_equal(next(extra), CRPC_HEALTH_SERVING);
  w[0] = extra;
  crpc_health_shutdown(f->h);
  for (int i = 0; i < CRPC_HEALTH_MAX_WATCHERS; i++) {
    assert_int_equal(next(w[i]), CRPC_HEALTH_NOT_SERVING);
    assert_int_equal(finish(w[i]), CRPC_UNAVAILABLE);
  }
  assert_watchers(f, 0);
}

/* Another thread flips the status as fast as it can; the watcher may miss
 * intermediate states, but never gets the same status twice in a row and
 * always ends on the last one. */
static void *flipper(void *arg) {
  crpc_health *h = arg;
  for (int i = 0; i < 2000; i++)
    crpc_health_set(h, "flip",
                    i % 2 ? CRPC_HEALTH_NOT_SERVING : CRPC_HEALTH_SERVING);
  crpc_health_set(h, "flip", CRPC_HEALTH_UNKNOWN); /* the end marker */
  return NULL;
}

static void test_watch_concurrent_sets(void **state) {
  fixture *f = *state;
  assert_int_equal(crpc_health_set(f->h, "flip", CRPC_HEALTH_NOT_SERVING), 0);
  crpc_call *w = watch(f, "flip", SAFETY_MS);
  int prev = next(w), cur, n = 1;
  assert_int_equal(prev, CRPC_HEALTH_NOT_SERVING);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, flipper, f->h), 0);
  while ((cur = next(w)) != CRPC_HEALTH_UNKNOWN) {
    assert_true(cur == CRPC_HEALTH_SERVING || cur == CRPC_HEALTH_NOT_SERVING);
    assert_int_not_equal(cur, prev);
    prev = cur;
    n++;
  }
  pthread_join(t, NULL);
  crpc_call_cancel(w);
  assert_int_equal(finish(w), CRPC_CANCELLED);
  assert_watchers(f, 0);
  print_message("watcher saw %d of 2002 statuses\n", n + 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_api_errors),
      cmocka_unit_test_setup_teardown(test_register_after_start, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_check_whole_server, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_check_known_and_unknown, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_check_runs_on_reactor,
                                      setup_one_worker, teardown),
      cmocka_unit_test_setup_teardown(test_watch_changes_in_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_watch_unknown_then_serving, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_watch_many, setup, teardown),
      cmocka_unit_test_setup_teardown(test_watch_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_watch_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_ends_watchers, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_server_shutdown_cancels_watchers,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_watchers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_watch_concurrent_sets, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
