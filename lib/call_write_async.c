/*
 * call_write_async.c: crpc_call_write_async(), one message in flight with
 * a write-done callback (gRPC's callback API's backpressure), for both
 * sides: a client callback call (the callback is its on_write_done, run
 * by client_cb.c) and a server call whose handler registered one with
 * crpc_call_on_write_done() (run here).
 */
#include "call_internal.h"
#include "intercept.h"

/* [loop's own thread] the server call's write finished or can no longer
 * finish. */
static void wd_run(void *arg) {
  crpc_call *c = arg;
  pthread_mutex_lock(&c->mu);
  c->wd_queued = false;
  crpc_write_done_cb cb = c->wd_cb;
  void *ud = c->wd_ud;
  bool due = c->write_pending && (c->write_done || c->done);
  bool ok = c->write_done;
  if (due)
    c->write_pending = c->write_done = false;
  pthread_mutex_unlock(&c->mu);
  if (due && cb)
    cb(c, ok, ud);
  crpc__call_unref(c); /* the task's */
}

void crpc__call_wd_schedule(crpc_call *c) {
  if (c->wd_queued || !c->wd_cb)
    return;
  c->wd_queued = true;
  crpc__call_ref(c); /* the task's */
  c->wd_task.fn = wd_run;
  c->wd_task.arg = c;
  c->wd_task.heap = false;
  crpc__loop_post_own(c->loop, &c->wd_task);
}

int crpc_call_on_write_done(crpc_call *c, crpc_write_done_cb cb,
                            void *user_data) {
  if (!c || !c->is_server)
    return CRPC_EINVAL;
  pthread_mutex_lock(&c->mu);
  c->wd_cb = cb;
  c->wd_ud = user_data;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

int crpc_call_write_async(crpc_call *c, const ProtobufCMessage *msg,
                          unsigned flags) {
  if (!c || !msg)
    return CRPC_EINVAL;
  pthread_mutex_lock(&c->mu);
  bool able = c->is_server ? c->wd_cb != NULL : c->cb != NULL;
  bool busy = c->write_pending || c->send_closed || c->done ||
              c->cancel_requested;
  pthread_mutex_unlock(&c->mu);
  if (!able)
    return CRPC_EINVAL;
  if (busy)
    return CRPC_ESTATE;
  if (c->is_server) {
    crpc__ics_send(c, msg);
  } else if (crpc__icc_send(c, &msg) != CRPC_OK) {
    crpc__call_kick(c); /* the call ends with the interceptor's status */
    return CRPC_ESTATE;
  }
  crpc__encoding enc = (flags & CRPC_WRITE_NO_COMPRESS) ? CRPC__ENC_IDENTITY
                                                         : c->send_enc;
  crpc__msgbuf *mb;
  int rv = crpc__frame_message(&c->mem, &c->msgpool, msg, enc, c->max_send,
                               &mb);
  if (rv != 0) {
    pthread_mutex_lock(&c->mu);
    if (!c->done && !c->send_closed) {
      if (rv == CRPC_ETOOBIG)
        crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                         "message larger than the send limit (%zu)",
                         c->max_send);
      else
        crpc__status_set(&c->status, CRPC_RESOURCE_EXHAUSTED,
                         "out of memory packing a message");
      if (c->is_server) /* the status to send: later writes fail */
        c->send_closed = true;
      else
        c->cancel_requested = true;
      crpc__call_kick_locked(c);
    }
    pthread_mutex_unlock(&c->mu);
    return rv;
  }
  pthread_mutex_lock(&c->mu);
  if (c->write_pending || c->send_closed || c->done || c->cancel_requested) {
    pthread_mutex_unlock(&c->mu);
    crpc__msgpool_put(&c->msgpool, &c->mem, mb);
    return CRPC_ESTATE;
  }
  c->write_pending = true;
  c->write_done = false;
  crpc__call_sendq_push(c, mb);
  c->wrote_any = true; /* a server's response headers go with it */
  if (c->is_server) {
    crpc__call_kick_locked(c);
    pthread_mutex_unlock(&c->mu);
  } else {
    pthread_mutex_unlock(&c->mu);
    crpc__call_kick(c); /* the message may leave from this thread */
  }
  return 0;
}
