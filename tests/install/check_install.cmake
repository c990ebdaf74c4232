# Installs the build into a temporary prefix, then builds two programs
# against that installation only, as users would:
#   1. consumer/ with find_package(crpc) + crpc_generate() (CMake);
#   2. pkgconfig_main.c with protoc + the plugin pkg-config names and
#      `pkg-config --cflags --libs crpc`;
# and runs both.
#   -DBUILD_DIR= -DSOURCE_DIR= -DWORK_DIR= -DCC= -DPROTOC= -DPROTOC_GEN_C=
#   -DPKG_CONFIG= -DGENERATOR= -DSANITIZE=ON|OFF
# With -DPREFIX=<dir> instead of -DBUILD_DIR, nothing is installed: the
# programs are built against what is already in <dir> (scripts/deb-check.sh:
# the Debian packages unpacked into <root>, PREFIX=<root>/usr).
cmake_policy(SET CMP0009 NEW)  # GLOB_RECURSE does not follow symlinks
file(REMOVE_RECURSE ${WORK_DIR})
if(DEFINED PREFIX)
  set(prefix ${PREFIX})
else()
  set(prefix ${WORK_DIR}/prefix)
endif()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  message(STATUS "${what}: ok")
endfunction()

if(NOT DEFINED PREFIX)
  run("cmake --install"
      ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
endif()

set(flags)
if(SANITIZE)
  set(flags -fsanitize=address,undefined -fno-omit-frame-pointer)
endif()
string(REPLACE ";" " " flags_str "${flags}")

# ---- 1. CMake: find_package(crpc) + crpc_generate ----
run("configure consumer"
    ${CMAKE_COMMAND} -S ${SOURCE_DIR}/consumer -B ${WORK_DIR}/consumer
    -G ${GENERATOR} -DCMAKE_C_COMPILER=${CC}
    -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_BUILD_TYPE=Debug
    "-DCMAKE_C_FLAGS=${flags_str}"
    "-DCMAKE_EXE_LINKER_FLAGS=${flags_str}")
# The crpc found is the one in the prefix, not one installed elsewhere.
file(STRINGS ${WORK_DIR}/consumer/CMakeCache.txt crpc_dir REGEX "^crpc_DIR:")
string(REGEX REPLACE "^crpc_DIR:[A-Z]+=" "" crpc_dir "${crpc_dir}")
file(REAL_PATH ${prefix} real_prefix)
file(REAL_PATH "${crpc_dir}" crpc_dir)
string(FIND "${crpc_dir}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "find_package(crpc) found ${crpc_dir}, outside ${prefix}")
endif()
run("build consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
run("run consumer" ${WORK_DIR}/consumer/consumer)
message(STATUS "${out}")

# ---- 2. pkg-config ----
set(ENV{PKG_CONFIG_PATH} "")
file(GLOB_RECURSE pc_files ${prefix}/crpc.pc)
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir ${pc_file} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
run("pkg-config plugin" ${PKG_CONFIG} --variable=protoc_gen_crpc crpc)
string(STRIP "${out}" plugin)
if(NOT EXISTS ${plugin})
  message(FATAL_ERROR "pkg-config's protoc_gen_crpc (${plugin}) does not "
                      "exist")
endif()
run("pkg-config flags" ${PKG_CONFIG} --cflags --libs crpc)
string(STRIP "${out}" pc_flags)
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
run("pkg-config libdir" ${PKG_CONFIG} --variable=libdir crpc)
string(STRIP "${out}" libdir)

set(gen ${WORK_DIR}/pkgconfig/gen)
file(MAKE_DIRECTORY ${gen})
run("generate (pkg-config)"
    ${PROTOC} -I${SOURCE_DIR}/consumer/proto
    --plugin=protoc-gen-c=${PROTOC_GEN_C} --plugin=protoc-gen-crpc=${plugin}
    --c_out=${gen} --crpc_out=${gen} hello/greet.proto)
run("build pkg-config consumer"
    ${CC} -std=c11 -Wall -Wextra -Werror ${flags} -I${gen}
    ${SOURCE_DIR}/pkgconfig_main.c ${gen}/hello/greet.crpc.c
    ${gen}/hello/greet.pb-c.c ${pc_flags}
    -o ${WORK_DIR}/pkgconfig/consumer)
set(ENV{LD_LIBRARY_PATH} "${libdir}:$ENV{LD_LIBRARY_PATH}")
run("run pkg-config consumer" ${WORK_DIR}/pkgconfig/consumer)
message(STATUS "${out}")
