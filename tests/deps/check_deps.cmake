# cmake -DSOURCE_DIR=<crpc> -DWORK_DIR=<dir> -DGENERATOR=<g> -P check_deps.cmake
#
# Configures tests/deps/project against fake installations of nghttp2,
# protobuf-c and OpenSSL that are too old (or missing), and checks that the
# configure step stops with a message naming the package and the version
# crpc needs. The real ones come first in each case, so that each case
# fails on the dependency it is about.
file(REMOVE_RECURSE ${WORK_DIR})
set(pc ${WORK_DIR}/pc)
execute_process(COMMAND pkg-config --variable pc_path pkg-config
  OUTPUT_VARIABLE real_pc OUTPUT_STRIP_TRAILING_WHITESPACE)

function(fake_pc dir name version)
  file(WRITE ${dir}/${name}.pc "prefix=/nonexistent\nName: ${name}\n"
    "Description: fake\nVersion: ${version}\nLibs: -l${name}\nCflags:\n")
endfunction()

# Case: <name> <pc dir contents...> ; expected regex
function(expect_failure name pcdir regex)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env "PKG_CONFIG_LIBDIR=${pcdir}"
            ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/deps/project
            -B ${WORK_DIR}/build_${name} -G ${GENERATOR}
            -DCRPC_SOURCE_DIR=${SOURCE_DIR} ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "${name}: configure succeeded, expected a failure")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " flat "${err}")
  if(NOT flat MATCHES "${regex}")
    message(FATAL_ERROR "${name}: the error does not match '${regex}':\n${err}")
  endif()
  message(STATUS "${name}: ok (${CMAKE_MATCH_0})")
endfunction()

# nghttp2 1.43 (Debian 11's), everything else real.
set(d ${WORK_DIR}/old_nghttp2)
fake_pc(${d} libnghttp2 1.43.0)
expect_failure(old_nghttp2 "${d}:${real_pc}"
  "crpc needs nghttp2 >= 1\\.50 \\(found 1\\.43\\.0, too old\\)\\. Debian/Ubuntu: apt-get install libnghttp2-dev")

# protobuf-c 1.3.3, real nghttp2.
set(d ${WORK_DIR}/old_protobufc)
fake_pc(${d} libprotobuf-c 1.3.3)
expect_failure(old_protobufc "${d}:${real_pc}"
  "crpc needs protobuf-c >= 1\\.4 \\(found 1\\.3\\.3, too old\\)\\. Debian/Ubuntu: apt-get install libprotobuf-c-dev")

# No nghttp2 at all.
file(MAKE_DIRECTORY ${WORK_DIR}/empty)
expect_failure(no_nghttp2 "${WORK_DIR}/empty"
  "crpc needs nghttp2 >= 1\\.50 \\(not found by pkg-config as libnghttp2\\)")

# OpenSSL 1.1.1: a fake root with its header and (empty) libraries; the
# real pkg-config modules for the others, none for openssl.
set(ossl ${WORK_DIR}/openssl111)
file(WRITE ${ossl}/include/openssl/opensslv.h
  "#define OPENSSL_VERSION_NUMBER 0x1010117fL\n"
  "#define OPENSSL_VERSION_TEXT \"OpenSSL 1.1.1w  11 Sep 2023\"\n")
file(WRITE ${ossl}/include/openssl/ssl.h "")
file(WRITE ${ossl}/lib/libssl.so "")
file(WRITE ${ossl}/lib/libcrypto.so "")
set(d ${WORK_DIR}/no_openssl_pc)
file(MAKE_DIRECTORY ${d})
foreach(m libnghttp2 libprotobuf-c json-c libcares)
  execute_process(COMMAND pkg-config --path ${m}
    OUTPUT_VARIABLE p OUTPUT_STRIP_TRAILING_WHITESPACE)
  file(COPY ${p} DESTINATION ${d})
endforeach()
expect_failure(old_openssl "${d}"
  "crpc needs OpenSSL >= 3\\.0 \\(found 1\\.1\\.1[a-z]* in [^ ]*, too old\\)"
  -DOPENSSL_ROOT_DIR=${ossl})
