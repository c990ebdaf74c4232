/**
 * \file
 * health.h: the standard health service, grpc.health.v1.Health, built in.
 *
 * Kubernetes gRPC probes, grpc_health_probe, Envoy, nginx and gRPC's own
 * client-side health checking ask a server "are you serving?" through
 * /grpc.health.v1.Health/Check (unary) and /Watch (server streaming). A
 * server enables it with one call:
 *
 *   crpc_health *h;
 *   crpc_health_new(&h);                 // "" (the whole server): SERVING
 *   crpc_health_register(h, server);     // before crpc_server_start()
 *   crpc_health_set(h, "helloworld.Greeter", CRPC_HEALTH_SERVING);
 *   ...
 *   crpc_health_shutdown(h);             // watchers see NOT_SERVING, end
 *   crpc_server_shutdown(server, 5000);
 *   crpc_server_free(server);
 *   crpc_health_free(h);
 *
 * Service names are free-form strings; by convention the fully qualified
 * proto service name ("helloworld.Greeter"), and "" for the whole server.
 *
 * What the service answers (as health.proto says):
 *  - Check: the service's status; an unknown service ends NOT_FOUND.
 *  - Watch: the status at once, then again on every change, until the
 *    client cancels or crpc_health_shutdown() is called (the call then
 *    ends UNAVAILABLE, after NOT_SERVING). An unknown service is reported
 *    as CRPC_HEALTH_SERVICE_UNKNOWN, and the call stays open: when the
 *    service is set later, the watcher gets its status. A watcher that
 *    falls behind several quick changes gets the latest status, not every
 *    intermediate one (as in gRPC's own implementations).
 *  - Each Watch occupies one of the server's worker threads (see
 *    crpc_server_opts.max_workers) for as long as it lasts; at most
 *    CRPC_HEALTH_MAX_WATCHERS run at once per crpc_health, and a Watch
 *    beyond that ends RESOURCE_EXHAUSTED at once, so that watchers can
 *    never take every worker.
 */
#ifndef CRPC_HEALTH_H
#define CRPC_HEALTH_H

#include <crpc/common.h>
#include <crpc/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Watch calls one crpc_health serves at once; more end RESOURCE_EXHAUSTED. */
#define CRPC_HEALTH_MAX_WATCHERS 64

/** A health service's state: the status of every service it knows. The
 * details of this structure are hidden. */
typedef struct crpc_health crpc_health;

/** The serving statuses; the values are health.proto's ServingStatus. */
typedef enum crpc_health_status {
  CRPC_HEALTH_UNKNOWN = 0,
  CRPC_HEALTH_SERVING = 1,
  CRPC_HEALTH_NOT_SERVING = 2,
  /* Reported to watchers of a service the server does not know. Given to
   * crpc_health_set(), it forgets the service: Check answers NOT_FOUND. */
  CRPC_HEALTH_SERVICE_UNKNOWN = 3
} crpc_health_status;

/**
 * Creates a health service that knows one service, "" (the whole server),
 * as CRPC_HEALTH_SERVING.
 *
 * Returns 0, CRPC_EINVAL (|out| NULL) or CRPC_ENOMEM. On error |*out| is
 * untouched.
 *
 * Thread safety: any thread.
 */
CRPC_API int crpc_health_new(crpc_health **out);

/**
 * Frees |h|. Call it after the servers it is registered on have been shut
 * down (crpc_server_shutdown() or crpc_server_free()): their handlers use
 * |h| until then. If Watch handlers are still running, it shuts |h| down
 * first and waits for them to return. NULL-safe.
 *
 * Thread safety: any thread, once no other thread uses |h|.
 */
CRPC_API void crpc_health_free(crpc_health *h);

/**
 * Registers /grpc.health.v1.Health/Check (run on the reactor: it never
 * blocks) and /grpc.health.v1.Health/Watch on |s|, with |h| as their
 * state. Before crpc_server_start(). One crpc_health may serve several
 * servers.
 *
 * Returns 0, CRPC_EINVAL (|h| or |s| NULL), CRPC_EEXIST (a health service
 * is already registered on |s|), CRPC_ESTATE (|s| already started) or
 * CRPC_ENOMEM. If Watch cannot be registered after Check was, Check stays
 * registered; such a server is best freed.
 *
 * Thread safety: the thread that sets |s| up.
 */
CRPC_API int crpc_health_register(crpc_health *h, crpc_server *s);

/**
 * Sets the status of |service| ("" for the whole server; copied), adding
 * the service if it is new. CRPC_HEALTH_SERVICE_UNKNOWN removes it (Check
 * then answers NOT_FOUND). Watchers of |service| are woken and sent the new
 * status if it differs from the last one they sent.
 *
 * Returns 0, CRPC_EINVAL (|h| or |service| NULL, or |st| not one of the
 * enum's values), CRPC_ENOMEM or CRPC_ECLOSED (after
 * crpc_health_shutdown(): the change is ignored).
 *
 * Thread safety: any thread, concurrently with the server's handlers; it
 * takes a mutex briefly and never waits for watchers.
 */
CRPC_API int crpc_health_set(crpc_health *h, const char *service,
                             crpc_health_status st);

/**
 * Marks every known service NOT_SERVING, sends that to every watcher and
 * then ends their Watch calls with UNAVAILABLE; later crpc_health_set()
 * calls are ignored, Check keeps answering (NOT_SERVING) and a new Watch
 * gets the status and ends at once. Call it before crpc_server_shutdown(),
 * so that open Watch calls do not hold the shutdown's grace period, and so
 * that load balancers learn the server is going away. Idempotent; it does
 * not wait for the watchers to return. NULL-safe.
 *
 * Thread safety: any thread.
 */
CRPC_API void crpc_health_shutdown(crpc_health *h);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_HEALTH_H */
