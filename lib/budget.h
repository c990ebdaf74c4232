/*
 * budget.h: a bound on bytes queued toward a peer (issue 11: a client that
 * never reads must not grow the server without bound). Each connection has
 * one, and a server one more over all its connections. Bytes are counted
 * when a message enters a call's send queue and uncounted when it has been
 * handed to HTTP/2 (or dropped). Any thread may add; the counters are
 * atomics, so the hot path takes no lock.
 */
#ifndef CRPC_BUDGET_H
#define CRPC_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct crpc__budget crpc__budget;
struct crpc__budget {
  atomic_size_t used;
  atomic_size_t peak;
  size_t limit;      /* 0: none */
  atomic_bool over;  /* used reached limit since the last drain */
  atomic_uint waiters; /* writers blocked on this budget (or their call's
                          own queue): what the write-stall timer watches */
  /* Called (from any thread, possibly under a call's lock: it must only
   * post work) when |used| falls back under |limit|. */
  void (*on_drained)(crpc__budget *b);
  void *owner;
};

static inline bool crpc__budget_full(const crpc__budget *b) {
  return b->limit && atomic_load(&b->used) >= b->limit;
}

static inline void crpc__budget_add(crpc__budget *b, size_t n) {
  size_t now = atomic_fetch_add(&b->used, n) + n;
  size_t peak = atomic_load(&b->peak);
  while (now > peak && !atomic_compare_exchange_weak(&b->peak, &peak, now))
    ;
  if (b->limit && now >= b->limit)
    atomic_store(&b->over, true);
}

static inline void crpc__budget_sub(crpc__budget *b, size_t n) {
  size_t now = atomic_fetch_sub(&b->used, n) - n;
  if (b->limit && now < b->limit && atomic_load(&b->over) &&
      atomic_exchange(&b->over, false) && b->on_drained)
    b->on_drained(b);
}

#endif
