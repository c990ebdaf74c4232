/*
 * interop_client.h: what the blocking cases (interop_client.c) and the
 * callback-API cases (interop_client_async.c, --async) of
 * crpc-interop-client share: the environment, the messages and the checks,
 * so that both modes check exactly the same things.
 */
#ifndef CRPC_INTEROP_CLIENT_H
#define CRPC_INTEROP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <crpc/crpc.h>

#include "flags.h"
#include "grpc/testing/test.crpc.h"

#define ECHO_INITIAL "x-grpc-test-echo-initial"
#define ECHO_TRAILING "x-grpc-test-echo-trailing-bin"
#define ECHO_INITIAL_VALUE "test_initial_metadata_value"

typedef Grpc__Testing__Empty Empty;
typedef Grpc__Testing__Payload Payload;
typedef Grpc__Testing__SimpleRequest SimpleRequest;
typedef Grpc__Testing__SimpleResponse SimpleResponse;
typedef Grpc__Testing__StreamingOutputCallRequest StreamingOutputCallRequest;
typedef Grpc__Testing__StreamingOutputCallResponse StreamingOutputCallResponse;
typedef Grpc__Testing__StreamingInputCallRequest StreamingInputCallRequest;
typedef Grpc__Testing__StreamingInputCallResponse StreamingInputCallResponse;
typedef Grpc__Testing__ResponseParameters ResponseParameters;

/* What every case gets: the channel and the command line. */
typedef struct env {
  const char *target;
  crpc_channel_opts chopts; /* with --async: .loop set */
  crpc_tls_opts tls;
  crpc_channel *ch;
  const interop_flag *flags;
  crpc_loop *loop; /* --async: the loop main() drives through the cases */
} env;

/* One case: its name as --test_case says it, and what runs it. */
typedef struct interop_case {
  const char *name;
  bool (*run)(env *);
} interop_case;

/* The callback-API cases (interop_client_async.c), ending with {NULL}. */
extern const interop_case interop_async_cases[];

/* Records why the case failed (the last call wins) and returns false. */
bool fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool expect_code(crpc_code got, const crpc_status *st, crpc_code want,
                 const char *what);
/* Echo Status: |code| must be UNKNOWN and the message exactly |message|. */
bool check_status(crpc_code code, const crpc_status *st, const char *message,
                  const char *what);

/* A payload of |n| zero bytes; free the body with free(). */
bool zeros(Payload *p, size_t n);
bool check_payload(const Payload *p, size_t size, const char *what);
/* large_unary's request: 271828 bytes out, 314159 back. */
bool large_request(SimpleRequest *req, Payload *payload);
/* A StreamingOutputCallRequest asking for one response of |resp_size|,
 * carrying |req_size| zero bytes (free payload->body.data). */
bool stream_request(StreamingOutputCallRequest *req, ResponseParameters *rp,
                    ResponseParameters **rpp, Payload *payload,
                    int32_t resp_size, size_t req_size);
/* Whether the last message read on |call| had the compressed flag as
 * |want| says. */
bool check_compressed(crpc_call *call, bool want, const char *what);
/* custom_metadata: the echoed header, and the echoed trailer. */
bool check_echoed_initial(const crpc_metadata *initial, const char *what);
bool check_echoed_trailing(const crpc_metadata *trailing, const char *what);

int64_t now_ms(void);

#endif /* CRPC_INTEROP_CLIENT_H */
