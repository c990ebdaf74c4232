/*
 * loop_spin.h: the adaptive busy poll before a reactor sleeps (loop_spin.c).
 * Never installed.
 */
#ifndef CRPC_LOOP_SPIN_H
#define CRPC_LOOP_SPIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

/* One per loop; touched only by the thread driving the loop. */
typedef struct crpc__spin {
  bool polling;              /* the next wait polls first, for up to |max_ns| */
  int64_t max_ns;            /* the cap (CRPC_BUSY_POLL_US); 0: never polls */
  unsigned skip;             /* short sleeps to let pass before polling again */
  unsigned backoff;          /* |skip| after the next failed poll */
  long preempted;            /* |preemptions| when last read */
  int64_t (*now_ns)(void);   /* CLOCK_MONOTONIC; a test's own clock */
  long (*preemptions)(void); /* this thread's involuntary switches */
} crpc__spin;

/* Sets |s| up from CRPC_BUSY_POLL_US (unset: the default cap). */
void crpc__spin_init(crpc__spin *s);
/* epoll_wait(epfd, evs, maxevs, timeout_ms), but a wait that would sleep
 * may first poll for up to the cap: while the loop's events come soon
 * after it goes idle, and less and less often while polling fails to catch
 * them. Returns what epoll_wait returns. */
int crpc__spin_wait(crpc__spin *s, int epfd, struct epoll_event *evs,
                    int maxevs, int timeout_ms);

#endif
