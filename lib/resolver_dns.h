/*
 * resolver_dns.h: DNS lookups driven by a crpc loop (c-ares), for the
 * dns: resolver (resolver.c). Never installed.
 */
#ifndef CRPC_RESOLVER_DNS_H
#define CRPC_RESOLVER_DNS_H

#include <stddef.h>

#include "resolver.h"

typedef struct crpc__dns crpc__dns;

/* [loop] A lookup's answer: |addrs| (lent, port set) or |error|. */
typedef void (*crpc__dns_cb)(void *ud, const crpc__addr *addrs, size_t n,
                             const char *error);

/* |server|: "ip[:port]" of the DNS server to ask, NULL: the system's
 * (/etc/resolv.conf). Any thread, before the loop uses it. Returns 0,
 * CRPC_ETARGET (a bad server), CRPC_ENOMEM or CRPC_ESYS. */
int crpc__dns_new(crpc__dns **out, crpc__loop *loop, const char *server,
                  const crpc_mem *mem, crpc__dns_cb cb, void *ud);
/* [loop] Looks |host| up (AAAA and A); the answer comes through the
 * callback, possibly before this returns (a number, /etc/hosts); merged
 * into the outstanding one if any. Returns 0 or CRPC_ENOMEM. */
int crpc__dns_lookup(crpc__dns *d, const char *host, int port);
/* [loop] Cancels: no callback after it returns. NULL-safe. */
void crpc__dns_free(crpc__dns *d);

#endif
