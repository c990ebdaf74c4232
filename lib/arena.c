/* arena.c: chunks of 1 KiB and up; a large request gets a chunk of its own. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

struct crpc__arena_chunk {
  crpc__arena_chunk *next;
  max_align_t data[];
};

#define ALIGN(n) (((n) + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1))

void *crpc__arena_alloc(crpc__arena *a, size_t n) {
  if (n > SIZE_MAX / 2)
    return NULL;
  n = ALIGN(n ? n : 1);
  if (!a->chunks || a->cap - a->used < n) {
    size_t cap = n > 1024 ? n : 1024;
    crpc__arena_chunk *c = crpc__malloc(a->mem, sizeof *c + cap);
    if (!c)
      return NULL;
    if (a->chunks && n > 512 && a->cap - a->used > 64) {
      /* keep bump-allocating from the current chunk; hide the big one */
      c->next = a->chunks->next;
      a->chunks->next = c;
      return c->data;
    }
    c->next = a->chunks;
    a->chunks = c;
    a->used = 0;
    a->cap = cap;
  }
  void *p = (char *)a->chunks->data + a->used;
  a->used += n;
  return p;
}

void crpc__arena_free(crpc__arena *a) {
  crpc__arena_chunk *c = a->chunks;
  while (c) {
    crpc__arena_chunk *n = c->next;
    crpc__free(a->mem, c);
    c = n;
  }
  a->chunks = NULL;
  a->used = a->cap = 0;
}
