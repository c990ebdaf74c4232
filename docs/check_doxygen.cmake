# cmake -DDOXYGEN= -DDOXYFILE= -DOUT= -P check_doxygen.cmake
# Runs Doxygen over include/crpc/ and fails on any warning, printing them.
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${DOXYGEN} ${DOXYFILE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(log "")
if(EXISTS ${OUT}/warnings.log)
  file(READ ${OUT}/warnings.log log)
endif()
string(REGEX MATCHALL "(warning|error): " w "${log}${err}")
list(LENGTH w n)
if(NOT rc EQUAL 0 OR n GREATER 0)
  message(FATAL_ERROR "Doxygen: ${n} warnings (exit ${rc}); document what "
    "they name in include/crpc/ (/** ... */ before it, /**< ... */ after a "
    "member):\n${log}${err}")
endif()
message(STATUS "Doxygen: no warnings; reference in ${OUT}/html")
