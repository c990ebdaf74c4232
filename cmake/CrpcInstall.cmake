# Installation and packaging: `cmake --install <build> [--prefix P]` puts
#   P/include/crpc/*.h
#   P/<libdir>/libcrpc.a, libcrpc.so (+ soname links)
#   P/bin/protoc-gen-crpc
#   P/share/man/man1/protoc-gen-crpc.1
#   P/<libdir>/cmake/crpc/  crpcConfig.cmake, crpcConfigVersion.cmake,
#                           crpcTargets*.cmake, CrpcGenerate.cmake,
#                           CrpcDependencies.cmake
#   P/<libdir>/pkgconfig/crpc.pc
#   P/share/crpc/proto/     the project's .proto files (proto/)
#
# find_package(crpc) gives crpc::crpc (the shared library), crpc::crpc_static,
# crpc::protoc-gen-crpc and crpc_generate(). pkg-config: `pkg-config --cflags
# --libs crpc`, the plugin's path in `pkg-config --variable=protoc_gen_crpc
# crpc`. Both are relocatable: nothing in them depends on the prefix given
# at configure time.

include(CMakePackageConfigHelpers)

set(CRPC_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/crpc CACHE STRING
    "Where crpc's CMake package files are installed (below the prefix)")

# Installed, crpc::crpc is the shared library (in this build tree it is the
# static one; see lib/CMakeLists.txt).
set_target_properties(crpc_shared PROPERTIES EXPORT_NAME crpc)
set_target_properties(crpc_static PROPERTIES EXPORT_NAME crpc_static)

install(TARGETS crpc_shared crpc_static protoc-gen-crpc
  EXPORT crpcTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/crpc
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h"
  PATTERN "uv.h" EXCLUDE PATTERN "event.h" EXCLUDE) # with their adapter
# The event-loop adapters that were built (adapters/): libraries, header,
# pkg-config file; crpc::uv and crpc::event in the CMake package.
foreach(a ${CRPC_ADAPTERS})
  set_target_properties(crpc_${a}_shared PROPERTIES EXPORT_NAME ${a})
  set_target_properties(crpc_${a}_static PROPERTIES EXPORT_NAME ${a}_static)
  install(TARGETS crpc_${a}_shared crpc_${a}_static EXPORT crpcTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(FILES ${PROJECT_SOURCE_DIR}/include/crpc/${a}.h
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/crpc)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/protoc-gen-crpc/protoc-gen-crpc.1
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/proto/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/crpc/proto
  FILES_MATCHING PATTERN "*.proto")
install(EXPORT crpcTargets
  NAMESPACE crpc::
  DESTINATION ${CRPC_INSTALL_CMAKEDIR})

set(CRPC_INSTALL_PROTODIR ${CMAKE_INSTALL_DATADIR}/crpc/proto)
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/crpcConfig.cmake.in
  ${PROJECT_BINARY_DIR}/crpcConfig.cmake
  INSTALL_DESTINATION ${CRPC_INSTALL_CMAKEDIR}
  PATH_VARS CRPC_INSTALL_PROTODIR)
# 0.x: minor versions may break the API.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/crpcConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/crpcConfig.cmake
  ${PROJECT_BINARY_DIR}/crpcConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/CrpcGenerate.cmake
  ${CMAKE_CURRENT_LIST_DIR}/CrpcDependencies.cmake
  DESTINATION ${CRPC_INSTALL_CMAKEDIR})

# crpc.pc finds the prefix from its own location (${pcfiledir}), so that
# `cmake --install --prefix` anywhere gives a working file.
if(IS_ABSOLUTE ${CMAKE_INSTALL_LIBDIR})
  message(FATAL_ERROR "crpc: CMAKE_INSTALL_LIBDIR must be relative to the "
                      "prefix (got ${CMAKE_INSTALL_LIBDIR})")
endif()
file(RELATIVE_PATH CRPC_PC_PREFIX_REL /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" CRPC_PC_PREFIX_REL "${CRPC_PC_PREFIX_REL}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/crpc.pc.in
  ${PROJECT_BINARY_DIR}/crpc.pc @ONLY)
foreach(a ${CRPC_ADAPTERS})
  set(CRPC_PC_NAME crpc-${a})
  set(CRPC_PC_REQUIRES "${CRPC_ADAPTER_${a}_PCREQ}")
  configure_file(${CMAKE_CURRENT_LIST_DIR}/crpc-adapter.pc.in
    ${PROJECT_BINARY_DIR}/crpc-${a}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/crpc-${a}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/crpc.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
