/*
 * retry.h: a client call's retries (gRFC A6) and gRPC's transparent retry
 * of streams the server never processed: the state a call keeps for them,
 * the per-method service config applied at call start, the backoff and
 * the channel's retry throttle. Never installed.
 */
#ifndef CRPC_RETRY_H
#define CRPC_RETRY_H

#include <stdatomic.h>

#include "codec.h"
#include "loop.h"
#include "service_config.h"

/* Request bytes a call keeps for replaying on a new attempt (gRPC's
 * per-RPC retry buffer default); past it the call commits. */
#define CRPC__RETRY_BUFFER_LIMIT (256 * 1024)

typedef struct crpc_call crpc_call;
typedef struct crpc_channel crpc_channel;

typedef struct crpc__retry_state {
  const crpc__method_config *cfg; /* [const] the method's; NULL: none */
  crpc__msgq replay;  /* [mu] request messages sent on this attempt */
  bool committed;     /* [mu] no other attempt: headers came, or the
                         buffer went over its limit */
  int attempts;       /* [loop] attempts before the current one */
  bool transparent_used; /* [loop] the one transparent retry is spent */
  bool waiting;       /* [loop] between attempts (the timer runs) */
  bool eos_seen;      /* [loop] END_STREAM of an uncommitted attempt */
  int64_t backoff_us; /* [loop] the next backoff's upper bound */
  int64_t pushback_ms; /* [loop] the server's grpc-retry-pushback-ms: -2
                          none, -1 "do not retry", else the delay */
  crpc__timer timer;  /* [loop] the next attempt's start */
} crpc__retry_state;

/* The channel's retry throttle (gRFC A6): milli-tokens. */
typedef struct crpc__retry_throttle {
  atomic_llong tokens;
  int64_t max, ratio;
} crpc__retry_throttle;

/* At call start [user]: the method's config (timeout: the smaller
 * deadline; waitForReady; the smaller size limits). */
void crpc__retry_call_init(crpc_call *c, crpc_channel *ch);
/* A request message left for the wire (mu held): kept for a replay while
 * the call is not committed, else freed. */
void crpc__retry_sent(crpc_call *c, crpc__msgbuf *m);
/* No more attempts: the replay buffer goes (mu held). */
void crpc__retry_commit(crpc_call *c);
/* The attempt ended with c->status (|refused|: the server never processed
 * the stream) [loop, the stream still attached]. True when another attempt
 * was scheduled: the call goes on, do not finish it. */
bool crpc__retry_attempt_failed(crpc_call *c, bool refused);
/* The call ends: stop any pending attempt and free the buffer [loop]. */
void crpc__retry_finish(crpc_call *c);
/* A jittered backoff in [0, min(bound, max)] and the next bound (pure). */
int64_t crpc__retry_backoff_us(const crpc__retry_policy *p, int64_t *bound,
                               uint64_t rnd);
/* A grpc-retry-pushback-ms value (gRFC A6): the delay in ms, or -1 (a
 * negative or malformed value: do not retry). */
int64_t crpc__retry_parse_pushback(const uint8_t *v, size_t len);
/* Throttle: record an attempt's outcome; whether a retry may go now. */
void crpc__retry_throttle_record(crpc__retry_throttle *t, bool failure);
bool crpc__retry_throttle_allows(crpc__retry_throttle *t);

#endif
