# Generates protoc-c's and crpc's code for PROTOS and compiles every file:
# crpc's with -Wall -Wextra -Werror -pedantic and more (our code must be
# clean); protoc-c's with -Wall -Wextra only, not -Werror nor -pedantic (not
# our code: for a service without methods it emits zero-size arrays).
# Compiles, does not link.
#   -DPROTOC= -DPROTOC_GEN_C= -DPLUGIN= -DCC= -DCRPC_INCLUDE=
#   -DEXTRA_INCLUDES=a;b -DIMPORT_DIRS=a;b -DPROTOS=x;y -DWORK_DIR=
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/out ${WORK_DIR}/obj)
set(includes)
foreach(d ${IMPORT_DIRS})
  list(APPEND includes -I${d})
endforeach()
execute_process(
  COMMAND ${PROTOC} ${includes} --plugin=protoc-gen-c=${PROTOC_GEN_C}
          --plugin=protoc-gen-crpc=${PLUGIN}
          --c_out=${WORK_DIR}/out --crpc_out=${WORK_DIR}/out ${PROTOS}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "protoc failed (${rc}):\n${err}")
endif()

set(cflags -std=c11 -Wall -Wextra -I${WORK_DIR}/out -I${CRPC_INCLUDE})
foreach(d ${EXTRA_INCLUDES})
  list(APPEND cflags -I${d})
endforeach()
set(strict -pedantic -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wcast-qual -Wconversion -Wredundant-decls -Wold-style-definition
    -Wundef)

file(GLOB_RECURSE crpc_sources ${WORK_DIR}/out/*.crpc.c)
file(GLOB_RECURSE pbc_sources ${WORK_DIR}/out/*.pb-c.c)
if(NOT crpc_sources)
  message(FATAL_ERROR "no .crpc.c generated for ${PROTOS}")
endif()
set(n 0)
foreach(src ${crpc_sources} ${pbc_sources})
  math(EXPR n "${n} + 1")
  set(flags ${cflags})
  if(src MATCHES "\\.crpc\\.c$")
    list(APPEND flags ${strict})
  endif()
  execute_process(
    COMMAND ${CC} ${flags} -c ${src} -o ${WORK_DIR}/obj/${n}.o
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${src} does not compile:\n${out}${err}")
  endif()
  if(src MATCHES "\\.crpc\\.c$" AND err)
    message(FATAL_ERROR "${src}: unexpected compiler output:\n${err}")
  endif()
endforeach()
list(LENGTH crpc_sources n_crpc)
message(STATUS "compiled ${n} files (${n_crpc} .crpc.c strict)")
