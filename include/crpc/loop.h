/*
 * loop.h: an event loop the program drives. Servers and channels created
 * on a crpc_loop (crpc_server_opts.loop, crpc_channel_opts.loop) run
 * inside the program's own loop and crpc starts no thread for them.
 *
 * Two ways to drive it:
 *
 * - One file descriptor: add crpc_loop_fd() to your poll set (readable
 *   when crpc has work), wake up after crpc_loop_timeout_ms() at the
 *   latest, and call crpc_loop_run_once(loop, 0) then.
 * - Socket callbacks (curl's multi_socket, c-ares): give crpc_loop_new()
 *   a watch callback and a timer callback. crpc tells you which
 *   descriptors to watch for what, and when to set or clear your timer;
 *   you report readiness with crpc_loop_fd_ready() and expiry with
 *   crpc_loop_timer_expired(). This is what libuv and libevent adapters
 *   use (crpc/uv.h, crpc/event.h).
 *
 * Threads: every function here runs on the thread that drives the loop
 * (the loop's thread: the one that created it), except crpc_loop_stop()
 * and crpc_loop_is_current(), which any thread may call; the ones that
 * process work return CRPC_ESTATE on another thread. Work other threads hand to the loop (a response from a worker, a
 * cancel) wakes it through one eventfd, itself one of the descriptors the
 * loop watches. crpc's callbacks (the watch and timer callbacks, and the
 * callbacks of calls on servers and channels of this loop) always run on
 * the loop's thread, from inside crpc_loop_run_once(),
 * crpc_loop_fd_ready() or crpc_loop_timer_expired().
 */
#ifndef CRPC_LOOP_H
#define CRPC_LOOP_H

#include <stdint.h>

#include <crpc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A program-driven event loop (opaque). */
typedef struct crpc_loop crpc_loop;

/** Readiness bits of crpc_loop_watch_cb() and crpc_loop_fd_ready(). */
#define CRPC_LOOP_READ 0x1u
/** The descriptor is writable (or is to be watched for it). */
#define CRPC_LOOP_WRITE 0x2u

/**
 * Socket-callback mode: watch |fd| for |events| (CRPC_LOOP_READ and/or
 * CRPC_LOOP_WRITE) from now on, replacing what was asked before for it; 0
 * means stop watching it (it may be closed right after the callback
 * returns). Runs on the loop's thread.
 */
typedef void (*crpc_loop_watch_cb)(crpc_loop *loop, int fd, unsigned events,
                                   void *user_data);

/**
 * Socket-callback mode: call crpc_loop_timer_expired() once in |timeout_ms|
 * milliseconds (0: as soon as possible), replacing the timer set before;
 * -1 clears it. Runs on the loop's thread.
 */
typedef void (*crpc_loop_timer_cb)(crpc_loop *loop, int64_t timeout_ms,
                                   void *user_data);

/** Options of crpc_loop_new(); {0} or NULL: the one-descriptor mode. */
typedef struct crpc_loop_opts {
  crpc_loop_watch_cb watch;  /**< set with |timer|: socket-callback mode */
  crpc_loop_timer_cb timer;  /**< set with |watch| */
  void *user_data;           /**< passed to both callbacks */
  const crpc_mem *mem;       /**< NULL: libc; copied (common.h) */
} crpc_loop_opts;

/**
 * Creates a loop. The calling thread becomes the loop's thread (the one
 * that must drive it). In socket-callback mode the watch callback runs
 * for crpc's wake-up descriptor before this returns.
 * Returns 0; CRPC_EINVAL (|out| NULL, or only one of the callbacks set);
 * CRPC_ENOMEM; CRPC_ESYS (epoll or eventfd).
 */
CRPC_API int crpc_loop_new(crpc_loop **out, const crpc_loop_opts *opts);

/**
 * Frees the loop. Free the servers and channels created on it first (a
 * server or channel freed from inside one of the loop's callbacks, whose
 * free was left for the loop's next turn, is finished here). NULL-safe.
 * The loop's thread, not from inside a callback.
 */
CRPC_API void crpc_loop_free(crpc_loop *loop);

/**
 * One-descriptor mode: the epoll descriptor that becomes readable when
 * crpc_loop_run_once() has something to do. Owned by the loop. Returns
 * -1 in socket-callback mode. The loop's thread.
 */
CRPC_API int crpc_loop_fd(const crpc_loop *loop);

/**
 * Milliseconds until crpc next needs crpc_loop_run_once() (or, in
 * socket-callback mode, crpc_loop_timer_expired()) even if no descriptor
 * is ready: 0 when it has work now, -1 when it has no timer. The loop's
 * thread.
 */
CRPC_API int64_t crpc_loop_timeout_ms(crpc_loop *loop);

/**
 * One-descriptor mode: processes what is ready (descriptors, timers, work
 * handed in from other threads), waiting at most |timeout_ms| for
 * something to happen (0: never blocks; -1: until something does). A
 * wait may begin with a short poll of the loop's descriptors, as crpc's
 * own threads do (docs/performance.md, "Busy polling"); with 0 it never
 * does. Returns 0; CRPC_ESTATE (socket-callback mode, called from inside one of
 * crpc's callbacks, or from a thread other than the loop's); CRPC_EINVAL
 * (|loop| NULL). The loop's thread.
 */
CRPC_API int crpc_loop_run_once(crpc_loop *loop, int timeout_ms);

/**
 * Runs crpc_loop_run_once(loop, -1) until crpc_loop_stop(). For a program
 * that has no loop of its own. Returns as crpc_loop_run_once().
 */
CRPC_API int crpc_loop_run(crpc_loop *loop);

/** Makes crpc_loop_run() return after the current round. The loop's
 * thread (from a callback), or any thread. */
CRPC_API void crpc_loop_stop(crpc_loop *loop);

/**
 * Socket-callback mode: |fd|, watched at crpc's request, is ready for
 * |events| (CRPC_LOOP_READ, CRPC_LOOP_WRITE; errors and hang-ups count as
 * both). Processes it and whatever work it leads to. Returns 0; CRPC_EINVAL
 * (an fd crpc does not watch: ignored); CRPC_ESTATE (one-descriptor mode,
 * from inside one of crpc's callbacks, or from another thread). The loop's
 * thread.
 */
CRPC_API int crpc_loop_fd_ready(crpc_loop *loop, int fd, unsigned events);

/**
 * Socket-callback mode: the timer set through the timer callback expired.
 * Runs crpc's timers that are due (deadlines, keepalive, back-off). Returns
 * 0 or CRPC_ESTATE as crpc_loop_fd_ready(). The loop's thread.
 */
CRPC_API int crpc_loop_timer_expired(crpc_loop *loop);

/**
 * Whether the calling thread is the loop's thread (the one that created
 * it). Any thread.
 */
CRPC_API int crpc_loop_is_current(const crpc_loop *loop);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_LOOP_H */
