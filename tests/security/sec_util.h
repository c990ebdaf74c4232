/*
 * sec_util.h: what the security tests share: the test PKI made by
 * make_test_certs.sh, and an in-process crpc server of the helloworld
 * Greeter plus two streaming methods over the same messages.
 */
#ifndef SEC_UTIL_H
#define SEC_UTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <crpc/crpc.h>

#include "helloworld.crpc.h"

#define SEC_TMO 10000 /* ms: any wait longer than this is a failure */

/* The directory the certificates are in: argv[1] or $CRPC_TEST_CERTS.
 * Exits when neither is set. */
void sec_init(int argc, char **argv);
/* "<certs>/<file>"; the string stays valid for the next 15 calls. */
const char *sec_path(const char *file);

/* Server streaming: request name "N:SIZE" gets N replies of SIZE bytes.
 * Bidi: each request name comes back prefixed with "echo:". */
extern const crpc_method sec_stream_method;
extern const crpc_method sec_bidi_method;
/* Unary: the request's name is a size N; the reply's message is N bytes. */
extern const crpc_method sec_big_method;


typedef struct sec_server {
  crpc_server *srv;
  int port;
  atomic_int calls; /* handler invocations */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long writes;     /* [mu] messages the streaming handler has written */
  int streams_done; /* [mu] streaming handlers that returned */
} sec_server;

/*
 * Starts a server on 127.0.0.1:0 with |opts| (may be NULL), |tls| (NULL:
 * clear text) and an optional auth hook. SayHello answers "Hello NAME" and
 * reports what it saw in trailers: x-peer-tls ("1"/"0"), x-peer-subject
 * (or "-"), x-peer-sans (comma-joined), x-authorization (or "-").
 * Returns 0 or a CRPC_E* code from listen.
 */
int sec_server_start(sec_server *s, const crpc_server_opts *opts,
                     const crpc_tls_server_opts *tls, crpc_auth_hook hook,
                     void *hook_ud);
void sec_server_stop(sec_server *s);

/* Waits until the streaming handler has written nothing for |stall_ms|
 * (it is blocked by back-pressure), at most |timeout_ms|. Returns the
 * number of messages written so far. */
long sec_wait_stall(sec_server *s, int stall_ms, int timeout_ms);
/* Waits until |n| streaming handlers have returned; false on timeout. */
bool sec_wait_streams_done(sec_server *s, int n, int timeout_ms);
/* Waits until /sec.Test/Big has been invoked |n| times in all. */
bool sec_wait_calls(sec_server *s, int n, int timeout_ms);

/* "localhost:PORT" or "127.0.0.1:PORT" into a static buffer per call. */
const char *sec_target(const char *host, int port);

/* One SayHello on |ch| with |copts| (may be NULL); fills |st| and, if
 * |trailers| is not NULL, appends the trailers to it. The reply message is
 * checked to be "Hello <name>" when the code is OK. */
crpc_code sec_hello(crpc_channel *ch, const crpc_call_opts *copts,
                    const char *name, crpc_metadata *trailers,
                    crpc_status *st);

/* A trailer's value as a C string ("" when absent), into a static
 * buffer. */
const char *sec_md(const crpc_metadata *md, const char *key);

#endif
