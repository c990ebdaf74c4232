/*
 * loop_impl.h: the loop's fields, shared by loop.c (the reactor) and
 * loop_user.c (the public, program-driven face of it). Never installed.
 */
#ifndef CRPC_LOOP_IMPL_H
#define CRPC_LOOP_IMPL_H

#include <crpc/loop.h>

#include "internal.h"
#include "loop.h"
#include "loop_spin.h"

#define RBUF_SIZE (64 * 1024)
/* TLS records of one full write buffer, with their headers and tags */
#define SBUF_SIZE (RBUF_SIZE + 4096)

struct crpc__loop {
  const crpc_mem *mem;
  int epfd;
  crpc__io wake;
  pthread_mutex_t mu; /* guards the task queue and |stopping| */
  crpc__task *head, *tail;
  bool wake_pending; /* an eventfd write is outstanding */
  bool stopping;
  pthread_t thread;
  bool has_thread;
  crpc__timer **heap;
  size_t nheap, capheap;
  crpc__timer *spill; /* armed timers the heap had no room for */
  uint8_t rbuf[RBUF_SIZE];
  uint8_t wbuf[RBUF_SIZE];
  uint8_t sbuf[SBUF_SIZE];
  crpc__spin spin; /* the poll before a crpc thread sleeps (loop_spin.c) */
  bool may_spin;   /* whether the thread now driving it may poll: set by
                      whoever takes the loop (drive_mu), read by it */
  /* Shared client loops are run by whichever thread needs them: a caller
   * waiting for its call runs the loop itself (no thread hop), the pool
   * thread runs it when no caller does (see crpc__loop_wait). */
  bool shared;
  pthread_mutex_t drive_mu;
  pthread_cond_t drive_cv; /* followers: the role is free, or news */
  pthread_cond_t pool_cv;  /* the pool thread */
  int driver;              /* DRIVER_* */
  int followers;           /* callers waiting in crpc__loop_wait */
  bool yield_asked;        /* a caller wants the pool thread's role */
  bool urgent;             /* work was posted while nobody ran the loop */
  int64_t released_ms;     /* when a caller last let go of the loop */
  int64_t released_due_ms; /* the next timer then (INT64_MAX: none) */
  int64_t grace_ms;        /* the pool thread's grace (loop.c) */
  unsigned rounds;         /* rounds ended by callers or the pool */
  int background;          /* work in flight that no caller waits for */
  crpc__task *phead, *ptail; /* [mu] tasks only the loop's thread runs */
  /* A loop the program drives (crpc/loop.h; loop_user.c). */
  bool user;
  pthread_t owner;           /* the thread that drives it */
  crpc_loop_watch_cb watch;  /* socket-callback mode: report interest */
  crpc_loop_timer_cb timer;
  void *cb_ud;
  int64_t reported_when;     /* the timer last reported, absolute; -1 */
  crpc__io **fdmap;          /* watched descriptors, by fd (callbacks) */
  size_t nfdmap;
  crpc_mem own_mem;
  bool public_round;         /* in crpc_loop_run_once() and the like: the
                                program's own turn (user callbacks may
                                run), not crpc waiting inside a call */
};

/* Socket-callback mode: one round for |io| ready with |events| (NULL:
 * the timer expired) [loop.c]. */
void crpc__loop_callback_round(crpc__loop *l, crpc__io *io, uint32_t events);
/* Tells the program when to call back (socket-callback mode). */
void crpc__loop_report_timer(crpc__loop *l);
/* ms until crpc needs a round: 0 with work queued, -1 with no timer. */
int64_t crpc__loop_wants_ms(crpc__loop *l);
/* Tells the program (socket-callback mode) what |io| is watched for. */
int crpc__loop_report_io(crpc__loop *l, crpc__io *io);

#endif
