/*
 * resolver.h: turns a channel's target into addresses without blocking
 * the loop: "dns:" names (c-ares), "ipv4:"/"ipv6:" lists, "unix:" paths,
 * or the program's own crpc_resolver. A channel owns one; the LB policy
 * asks it for a resolution and gets the result through a callback on the
 * channel's loop. Never installed.
 */
#ifndef CRPC_RESOLVER_INTERNAL_H
#define CRPC_RESOLVER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <crpc/resolver.h>

#include "loop.h"
#include "sock.h"

/* The most addresses a resolution keeps (a DNS answer may hold more). */
#define CRPC__RESOLVER_MAX_ADDRS 1024
/* gRPC's default minimum time between two resolutions of a name. */
#define CRPC__RESOLVER_MIN_INTERVAL_MS 30000

typedef struct crpc__resolver crpc__resolver;

/* One resolution's outcome, lent for the callback's duration. On success
 * |naddrs| > 0 and |error| is NULL; on failure |naddrs| is 0 and |error|
 * says why in words that name the target ("dns: resolving example.com:
 * no address (NXDOMAIN)"). */
typedef struct crpc__resolution {
  const crpc__addr *addrs;
  size_t naddrs;
  const char *error;
} crpc__resolution;

/* [loop] never from inside crpc__resolver_request(). */
typedef void (*crpc__resolver_cb)(void *owner, const crpc__resolution *res);

typedef struct crpc__resolver_args {
  crpc__loop *loop;
  const char *target;
  const crpc_mem *mem;            /* everything the resolver makes */
  const crpc_resolver *custom;    /* NULL: by the target's scheme */
  struct crpc_channel *channel;   /* passed to custom->resolve */
  int64_t min_interval_ms;        /* 0: CRPC__RESOLVER_MIN_INTERVAL_MS */
  crpc__resolver_cb cb;
  void *owner;
} crpc__resolver_args;

/* Any thread, before the loop sees the resolver (crpc_channel_new). Checks
 * the target's syntax. Returns 0, CRPC_ETARGET (malformed: a bad entry in
 * an ipv4: list, a bad port, an unknown scheme) or CRPC_ENOMEM. */
int crpc__resolver_new(crpc__resolver **out, const crpc__resolver_args *a);

/* [loop] Asks for a resolution. The first runs at once; a later one no
 * sooner than min_interval_ms after the previous one started (it is then
 * scheduled, not dropped); requests while one is pending are merged. The
 * result arrives through |cb|, never inside this call. */
void crpc__resolver_request(crpc__resolver *r);

/* [loop] Cancels what is in flight; no callback runs after it returns. */
void crpc__resolver_free(crpc__resolver *r);

/* Any thread (crpc_channel_set_addresses): hands the custom resolver's
 * answer to the loop. Same returns as crpc_channel_set_addresses(). */
int crpc__resolver_set_addresses(crpc__resolver *r, const char *const *addrs,
                                 size_t n, const char *error);

#endif
