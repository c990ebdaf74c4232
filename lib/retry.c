/*
 * retry.c: client retries (gRFC A6) and the transparent retry. A call keeps
 * the request messages it sent until it commits (response headers
 * arrived, or more than CRPC__RETRY_BUFFER_LIMIT bytes kept); a failed,
 * uncommitted attempt whose status is retryable (or whose stream the
 * server refused unprocessed) starts again on a fresh stream after a
 * jittered exponential backoff, replaying those messages, up to
 * maxAttempts and while the channel's throttle has tokens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

void crpc__retry_call_init(crpc_call *c, crpc_channel *ch) {
  const crpc__method_config *mc =
      crpc__service_config_find(ch->sc, c->method->path);
  c->rs.cfg = mc;
  c->rs.pushback_ms = -2;
  if (!mc)
    return;
  if (mc->timeout_ms > 0) {
    int64_t d = crpc__now_ms() + mc->timeout_ms;
    if (!c->deadline_ms || d < c->deadline_ms)
      c->deadline_ms = d;
  }
  if (mc->wait_for_ready == 1)
    c->flags |= CRPC_CALL_WAIT_FOR_READY;
  if (mc->max_request_bytes >= 0 &&
      (!c->max_send || (uint64_t)mc->max_request_bytes < c->max_send))
    c->max_send = (size_t)mc->max_request_bytes;
  if (mc->max_response_bytes >= 0 &&
      (uint64_t)mc->max_response_bytes < c->max_recv)
    c->max_recv = (size_t)mc->max_response_bytes;
  if (mc->has_retry)
    c->rs.backoff_us = mc->retry.initial_backoff_us;
}

void crpc__retry_commit(crpc_call *c) {
  c->rs.committed = true;
  crpc__msgq_clear(&c->rs.replay, &c->mem);
}

void crpc__retry_sent(crpc_call *c, crpc__msgbuf *m) {
  if (c->is_server || c->rs.committed) {
    crpc__msgpool_put(&c->msgpool, &c->mem, m);
    return;
  }
  crpc__msgq_push(&c->rs.replay, m);
  if (c->rs.replay.bytes > CRPC__RETRY_BUFFER_LIMIT)
    crpc__retry_commit(c); /* too much to keep: this attempt is the last */
}

int64_t crpc__retry_backoff_us(const crpc__retry_policy *p, int64_t *bound,
                               uint64_t rnd) {
  int64_t b = *bound < p->max_backoff_us ? *bound : p->max_backoff_us;
  double next = (double)b * p->multiplier;
  *bound = next >= (double)p->max_backoff_us ? p->max_backoff_us
                                             : (int64_t)next;
  if (*bound < 1)
    *bound = 1;
  return b > 0 ? (int64_t)(rnd % (uint64_t)(b + 1)) : 0;
}

void crpc__retry_throttle_record(crpc__retry_throttle *t, bool failure) {
  long long cur = atomic_load(&t->tokens), next;
  do {
    next = failure ? cur - 1000 : cur + t->ratio;
    if (next < 0)
      next = 0;
    if (next > t->max)
      next = t->max;
  } while (!atomic_compare_exchange_weak(&t->tokens, &cur, next));
}

bool crpc__retry_throttle_allows(crpc__retry_throttle *t) {
  return atomic_load(&t->tokens) * 2 > t->max; /* gRFC A6: > maxTokens/2 */
}

int64_t crpc__retry_parse_pushback(const uint8_t *v, size_t len) {
  if (len == 0 || len > 10)
    return -1;
  int64_t ms = 0;
  for (size_t i = 0; i < len; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    ms = ms * 10 + (v[i] - '0');
  }
  return ms;
}

static void on_retry_timer(crpc__timer *t);

static bool schedule(crpc_call *c, int64_t delay_ms) {
  crpc_channel *ch = c->channel;
  int64_t when = crpc__now_ms() + delay_ms;
  if (c->deadline_ms && when >= c->deadline_ms)
    return false; /* no time left for another attempt */
  pthread_mutex_lock(&c->mu);
  crpc_code code = c->status.code;
  pthread_mutex_unlock(&c->mu);
  crpc__mx_client_attempt_end(c, code); /* A66: one record per attempt */
  c->rs.attempts++;
  c->rs.waiting = true;
  c->rs.timer.cb = on_retry_timer;
  crpc__call_ref(c); /* the timer's */
  crpc__timer_start(ch->loop, &c->rs.timer, when);
  return true;
}

