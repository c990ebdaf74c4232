// Shared by the gRPC C++ interop peers (reference implementations used to
// check crpc, built from Debian's libgrpc++-dev).
#ifndef CRPC_INTEROP_CPP_COMMON_H
#define CRPC_INTEROP_CPP_COMMON_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <grpc/grpc.h>

// libgrpc exports these (with C++ linkage) for gRPC's own interop tests; the
// public headers do not declare them. They are how a C++ peer learns whether
// the last message it received had the compressed flag set, which
// expect_compressed / server_compressed_* need.
uint32_t grpc_call_test_only_get_message_flags(grpc_call *call);

namespace interop {

// Core's internal message flags (src/core/lib/transport/transport.h): set on
// a received message that arrived compressed (before / after the
// decompression filter ran).
constexpr uint32_t kInternalCompress = 0x80000000u;
constexpr uint32_t kInternalWasCompressed = 0x40000000u;

inline bool LastMessageCompressed(grpc_call *call) {
  return (grpc_call_test_only_get_message_flags(call) &
          (kInternalCompress | kInternalWasCompressed)) != 0;
}

// gRPC's interop programs take --name=value; booleans may also be bare
// (--use_tls) and unknown flags are an error.
class Flags {
public:
  void Define(const std::string &name, const std::string &def) {
    values_[name] = def;
  }
  bool Parse(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
      std::string a = argv[i];
      if (a.compare(0, 2, "--") != 0)
        return Bad(a);
      a = a.substr(2);
      std::string name = a, value = "true";
      size_t eq = a.find('=');
      if (eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
      }
      if (values_.find(name) == values_.end())
        return Bad(argv[i]);
      values_[name] = value;
    }
    return true;
  }
  std::string Str(const std::string &name) const { return values_.at(name); }
  long Int(const std::string &name) const {
    return std::strtol(values_.at(name).c_str(), nullptr, 10);
  }
  bool Bool(const std::string &name) const {
    const std::string &v = values_.at(name);
    return v == "true" || v == "1" || v == "yes";
  }

private:
  bool Bad(const std::string &a) {
    std::fprintf(stderr, "unknown or malformed flag: %s\n", a.c_str());
    return false;
  }
  std::map<std::string, std::string> values_;
};

inline std::string ReadFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(2);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

} // namespace interop

#endif // CRPC_INTEROP_CPP_COMMON_H
