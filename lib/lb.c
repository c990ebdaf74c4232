/*
 * lb.c: the load-balancing policies, gRPC's two built-in ones, over the
 * channel's subchannels (one per resolved address, subchannel.c):
 *
 *  - pick_first (the default): connects to the addresses one at a time,
 *    in order, and sticks to the first that works; when that connection
 *    goes, the channel is IDLE until the next call starts over from the
 *    first address.
 *  - round_robin: every subchannel connects, and reconnects after its own
 *    backoff when it fails or loses its connection; calls go to the READY
 *    ones in turn.
 *
 * Both pick on the loop's thread inside crpc__channel_submit(), so the
 * per-call path takes no lock (round_robin's is a walk to the next READY
 * subchannel).
 */
#include <string.h>

#include "client_internal.h"

/* ---- pick_first ---- */

static bool in_list(crpc_channel *ch, crpc__subchannel *sc) {
  for (crpc__subchannel *s = ch->subs; s; s = s->next)
    if (s == sc)
      return true;
  return false;
}

/* Connects the first IDLE subchannel from |from| on; false when every one
 * is failed (backing off). */
static bool pf_try_from(crpc_channel *ch, crpc__subchannel *from) {
  for (crpc__subchannel *s = from; s; s = s->next) {
    if (s->state == CH_IDLE) {
      ch->pf_cur = s;
      crpc__subchannel_connect(s);
      if (s->state == CH_CONNECTING || s->state == CH_READY)
        return true;
    }
  }
  return false;
}

static void pf_fail(crpc_channel *ch) {
  crpc__subchannel *last = ch->pf_cur ? ch->pf_cur : ch->subs;
  snprintf(ch->last_error, sizeof ch->last_error,
           "failed to connect to %.100s (%zu address%s; last: %.380s)",
           ch->target,
           ch->nsubs, ch->nsubs == 1 ? "" : "es",
           last && last->last_error[0] ? last->last_error : "none");
  crpc__channel_set_state(ch, CH_TRANSIENT_FAILURE);
}

static void pf_exit_idle(crpc_channel *ch) {
  crpc__subchannel *cur = ch->pf_cur;
  if (cur && (cur->state == CH_CONNECTING || cur->state == CH_READY))
    return;
  if (!ch->subs)
    return;
  crpc__channel_set_state(ch, CH_CONNECTING);
  if (!pf_try_from(ch, ch->subs))
    pf_fail(ch);
}

static void pf_update(crpc_channel *ch) {
  if (ch->pf_cur && in_list(ch, ch->pf_cur))
    return; /* sticky: the address still resolves */
  ch->pf_cur = NULL;
  if (ch->pending || ch->state != CH_IDLE)
    pf_exit_idle(ch);
}

static crpc__conn *pf_pick(crpc_channel *ch) {
  crpc__subchannel *cur = ch->pf_cur;
  if (!cur)
    return NULL;
  crpc__conn *conn = crpc__subchannel_conn(cur);
  if (conn)
    cur->calls++;
  return conn;
}

static void pf_sub_state(crpc_channel *ch, crpc__subchannel *sc) {
  switch (sc->state) {
  case CH_READY:
    ch->pf_cur = sc;
    crpc__channel_set_state(ch, CH_READY);
    return;
  case CH_CONNECTING:
    return;
  case CH_TRANSIENT_FAILURE:
    if (sc != ch->pf_cur)
      return;
    /* the next address in order; the channel fails once all have */
    if (!pf_try_from(ch, sc->next))
      pf_fail(ch);
    return;
  case CH_IDLE:
    /* lost its connection, or a backoff ended */
    if (sc == ch->pf_cur || ch->state == CH_TRANSIENT_FAILURE) {
      ch->pf_cur = NULL;
      crpc__channel_set_state(ch, CH_IDLE);
      if (ch->pending)
        pf_exit_idle(ch);
    }
    return;
  }
}

const crpc__lb_policy crpc__lb_pick_first = {
    .name = "pick_first",
    .update = pf_update,
    .pick = pf_pick,
    .sub_state = pf_sub_state,
    .exit_idle = pf_exit_idle,
};

/* ---- round_robin ---- */

static void rr_aggregate(crpc_channel *ch) {
  bool connecting = false;
  crpc__subchannel *failed = NULL;
  for (crpc__subchannel *s = ch->subs; s; s = s->next) {
    if (s->state == CH_READY) {
      crpc__channel_set_state(ch, CH_READY);
      return;
    }
    if (s->state == CH_CONNECTING || s->state == CH_IDLE)
      connecting = true;
    else if (!failed)
      failed = s;
  }
  if (connecting || !ch->subs) {
    crpc__channel_set_state(ch, CH_CONNECTING);
    return;
  }
  snprintf(ch->last_error, sizeof ch->last_error,
           "failed to connect to any of the %zu addresses of %.100s "
           "(first: %.380s)",
           ch->nsubs, ch->target, failed->last_error);
  crpc__channel_set_state(ch, CH_TRANSIENT_FAILURE);
}

static void rr_exit_idle(crpc_channel *ch) {
  for (crpc__subchannel *s = ch->subs; s; s = s->next) {
    s->reconnect = true;
    crpc__subchannel_connect(s);
  }
  rr_aggregate(ch);
}

static void rr_update(crpc_channel *ch) {
  if (ch->rr_next && !in_list(ch, ch->rr_next))
    ch->rr_next = NULL;
  rr_exit_idle(ch);
}

static crpc__conn *rr_pick(crpc_channel *ch) {
  crpc__subchannel *start = ch->rr_next ? ch->rr_next : ch->subs;
  crpc__subchannel *s = start;
  if (!s)
    return NULL;
  do {
    crpc__conn *conn = crpc__subchannel_conn(s);
    crpc__subchannel *next = s->next ? s->next : ch->subs;
    if (conn) {
      ch->rr_next = next;
      s->calls++;
      return conn;
    }
    s = next;
  } while (s != start);
  return NULL;
}

static void rr_sub_state(crpc_channel *ch, crpc__subchannel *sc) {
  CRPC__UNUSED(sc);
  rr_aggregate(ch);
}

const crpc__lb_policy crpc__lb_round_robin = {
    .name = "round_robin",
    .update = rr_update,
    .pick = rr_pick,
    .sub_state = rr_sub_state,
    .exit_idle = rr_exit_idle,
};

const crpc__lb_policy *crpc__lb_find(const char *name) {
  if (!name || strcmp(name, "pick_first") == 0)
    return &crpc__lb_pick_first;
  if (strcmp(name, "round_robin") == 0)
    return &crpc__lb_round_robin;
  return NULL;
}
