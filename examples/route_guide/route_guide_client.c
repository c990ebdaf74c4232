/*
 * route_guide_client.c: calls each RouteGuide method once, as gRPC's
 * route guide clients do, and prints what comes back.
 *
 *   route-guide-client [--target=HOST:PORT] [--db=FILE] [--seed=N]
 *
 * RecordRoute sends 10 points picked at random (--seed makes the pick
 * repeatable) from the feature database. Exits 0 when every RPC succeeded,
 * 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <crpc/crpc.h>

#include "route_guide.crpc.h"
#include "route_guide_db.h"

#ifndef ROUTE_GUIDE_DEFAULT_DB
#define ROUTE_GUIDE_DEFAULT_DB "route_guide_db.json"
#endif

#define COORD_FACTOR 10000000.0

static void print_failure(const char *rpc, crpc_code code,
                          const crpc_status *st) {
  printf("%s rpc failed: %s: %s\n", rpc, crpc_code_name(code),
         crpc_status_message(st));
}

static bool get_one_feature(crpc_channel *ch, int32_t lat, int32_t lon) {
  Routeguide__Point point = ROUTEGUIDE__POINT__INIT;
  point.latitude = lat;
  point.longitude = lon;
  Routeguide__Feature *feature = NULL;
  crpc_status st = {0};
  crpc_code code = routeguide__route_guide__get_feature__call(ch, NULL, &point,
                                                              &feature, &st);
  if (code != CRPC_OK) {
    print_failure("GetFeature", code, &st);
    crpc_status_clear(&st);
    return false;
  }
  if (feature->location == NULL) {
    printf("Server returns incomplete feature.\n");
    routeguide__feature__free_unpacked(feature, NULL);
    return false;
  }
  if (feature->name[0] != '\0') {
    printf("Found feature called %s at %g, %g\n", feature->name,
           feature->location->latitude / COORD_FACTOR,
           feature->location->longitude / COORD_FACTOR);
  } else {
    printf("Found no feature at %g, %g\n",
           feature->location->latitude / COORD_FACTOR,
           feature->location->longitude / COORD_FACTOR);
  }
  routeguide__feature__free_unpacked(feature, NULL);
  return true;
}

static bool get_feature(crpc_channel *ch) {
  bool ok = get_one_feature(ch, 409146138, -746188906);
  return get_one_feature(ch, 0, 0) && ok;
}

static bool list_features(crpc_channel *ch) {
  Routeguide__Point lo = ROUTEGUIDE__POINT__INIT;
  Routeguide__Point hi = ROUTEGUIDE__POINT__INIT;
  lo.latitude = 400000000;
  lo.longitude = -750000000;
  hi.latitude = 420000000;
  hi.longitude = -730000000;
  Routeguide__Rectangle rect = ROUTEGUIDE__RECTANGLE__INIT;
  rect.lo = &lo;
  rect.hi = &hi;
  printf("Looking for features between 40, -75 and 42, -73\n");

  crpc_call *call = NULL;
  int rv =
      routeguide__route_guide__list_features__start(&call, ch, NULL, &rect);
  if (rv != 0) {
    printf("ListFeatures cannot start: %s\n", crpc_strerror(rv));
    return false;
  }
  Routeguide__Feature *f;
  while (routeguide__route_guide__list_features__read(call, &f)) {
    printf("Found feature called %s at %g, %g\n", f->name,
           f->location != NULL ? f->location->latitude / COORD_FACTOR : 0.0,
           f->location != NULL ? f->location->longitude / COORD_FACTOR : 0.0);
    routeguide__feature__free_unpacked(f, NULL);
  }
  crpc_status st = {0};
  crpc_code code = routeguide__route_guide__list_features__finish(call, &st);
  crpc_call_free(call);
  if (code != CRPC_OK) {
    print_failure("ListFeatures", code, &st);
    crpc_status_clear(&st);
    return false;
  }
  printf("ListFeatures rpc succeeded.\n");
  return true;
}

static bool record_route(crpc_channel *ch, const rg_db *db, unsigned *seed) {
  enum { POINTS = 10 };
  crpc_call *call = NULL;
  int rv = routeguide__route_guide__record_route__start(&call, ch, NULL);
  if (rv != 0) {
    printf("RecordRoute cannot start: %s\n", crpc_strerror(rv));
    return false;
  }
  for (int i = 0; i < POINTS && db->n > 0; i++) {
    /* A small LCG: rand() is not seedable per caller, and the choice
     * only needs to look random. */
    *seed = *seed * 1103515245u + 12345u;
    const rg_feature *f = &db->features[(*seed >> 8) % db->n];
    Routeguide__Point p = ROUTEGUIDE__POINT__INIT;
    p.latitude = f->latitude;
    p.longitude = f->longitude;
    printf("Visiting point %g, %g\n", p.latitude / COORD_FACTOR,
           p.longitude / COORD_FACTOR);
    if (!routeguide__route_guide__record_route__write(call, &p)) {
      break; /* the call ended: finish() says why */
    }
  }
  Routeguide__RouteSummary *sum = NULL;
  crpc_status st = {0};
  crpc_code code =
      routeguide__route_guide__record_route__finish(call, &sum, &st);
  crpc_call_free(call);
  if (code != CRPC_OK) {
    print_failure("RecordRoute", code, &st);
    crpc_status_clear(&st);
    return false;
  }
  printf("Finished trip with %d points\n"
         "Passed %d features\n"
         "Travelled %d meters\n"
         "It took %d seconds\n",
         sum->point_count, sum->feature_count, sum->distance,
         sum->elapsed_time);
  routeguide__route_summary__free_unpacked(sum, NULL);
  return true;
}

