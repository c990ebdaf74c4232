// A grpc.testing.TestService server on gRPC C++, following gRPC's
// doc/interop-test-descriptions.md ("Server" section). A reference peer for
// crpc's interop matrix. Prints the port it listens on, alone on one line,
// and shuts down on SIGTERM or SIGINT.
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "grpc/testing/test.grpc.pb.h"
#include "interop_common.h"

using grpc::ServerContext;
using grpc::Status;
using grpc::StatusCode;
using grpc::testing::Empty;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingInputCallRequest;
using grpc::testing::StreamingInputCallResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;

namespace {

const char kEchoInitial[] = "x-grpc-test-echo-initial";
const char kEchoTrailing[] = "x-grpc-test-echo-trailing-bin";

void EchoMetadata(ServerContext *ctx) {
  const auto &md = ctx->client_metadata();
  auto it = md.find(kEchoInitial);
  if (it != md.end())
    ctx->AddInitialMetadata(kEchoInitial,
                            std::string(it->second.data(), it->second.size()));
  it = md.find(kEchoTrailing);
  if (it != md.end())
    ctx->AddTrailingMetadata(kEchoTrailing,
                             std::string(it->second.data(), it->second.size()));
}

// CompressedRequest: with expect_compressed the request must have arrived
// compressed; without it, it must not have (as gRPC's own C++ server).
Status CheckCompression(ServerContext *ctx, bool expected) {
  bool got = interop::LastMessageCompressed(ctx->c_call());
  if (expected && !got)
    return Status(StatusCode::INVALID_ARGUMENT,
                  "expected a compressed request");
  if (!expected && got)
    return Status(StatusCode::INVALID_ARGUMENT,
                  "expected an uncompressed request");
  return Status::OK;
}

bool EchoStatus(const StreamingOutputCallRequest &req, Status *st) {
  if (!req.has_response_status() || req.response_status().code() == 0)
    return false;
  *st = Status(static_cast<StatusCode>(req.response_status().code()),
               req.response_status().message());
  return true;
}

// Writes the responses |req| asks for. The call's encoding goes out with
// the response headers, so it can only be chosen before the first write.
template <class Writer>
bool WriteResponses(ServerContext *ctx, const StreamingOutputCallRequest &req,
                    Writer *w, bool *first_write) {
  for (const auto &p : req.response_parameters()) {
    if (*first_write && p.compressed().value())
      ctx->set_compression_algorithm(GRPC_COMPRESS_GZIP);
  }
  for (const auto &p : req.response_parameters()) {
    if (p.interval_us() > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(p.interval_us()));
    StreamingOutputCallResponse resp;
    resp.mutable_payload()->set_body(std::string(p.size(), '\0'));
    grpc::WriteOptions wo;
    if (!p.compressed().value())
      wo.set_no_compression();
    if (!w->Write(resp, wo))
      return false;
    *first_write = false;
  }
  return true;
}

class TestServiceImpl final : public grpc::testing::TestService::Service {
public:
  Status EmptyCall(ServerContext *ctx, const Empty *, Empty *) override {
    EchoMetadata(ctx);
    return Status::OK;
  }

  Status UnaryCall(ServerContext *ctx, const SimpleRequest *req,
                   SimpleResponse *resp) override {
    EchoMetadata(ctx);
    if (req->has_response_status() && req->response_status().code() != 0)
      return Status(static_cast<StatusCode>(req->response_status().code()),
                    req->response_status().message());
    Status st = CheckCompression(ctx, req->expect_compressed().value());
    if (!st.ok())
      return st;
    if (req->response_type() != grpc::testing::COMPRESSABLE)
      return Status(StatusCode::INVALID_ARGUMENT, "unsupported response_type");
    ctx->set_compression_algorithm(req->response_compressed().value()
                                       ? GRPC_COMPRESS_GZIP
                                       : GRPC_COMPRESS_NONE);
    resp->mutable_payload()->set_body(std::string(req->response_size(), '\0'));
    return Status::OK;
  }

