# What protoc-gen-crpc refuses, and when it generates nothing, through protoc.
#   -DPROTOC= -DPROTOC_GEN_C= -DPLUGIN= -DPROTO_DIR= -DWORK_DIR=
#   -DCRPC_GENERATE=cmake/CrpcGenerate.cmake
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run_protoc proto out_dir)
  file(MAKE_DIRECTORY ${out_dir})
  execute_process(
    COMMAND ${PROTOC} -I${PROTO_DIR} --plugin=protoc-gen-c=${PROTOC_GEN_C}
            --plugin=protoc-gen-crpc=${PLUGIN} --c_out=${out_dir}
            --crpc_out=${out_dir} ${ARGN} ${proto}
    RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
  set(rc ${rc} PARENT_SCOPE)
  set(err "${out}${err}" PARENT_SCOPE)
endfunction()

function(expect_error proto pattern)
  set(dir ${WORK_DIR}/${proto}_${ARGC})
  run_protoc(${proto} ${dir} ${ARGN})
  if(rc EQUAL 0)
    message(FATAL_ERROR "${proto}: protoc succeeded, expected an error")
  endif()
  if(NOT err MATCHES "${pattern}")
    message(FATAL_ERROR "${proto}: error does not match '${pattern}':\n${err}")
  endif()
  if(err MATCHES "Sanitizer|runtime error|Segmentation|Aborted")
    message(FATAL_ERROR "${proto}: the plugin crashed:\n${err}")
  endif()
  file(GLOB_RECURSE crpc_files ${dir}/*.crpc.*)
  if(crpc_files)
    message(FATAL_ERROR "${proto}: files written despite the error")
  endif()
  message(STATUS "${proto}: refused as expected:\n${err}")
endfunction()

# Our collide__svc__say__call (method Say) is protoc-c's function for
# method Say_Call: the message names both and where they come from.
expect_error(collision.proto
  "generated name \"collide__svc__say__call\" \\(crpc's call function for collide\\.Svc\\.Say\\) collides with \"collide__svc__say__call\" \\(protoc-c's closure-API function for collide\\.Svc\\.Say_Call\\)")
expect_error(keyword.proto "kw\\.Svc\\.Do: protoc-c names its member \"do\", a C keyword")
expect_error(nosvc.proto "takes no options" --crpc_opt=verbose)

# No service: protoc-c's files, none of ours, no error.
run_protoc(nosvc.proto ${WORK_DIR}/nosvc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nosvc.proto: protoc failed:\n${err}")
endif()
if(NOT EXISTS ${WORK_DIR}/nosvc/nosvc.pb-c.c)
  message(FATAL_ERROR "nosvc.proto: protoc-c's output missing")
endif()
file(GLOB crpc_files ${WORK_DIR}/nosvc/*.crpc.*)
if(crpc_files)
  message(FATAL_ERROR "nosvc.proto: crpc output for a file without service: "
                      "${crpc_files}")
endif()

# crpc_generate() decides at configure time which protos get .crpc files;
# it must agree with the plugin.
include(${CRPC_GENERATE})
foreach(case "nosvc.proto;FALSE" "collision.proto;TRUE"
        "keyword.proto;TRUE")
  list(GET case 0 proto)
  list(GET case 1 want)
  _crpc_proto_has_service(${PROTO_DIR}/${proto} got)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "crpc_generate: ${proto} has_service=${got}, "
                        "expected ${want}")
  endif()
endforeach()
file(WRITE ${WORK_DIR}/tricky.proto
  "syntax = \"proto3\";\n/* service Fake { */\n"
  "option go_package = \"http://x/service Y {\";\n"
  "message service_thing { string service = 1; }\nservice Real{}\n")
_crpc_proto_has_service(${WORK_DIR}/tricky.proto got)
if(NOT got)
  message(FATAL_ERROR "crpc_generate: missed 'service Real{}'")
endif()
file(WRITE ${WORK_DIR}/tricky2.proto
  "syntax = \"proto3\";\n/* service Fake {\n} */ // service Z {\n"
  "message service_thing { string service = 1; }\n")
_crpc_proto_has_service(${WORK_DIR}/tricky2.proto got)
if(got)
  message(FATAL_ERROR "crpc_generate: saw a service in comments")
endif()
