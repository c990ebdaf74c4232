/*
 * channel_state.c: a channel's connectivity state as the program sees it
 * (crpc_channel_state, crpc_channel_watch_state): the policy's aggregate
 * (lb.c) published in an atomic for any thread, and one-shot watchers
 * whose callbacks run on the loop's own thread.
 */
#include <stdlib.h>

#include "client_internal.h"

struct crpc__state_watch {
  crpc__state_watch *next;
  crpc_channel *ch;
  int last_seen;
  int fire_state;
  crpc_channel_state_cb cb;
  void *ud;
  crpc__task task;
};

const char *crpc_connectivity_state_name(crpc_connectivity_state s) {
  switch (s) {
  case CRPC_CHANNEL_IDLE:
    return "IDLE";
  case CRPC_CHANNEL_CONNECTING:
    return "CONNECTING";
  case CRPC_CHANNEL_READY:
    return "READY";
  case CRPC_CHANNEL_TRANSIENT_FAILURE:
    return "TRANSIENT_FAILURE";
  case CRPC_CHANNEL_SHUTDOWN:
    return "SHUTDOWN";
  }
  return "UNKNOWN";
}

crpc_connectivity_state crpc_channel_state(crpc_channel *ch,
                                           int try_to_connect) {
  if (!ch)
    return CRPC_CHANNEL_SHUTDOWN;
  int st = atomic_load(&ch->pub_state);
  if (try_to_connect && st == CRPC_CHANNEL_IDLE)
    crpc__channel_kick_connect(ch);
  return (crpc_connectivity_state)st;
}

/* [loop's own thread] */
static void fire(void *arg) {
  crpc__state_watch *w = arg;
  crpc_channel *ch = w->ch;
  w->cb(ch, (crpc_connectivity_state)w->fire_state, w->ud);
  crpc__free(&ch->mem, w);
  pthread_mutex_lock(&ch->done_mu); /* crpc_channel_free waits for us */
  ch->fires--;
  pthread_cond_broadcast(&ch->done_cv);
  pthread_mutex_unlock(&ch->done_mu);
}

static void schedule_fire(crpc_channel *ch, crpc__state_watch *w, int st) {
  w->fire_state = st;
  w->task.fn = fire;
  w->task.arg = w;
  w->task.heap = false;
  pthread_mutex_lock(&ch->done_mu);
  ch->fires++;
  pthread_mutex_unlock(&ch->done_mu);
  crpc__loop_post_own(ch->loop, &w->task);
}

/* [loop] */
static void watch_add(void *arg) {
  crpc__state_watch *w = arg;
  crpc_channel *ch = w->ch;
  int st = atomic_load(&ch->pub_state);
  if (st != w->last_seen && !ch->shutting_down) {
    schedule_fire(ch, w, st);
    return;
  }
  w->next = ch->watches; /* SHUTDOWN, if it comes to that, at the free */
  ch->watches = w;
}

int crpc_channel_watch_state(crpc_channel *ch,
                             crpc_connectivity_state last_seen,
                             crpc_channel_state_cb cb, void *user_data) {
  if (!ch || !cb)
    return CRPC_EINVAL;
  crpc__state_watch *w = crpc__calloc(&ch->mem, 1, sizeof *w);
  if (!w)
    return CRPC_ENOMEM;
  w->ch = ch;
  w->last_seen = (int)last_seen;
  w->cb = cb;
  w->ud = user_data;
  w->task.fn = watch_add;
  w->task.arg = w;
  w->task.heap = false;
  crpc__loop_post_task(ch->loop, &w->task);
  return 0;
}

void crpc__channel_publish_state(crpc_channel *ch, int st) {
  atomic_store(&ch->pub_state, st);
  crpc__state_watch **pp = &ch->watches;
  while (*pp) {
    crpc__state_watch *w = *pp;
    if (w->last_seen != st) {
      *pp = w->next;
      schedule_fire(ch, w, st);
    } else {
      pp = &w->next;
    }
  }
}

void crpc__channel_watches_shutdown(crpc_channel *ch) {
  atomic_store(&ch->pub_state, (int)CRPC_CHANNEL_SHUTDOWN);
  while (ch->watches) {
    crpc__state_watch *w = ch->watches;
    ch->watches = w->next;
    w->cb(ch, CRPC_CHANNEL_SHUTDOWN, w->ud);
    crpc__free(&ch->mem, w);
  }
}
