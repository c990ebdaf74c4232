/**
 * \file
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

/** One RPC, client or server side (call.h). Opaque; created by
 * crpc_call_start() and the generated stubs, or by the server for a
 * handler. */
typedef struct crpc_call crpc_call;

/** The four kinds of RPC, from whether each side streams. */
typedef enum crpc_method_kind {
  CRPC_UNARY = 0,            /**< one request, one response */
  CRPC_SERVER_STREAMING = 1, /**< one request, a stream of responses */
  CRPC_CLIENT_STREAMING = 2, /**< a stream of requests, one response */
  CRPC_BIDI_STREAMING = 3    /**< streams both ways */
} crpc_method_kind;

/**
 * One method, as generated code describes it (the generated
 * `pkg__service__crpc_methods[]` tables). Static data: crpc keeps the
 * pointer, which must outlive every channel call and server using it.
 */
typedef struct crpc_method {
  const char *path;      /**< "/helloworld.Greeter/SayHello", as on the wire */
  crpc_method_kind kind; /**< unary or which side streams */
  const ProtobufCMessageDescriptor *input;  /**< protoc-c's descriptor of
                                                 the request message */
  const ProtobufCMessageDescriptor *output; /**< protoc-c's descriptor of
                                                 the response message */
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

/**
 * A .proto file, as generated code embeds it for server reflection
 * (crpc/reflection.h): its serialized google.protobuf.FileDescriptorProto,
 * as protoc parsed it (without source_code_info), and the records of the
 * files it imports. protoc-gen-crpc emits one for the file that declares a
 * service and one for every file that file imports, transitively, the
 * well-known types (google/protobuf/\*.proto) included. Static data: crpc
 * keeps pointers into it.
 */
typedef struct crpc_file_descriptor {
  const char *name;    /**< "helloworld.proto": its path as protoc saw it
                          (below its -I directory), which is how other
                          files import it */
  const uint8_t *data; /**< the serialized FileDescriptorProto */
  size_t size;         /**< bytes at |data| */
  size_t n_deps;       /**< entries in |deps| */
  const struct crpc_file_descriptor *const *deps; /**< the files it imports,
                                                     in the order of its
                                                     dependency list */
} crpc_file_descriptor;

/**
 * A service, as generated code describes it (`pkg__service__crpc_service`):
 * its methods and the trampolines that call the typed handler table given
 * to crpc_server_register_service(). Static data, kept by the server.
 */
typedef struct crpc_service {
  const char *name;           /**< "helloworld.Greeter" */
  size_t n_methods;           /**< entries in |methods| and |trampolines| */
  const crpc_method *methods; /**< the methods, in .proto order */
  const crpc_method_trampoline *trampolines; /**< n_methods entries */
  size_t handlers_size; /**< sizeof the generated typed handler table */
  const ProtobufCServiceDescriptor *pbc; /**< protoc-c's; may be NULL */
  const crpc_file_descriptor *file; /**< the file declaring the service,
                                       for reflection; NULL: none (code
                                       from an older protoc-gen-crpc) */
} crpc_service;

#ifdef __cplusplus
}
#endif
#endif /* CRPC_METHOD_H */
