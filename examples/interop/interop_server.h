/*
 * interop_server.h: what the threaded server (interop_server.c) and the
 * --async one (interop_server_async.c) of crpc-interop-server share: the
 * checks and echoes of gRPC's interop description, and the unary handlers,
 * which never block and so serve both.
 */
#ifndef CRPC_INTEROP_SERVER_H
#define CRPC_INTEROP_SERVER_H

#include <stdbool.h>

#include <crpc/crpc.h>

#include "grpc/testing/test.crpc.h"

#define ECHO_INITIAL "x-grpc-test-echo-initial"
#define ECHO_TRAILING "x-grpc-test-echo-trailing-bin"

typedef Grpc__Testing__SimpleRequest SimpleRequest;
typedef Grpc__Testing__SimpleResponse SimpleResponse;
typedef Grpc__Testing__StreamingOutputCallRequest StreamingOutputCallRequest;
typedef Grpc__Testing__StreamingOutputCallResponse StreamingOutputCallResponse;
typedef Grpc__Testing__StreamingInputCallRequest StreamingInputCallRequest;
typedef Grpc__Testing__StreamingInputCallResponse StreamingInputCallResponse;
typedef Grpc__Testing__ResponseParameters ResponseParameters;

/* Logs a failed crpc call (rv != 0) to stderr. */
void log_rv(const char *what, int rv);
/* Echo Metadata: the test keys back in the headers and the trailers. */
void echo_metadata(crpc_call *call);
/* Echo Status: true, with *code, when |es| asks for a non-OK status. */
bool echo_status(crpc_call *call, const Grpc__Testing__EchoStatus *es,
                 crpc_code *code);
/* CompressedRequest: INVALID_ARGUMENT when |expect| is true and the last
 * request read was not compressed. */
crpc_code check_compression(crpc_call *call,
                            const Grpc__Testing__BoolValue *expect);
/* CompressedResponse: the encoding of the call's responses (before the
 * first one). */
crpc_code set_response_compression(crpc_call *call, bool compress);
/* A response size the server agrees to make. */
bool payload_size_ok(crpc_call *call, int32_t size);

crpc_code empty_call(crpc_call *call, const Grpc__Testing__Empty *req,
                     Grpc__Testing__Empty *resp, void *user_data);
crpc_code unary_call(crpc_call *call, const SimpleRequest *req,
                     SimpleResponse *resp, void *user_data);
crpc_code cacheable_unary_call(crpc_call *call, const SimpleRequest *req,
                               SimpleResponse *resp, void *user_data);

/*
 * --async: serves every method on |server|, created on |loop| (no crpc
 * thread), with NONBLOCKING handlers, and drives the loop from the
 * calling thread, together with the program's own timers and |sigfd| (a
 * signalfd for the stop signals), until a signal comes. Then shuts the
 * server down gracefully. Returns 0, or 1 after printing why.
 */
int interop_register_async(crpc_server *server);
int interop_run_async(crpc_loop *loop, crpc_server *server, int sigfd);

#endif /* CRPC_INTEROP_SERVER_H */
