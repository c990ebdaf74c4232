/*
 * route_guide_server.c: gRPC's RouteGuide service in crpc, one handler per
 * kind of RPC.
 *
 *   route-guide-server [--port=N] [--host=ADDR] [--db=FILE]
 *                      [--reflection=BOOL] [--metrics_file=PATH]
 *                      [--access_log]
 *
 * Besides RouteGuide it serves grpc.health.v1.Health and, unless
 * --reflection=false, server reflection (v1 and v1alpha).
 *
 * Listens on 127.0.0.1:50051 by default (--port=0: any free port), prints
 * "crpc route_guide server listening on HOST:PORT" and stops cleanly on
 * SIGINT or SIGTERM. --metrics_file=PATH rewrites PATH every second with
 * the gRPC metrics (Prometheus text format); --access_log writes one line
 * per call to stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <crpc/crpc.h>

#include "metrics_file.h"

#include "route_guide.crpc.h"
#include "route_guide_db.h"

#ifndef ROUTE_GUIDE_DEFAULT_DB
#define ROUTE_GUIDE_DEFAULT_DB "route_guide_db.json"
#endif

/* GetFeature: the feature at a point, or an unnamed one. */
static crpc_code get_feature(crpc_call *call, const Routeguide__Point *req,
                             Routeguide__Feature *resp, void *user_data) {
  const rg_db *db = user_data;
  const rg_feature *f = rg_db_find(db, req->latitude, req->longitude);
  Routeguide__Point *loc = crpc_call_arena_alloc(call, sizeof(*loc));
  if (loc == NULL) {
    return CRPC_RESOURCE_EXHAUSTED;
  }
  routeguide__point__init(loc);
  loc->latitude = req->latitude;
  loc->longitude = req->longitude;
  /* The database outlives every call, so the reply may point into it. */
  resp->name = f != NULL ? f->name : "";
  resp->location = loc;
  return CRPC_OK;
}

static void corners(const Routeguide__Rectangle *r, int32_t c[4]) {
  c[0] = r->lo != NULL ? r->lo->latitude : 0;
  c[1] = r->lo != NULL ? r->lo->longitude : 0;
  c[2] = r->hi != NULL ? r->hi->latitude : 0;
  c[3] = r->hi != NULL ? r->hi->longitude : 0;
}

