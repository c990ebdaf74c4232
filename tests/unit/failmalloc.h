/*
 * failmalloc.h: an instrumented allocator for tests (nghttp2's failmalloc,
 * curl's torture mode). It counts allocations, fails the Nth one on
 * request, and tracks live and peak bytes so tests can check for leaks and
 * bounded memory.
 *
 * Two ways in:
 * - failmalloc_mem(&fm) builds a crpc_mem for code that takes one;
 * - FAILMALLOC_WRAP_LIBC, defined before `#include "../../lib/x.c"`, routes
 *   that file's malloc/calloc/realloc/free through the global
 *   failmalloc_libc (include every system header x.c needs first).
 *
 * A scenario is rerun with fail_at = 1, 2, ... until a run completes
 * without reaching the failing allocation (failmalloc_run()).
 *
 * The counters are atomic: a crpc server's reactor threads, its workers
 * and client threads allocate through one failmalloc at the same time.
 * The Nth allocation is the Nth to take a ticket, whichever thread it is.
 */
#ifndef CRPC_TEST_FAILMALLOC_H
#define CRPC_TEST_FAILMALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <crpc/common.h>

typedef struct failmalloc {
  atomic_long fail_at;  /* 1-based index of the allocation to fail; 0: never */
  atomic_long count;    /* allocations attempted (malloc, calloc, growing
                           realloc) */
  atomic_long failures; /* allocations refused */
  atomic_size_t live;   /* bytes currently allocated */
  atomic_size_t peak;   /* the most |live| has been */
  atomic_long blocks;   /* blocks currently allocated */
} failmalloc;

/* Each block carries its size in front, aligned for any type. */
typedef union failmalloc_hdr {
  size_t size;
  max_align_t align;
} failmalloc_hdr;

static inline void failmalloc_reset(failmalloc *fm, long fail_at) {
  atomic_store(&fm->count, 0);
  atomic_store(&fm->failures, 0);
  atomic_store(&fm->live, 0);
  atomic_store(&fm->peak, 0);
  atomic_store(&fm->blocks, 0);
  atomic_store(&fm->fail_at, fail_at);
}

/* Counts one allocation; false when this one is to fail. */
static inline bool failmalloc_tick(failmalloc *fm) {
  long n = atomic_fetch_add(&fm->count, 1) + 1;
  long at = atomic_load(&fm->fail_at);
  if (at != 0 && n == at) {
    atomic_fetch_add(&fm->failures, 1);
    return false;
  }
  return true;
}

static inline void failmalloc_account(failmalloc *fm, size_t add,
                                      size_t sub) {
  size_t live, peak;
  if (add < sub) {
    atomic_fetch_sub(&fm->live, sub - add);
    return;
  }
  live = atomic_fetch_add(&fm->live, add - sub) + (add - sub);
  peak = atomic_load(&fm->peak);
  while (live > peak && !atomic_compare_exchange_weak(&fm->peak, &peak, live))
    ;
}

static inline void *failmalloc_malloc_in(failmalloc *fm, size_t n) {
  failmalloc_hdr *h;
  if (!failmalloc_tick(fm) || n > SIZE_MAX - sizeof(*h))
    return NULL;
  if ((h = malloc(sizeof(*h) + n)) == NULL)
    return NULL;
  h->size = n;
  atomic_fetch_add(&fm->blocks, 1);
  failmalloc_account(fm, n, 0);
  return h + 1;
}

static inline void failmalloc_free_in(failmalloc *fm, void *p) {
  failmalloc_hdr *h;
  if (p == NULL)
    return;
  h = (failmalloc_hdr *)p - 1;
  atomic_fetch_sub(&fm->blocks, 1);
  failmalloc_account(fm, 0, h->size);
  free(h);
}

static inline void *failmalloc_calloc_in(failmalloc *fm, size_t nmemb,
                                         size_t n) {
  void *p;
  if (n != 0 && nmemb > SIZE_MAX / n)
    return NULL;
  if ((p = failmalloc_malloc_in(fm, nmemb * n)) != NULL)
    memset(p, 0, nmemb * n);
  return p;
}

