# cmake -DPLUGIN=protoc-gen-crpc -DSRC_DIR=protoc-gen-crpc -P check_help.cmake
#
# Every error protoc-gen-crpc can emit is listed, with its fix, in its man
# page (protoc-gen-crpc.1) and in `protoc-gen-crpc --help`. Each phrase
# below must appear in the sources (outside the help text), in --help and
# in the man page. The number of places in the sources that produce an
# error is pinned too: a new error message fails this test until it is
# documented in all three places (and counted here).
set(phrases
  "collides with"
  "a C keyword"
  "takes no options"
  "protoc-c generates no code for this file"
  "for which protoc-c generates no code"
  "is not a message of the request"
  "has no %s type|has no input|output type"
  "has no valid name"
  "has no valid C name"
  "without a valid name"
  "the package name is not a dotted identifier"
  "is not a dotted identifier"
  "the file name cannot be used in an #include"
  "the file name cannot be used in a C string"
  "an import cycle"
  "malformed protobuf-c option (extension 1019)"
  "is not in the request"
  "a file in the request has no name"
  "stdin is not a CodeGeneratorRequest"
  "request larger than 512 MiB"
  "reading stdin"
  "writing stdout")
set(expected_sites 27)

file(READ ${SRC_DIR}/main.c main_c)
string(REGEX REPLACE "static const char help_text\\[\\].*int main\\(" ""
       main_c "${main_c}")
file(READ ${SRC_DIR}/model.c model_c)
file(READ ${SRC_DIR}/names.c names_c)
set(sources "${main_c}${model_c}${names_c}")
# Adjacent string literals ("a " "b") read as one.
string(REGEX REPLACE "\"[ \n]*\"" "" sources "${sources}")

execute_process(COMMAND ${PLUGIN} --help OUTPUT_VARIABLE help
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "protoc-gen-crpc --help exited ${rc}")
endif()
string(REGEX REPLACE "[ \n]+" " " help "${help}")
file(READ ${SRC_DIR}/protoc-gen-crpc.1 man)
string(REGEX REPLACE "\\\\f[BIRP]" "" man "${man}")
string(REPLACE "\\-" "-" man "${man}")
string(REPLACE "\\(dq" "\"" man "${man}")
string(REGEX REPLACE "\n\\.[A-Z]+ ?" " " man "${man}")
string(REGEX REPLACE "[ \n]+" " " man "${man}")

set(missing)
foreach(p ${phrases})
  # "a|b": a in the sources, b in the docs.
  string(FIND "${p}" "|has no input" bar)
  if(bar GREATER -1)
    set(in_src "has no %s type")
    set(in_doc "has no input|output type")
  else()
    set(in_src "${p}")
    set(in_doc "${p}")
  endif()
  string(FIND "${sources}" "${in_src}" i)
  if(i EQUAL -1)
    list(APPEND missing "'${in_src}' is no longer in the sources: reword this test, --help and the man page")
  endif()
  string(FIND "${help}" "${in_doc}" i)
  if(i EQUAL -1)
    list(APPEND missing "'${in_doc}' is not in protoc-gen-crpc --help")
  endif()
  string(FIND "${man}" "${in_doc}" i)
  if(i EQUAL -1)
    list(APPEND missing "'${in_doc}' is not in protoc-gen-crpc.1")
  endif()
endforeach()

# Places that produce an error: fail(c, ...) and *err = "..." in model.c
# and names.c; error returns, fputs and perror in main.c.
set(sites 0)
foreach(pair "model_names:fail\\(c," "model_names:\\*err = \""
             "main:return cg_sprintf\\(a, \"" "main:fputs\\(\"protoc-gen-crpc:"
             "main:perror\\(\"protoc-gen-crpc:")
  string(REGEX REPLACE "^([a-z_]+):.*$" "\\1" where "${pair}")
  string(REGEX REPLACE "^[a-z_]+:" "" rx "${pair}")
  if(where STREQUAL "main")
    string(REGEX MATCHALL "${rx}" m "${main_c}")
  else()
    string(REGEX MATCHALL "${rx}" m "${model_c}${names_c}")
  endif()
  list(LENGTH m n)
  math(EXPR sites "${sites} + ${n}")
endforeach()
if(NOT sites EQUAL expected_sites)
  list(APPEND missing "the sources have ${sites} places that emit an error, "
    "this test knows ${expected_sites}: document the new or removed error "
    "in main.c's --help and protoc-gen-crpc.1, then update the phrases and "
    "expected_sites in tests/plugin/check_help.cmake")
endif()

if(missing)
  string(REPLACE ";" "\n  " missing "${missing}")
  message(FATAL_ERROR "protoc-gen-crpc's documented errors:\n  ${missing}")
endif()
message(STATUS "protoc-gen-crpc: ${sites} error sites, all documented")