/* ListFeatures: every named feature inside the rectangle. */
static crpc_code list_features(crpc_call *call,
                               const Routeguide__Rectangle *req,
                               void *user_data) {
  const rg_db *db = user_data;
  int32_t c[4];
  corners(req, c);
  for (size_t i = 0; i < db->n; i++) {
    const rg_feature *f = &db->features[i];
    if (f->name[0] == '\0' ||
        !rg_in_rect(c[0], c[1], c[2], c[3], f->latitude, f->longitude)) {
      continue;
    }
    Routeguide__Point loc = ROUTEGUIDE__POINT__INIT;
    loc.latitude = f->latitude;
    loc.longitude = f->longitude;
    Routeguide__Feature out = ROUTEGUIDE__FEATURE__INIT;
    out.name = f->name;
    out.location = &loc;
    /* Written messages are packed at once: stack messages are fine. */
    if (!routeguide__route_guide__list_features__server_write(call, &out)) {
      return CRPC_CANCELLED; /* the client went away */
    }
  }
  return CRPC_OK;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* RecordRoute: counts the points, the features passed and the distance. */
static crpc_code record_route(crpc_call *call, Routeguide__RouteSummary *resp,
                              void *user_data) {
  const rg_db *db = user_data;
  double start = now_s();
  double distance = 0;
  int32_t points = 0, features = 0;
  bool have_prev = false;
  int32_t prev_lat = 0, prev_lon = 0;
  Routeguide__Point *p;
  while (routeguide__route_guide__record_route__server_read(call, &p)) {
    points++;
    const rg_feature *f = rg_db_find(db, p->latitude, p->longitude);
    if (f != NULL && f->name[0] != '\0') {
      features++;
    }
    if (have_prev) {
      distance += rg_distance(prev_lat, prev_lon, p->latitude, p->longitude);
    }
    have_prev = true;
    prev_lat = p->latitude;
    prev_lon = p->longitude;
    routeguide__point__free_unpacked(p, NULL);
  }
  if (crpc_call_is_cancelled(call)) {
    return CRPC_CANCELLED;
  }
  resp->point_count = points;
  resp->feature_count = features;
  resp->distance = (int32_t)distance;
  resp->elapsed_time = (int32_t)(now_s() - start);
  return CRPC_OK;
}

/* A note RouteChat has seen, copied out of its request. */
typedef struct note {
  int32_t latitude, longitude;
  char *message;
} note;

/* RouteChat: answers each note with the earlier notes at its location
 * (within this call, as gRPC's Python example does). */
static crpc_code route_chat(crpc_call *call, void *user_data) {
  note *notes = NULL;
  size_t n = 0, cap = 0;
  crpc_code code = CRPC_OK;
  Routeguide__RouteNote *in;
  while (routeguide__route_guide__route_chat__server_read(call, &in)) {
    int32_t lat = in->location != NULL ? in->location->latitude : 0;
    int32_t lon = in->location != NULL ? in->location->longitude : 0;
    for (size_t i = 0; i < n && code == CRPC_OK; i++) {
      if (notes[i].latitude != lat || notes[i].longitude != lon) {
        continue;
      }
      Routeguide__Point loc = ROUTEGUIDE__POINT__INIT;
      loc.latitude = lat;
      loc.longitude = lon;
      Routeguide__RouteNote out = ROUTEGUIDE__ROUTE_NOTE__INIT;
      out.location = &loc;
      out.message = notes[i].message;
      if (!routeguide__route_guide__route_chat__server_write(call, &out)) {
        code = CRPC_CANCELLED;
      }
    }
    if (code == CRPC_OK && n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      note *nn = realloc(notes, ncap * sizeof(*nn));
      if (nn == NULL) {
        code = CRPC_RESOURCE_EXHAUSTED;
      } else {
        notes = nn;
        cap = ncap;
      }
    }
    if (code == CRPC_OK) {
      notes[n].latitude = lat;
      notes[n].longitude = lon;
      notes[n].message = strdup(in->message != NULL ? in->message : "");
      if (notes[n].message == NULL) {
        code = CRPC_RESOURCE_EXHAUSTED;
      } else {
        n++;
      }
    }
    routeguide__route_note__free_unpacked(in, NULL);
    if (code != CRPC_OK) {
      break;
    }
  }
  if (code == CRPC_OK && crpc_call_is_cancelled(call)) {
    code = CRPC_CANCELLED;
  }
  for (size_t i = 0; i < n; i++) {
    free(notes[i].message);
  }
  free(notes);
  return code;
}

static int parse_port(const char *s, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 65535) {
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* "true"/"1" or "false"/"0". */
static int parse_bool(const char *s, bool *out) {
  if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
    *out = true;
  else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
    *out = false;
  else
    return -1;
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: route-guide-server [--port=N] [--host=ADDR] [--db=FILE] "
          "[--reflection=BOOL] [--metrics_file=PATH] [--access_log]\n"
          "  --port=N     port to listen on (default 50051, 0: any free)\n"
          "  --host=ADDR  address to bind (default 127.0.0.1)\n"
          "  --db=FILE    feature database (default %s)\n"
          "  --reflection=true|false  serve server reflection (default "
          "true)\n"
          "  --metrics_file=PATH  rewrite PATH every second with the "
          "metrics\n"
          "  --access_log  one line per call to stderr\n",
          ROUTE_GUIDE_DEFAULT_DB);
}

int main(int argc, char **argv) {
  int port = 50051;
  const char *host = "127.0.0.1";
  const char *db_path = ROUTE_GUIDE_DEFAULT_DB;
  bool reflection = true;
  const char *metrics_path = NULL;
  bool access_log = false;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--port=", 7) == 0) {
      if (parse_port(argv[i] + 7, &port) != 0) {
        fprintf(stderr, "bad port: %s\n", argv[i] + 7);
        return 2;
      }
    } else if (strncmp(argv[i], "--host=", 7) == 0) {
      host = argv[i] + 7;
    } else if (strncmp(argv[i], "--db=", 5) == 0) {
      db_path = argv[i] + 5;
    } else if (strncmp(argv[i], "--reflection=", 13) == 0) {
      if (parse_bool(argv[i] + 13, &reflection) != 0) {
        fprintf(stderr, "bad --reflection: %s\n", argv[i] + 13);
        return 2;
      }
    } else if (strncmp(argv[i], "--metrics_file=", 15) == 0 &&
               argv[i][15]) {
      metrics_path = argv[i] + 15;
    } else if (strcmp(argv[i], "--access_log") == 0 ||
               strcmp(argv[i], "--access_log=true") == 0) {
      access_log = true;
    } else if (strcmp(argv[i], "--access_log=false") == 0) {
      access_log = false;
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
  fprintf(stderr, "route-guide-server: %zu features from %s\n", db.n, db_path);

  /* Stop signals are taken by sigwait() only (threads inherit the mask). */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  crpc_server *server = NULL;
  crpc_health *health = NULL;
  crpc_metrics *metrics = NULL;
  metrics_file *mfile = NULL;
  int rv = metrics_path ? crpc_metrics_new(&metrics, NULL) : 0;
  crpc_server_opts opts = {.metrics = metrics};
  if (rv == 0)
    rv = crpc_server_new(&server, &opts);
  if (rv == 0 && access_log)
    rv = crpc_server_set_access_log(server, crpc_access_log_stderr, NULL);
  if (rv != 0) {
    fprintf(stderr, "crpc_server_new: %s\n", crpc_strerror(rv));
    crpc_server_free(server);
    crpc_metrics_free(metrics);
    rg_db_free(&db);
    return 1;
  }
  const Routeguide__RouteGuide_CrpcHandlers handlers = {
      .get_feature = get_feature,
      .list_features = list_features,
      .record_route = record_route,
      .route_chat = route_chat,
  };
  rv = routeguide__route_guide__crpc_register(server, &handlers, &db);
  if (rv == 0)
    rv = crpc_health_new(&health);
  if (rv == 0)
    rv = crpc_health_register(health, server);
  if (rv == 0)
    rv = crpc_health_set(health, "routeguide.RouteGuide", CRPC_HEALTH_SERVING);
  if (rv == 0 && reflection)
    rv = crpc_server_enable_reflection(server);
  if (rv != 0) {
    fprintf(stderr, "register: %s\n", crpc_strerror(rv));
    goto fail;
  }
  char addr[300];
  bool v6 = strchr(host, ':') != NULL && host[0] != '[';
  snprintf(addr, sizeof(addr), v6 ? "[%s]:%d" : "%s:%d", host, port);
  rv = crpc_server_listen(server, addr, NULL, &port);
  if (rv != 0) {
    fprintf(stderr, "cannot listen on %s: %s\n", addr, crpc_strerror(rv));
    goto fail;
  }
  rv = crpc_server_start(server);
  if (rv != 0) {
    fprintf(stderr, "crpc_server_start: %s\n", crpc_strerror(rv));
    goto fail;
  }
  if (metrics && metrics_file_start(&mfile, metrics, metrics_path) != 0)
    goto fail;
  printf(v6 ? "crpc route_guide server listening on [%s]:%d\n"
            : "crpc route_guide server listening on %s:%d\n",
         host, port);
  fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  fprintf(stderr, "route-guide-server: %s, shutting down\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM");
  crpc_health_shutdown(health);
  crpc_server_shutdown(server, 5000);
  metrics_file_stop(mfile); /* last write: every call is in */
  crpc_server_free(server);
  crpc_health_free(health);
  crpc_metrics_free(metrics);
  rg_db_free(&db);
  return 0;

fail:
  crpc_server_free(server);
  crpc_health_free(health);
  crpc_metrics_free(metrics);
  rg_db_free(&db);
  return 1;
}
