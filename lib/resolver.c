/*
 * resolver.c: STUB of the resolver interface (resolver.h) so the channel
 * can be built against it: resolves with blocking getaddrinfo inside a
 * posted task. Replaced by the c-ares resolver (resolver_dns.c) and the
 * address-list and custom resolvers.
 */
#include "resolver.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct crpc__resolver {
  crpc__resolver_args a;
  crpc_mem mem;
  char *target;
  crpc__task task;
  bool queued;
  bool freed;
  crpc__addr addrs[16];
};

int crpc__resolver_new(crpc__resolver **out, const crpc__resolver_args *a) {
  crpc_mem mem = *a->mem;
  crpc__addr probe[1];
  int rv = crpc__resolve(a->target, false, probe, 1, NULL, &mem);
  if (rv == CRPC_ETARGET || rv == CRPC_ENOMEM)
    return rv;
  crpc__resolver *r = crpc__calloc(&mem, 1, sizeof *r);
  if (!r)
    return CRPC_ENOMEM;
  r->mem = mem;
  r->a = *a;
  r->target = crpc__strdup(&r->mem, a->target);
  if (!r->target) {
    crpc__free(&mem, r);
    return CRPC_ENOMEM;
  }
  r->a.target = r->target;
  r->a.mem = &r->mem;
  *out = r;
  return 0;
}

static void run(void *arg) {
  crpc__resolver *r = arg;
  r->queued = false;
  if (r->freed) {
    crpc_mem mem = r->mem;
    crpc__free(&mem, r->target);
    crpc__free(&mem, r);
    return;
  }
  int n = crpc__resolve(r->target, false, r->addrs, 16, NULL, &r->mem);
  crpc__resolution res = {0};
  if (n > 0) {
    res.addrs = r->addrs;
    res.naddrs = (size_t)n;
  } else {
    res.error = "cannot resolve the target";
  }
  r->a.cb(r->a.owner, &res);
}

void crpc__resolver_request(crpc__resolver *r) {
  if (r->queued)
    return;
  r->queued = true;
  r->task.fn = run;
  r->task.arg = r;
  r->task.heap = false;
  crpc__loop_post_task(r->a.loop, &r->task);
}

void crpc__resolver_free(crpc__resolver *r) {
  if (!r)
    return;
  if (r->queued) { /* the task frees it */
    r->freed = true;
    return;
  }
  crpc_mem mem = r->mem;
  crpc__free(&mem, r->target);
  crpc__free(&mem, r);
}

int crpc__resolver_set_addresses(crpc__resolver *r, const char *const *addrs,
                                 size_t n, const char *error) {
  (void)r;
  (void)addrs;
  (void)n;
  (void)error;
  return CRPC_EINVAL; /* stub: no custom resolvers yet */
}
