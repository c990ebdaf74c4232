/*
 * conn_mgmt.c: server-side connection management (gRFC A9): a connection
 * older than max_connection_age is drained the way gRPC drains it, so
 * that long-lived clients reconnect (and rebalance behind an L4 balancer
 * or over re-resolved addresses) without losing a call:
 *
 *   1. GOAWAY(NO_ERROR, last stream 2^31-1), nghttp2's shutdown notice:
 *      "open no more streams here", while streams already on the wire
 *      are still accepted;
 *   2. a PING: its ACK proves the client has seen the notice, so every
 *      stream it opened before is now in;
 *   3. the final GOAWAY with the last stream processed; nghttp2 closes
 *      the session once the remaining streams end;
 *   4. max_connection_age_grace after step 1, whatever still runs is
 *      cancelled and the connection closed.
 *
 * Keepalive enforcement (too many PINGs) lives with the other floods in
 * conn.c (on_control).
 */
#include "conn.h"

#include <string.h>

#include "internal.h"

/* The drain's PING, told apart from keepalive PINGs (zero opaque data). */
static const uint8_t drain_opaque[8] = {'c', 'r', 'p', 'c', 'd', 'r', 'n', 1};
/* A client that never answers the PING gets the final GOAWAY anyway. */
#define DRAIN_PING_TIMEOUT_MS 10000

static crpc__conn *of_timer(crpc__timer *t) {
  return (crpc__conn *)((char *)t - offsetof(crpc__conn, age_timer));
}

/* ±10% of |ms|, from the connection's address and the clock (no global
 * random state to share across threads): connections made together do
 * not all drain together. */
static int64_t jitter(const crpc__conn *c, int64_t ms) {
  uint64_t x = (uint64_t)(uintptr_t)c ^ (uint64_t)crpc__now_ms() * 0x9e3779b97f4a7c15ull;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  int64_t span = ms / 5; /* 20% wide */
  if (span <= 0)
    return ms;
  return ms - ms / 10 + (int64_t)(x % (uint64_t)(span + 1));
}

/* Step 3. */
static void send_final(crpc__conn *c) {
  c->drain_state = CRPC__DRAIN_FINAL;
  int32_t last = nghttp2_session_get_last_proc_stream_id(c->session);
  crpc__log_debug("%s: final GOAWAY (last stream %d, %zu calls left)",
                  c->peer, last, c->ncalls);
  nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR,
                        NULL, 0);
  if (c->age_grace_ms > 0)
    crpc__timer_start(c->loop, &c->age_timer,
                      c->drain_started_ms + c->age_grace_ms);
  else
    crpc__timer_stop(c->loop, &c->age_timer);
  crpc__conn_schedule_flush(c); /* closes once no stream is left */
}

static void on_age_timer(crpc__timer *t) {
  crpc__conn *c = of_timer(t);
  if (c->dead || !c->session)
    return;
  switch (c->drain_state) {
  case CRPC__DRAIN_NONE:
    if (c->handshaking) { /* TLS not done yet: GOAWAY once it is */
      crpc__timer_start(c->loop, &c->age_timer, crpc__now_ms() + 100);
      break;
    }
    crpc__conn_drain(c, "max_connection_age");
    break;
  case CRPC__DRAIN_NOTICE: /* no PING ACK in time, or the grace is over */
    send_final(c);
    if (c->age_grace_ms > 0 &&
        crpc__now_ms() >= c->drain_started_ms + c->age_grace_ms)
      goto grace_over;
    crpc__conn_flush(c);
    break;
  case CRPC__DRAIN_FINAL:
  grace_over:
    crpc__log_info("%s: max_connection_age_grace over: cancelling %zu "
                   "calls", c->peer, c->ncalls);
    crpc__conn_flush(c);
    if (!c->dead)
      crpc__conn_close(c, CRPC_UNAVAILABLE,
                       "connection closed: max_connection_age_grace "
                       "expired");
    break;
  }
}

void crpc__conn_mgmt_start(crpc__conn *c) {
  c->age_timer.cb = on_age_timer;
  if (c->max_age_ms <= 0)
    return;
  c->max_age_ms = jitter(c, c->max_age_ms);
  crpc__timer_start(c->loop, &c->age_timer, c->born_ms + c->max_age_ms);
}

void crpc__conn_drain(crpc__conn *c, const char *why) {
  if (c->dead || !c->session || c->handshaking ||
      c->drain_state != CRPC__DRAIN_NONE || c->calm_reason)
    return;
  crpc__log_debug("%s: %s: GOAWAY (shutdown notice) and PING", c->peer, why);
  c->drain_state = CRPC__DRAIN_NOTICE;
  c->drain_started_ms = crpc__now_ms();
  c->age_timer.cb = on_age_timer;
  if (nghttp2_submit_shutdown_notice(c->session) != 0 ||
      nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, drain_opaque) != 0) {
    send_final(c); /* e.g. the client already sent GOAWAY */
    return;
  }
  int64_t wait = DRAIN_PING_TIMEOUT_MS;
  if (c->age_grace_ms > 0 && c->age_grace_ms < wait)
    wait = c->age_grace_ms;
  crpc__timer_start(c->loop, &c->age_timer, c->drain_started_ms + wait);
  crpc__conn_schedule_flush(c);
}

void crpc__conn_ping_ack(crpc__conn *c, const uint8_t *opaque) {
  if (c->drain_state == CRPC__DRAIN_NOTICE &&
      memcmp(opaque, drain_opaque, sizeof drain_opaque) == 0)
    send_final(c);
}
