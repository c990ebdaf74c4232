# Runs protoc-c and names_check (names_check.c) over PROTOS.
#   -DPROTOC= -DPROTOC_GEN_C= -DCHECKER= -DIMPORT_DIRS=a;b -DPROTOS=x;y
#   -DWORK_DIR=
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/out)
set(includes)
foreach(d ${IMPORT_DIRS})
  list(APPEND includes -I${d})
endforeach()
execute_process(
  COMMAND ${PROTOC} ${includes} --plugin=protoc-gen-c=${PROTOC_GEN_C}
          --c_out=${WORK_DIR}/out --include_imports
          --descriptor_set_out=${WORK_DIR}/set.pb ${PROTOS}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "protoc failed (${rc}):\n${err}")
endif()
execute_process(COMMAND ${CHECKER} ${WORK_DIR}/set.pb ${WORK_DIR}/out
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "names.c disagrees with protoc-c (see above)")
endif()
