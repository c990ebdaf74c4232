/*
 * loop.h: the reactor. One loop per thread: epoll for file descriptors, an
 * eventfd for wake-ups from other threads, a queue of posted tasks and a
 * timer heap. Everything but crpc__loop_post/stop runs on the loop's thread.
 */
#ifndef CRPC__LOOP_H
#define CRPC__LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <crpc/common.h>

typedef struct crpc__loop crpc__loop;
typedef struct crpc__io crpc__io;
typedef struct crpc__timer crpc__timer;
typedef struct crpc__task crpc__task;

#define CRPC__IO_READ 0x1u
#define CRPC__IO_WRITE 0x4u /* EPOLLOUT */

/* A watched descriptor; embedded in its owner. |events| received are EPOLL*
 * bits. */
typedef void (*crpc__io_cb)(crpc__io *io, uint32_t events);
struct crpc__io {
  int fd;
  uint32_t watching; /* EPOLL bits currently registered, 0 = not added */
  crpc__io_cb cb;
};

typedef void (*crpc__timer_cb)(crpc__timer *t);
struct crpc__timer {
  int64_t when_ms; /* absolute, crpc__now_ms() clock */
  size_t heap_idx; /* 0 = not armed; CRPC__TIMER_SPILLED; else index + 1 */
  crpc__timer_cb cb;
  crpc__timer *spill_next, *spill_prev; /* while SPILLED */
};
/* Armed, but in the loop's spill list: the heap could not grow (OOM). */
#define CRPC__TIMER_SPILLED SIZE_MAX

/* A unit of work posted from any thread. Intrusive, so a call can post its
 * own task without allocating (see crpc__loop_post_task). */
typedef void (*crpc__task_fn)(void *arg);
struct crpc__task {
  crpc__task *next;
  crpc__task_fn fn;
  void *arg;
  bool heap; /* allocated by crpc__loop_post, freed after running */
};

/* The loop and everything it allocates (its timer heap, posted tasks)
 * come from |mem| (NULL: libc), which must outlive it. */
int crpc__loop_new(crpc__loop **out, const crpc_mem *mem);
void crpc__loop_free(crpc__loop *loop);

/* Registers or updates the descriptor's interest (EPOLLIN/EPOLLOUT bits;
 * |exclusive| adds EPOLLEXCLUSIVE, for listeners shared by loops). */
int crpc__io_watch(crpc__loop *loop, crpc__io *io, uint32_t events);
int crpc__io_watch_exclusive(crpc__loop *loop, crpc__io *io);
void crpc__io_unwatch(crpc__loop *loop, crpc__io *io);

int64_t crpc__now_ms(void);
void crpc__timer_start(crpc__loop *loop, crpc__timer *t, int64_t when_ms);
void crpc__timer_stop(crpc__loop *loop, crpc__timer *t);
static inline bool crpc__timer_armed(const crpc__timer *t) {
  return t->heap_idx != 0;
}

/* Any thread. Runs fn(arg) on the loop thread soon. Returns 0 or
 * CRPC_ENOMEM. */
int crpc__loop_post(crpc__loop *loop, crpc__task_fn fn, void *arg);
/* Any thread. |task| must not already be queued; the caller keeps it alive
 * until it has run. */
void crpc__loop_post_task(crpc__loop *loop, crpc__task *task);

/* Runs until crpc__loop_stop(). */
void crpc__loop_run(crpc__loop *loop);
/* Runs one round: waits at most |timeout_ms| (-1: until something
 * happens). */
void crpc__loop_run_once(crpc__loop *loop, int timeout_ms);
/* Any thread. */
void crpc__loop_stop(crpc__loop *loop);
/* Whether the calling thread is the one running |loop|. */
bool crpc__loop_on_thread(const crpc__loop *loop);

/* Shared client loops (before the thread starts): callers that wait for a
 * call run the loop themselves when nobody else does, so a blocking client
 * takes no thread hop; the loop's own thread runs it otherwise. */
void crpc__loop_set_shared(crpc__loop *loop);
/* Caller: takes the loop if nobody runs it (true), until
 * crpc__loop_leave(); tasks it posts meanwhile need no wake-up. */
bool crpc__loop_try_enter(crpc__loop *loop);
void crpc__loop_leave(crpc__loop *loop);
/* Caller, holding no call lock: waits for something to happen on the loop,
 * running one round of it if nobody else does (unless ready(arg) says the
 * wait is already over). Returns after that round, or when a round run by
 * someone else ends (at once if one ended since |rounds_seen|, from
 * crpc__loop_rounds() taken while the condition was last checked); check
 * the condition again. No timer polls: a round's end is the wake-up (a
 * bound of a second is only a safety net). */
void crpc__loop_wait(crpc__loop *loop, unsigned rounds_seen,
                     bool (*ready)(void *), void *arg);
/* Rounds ended so far (any thread; callers may hold a call lock). */
unsigned crpc__loop_rounds(crpc__loop *loop);
/* Whether the calling thread is inside one of |l|'s rounds (its I/O,
 * tasks, timers or callbacks). */
bool crpc__loop_in_round(const crpc__loop *l);
/* A loop the program drives (crpc/loop.h): only its thread may run it;
 * crpc__loop_may_drive() says whether the caller may wait by running it
 * (true for crpc's own loops). */
bool crpc__loop_is_owner(const crpc__loop *loop);
/* The owner, outside any round: runs the async completions queued for the
 * program's turn now (a channel's free delivers its calls' CANCELLED
 * before it returns, as channel.h promises). */
void crpc__loop_run_own_now(crpc__loop *loop);
bool crpc__loop_may_drive(const crpc__loop *loop);
/* Whether this is the loop's own thread (not a caller running it). */
bool crpc__loop_on_own_thread(const crpc__loop *loop);
/* Runs |task| on the loop's own thread only, never on a caller that runs
 * the loop: user callbacks must not run inside another API call. (A
 * server reactor's loop is run by its own thread alone: a plain post.) */
void crpc__loop_post_own(crpc__loop *loop, crpc__task *task);
/* Counts work in flight that no caller will wait for (async calls): while
 * any, the loop's own thread runs the loop as soon as callers let go. */
void crpc__loop_background(crpc__loop *loop, int delta);

/* A loop running on a thread of its own. */
int crpc__loop_thread_start(crpc__loop *loop, pthread_t *tid);

/* A shared read buffer, one per loop (connections read into it). */
uint8_t *crpc__loop_rbuf(crpc__loop *loop, size_t *len);
/* A shared write buffer, one per loop (a flush gathers output in it). */
uint8_t *crpc__loop_wbuf(crpc__loop *loop, size_t *len);
/* A shared scratch buffer, one per loop, for the transport under a
 * write (TLS gathers its records in it). */
uint8_t *crpc__loop_sbuf(crpc__loop *loop, size_t *len);

#endif
