/*
 * loop_spin.c: a short, adaptive busy poll before a reactor sleeps.
 *
 * Why: a sleeping thread woken from another CPU costs a wake-up that on a
 * virtual machine runs to tens of microseconds (the idle vCPU halts and
 * the host must reschedule it), several times what a small RPC costs to
 * process. A reactor whose next event comes within microseconds of going
 * idle (a streaming ping-pong, a client waiting for a quick answer) does
 * better to poll for it than to sleep: both the latency and the CPU per
 * call drop (bench/NOTES.md, "Busy polling").
 *
 * When to poll is learnt from the loop's own waits, much as Linux's
 * cpuidle haltpoll governor does it:
 * - a sleep that ended with I/O soon after the loop went idle (within
 *   SPIN_SHORT_FACTOR times the cap) says a poll might have caught it: the
 *   next wait polls, for up to the cap;
 * - a poll that caught its event keeps the loop polling;
 * - a poll that did not (the event came later, or a timer's turn came)
 *   stops it, and the short sleeps that must pass before the next try
 *   double (up to SPIN_BACKOFF_MAX), so a loop where polling does not pay
 *   (events far apart, or a peer that needs this very CPU to answer)
 *   soon wastes almost nothing on it.
 * The poll yields the CPU on each pass, for other threads on this CPU, and
 * gives up as soon as a pass shows that one ran: a poll pays only on a
 * CPU of its own, and a peer on the same CPU (the bench's same-CPU rows)
 * must get it to answer. For the same reason a catch counts as a failure
 * when the thread was preempted since it last looked: on a loaded
 * machine a poller spends the CPU share that would have got it scheduled
 * at once on waking (ping-pong beside a busy test suite: 3.3-3.8 k calls/s
 * polling that way, against 8.1-8.7 k asleep).
 */
#include "loop_spin.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

/* The default cap: long enough for a cross-CPU round trip of a small
 * message on the virtual machines we measured (about 30 us), short enough
 * that a failed poll costs little. */
#define SPIN_DEFAULT_MAX_US 50
#define SPIN_LIMIT_MAX_US 10000
/* A sleep up to this many caps still counts as short: while the peer
 * sleeps too, its answers come later than they will once both poll. */
#define SPIN_SHORT_FACTOR 2
#define SPIN_BACKOFF_MAX 256
/* One pass (a poll and a yield) takes about a microsecond; one that takes
 * this long was interrupted by another thread on this CPU. */
#define SPIN_PASS_MAX_NS 10000

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long thread_preemptions(void) {
  struct rusage ru;
  return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nivcsw : 0;
}

static long cap_us(void) {
  const char *env = getenv("CRPC_BUSY_POLL_US");
  if (!env || !*env)
    return SPIN_DEFAULT_MAX_US;
  char *end;
  errno = 0;
  long v = strtol(env, &end, 10);
  if (errno != 0 || *end != '\0' || v < 0)
    return SPIN_DEFAULT_MAX_US; /* not a number: as if unset */
  return v > SPIN_LIMIT_MAX_US ? SPIN_LIMIT_MAX_US : v;
}

void crpc__spin_init(crpc__spin *s) {
  s->max_ns = (int64_t)cap_us() * 1000;
  s->polling = false;
  s->skip = 0;
  s->backoff = 1;
  s->now_ns = monotonic_ns;
  s->preemptions = thread_preemptions;
  s->preempted = 0;
}

static void poll_failed(crpc__spin *s) {
  s->polling = false;
  s->skip = s->backoff;
  if (s->backoff < SPIN_BACKOFF_MAX)
    s->backoff *= 2;
}

/* Whether this thread was preempted since the last look: other threads
 * want this CPU, and a poller then only delays them, and itself (it has
 * spent the CPU share a sleeper would have woken with). */
static bool contended(crpc__spin *s) {
  long p = s->preemptions();
  bool more = p != s->preempted;
  s->preempted = p;
  return more;
}

int crpc__spin_wait(crpc__spin *s, int epfd, struct epoll_event *evs,
                    int maxevs, int timeout_ms) {
  if (timeout_ms == 0 || s->max_ns == 0)
    return epoll_wait(epfd, evs, maxevs, timeout_ms);
  int64_t start = s->now_ns();
  int64_t window = s->polling ? s->max_ns : 0;
  if (timeout_ms > 0 && window > (int64_t)timeout_ms * 1000000)
    window = (int64_t)timeout_ms * 1000000;
  int left = timeout_ms;
  if (window > 0) {
    for (int64_t last = start;;) {
      int n = epoll_wait(epfd, evs, maxevs, 0);
      if (n != 0) {
        if (n > 0 && !contended(s))
          s->backoff = 1; /* caught: keep polling */
        else if (n > 0)
          poll_failed(s);
        return n;
      }
      int64_t now = s->now_ns();
      /* A pass (the yield before this poll, and the poll) that took long
       * means another thread ran here: the CPU is shared, maybe with the
       * very thread that will answer. Sleep. */
      if (now - start >= window || now - last > SPIN_PASS_MAX_NS) {
        int64_t spent_ms = (now - start) / 1000000;
        if (timeout_ms > 0)
          left = spent_ms >= timeout_ms ? 0 : timeout_ms - (int)spent_ms;
        break;
      }
      last = now;
      sched_yield();
    }
  }
  int n = epoll_wait(epfd, evs, maxevs, left);
  if (window > 0) {
    poll_failed(s);
  } else if (n > 0 && s->now_ns() - start <= s->max_ns * SPIN_SHORT_FACTOR) {
    if (s->skip > 0)
      s->skip--;
    else
      s->polling = true; /* a poll might have caught that */
  }
  return n;
}
