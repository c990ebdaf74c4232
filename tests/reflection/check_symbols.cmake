# cmake -DNM=nm -DSTATIC=libcrpc.a -P check_symbols.cmake
#
# libcrpc's private bindings of descriptor.proto and reflection.proto are
# renamed (crpc__pb__*, crpc__reflection_v1__*): a user's own
# descriptor.pb-c.c or reflection.pb-c.c must never meet a definition of
# the same name in libcrpc.a.
execute_process(COMMAND ${NM} -g --defined-only ${STATIC}
  OUTPUT_VARIABLE out RESULT_VARIABLE rv)
if(NOT rv EQUAL 0)
  message(FATAL_ERROR "check_symbols: ${NM} ${STATIC} failed")
endif()
if(out MATCHES " (google__protobuf__|grpc__reflection__)[a-z0-9_]*")
  message(FATAL_ERROR "libcrpc.a defines ${CMAKE_MATCH_0}: the reflection "
                      "bindings were not renamed")
endif()
if(NOT out MATCHES "crpc__pb__file_descriptor_proto__descriptor" OR
   NOT out MATCHES "crpc__reflection_v1__server_reflection_request__descriptor")
  message(FATAL_ERROR "libcrpc.a has no renamed reflection bindings: this "
                      "check no longer looks at the right thing")
endif()
