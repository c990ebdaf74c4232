/*
 * health_internal.h: crpc__ hooks of health.c for crpc's own tests. Never
 * installed.
 */
#ifndef CRPC_HEALTH_INTERNAL_H
#define CRPC_HEALTH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <crpc/health.h>

/* Waits until exactly |n| Watch handlers are running on |h|, or |timeout_ms|
 * passes. Returns 0, or -1 on timeout (with the count in |*now|, which may
 * be NULL). Lets a test know a cancelled watcher has returned. */
int crpc__health_wait_watchers(crpc_health *h, size_t n, int64_t timeout_ms,
                               size_t *now);

#endif /* CRPC_HEALTH_INTERNAL_H */