static inline void *failmalloc_realloc_in(failmalloc *fm, void *p, size_t n) {
  failmalloc_hdr *h, *nh;
  size_t old;
  if (p == NULL)
    return failmalloc_malloc_in(fm, n);
  h = (failmalloc_hdr *)p - 1;
  old = h->size;
  /* Growing can fail in real life; shrinking in practice cannot. */
  if (n > old && !failmalloc_tick(fm))
    return NULL;
  if (n > SIZE_MAX - sizeof(*h) || (nh = realloc(h, sizeof(*h) + n)) == NULL)
    return NULL;
  nh->size = n;
  failmalloc_account(fm, n, old);
  return nh + 1;
}

/* ---- as a crpc_mem ---- */

static inline void *failmalloc_mem_malloc(size_t n, void *ud) {
  return failmalloc_malloc_in(ud, n);
}
static inline void failmalloc_mem_free(void *p, void *ud) {
  failmalloc_free_in(ud, p);
}
static inline void *failmalloc_mem_calloc(size_t nmemb, size_t n, void *ud) {
  return failmalloc_calloc_in(ud, nmemb, n);
}
static inline void *failmalloc_mem_realloc(void *p, size_t n, void *ud) {
  return failmalloc_realloc_in(ud, p, n);
}

static inline crpc_mem failmalloc_mem(failmalloc *fm) {
  crpc_mem m = {fm, failmalloc_mem_malloc, failmalloc_mem_free,
                failmalloc_mem_calloc, failmalloc_mem_realloc};
  return m;
}

/* ---- wrapping a lib/ file's libc calls ---- */

static failmalloc failmalloc_libc;

static inline void *failmalloc_libc_malloc(size_t n) {
  return failmalloc_malloc_in(&failmalloc_libc, n);
}
static inline void *failmalloc_libc_calloc(size_t nmemb, size_t n) {
  return failmalloc_calloc_in(&failmalloc_libc, nmemb, n);
}
static inline void *failmalloc_libc_realloc(void *p, size_t n) {
  return failmalloc_realloc_in(&failmalloc_libc, p, n);
}
static inline void failmalloc_libc_free(void *p) {
  failmalloc_free_in(&failmalloc_libc, p);
}

#ifdef FAILMALLOC_WRAP_LIBC
#define malloc(n) failmalloc_libc_malloc(n)
#define calloc(a, b) failmalloc_libc_calloc(a, b)
#define realloc(p, n) failmalloc_libc_realloc(p, n)
#define free(p) failmalloc_libc_free(p)
#endif

/*
 * Runs |scenario| with the 1st, 2nd, ... allocation of |fm| failing, until
 * a run that never reached the failing allocation. The scenario returns 0
 * on success or a negative error; when an allocation failed it must return
 * an error, and it must have freed everything (checked here). Returns the
 * number of runs, or -1 (with *why set) on a broken contract. Either way
 * |fm| is left counting again with no failure armed.
 */
typedef int (*failmalloc_scenario)(void *arg);

static inline long failmalloc_run(failmalloc *fm, failmalloc_scenario sc,
                                  void *arg, const char **why) {
  long n;
  for (n = 1;; n++) {
    int rv;
    failmalloc_reset(fm, n);
    rv = sc(arg);
    *why = NULL;
    if (fm->blocks != 0 || fm->live != 0)
      *why = "leak after an injected allocation failure";
    else if (fm->failures == 0 && rv != 0)
      *why = "scenario failed without an injected failure";
    else if (fm->failures != 0 && rv == 0)
      *why = "scenario reported success although an allocation failed";
    if (*why != NULL || fm->failures == 0) {
      atomic_store(&fm->fail_at, 0);
      return *why != NULL ? -1 : n;
    }
  }
}

#endif /* CRPC_TEST_FAILMALLOC_H */
