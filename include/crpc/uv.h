/*
 * uv.h: crpc on a libuv loop (library crpc-uv, CMake target crpc::uv,
 * pkg-config crpc-uv). Servers and channels created on crpc_uv_loop() run
 * inside the program's uv_loop_t: crpc starts no thread for them.
 *
 *   uv_loop_t *uv = uv_default_loop();
 *   crpc_uv *cu;
 *   crpc_uv_new(&cu, uv, NULL);
 *   crpc_server_opts so = {.loop = crpc_uv_loop(cu)};
 *   ... crpc_server_new(&srv, &so) ...; uv_run(uv, UV_RUN_DEFAULT);
 *
 * Threads: the uv loop's thread, for every function here.
 */
#ifndef CRPC_UV_H
#define CRPC_UV_H

#include <uv.h>

#include <crpc/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The adapter between one uv_loop_t and one crpc_loop (opaque). */
typedef struct crpc_uv crpc_uv;

/**
 * Creates a crpc_loop driven by |uv| (uv_poll_t per descriptor crpc
 * watches, one uv_timer_t). |mem| (may be NULL: libc) is copied and used
 * for the loop; the adapter's own uv handles use libc, since libuv frees
 * them late, from close callbacks. Returns 0, CRPC_EINVAL, CRPC_ENOMEM or
 * CRPC_ESYS.
 */
CRPC_API int crpc_uv_new(crpc_uv **out, uv_loop_t *uv, const crpc_mem *mem);

/** The crpc_loop to create servers and channels on. Owned by |cu|. */
CRPC_API crpc_loop *crpc_uv_loop(crpc_uv *cu);

/**
 * Frees the crpc_loop and closes the adapter's uv handles; their memory
 * goes once the uv loop has run their close callbacks (as uv_close()
 * does), so run |uv| again before uv_loop_close(). Free the servers and
 * channels on the loop first. NULL-safe.
 */
CRPC_API void crpc_uv_free(crpc_uv *cu);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_UV_H */
