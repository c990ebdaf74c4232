/*
 * docs/generated-api.md: the generated API of each RPC kind, client and
 * server side, on proto/route_guide.proto. Compiled by ctest's build (not
 * run: examples/route_guide runs the same calls against real peers).
 */
#include <stdio.h>

#include "route_guide.crpc.h"

void print_feature(const Routeguide__Feature *f);
void print_feature(const Routeguide__Feature *f) {
  printf("%s\n", f->name);
}

// [unary-client]
static void unary(crpc_channel *ch) {
  Routeguide__Point p = ROUTEGUIDE__POINT__INIT;
  p.latitude = 409146138;
  p.longitude = -746188906;
  Routeguide__Feature *f = NULL;
  crpc_status st = {0};
  if (routeguide__route_guide__get_feature__call(ch, NULL, &p, &f, &st) ==
      CRPC_OK) {
    print_feature(f);
    routeguide__feature__free_unpacked(f, NULL); /* yours */
  }
  crpc_status_clear(&st);
}
// [unary-client]

// [unary-async]
static void on_feature(crpc_call *call, const crpc_status *st,
                       const Routeguide__Feature *f, void *user_data) {
  /* On a crpc reactor thread: do not block. |f| and |st| are borrowed. */
  (void)call;
  (void)user_data;
  if (st->code == CRPC_OK)
    print_feature(f);
}

static int unary_async(crpc_channel *ch, const Routeguide__Point *p) {
  /* 0: on_feature runs exactly once, later; < 0: it never runs. */
  return routeguide__route_guide__get_feature__call_async(ch, NULL, p,
                                                         on_feature, NULL);
}
// [unary-async]

// [server-streaming-client]
static crpc_code list(crpc_channel *ch, const Routeguide__Rectangle *rect) {
  crpc_call *call;
  int rv =
      routeguide__route_guide__list_features__start(&call, ch, NULL, rect);
  if (rv != 0)
    return CRPC_INTERNAL; /* no call was started: nothing to free */
  Routeguide__Feature *f;
  while (routeguide__route_guide__list_features__read(call, &f)) {
    print_feature(f);
    routeguide__feature__free_unpacked(f, NULL);
  }
  crpc_status st = {0};
  crpc_code code = routeguide__route_guide__list_features__finish(call, &st);
  crpc_status_clear(&st);
  crpc_call_free(call);
  return code;
}
// [server-streaming-client]

// [client-streaming-client]
static crpc_code record(crpc_channel *ch, const Routeguide__Point *pts,
                        size_t n) {
  crpc_call *call;
  if (routeguide__route_guide__record_route__start(&call, ch, NULL) != 0)
    return CRPC_INTERNAL;
  for (size_t i = 0; i < n; i++)
    if (!routeguide__route_guide__record_route__write(call, &pts[i]))
      break; /* the call ended: finish says why */
  Routeguide__RouteSummary *sum = NULL;
  crpc_status st = {0};
  crpc_code code =
      routeguide__route_guide__record_route__finish(call, &sum, &st);
  if (code == CRPC_OK) {
    printf("%d points\n", sum->point_count);
    routeguide__route_summary__free_unpacked(sum, NULL);
  }
  crpc_status_clear(&st);
  crpc_call_free(call);
  return code;
}
// [client-streaming-client]

// [bidi-client]
static crpc_code chat(crpc_channel *ch, const Routeguide__RouteNote *notes,
                      size_t n) {
  crpc_call *call;
  if (routeguide__route_guide__route_chat__start(&call, ch, NULL) != 0)
    return CRPC_INTERNAL;
  for (size_t i = 0; i < n; i++)
    routeguide__route_guide__route_chat__write(call, &notes[i]);
  routeguide__route_guide__route_chat__writes_done(call);
  Routeguide__RouteNote *in;
  while (routeguide__route_guide__route_chat__read(call, &in)) {
    printf("%s\n", in->message);
    routeguide__route_note__free_unpacked(in, NULL);
  }
  crpc_code code = routeguide__route_guide__route_chat__finish(call, NULL);
  crpc_call_free(call);
  return code;
}
// [bidi-client]

// [server-handlers]
static crpc_code get_feature(crpc_call *call, const Routeguide__Point *req,
                             Routeguide__Feature *resp, void *user_data) {
  (void)call;
  (void)user_data;
  resp->name = ""; /* static data or crpc_call_arena_alloc() memory */
  resp->location = (Routeguide__Point *)req; /* borrowed until packed */
  return CRPC_OK;
}

static crpc_code list_features(crpc_call *call,
                               const Routeguide__Rectangle *req,
                               void *user_data) {
  (void)req;
  (void)user_data;
  Routeguide__Feature f = ROUTEGUIDE__FEATURE__INIT;
  f.name = "one";
  if (!routeguide__route_guide__list_features__server_write(call, &f))
    return CRPC_CANCELLED; /* the client went away */
  return CRPC_OK;
}

static crpc_code record_route(crpc_call *call, Routeguide__RouteSummary *resp,
                              void *user_data) {
  (void)user_data;
  Routeguide__Point *p;
  while (routeguide__route_guide__record_route__server_read(call, &p)) {
    resp->point_count++;
    routeguide__point__free_unpacked(p, NULL);
  }
  return CRPC_OK;
}

static crpc_code route_chat(crpc_call *call, void *user_data) {
  (void)user_data;
  Routeguide__RouteNote *n;
  while (routeguide__route_guide__route_chat__server_read(call, &n)) {
    bool ok = routeguide__route_guide__route_chat__server_write(call, n);
    routeguide__route_note__free_unpacked(n, NULL);
    if (!ok)
      return CRPC_CANCELLED;
  }
  return CRPC_OK;
}

static int serve(crpc_server *srv) {
  Routeguide__RouteGuide_CrpcHandlers h = {
      .get_feature = get_feature,
      .list_features = list_features,
      .record_route = record_route,
      .route_chat = route_chat, /* a NULL member answers UNIMPLEMENTED */
  };
  return routeguide__route_guide__crpc_register(srv, &h, NULL); /* copied */
}
// [server-handlers]

int docs_generated_api(crpc_channel *ch, crpc_server *srv);
int docs_generated_api(crpc_channel *ch, crpc_server *srv) {
  Routeguide__Point p = ROUTEGUIDE__POINT__INIT;
  Routeguide__Rectangle r = ROUTEGUIDE__RECTANGLE__INIT;
  Routeguide__RouteNote note = ROUTEGUIDE__ROUTE_NOTE__INIT;
  unary(ch);
  return unary_async(ch, &p) + (int)list(ch, &r) + (int)record(ch, &p, 1) +
         (int)chat(ch, &note, 1) + serve(srv);
}

int main(void) { return 0; }
