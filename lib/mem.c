/*
 * mem.c: the allocator hook (nghttp2_mem's shape). Every object that takes a
 * crpc_mem keeps its own copy, so crpc never holds the user's pointer.
 */
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "internal.h"

static void *libc_malloc(size_t n, void *ud) {
  CRPC__UNUSED(ud);
  return malloc(n);
}

static void libc_free(void *p, void *ud) {
  CRPC__UNUSED(ud);
  free(p);
}

static void *libc_calloc(size_t nmemb, size_t n, void *ud) {
  CRPC__UNUSED(ud);
  return calloc(nmemb, n);
}

static void *libc_realloc(void *p, size_t n, void *ud) {
  CRPC__UNUSED(ud);
  return realloc(p, n);
}

static const crpc_mem libc_mem = {NULL, libc_malloc, libc_free, libc_calloc,
                                  libc_realloc};

/*
 * A user allocator must provide malloc, free and realloc: mixing the user's
 * malloc with libc's free (or the reverse) would corrupt both heaps, so an
 * incomplete one is replaced as a whole by libc's. calloc is optional and
 * emulated with malloc + memset.
 */
void crpc__mem_init(crpc_mem *dst, const crpc_mem *user) {
  if (user == NULL || user->malloc == NULL || user->free == NULL ||
      user->realloc == NULL) {
    *dst = libc_mem;
    return;
  }
  *dst = *user;
}

const crpc_mem *crpc__mem_libc(void) { return &libc_mem; }

/* NULL |m| means libc: internal callers need not special-case it. The
 * members are called as (m->malloc)(...) so that a test's malloc macro
 * (failmalloc.h's FAILMALLOC_WRAP_LIBC) leaves them alone. */
static const crpc_mem *mem_or_default(const crpc_mem *m) {
  return m != NULL && m->malloc != NULL ? m : &libc_mem;
}

/*
 * A zero-byte request still gets a unique non-NULL block: malloc(0) may
 * return NULL, which callers would take for out-of-memory.
 */
void *crpc__malloc(const crpc_mem *m, size_t n) {
  m = mem_or_default(m);
  return (m->malloc)(n == 0 ? 1 : n, m->mem_user_data);
}

void *crpc__calloc(const crpc_mem *m, size_t nmemb, size_t n) {
  void *p;
  m = mem_or_default(m);
  /* User callocs are not trusted to check the multiplication. */
  if (n != 0 && nmemb > SIZE_MAX / n)
    return NULL;
  if (nmemb == 0 || n == 0)
    nmemb = n = 1;
  if (m->calloc != NULL)
    return (m->calloc)(nmemb, n, m->mem_user_data);
  p = (m->malloc)(nmemb * n, m->mem_user_data);
  if (p != NULL)
    memset(p, 0, nmemb * n);
  return p;
}

/* Never frees: realloc(p, 0) is "free" on some libcs, not a resize. */
void *crpc__realloc(const crpc_mem *m, void *p, size_t n) {
  m = mem_or_default(m);
  return (m->realloc)(p, n == 0 ? 1 : n, m->mem_user_data);
}

void crpc__free(const crpc_mem *m, void *p) {
  if (p == NULL)
    return;
  m = mem_or_default(m);
  (m->free)(p, m->mem_user_data);
}

char *crpc__strdup(const crpc_mem *m, const char *s) {
  size_t n;
  char *p;
  if (s == NULL)
    return NULL;
  n = strlen(s) + 1;
  p = crpc__malloc(m, n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

char *crpc__strndup(const crpc_mem *m, const char *s, size_t len) {
  char *p;
  if (s == NULL)
    return NULL;
  len = strnlen(s, len);
  if (len == SIZE_MAX || (p = crpc__malloc(m, len + 1)) == NULL)
    return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

/* ---- protobuf-c ---- */

static void *pbc_alloc(void *ud, size_t n) { return crpc__malloc(ud, n); }

static void pbc_free(void *ud, void *p) { crpc__free(ud, p); }

void crpc__mem_pbc(ProtobufCAllocator *out, const crpc_mem *m) {
  out->alloc = pbc_alloc;
  out->free = pbc_free;
  out->allocator_data = (void *)(uintptr_t)m; /* protobuf-c's is not const */
}
