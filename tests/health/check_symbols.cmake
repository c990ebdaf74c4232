# cmake -DNM=nm -DSTATIC=libcrpc.a -DSHARED=libcrpc.so -P check_symbols.cmake
#
# libcrpc carries its own protobuf-c bindings of grpc.health.v1, renamed to
# crpc__health_v1__*: a user's grpc__health__v1__* (from their own
# health.pb-c.c) must never meet a definition of the same name in
# libcrpc.a, and the shared library must not export the bindings at all.
foreach(v NM STATIC SHARED)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_symbols: -D${v}=... missing")
  endif()
endforeach()

execute_process(COMMAND ${NM} -g --defined-only ${STATIC}
  OUTPUT_VARIABLE out RESULT_VARIABLE rv)
if(NOT rv EQUAL 0)
  message(FATAL_ERROR "check_symbols: ${NM} ${STATIC} failed")
endif()
if(out MATCHES "grpc__health__v1__[a-z_]*")
  message(FATAL_ERROR "libcrpc.a defines ${CMAKE_MATCH_0}: the health "
                      "bindings were not renamed")
endif()
if(NOT out MATCHES "crpc__health_v1__health_check_request__descriptor")
  message(FATAL_ERROR "libcrpc.a has no crpc__health_v1__ bindings: "
                      "this check no longer looks at the right thing")
endif()

execute_process(COMMAND ${NM} -D --defined-only ${SHARED}
  OUTPUT_VARIABLE out RESULT_VARIABLE rv)
if(NOT rv EQUAL 0)
  message(FATAL_ERROR "check_symbols: ${NM} -D ${SHARED} failed")
endif()
if(out MATCHES "[a-z_]*health_v1__[a-z_]*")
  message(FATAL_ERROR "libcrpc.so exports ${CMAKE_MATCH_0}")
endif()
foreach(f crpc_health_new crpc_health_free crpc_health_register
          crpc_health_set crpc_health_shutdown)
  if(NOT out MATCHES " T ${f}\n")
    message(FATAL_ERROR "libcrpc.so does not export ${f}")
  endif()
endforeach()
message(STATUS "health symbols: ok")
