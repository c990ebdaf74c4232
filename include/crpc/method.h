/*
 * method.h: what generated code hands the runtime. A method is its full
 * path, its kind and protoc-c's message descriptors; a service is a table
 * of methods plus the trampolines that adapt a typed handler table.
 */
#ifndef CRPC_METHOD_H
#define CRPC_METHOD_H

#include <protobuf-c/protobuf-c.h>

#include <crpc/common.h>
#include <crpc/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crpc_call crpc_call;

typedef enum crpc_method_kind {
  CRPC_UNARY = 0,
  CRPC_SERVER_STREAMING = 1,
  CRPC_CLIENT_STREAMING = 2,
  CRPC_BIDI_STREAMING = 3
} crpc_method_kind;

typedef struct crpc_method {
  const char *path; /* "/helloworld.Greeter/SayHello" */
  crpc_method_kind kind;
  const ProtobufCMessageDescriptor *input;  /* protoc-c's descriptor */
  const ProtobufCMessageDescriptor *output; /* protoc-c's descriptor */
} crpc_method;

/**
 * A server handler. |req| is the unpacked request for unary and server
 * streaming methods (NULL otherwise; read with crpc_call_read()); it is
 * borrowed until the handler returns. |resp| is a crpc-owned response,
 * initialised with the output descriptor's message_init, for unary and
 * client streaming methods (NULL otherwise; write with crpc_call_write()); it
 * is packed after the handler returns, so its pointers must stay valid until
 * then: point them at static data or crpc_call_arena_alloc() memory. The
 * return value is the call's status (message: crpc_call_set_status_message).
 */
typedef crpc_code (*crpc_handler)(crpc_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, void *user_data);

/**
 * How generated code adapts a typed handler table to crpc_handler:
 * |handlers| is the server's copy of the typed table.
 */
typedef crpc_code (*crpc_method_trampoline)(crpc_call *call,
                                            const void *handlers,
                                            const ProtobufCMessage *req,
                                            ProtobufCMessage *resp,
                                            void *user_data);

typedef struct crpc_service {
  const char *name; /* "helloworld.Greeter" */
  size_t n_methods;
  const crpc_method *methods;
  const crpc_method_trampoline *trampolines; /* n_methods entries */
  size_t handlers_size; /* sizeof the generated typed handler table */
  const ProtobufCServiceDescriptor *pbc; /* protoc-c's; may be NULL */
} crpc_service;

#ifdef __cplusplus
}
#endif
#endif /* CRPC_METHOD_H */
