# crpc's library dependencies and the oldest versions crpc works with, for
# crpc's own build and for find_package(crpc) (installed beside
# crpcConfig.cmake). A dependency that is missing or too old stops the
# configure step with a message naming the package and the version needed.
#
# Defines PkgConfig::NGHTTP2, PkgConfig::PROTOBUFC, PkgConfig::JSONC,
# PkgConfig::CARES (pkg-config), and
# OpenSSL::SSL / OpenSSL::Crypto (FindOpenSSL), the names libcrpc's targets
# link to.

set(CRPC_MIN_NGHTTP2 1.50)
set(CRPC_MIN_PROTOBUFC 1.4)
set(CRPC_MIN_OPENSSL 3.0)
set(CRPC_MIN_JSONC 0.15)
set(CRPC_MIN_CARES 1.16)

find_package(PkgConfig REQUIRED)

# _crpc_require_pc(<prefix> <pkg-config module> <min> <what> <debian package>)
macro(_crpc_require_pc prefix module min what deb)
  if(NOT TARGET PkgConfig::${prefix})
    pkg_check_modules(${prefix} QUIET IMPORTED_TARGET "${module}>=${min}")
    if(NOT ${prefix}_FOUND)
      pkg_check_modules(_crpc_any_${prefix} QUIET ${module})
      if(_crpc_any_${prefix}_FOUND)
        set(_crpc_found "found ${_crpc_any_${prefix}_VERSION}, too old")
      else()
        set(_crpc_found "not found by pkg-config as ${module}")
      endif()
      message(FATAL_ERROR "crpc needs ${what} >= ${min} (${_crpc_found}). "
        "Debian/Ubuntu: apt-get install ${deb}; elsewhere install ${what} "
        "${min} or later and put its ${module}.pc on PKG_CONFIG_PATH.")
    endif()
  endif()
endmacro()

_crpc_require_pc(NGHTTP2 libnghttp2 ${CRPC_MIN_NGHTTP2} nghttp2
                 libnghttp2-dev)
_crpc_require_pc(PROTOBUFC libprotobuf-c ${CRPC_MIN_PROTOBUFC} protobuf-c
                 libprotobuf-c-dev)
# the service config's JSON (lib/service_config.c)
_crpc_require_pc(JSONC json-c ${CRPC_MIN_JSONC} json-c libjson-c-dev)
# dns: names, resolved off the loop (lib/resolver_dns.c; ares_getaddrinfo
# is 1.16's)
_crpc_require_pc(CARES libcares ${CRPC_MIN_CARES} c-ares libc-ares-dev)

if(NOT TARGET OpenSSL::SSL)
  find_package(OpenSSL QUIET COMPONENTS SSL Crypto)
  if(NOT OPENSSL_FOUND)
    message(FATAL_ERROR "crpc needs OpenSSL >= ${CRPC_MIN_OPENSSL} (not "
      "found). Debian/Ubuntu: apt-get install libssl-dev; elsewhere set "
      "OPENSSL_ROOT_DIR to an OpenSSL ${CRPC_MIN_OPENSSL} or later.")
  elseif(OPENSSL_VERSION VERSION_LESS CRPC_MIN_OPENSSL)
    message(FATAL_ERROR "crpc needs OpenSSL >= ${CRPC_MIN_OPENSSL} (found "
      "${OPENSSL_VERSION} in ${OPENSSL_INCLUDE_DIR}, too old). "
      "Debian/Ubuntu: apt-get install libssl-dev (Debian 12 has 3.0); "
      "elsewhere set OPENSSL_ROOT_DIR to an OpenSSL ${CRPC_MIN_OPENSSL} or "
      "later.")
  endif()
endif()
