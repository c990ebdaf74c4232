# Regenerates the edge-case protos' .crpc.h/.c and compares them with the
# committed golden files.
#
# To update the golden files after an intended change to the generated code:
#   CRPC_UPDATE_GOLDEN=1 ctest --test-dir <build> -R plugin_golden
# then review `git diff tests/plugin/golden` and commit it.
#
#   -DPROTOC= -DPLUGIN= -DIMPORT_DIRS=a;b -DPROTOS=x;y -DGOLDEN_DIR=
#   -DWORK_DIR=
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(includes)
foreach(d ${IMPORT_DIRS})
  list(APPEND includes -I${d})
endforeach()
execute_process(
  COMMAND ${PROTOC} ${includes} --plugin=protoc-gen-crpc=${PLUGIN}
          --crpc_out=${WORK_DIR} ${PROTOS}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "protoc/protoc-gen-crpc failed (${rc}):\n${err}")
endif()

file(GLOB_RECURSE generated RELATIVE ${WORK_DIR} ${WORK_DIR}/*.crpc.*)
list(SORT generated)
if(NOT generated)
  message(FATAL_ERROR "nothing generated in ${WORK_DIR}")
endif()

if(DEFINED ENV{CRPC_UPDATE_GOLDEN} AND NOT "$ENV{CRPC_UPDATE_GOLDEN}" STREQUAL "")
  file(GLOB_RECURSE old ${GOLDEN_DIR}/*.crpc.*)
  if(old)
    file(REMOVE ${old})
  endif()
  foreach(f ${generated})
    get_filename_component(dir ${GOLDEN_DIR}/${f} DIRECTORY)
    file(COPY ${WORK_DIR}/${f} DESTINATION ${dir})
  endforeach()
  message(STATUS "golden files updated in ${GOLDEN_DIR}: ${generated}")
  return()
endif()

file(GLOB_RECURSE golden RELATIVE ${GOLDEN_DIR} ${GOLDEN_DIR}/*.crpc.*)
list(SORT golden)
if(NOT generated STREQUAL golden)
  message(FATAL_ERROR "generated files (${generated}) differ from the golden "
                      "set (${golden})")
endif()
find_program(DIFF diff)
set(failed FALSE)
foreach(f ${generated})
  file(READ ${WORK_DIR}/${f} got)
  file(READ ${GOLDEN_DIR}/${f} want)
  if(NOT got STREQUAL want)
    set(failed TRUE)
    message("---- ${f} differs from tests/plugin/golden/${f}")
    if(DIFF)
      execute_process(COMMAND ${DIFF} -u ${GOLDEN_DIR}/${f} ${WORK_DIR}/${f})
    endif()
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "generated code differs from the golden files; if the "
    "change is intended: CRPC_UPDATE_GOLDEN=1 ctest -R plugin_golden")
endif()
