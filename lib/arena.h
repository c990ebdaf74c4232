/* arena.h: a bump allocator that frees everything at once (a call's life). */
#ifndef CRPC_ARENA_H
#define CRPC_ARENA_H

#include <stddef.h>

#include <crpc/common.h>

typedef struct crpc__arena_chunk crpc__arena_chunk;
typedef struct crpc__arena {
  crpc__arena_chunk *chunks;
  size_t used, cap;     /* in the newest chunk */
  const crpc_mem *mem;  /* the owner's allocator; NULL: libc */
} crpc__arena;

void *crpc__arena_alloc(crpc__arena *a, size_t n);
void crpc__arena_free(crpc__arena *a);

#endif
