/*
 * client_cb.c: the callback (reactor) face of a client call
 * (crpc_call_start_cb): the same call machinery as the blocking API, with
 * the events a blocked reader or writer would wait for (headers, each
 * message, the write leaving, the end) delivered as callbacks on the
 * loop's own thread instead.
 */
#include <string.h>

#include "call_internal.h"

/* The callbacks, on the loop's own thread: everything that happened since
 * the last run, in order. */
static void cb_run(void *arg) {
  crpc_call *c = arg;
  const crpc_call_callbacks *cb = c->cb;
  ProtobufCAllocator *alloc = c->alloc ? c->alloc : &c->pbc;
  pthread_mutex_lock(&c->mu);
  c->cb_queued = false;
  while (!c->cb_finished) {
    if (c->cb_freed) {
      /* the program let go: drop what came, finish when the call ends */
      crpc__msgq_clear(&c->recvq, &c->mem);
      if (!c->done)
        break;
      c->cb_finished = true;
      pthread_mutex_unlock(&c->mu);
      crpc__loop_background(c->loop, -1);
      crpc__call_unref(c); /* the machinery's */
      pthread_mutex_lock(&c->mu);
      break;
    }
    if (!c->cb_headers && c->got_headers && c->http_status) {
      c->cb_headers = true;
      if (cb->on_headers) {
        pthread_mutex_unlock(&c->mu);
        cb->on_headers(c, c->recv_md, c->cb_ud);
        pthread_mutex_lock(&c->mu);
      }
      continue;
    }
    if (c->cancel_requested || c->cancelled) /* cancelled: nothing more */
      crpc__msgq_clear(&c->recvq, &c->mem);
    crpc__msgbuf *m = crpc__msgq_pop(&c->recvq);
    if (m) {
      c->last_read_compressed = m->compressed; /* for on_message to ask */
      c->to_consume += m->len + 5;
      if (c->uncredited &&
          (c->to_consume >= CRPC__CONSUME_BATCH || !c->recvq.head))
        crpc__call_kick_locked(c); /* credit the window back */
      pthread_mutex_unlock(&c->mu);
      ProtobufCMessage *msg = NULL;
      crpc_status st = {0};
      crpc_code code = crpc__unframe_message(&c->mem, c->method->output,
                                             alloc, m, c->recv_enc,
                                             c->max_recv, &msg, &st);
      crpc__msgpool_put(&c->msgpool, &c->mem, m);
      if (code == CRPC_OK && cb->on_message)
        cb->on_message(c, msg, c->cb_ud);
      if (msg)
        protobuf_c_message_free_unpacked(msg, alloc);
      pthread_mutex_lock(&c->mu);
      if (code != CRPC_OK && !c->done) {
        /* a message we cannot use ends the call with the spec's status */
        crpc__status_move(&c->status, &st);
        c->cancel_requested = true;
        crpc__call_kick_locked(c);
      }
      crpc_status_clear(&st);
      continue;
    }
    if (c->write_pending && (c->write_done || c->done)) {
      bool ok = c->write_done;
      c->write_pending = c->write_done = false;
      if (cb->on_write_done) {
        pthread_mutex_unlock(&c->mu);
        cb->on_write_done(c, ok, c->cb_ud);
        pthread_mutex_lock(&c->mu);
      }
      continue;
    }
    if (!c->done)
      break;
    c->cb_finished = true;
    crpc_status st = {0};
    st.code = c->status.code;
    st.message = c->status.message; /* lent: the call keeps its status */
    st.details = c->status.details;
    st.details_len = c->status.details_len;
    pthread_mutex_unlock(&c->mu);
    crpc__call_ref(c); /* on_done may free the program's reference */
    cb->on_done(c, &st, c->cb_ud);
    crpc__loop_background(c->loop, -1);
    crpc__call_unref(c); /* the machinery's */
    crpc__call_unref(c);
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  crpc__call_unref(c); /* the task's */
}

void crpc__call_cb_schedule(crpc_call *c) {
  if (c->cb_queued || c->cb_finished)
    return;
  c->cb_queued = true;
  crpc__call_ref(c); /* the task's */
  c->cb_task.fn = cb_run;
  c->cb_task.arg = c;
  c->cb_task.heap = false;
  crpc__loop_post_own(c->loop, &c->cb_task);
}

int crpc_call_start_cb(crpc_call **out, crpc_channel *ch, const crpc_method *m,
                       const crpc_call_opts *opts,
                       const crpc_call_callbacks *cbs, void *user_data) {
  if (!out || !cbs || !cbs->on_done)
    return CRPC_EINVAL;
  crpc_call *c;
  int rv = crpc__client_new_call(&c, ch, m, opts);
  if (rv != 0)
    return rv;
  c->cb_copy = crpc__malloc(&c->mem, sizeof *c->cb_copy);
  if (!c->cb_copy) {
    crpc__call_unref(c);
    return CRPC_ENOMEM;
  }
  *c->cb_copy = *cbs;
  c->cb = c->cb_copy;
  c->cb_ud = user_data;
  crpc__call_ref(c); /* the machinery's, until on_done */
  crpc__loop_background(c->loop, +1); /* nobody waits on a thread */
  *out = c;
  crpc__client_start(c);
  return 0;
}
