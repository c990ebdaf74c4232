# cmake -DNM=nm -DSHARED=libcrpc.so [-DSANITIZE=ON] -P check_exports.cmake
#
# libcrpc.so exports crpc_* and nothing else (crpc__* is the library's
# private namespace: the renamed health bindings, internal helpers). In a
# sanitizer build the instrumentation's own symbols are tolerated.
execute_process(COMMAND ${NM} -D --defined-only ${SHARED}
  OUTPUT_VARIABLE out RESULT_VARIABLE rv)
if(NOT rv EQUAL 0)
  message(FATAL_ERROR "check_exports: ${NM} -D --defined-only ${SHARED} failed")
endif()
string(REPLACE "\n" ";" lines "${out}")
set(bad)
set(n 0)
foreach(l ${lines})
  string(REGEX REPLACE "^.* " "" sym "${l}")
  if(sym STREQUAL "")
    continue()
  endif()
  if(sym MATCHES "^crpc_[a-z0-9]")
    math(EXPR n "${n} + 1")
  elseif(SANITIZE AND sym MATCHES "^(__asan|__odr_asan|__ubsan|__sanitizer|__lsan)")
  else()
    list(APPEND bad "${sym}")
  endif()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "libcrpc.so exports symbols outside crpc_*:\n  ${bad}\n"
    "Make them static, or keep CRPC_API off them (lib/ is built with "
    "-fvisibility=hidden).")
endif()
if(n LESS 10)
  message(FATAL_ERROR "libcrpc.so exports only ${n} crpc_* symbols: this "
                      "check no longer looks at the right library")
endif()
message(STATUS "libcrpc.so exports ${n} symbols, all crpc_*")
