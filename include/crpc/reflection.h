/**
 * \file
 * reflection.h: gRPC server reflection, grpc.reflection.v1 and v1alpha,
 * built in.
 *
 * grpcurl, Postman, Evans and gRPC's own reflection clients ask a server
 * which services it has and for the .proto descriptors of their files, so
 * that they can call them without the .proto files at hand. One call turns
 * that on for everything registered on a server:
 *
 *   crpc_server_new(&server, NULL);
 *   helloworld__greeter__crpc_register(server, &handlers, NULL);
 *   crpc_server_enable_reflection(server);   // before crpc_server_start()
 *   crpc_server_start(server);
 *
 * The descriptors come from the generated code: protoc-gen-crpc embeds the
 * serialized FileDescriptorProto of each file that declares a service and
 * of every file it imports, transitively (the well-known types
 * google/protobuf/\*.proto included), and the generated crpc_service points
 * at them (crpc_service.file). crpc's own services (grpc.health.v1.Health,
 * the reflection services themselves) are described too.
 *
 * What the service answers, on /grpc.reflection.v1.ServerReflection/
 * ServerReflectionInfo and the same path under grpc.reflection.v1alpha
 * (one bidirectional stream, any number of requests, each answered in
 * order):
 *  - list_services: every service with a method registered on the server,
 *    whether or not its descriptor is known;
 *  - file_by_filename: the file of that exact name ("helloworld.proto", as
 *    protoc named it) and every file it imports, transitively;
 *  - file_containing_symbol: the same for the file that defines a fully
 *    qualified service, method, message (nested ones too), field, oneof,
 *    enum, enum value or extension ("helloworld.Greeter.SayHello");
 *  - file_containing_extension, all_extension_numbers_of_type: extensions
 *    declared in those files;
 *  - anything unknown gets an error_response NOT_FOUND (a request of a kind
 *    this version does not know: UNIMPLEMENTED), and the stream goes on.
 * Names are looked up, never used as paths: nothing is read from disk.
 *
 * The handler never blocks: it runs on the reactor, once per request, and
 * its responses are queued against the server's output budgets: a stream
 * whose client sends requests without reading the answers, until its
 * connection has crpc_server_opts.max_conn_output_bytes queued, is ended
 * with RESOURCE_EXHAUSTED, so it holds neither memory nor a thread.
 * The descriptors are parsed once, on the first request.
 */
#ifndef CRPC_REFLECTION_H
#define CRPC_REFLECTION_H

#include <crpc/common.h>
#include <crpc/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Registers the reflection services (v1 and v1alpha) on |s|, describing
 * every service registered on |s| by the time it starts, before or after
 * this call. Before crpc_server_start(). Their state is freed with the
 * server.
 *
 * Returns 0, CRPC_EINVAL (|s| NULL), CRPC_EEXIST (already enabled, or a
 * reflection method is registered already), CRPC_ESTATE (|s| started) or
 * CRPC_ENOMEM.
 *
 * Thread safety: the thread that sets |s| up.
 */
CRPC_API int crpc_server_enable_reflection(crpc_server *s);

#ifdef __cplusplus
}
#endif
#endif /* CRPC_REFLECTION_H */
