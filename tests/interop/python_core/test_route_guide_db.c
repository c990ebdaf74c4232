/*
 * test_route_guide_db.c: the route guide's JSON feature database reader
 * (examples/route_guide/route_guide_db.c) on good and hostile input, and
 * the shipped database. Usage: test-route-guide-db <route_guide_db.json>
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "route_guide_db.h"

static int failures;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      failures++;                                                              \
      printf("FAIL line %d: ", __LINE__);                                      \
      printf(__VA_ARGS__);                                                     \
      printf("\n");                                                            \
    }                                                                          \
  } while (0)

static int parse(const char *text, rg_db *db, char *err, size_t errlen) {
  return rg_db_parse(db, text, strlen(text), err, errlen);
}

static void good(void) {
  rg_db db;
  char err[200];
  const char *text =
      " [ {\"location\": {\"latitude\": -2147483648, \"longitude\": "
      "2147483647}, \"name\": \"\\ud83d\\ude00 caf\\u00e9 \\\"q\\\" \\/\"},\n"
      "{\"extra\": [1, -0.5e3, true, false, null, {\"a\": []}],"
      " \"location\": {\"longitude\": 2, \"latitude\": 1, \"alt\": 9}} ] ";
  CHECK(parse(text, &db, err, sizeof(err)) == 0, "good input: %s", err);
  if (failures == 0) {
    CHECK(db.n == 2, "%zu features", db.n);
    CHECK(db.features[0].latitude == -2147483647 - 1, "int32 min");
    CHECK(db.features[0].longitude == 2147483647, "int32 max");
    CHECK(strcmp(db.features[0].name, "\xf0\x9f\x98\x80 caf\xc3\xa9 \"q\" /") ==
              0,
          "unescaped name '%s'", db.features[0].name);
    CHECK(db.features[1].name[0] == '\0', "missing name is empty");
    CHECK(rg_db_find(&db, 1, 2) == &db.features[1], "find");
    CHECK(rg_db_find(&db, 2, 1) == NULL, "find misses");
    rg_db_free(&db);
  }
  CHECK(parse("[]", &db, err, sizeof(err)) == 0 && db.n == 0, "empty array");
  rg_db_free(&db);
}

static void bad(void) {
  static const char *const inputs[] = {
      "",
      "{}",
      "[",
      "[{}]",
      "[{\"name\": \"x\"}]",
      "[{\"location\": {\"latitude\": 1}}]",
      "[{\"location\": {\"latitude\": 1.5, \"longitude\": 2}}]",
      "[{\"location\": {\"latitude\": 2147483648, \"longitude\": 2}}]",
      "[{\"location\": {\"latitude\": 01, \"longitude\": 2}}]",
      "[{\"location\": {\"latitude\": -, \"longitude\": 2}}]",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}, \"name\": "
      "\"\\ud800\"}]",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}, \"name\": "
      "\"a\\u0000b\"}]",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}, \"name\": "
      "\"\xc3\"}]",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}, \"name\": "
      "\"\xc0\xaf\"}]",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}, \"name\": "
      "\"tab\there\"}]",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}, \"name\": "
      "\"x\\q\"}]",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}, \"name\": \"abc",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}}] trailing",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}},]",
      "[{\"location\": {\"latitude\": 1, \"longitude\": 2}, \"x\": tru}]",
  };
  for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
    rg_db db = {0};
    char err[200] = "";
    CHECK(parse(inputs[i], &db, err, sizeof(err)) != 0,
          "accepted bad input %zu: %s", i, inputs[i]);
    CHECK(err[0] != '\0' && strstr(err, "at byte") != NULL,
          "no error position for input %zu: '%s'", i, err);
    CHECK(db.features == NULL && db.n == 0, "input %zu: db not reset", i);
  }
  /* Deep nesting is refused, not a stack overflow. */
  static char deep[200000];
  size_t n = 0;
  const char *head = "[{\"location\": {\"latitude\": 1, \"longitude\": 2}, "
                     "\"x\": ";
  memcpy(deep, head, strlen(head));
  n += strlen(head);
  for (int i = 0; i < 50000; i++) {
    deep[n++] = '[';
  }
  deep[n] = '\0';
  rg_db db = {0};
  char err[200];
  CHECK(parse(deep, &db, err, sizeof(err)) != 0 &&
            strstr(err, "nesting") != NULL,
        "deep nesting: '%s'", err);
}

static void geometry(void) {
  CHECK(rg_in_rect(0, 0, 10, 10, 5, 5), "inside");
  CHECK(rg_in_rect(10, 10, 0, 0, 5, 5), "inside, swapped corners");
  CHECK(rg_in_rect(0, 0, 10, 10, 10, 0), "on the border");
  CHECK(!rg_in_rect(0, 0, 10, 10, 11, 5), "outside");
  CHECK(rg_distance(1, 2, 1, 2) == 0.0, "zero distance");
  /* One degree of latitude is about 111.2 km. */
  double d = rg_distance(0, 0, 10000000, 0);
  CHECK(fabs(d - 111195.0) < 1.0, "one degree: %f m", d);
  /* Opposite corners of the int32 range must not overflow. */
  d = rg_distance(-2147483647 - 1, -2147483647 - 1, 2147483647, 2147483647);
  CHECK(d > 0 && d < 2.1e7, "extreme points: %f m", d);
}

int main(int argc, char **argv) {
  good();
  bad();
  geometry();
  if (argc > 1) {
    rg_db db;
    char err[300];
    CHECK(rg_db_load(&db, argv[1], err, sizeof(err)) == 0, "%s", err);
    if (failures == 0) {
      size_t named = 0;
      for (size_t i = 0; i < db.n; i++) {
        named += db.features[i].name[0] != '\0';
      }
      CHECK(db.n >= 20 && named > 0 && named < db.n,
            "shipped db: %zu features, %zu named", db.n, named);
      CHECK(rg_db_find(&db, 409146138, -746188906) != NULL,
            "the client's GetFeature point is in the shipped db");
      rg_db_free(&db);
    }
    rg_db missing;
    CHECK(rg_db_load(&missing, "/nonexistent/db.json", err, sizeof(err)) != 0,
          "missing file accepted");
  }
  printf("%s\n", failures ? "FAILED" : "all route_guide_db checks passed");
  return failures ? 1 : 0;
}
