/*
 * intercept.h: the interceptor chains (crpc/interceptor.h) as the call
 * machinery runs them. A chain is a fixed array inside the channel or
 * server, read without a lock once calls run ([const after start]); a call
 * points at its side's chain and keeps two counters, so running it
 * allocates nothing.
 */
#ifndef CRPC_INTERCEPT_H
#define CRPC_INTERCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <crpc/interceptor.h>

typedef struct crpc__client_chain {
  crpc_client_interceptor ic[CRPC_MAX_INTERCEPTORS];
  void *ud[CRPC_MAX_INTERCEPTORS];
  unsigned n;
} crpc__client_chain;

typedef struct crpc__server_chain {
  crpc_server_interceptor ic[CRPC_MAX_INTERCEPTORS];
  void *ud[CRPC_MAX_INTERCEPTORS];
  unsigned n;
} crpc__server_chain;

/* ---- intercept_client.c ---- */
/* on_start of every interceptor, in order, on the starting thread; a
 * refusal fails the call at its first kick (nothing is sent). */
void crpc__icc_start(crpc_call *c);
/* on_send, in order, on the writer's thread; |*msg| may be replaced.
 * Returns CRPC_OK or the code to end the call with (the status is set and
 * a cancel requested; mu not held). */
crpc_code crpc__icc_send(crpc_call *c, const ProtobufCMessage **msg);
/* on_headers, reverse order [loop]. */
void crpc__icc_headers(crpc_call *c);
/* on_done, reverse order, before the end is published (mu not held). */
void crpc__icc_done(crpc_call *c, const crpc_status *st);

/* ---- intercept_server.c ---- */
/* on_start, in order, on the handler's thread: CRPC_OK, or the code the
 * call ends with (|*default_msg| says why when the hook set no message). */
crpc_code crpc__ics_start(crpc_call *c);
void crpc__ics_send(crpc_call *c, const ProtobufCMessage *msg);
/* on_finish, reverse order, once (whichever of completion and the
 * stream's end comes first). */
void crpc__ics_finish(crpc_call *c, crpc_code code);

/* Both sides: on_recv for a received message [loop]. */
void crpc__ic_recv(crpc_call *c, const uint8_t *data, size_t len,
                   bool compressed);

#endif