  Status CacheableUnaryCall(ServerContext *ctx, const SimpleRequest *,
                            SimpleResponse *resp) override {
    ctx->AddInitialMetadata("cache-control", "max-age=60, public");
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    resp->mutable_payload()->set_body(std::to_string(ns.count()));
    return Status::OK;
  }

  Status StreamingOutputCall(
      ServerContext *ctx, const StreamingOutputCallRequest *req,
      grpc::ServerWriter<StreamingOutputCallResponse> *w) override {
    EchoMetadata(ctx);
    Status st;
    if (EchoStatus(*req, &st))
      return st;
    bool first = true;
    if (!WriteResponses(ctx, *req, w, &first))
      return Status(StatusCode::CANCELLED, "write failed");
    return Status::OK;
  }

  Status StreamingInputCall(ServerContext *ctx,
                            grpc::ServerReader<StreamingInputCallRequest> *r,
                            StreamingInputCallResponse *resp) override {
    EchoMetadata(ctx);
    StreamingInputCallRequest req;
    int total = 0;
    while (r->Read(&req)) {
      Status st = CheckCompression(ctx, req.expect_compressed().value());
      if (!st.ok())
        return st;
      total += static_cast<int>(req.payload().body().size());
    }
    resp->set_aggregated_payload_size(total);
    return Status::OK;
  }

  Status FullDuplexCall(
      ServerContext *ctx,
      grpc::ServerReaderWriter<StreamingOutputCallResponse,
                               StreamingOutputCallRequest> *s) override {
    EchoMetadata(ctx);
    StreamingOutputCallRequest req;
    bool first = true;
    while (s->Read(&req)) {
      Status st;
      if (EchoStatus(req, &st))
        return st;
      if (!WriteResponses(ctx, req, s, &first))
        return Status(StatusCode::CANCELLED, "write failed");
    }
    return Status::OK;
  }

  Status HalfDuplexCall(
      ServerContext *ctx,
      grpc::ServerReaderWriter<StreamingOutputCallResponse,
                               StreamingOutputCallRequest> *s) override {
    EchoMetadata(ctx);
    std::vector<StreamingOutputCallRequest> reqs;
    StreamingOutputCallRequest req;
    while (s->Read(&req))
      reqs.push_back(req);
    bool first = true;
    for (const auto &r : reqs) {
      Status st;
      if (EchoStatus(r, &st))
        return st;
      if (!WriteResponses(ctx, r, s, &first))
        return Status(StatusCode::CANCELLED, "write failed");
    }
    return Status::OK;
  }
  // UnimplementedCall is left to the base class: UNIMPLEMENTED.
};

} // namespace

int main(int argc, char **argv) {
  interop::Flags flags;
  flags.Define("port", "0");
  flags.Define("host", "127.0.0.1");
  flags.Define("use_tls", "false");
  flags.Define("tls_cert_file", "");
  flags.Define("tls_key_file", "");
  if (!flags.Parse(argc, argv))
    return 2;

  // Block the stop signals before gRPC starts threads, then wait for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (flags.Bool("use_tls")) {
    if (flags.Str("tls_cert_file").empty() ||
        flags.Str("tls_key_file").empty()) {
      std::fprintf(stderr,
                   "--use_tls needs --tls_cert_file and --tls_key_file\n");
      return 2;
    }
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back(
        {interop::ReadFile(flags.Str("tls_key_file")),
         interop::ReadFile(flags.Str("tls_cert_file"))});
    creds = grpc::SslServerCredentials(opts);
  } else {
    creds = grpc::InsecureServerCredentials();
  }

  TestServiceImpl service;
  grpc::ServerBuilder builder;
  int port = 0;
  std::string addr = flags.Str("host") + ":" + flags.Str("port");
  builder.AddListeningPort(addr, creds, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "cannot listen on %s\n", addr.c_str());
    return 1;
  }
  std::printf("%d\n", port);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now());
  server->Wait();
  return 0;
}