bool crpc__retry_attempt_failed(crpc_call *c, bool refused) {
  crpc_channel *ch = c->channel;
  const crpc__method_config *mc = c->rs.cfg;
  pthread_mutex_lock(&c->mu);
  bool can = !c->rs.committed && !c->done && !c->cancel_requested &&
             !c->cancelled && !ch->shutting_down;
  crpc_code code = c->status.code;
  pthread_mutex_unlock(&c->mu);
  bool policy = mc && mc->has_retry;
  bool retryable = policy && code != CRPC_OK &&
                   (mc->retry.codes & (1u << code)) != 0;
  int64_t push = c->got_grpc_status ? c->rs.pushback_ms : -2;
  /* gRFC A6: OK adds tokenRatio, a retryable failure takes one token */
  if (ch->sc && ch->sc->has_throttle && !refused &&
      (code == CRPC_OK || retryable))
    crpc__retry_throttle_record(&ch->throttle, retryable);
  if (!can || code == CRPC_OK)
    return false;
  /* gRPC's transparent retry: the server never saw this stream */
  if (refused && !c->got_grpc_status && !c->rs.transparent_used) {
    c->rs.transparent_used = true;
    return schedule(c, 0);
  }
  if (!retryable || push == -1)
    return false;
  if (c->rs.attempts + 1 >= mc->retry.max_attempts)
    return false;
  if (ch->sc->has_throttle && !crpc__retry_throttle_allows(&ch->throttle))
    return false;
  int64_t delay_us;
  if (push >= 0) { /* the server's delay; the backoff starts over */
    delay_us = push * 1000;
    c->rs.backoff_us = mc->retry.initial_backoff_us;
  } else {
    uint64_t rnd = ((uint64_t)rand() << 31) ^ (uint64_t)rand();
    delay_us = crpc__retry_backoff_us(&mc->retry, &c->rs.backoff_us, rnd);
  }
  return schedule(c, (delay_us + 999) / 1000);
}

void crpc__retry_finish(crpc_call *c) {
  if (c->rs.waiting) {
    c->rs.waiting = false;
    crpc__timer_stop(c->channel->loop, &c->rs.timer);
    crpc__call_unref(c); /* the timer's; the caller holds its own */
  }
  pthread_mutex_lock(&c->mu);
  crpc__retry_commit(c);
  pthread_mutex_unlock(&c->mu);
}

/* A fresh attempt [loop; the old stream detached]: the sent messages go
 * back in front of the unsent ones, every trace of the old attempt goes. */
static void on_retry_timer(crpc__timer *t) {
  crpc_call *c = (crpc_call *)((char *)t - offsetof(crpc_call, rs.timer));
  crpc_channel *ch = c->channel;
  if (!c->rs.waiting) /* stopped in between */
    return;
  c->rs.waiting = false;
  c->rs.eos_seen = false;
  c->rs.pushback_ms = -2;
  pthread_mutex_lock(&c->mu);
  if (c->done) {
    pthread_mutex_unlock(&c->mu);
    crpc__call_unref(c);
    return;
  }
  crpc__msgq *q = &c->rs.replay;
  for (crpc__msgbuf *m = q->head; m; m = m->next)
    m->off = 0;
  if (c->sendq.head)
    c->sendq.head->off = 0; /* partly sent on the old stream */
  if (q->head) {
    q->tail->next = c->sendq.head;
    if (!c->sendq.head)
      c->sendq.tail = q->tail;
    c->sendq.head = q->head;
    c->sendq.count += q->count;
    c->sendq.bytes += q->bytes;
    q->head = q->tail = NULL;
    q->count = q->bytes = 0;
  }
  crpc_status_clear(&c->status);
  crpc_metadata_clear(c->trailers);
  crpc_metadata_clear(c->recv_md);
  crpc__msgq_clear(&c->recvq, &c->mem);
  c->eos_sent = false;
  c->recv_closed = false;
  c->uncredited = 0;
  c->to_consume = 0;
  pthread_mutex_unlock(&c->mu);
  c->got_grpc_status = false;
  c->http_status = 0;
  c->trailers_phase = false;
  c->header_bytes = 0;
  c->rx_bytes = c->rx_consumed = 0;
  c->rx_discard = false;
  c->submitted = false;
  c->stream_id = -1;
  c->recv_enc = CRPC__ENC_IDENTITY;
  crpc__free(&c->mem, c->content_type);
  c->content_type = NULL;
  crpc__deframer_reset(&c->deframer);
  if (c->deadline_ms) { /* the old stream's detach stopped its timer */
    if (c->deadline_ms <= crpc__now_ms()) {
      crpc__client_finish(c, CRPC_DEADLINE_EXCEEDED, "deadline exceeded");
      crpc__call_unref(c);
      return;
    }
    crpc__timer_start(ch->loop, &c->deadline_timer, c->deadline_ms);
  }
  crpc__mx_client_start(c); /* the next attempt */
  crpc__channel_submit(ch, c);
  crpc__call_unref(c); /* the timer's */
}
