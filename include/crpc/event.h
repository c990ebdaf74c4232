/*
 * event.h: crpc on a libevent 2.1 event_base (library crpc-event, CMake
 * target crpc::event, pkg-config crpc-event). Servers and channels created
 * on crpc_event_loop() run inside the program's event_base: crpc starts no
 * thread for them.
 *
 *   struct event_base *base = event_base_new();
 *   crpc_event *ce;
 *   crpc_event_new(&ce, base, NULL);
 *   crpc_server_opts so = {.loop = crpc_event_loop(ce)};
 *   ... crpc_server_new(&srv, &so) ...; event_base_dispatch(base);
 *
 * Threads: the event_base's thread, for every function here.
 */
#ifndef CRPC_EVENT_H
#define CRPC_EVENT_H

#include <event2/event.h>

#include <crpc/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The adapter between one event_base and one crpc_loop (opaque). */
typedef struct crpc_event crpc_event;

/**
 * Creates a crpc_loop driven by |base| (an event per descriptor crpc
 * watches, one timer event). |mem| (may be NULL: libc) is copied and used
 * for the loop; the adapter's own events use libevent's allocator. Returns 0, CRPC_EINVAL, CRPC_ENOMEM or
 * CRPC_ESYS.
 */
CRPC_API int crpc_event_new(crpc_event **out, struct event_base *base,
                            const crpc_mem *mem);

/** The crpc_loop to create servers and channels on. Owned by |ce|. */
CRPC_API crpc_loop *crpc_event_loop(crpc_event *ce);

/** Frees the crpc_loop and the adapter's events (at once). Free the
 * servers and channels on the loop first. NULL-safe. */
CRPC_API void crpc_event_free(crpc_event *ce);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_EVENT_H */