static bool route_chat(crpc_channel *ch) {
  static const struct {
    const char *message;
    int32_t lat, lon;
  } notes[] = {{"First message", 0, 0},
               {"Second message", 0, 1},
               {"Third message", 1, 0},
               {"Fourth message", 0, 0}};
  crpc_call *call = NULL;
  int rv = routeguide__route_guide__route_chat__start(&call, ch, NULL);
  if (rv != 0) {
    printf("RouteChat cannot start: %s\n", crpc_strerror(rv));
    return false;
  }
  /* A call is used by one thread at a time: send everything, then read
   * the answers (the notes are small, so flow control never blocks). */
  for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++) {
    Routeguide__Point loc = ROUTEGUIDE__POINT__INIT;
    loc.latitude = notes[i].lat;
    loc.longitude = notes[i].lon;
    Routeguide__RouteNote n = ROUTEGUIDE__ROUTE_NOTE__INIT;
    n.location = &loc;
    n.message = (char *)notes[i].message;
    printf("Sending message %s at %d, %d\n", notes[i].message, notes[i].lat,
           notes[i].lon);
    if (!routeguide__route_guide__route_chat__write(call, &n)) {
      break;
    }
  }
  routeguide__route_guide__route_chat__writes_done(call);
  Routeguide__RouteNote *in;
  while (routeguide__route_guide__route_chat__read(call, &in)) {
    printf("Got message %s at %d, %d\n", in->message,
           in->location != NULL ? in->location->latitude : 0,
           in->location != NULL ? in->location->longitude : 0);
    routeguide__route_note__free_unpacked(in, NULL);
  }
  crpc_status st = {0};
  crpc_code code = routeguide__route_guide__route_chat__finish(call, &st);
  crpc_call_free(call);
  if (code != CRPC_OK) {
    print_failure("RouteChat", code, &st);
    crpc_status_clear(&st);
    return false;
  }
  printf("RouteChat rpc succeeded.\n");
  return true;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: route-guide-client [--target=HOST:PORT] [--db=FILE] "
          "[--seed=N]\n"
          "  --target  server address (default localhost:50051)\n"
          "  --db      feature database (default %s)\n"
          "  --seed    seed for RecordRoute's random points\n",
          ROUTE_GUIDE_DEFAULT_DB);
}

int main(int argc, char **argv) {
  const char *target = "localhost:50051";
  const char *db_path = ROUTE_GUIDE_DEFAULT_DB;
  unsigned seed = (unsigned)time(NULL);
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--target=", 9) == 0) {
      target = argv[i] + 9;
    } else if (strncmp(argv[i], "--db=", 5) == 0) {
      db_path = argv[i] + 5;
    } else if (strncmp(argv[i], "--seed=", 7) == 0) {
      char *end;
      errno = 0;
      unsigned long v = strtoul(argv[i] + 7, &end, 10);
      if (errno != 0 || *end != '\0') {
        fprintf(stderr, "bad seed: %s\n", argv[i] + 7);
        return 2;
      }
      seed = (unsigned)v;
    } else if (strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  rg_db db;
  char err[300];
  if (rg_db_load(&db, db_path, err, sizeof(err)) != 0) {
    fprintf(stderr, "cannot load the feature database: %s\n", err);
    return 1;
  }
  crpc_channel *ch = NULL;
  int rv = crpc_channel_new(&ch, target, NULL);
  if (rv != 0) {
    fprintf(stderr, "cannot create a channel to %s: %s\n", target,
            crpc_strerror(rv));
    rg_db_free(&db);
    return 1;
  }

  bool ok = true;
  printf("-------------- GetFeature --------------\n");
  ok = get_feature(ch) && ok;
  printf("-------------- ListFeatures --------------\n");
  ok = list_features(ch) && ok;
  printf("-------------- RecordRoute --------------\n");
  ok = record_route(ch, &db, &seed) && ok;
  printf("-------------- RouteChat --------------\n");
  ok = route_chat(ch) && ok;

  crpc_channel_free(ch);
  rg_db_free(&db);
  return ok ? 0 : 1;
}
