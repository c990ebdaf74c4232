// grpcpp-bench-server: the gRPC C++ reference peer of crpc-bench-server.
//
// Serves grpc.testing.BenchmarkService (UnaryCall, StreamingCall) with one of
// gRPC C++'s two fast APIs:
//   --api=cq        (default) the async completion-queue API, as gRPC's own
//                   qps benchmark server: T completion queues, one thread
//                   each, a pool of pre-requested calls per queue;
//   --api=callback  the callback (reactor) API.
// The response carries response_size zero bytes, as gRPC's benchmark server.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "grpc/testing/benchmark_service.grpc.pb.h"

using grpc::testing::BenchmarkService;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;

namespace {

std::string ReadFile(const char *path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "grpcpp-bench-server: cannot read %s\n", path);
    std::exit(1);
  }
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void FillResponse(const SimpleRequest &req, SimpleResponse *resp) {
  if (req.response_size() > 0)
    resp->mutable_payload()->mutable_body()->assign(
        static_cast<size_t>(req.response_size()), '\0');
}

// ---- completion-queue API ----

class Tag {
public:
  virtual ~Tag() = default;
  virtual void Proceed(bool ok) = 0;
};

class UnaryCtx final : public Tag {
public:
  UnaryCtx(BenchmarkService::AsyncService *svc, grpc::ServerCompletionQueue *cq)
      : svc_(svc), cq_(cq) {
    Request();
  }
  void Proceed(bool ok) override {
    if (!ok) { // queue shutting down (request) or call broken (finish)
      if (state_ == kRequested) {
        delete this;
        return;
      }
      Request();
      return;
    }
    if (state_ == kRequested) {
      FillResponse(req_, &resp_);
      state_ = kFinishing;
      responder_->Finish(resp_, grpc::Status::OK, this);
    } else {
      Request();
    }
  }

private:
  void Request() {
    ctx_.reset(new grpc::ServerContext);
    responder_.reset(
        new grpc::ServerAsyncResponseWriter<SimpleResponse>(ctx_.get()));
    req_.Clear();
    resp_.Clear();
    state_ = kRequested;
    svc_->RequestUnaryCall(ctx_.get(), &req_, responder_.get(), cq_, cq_,
                           this);
  }
  enum { kRequested, kFinishing } state_ = kRequested;
  BenchmarkService::AsyncService *svc_;
  grpc::ServerCompletionQueue *cq_;
  std::unique_ptr<grpc::ServerContext> ctx_;
  std::unique_ptr<grpc::ServerAsyncResponseWriter<SimpleResponse>> responder_;
  SimpleRequest req_;
  SimpleResponse resp_;
};

class StreamCtx final : public Tag {
public:
  StreamCtx(BenchmarkService::AsyncService *svc,
            grpc::ServerCompletionQueue *cq)
      : svc_(svc), cq_(cq) {
    Request();
  }
  void Proceed(bool ok) override {
    switch (state_) {
    case kRequested:
      if (!ok) {
        delete this;
        return;
      }
      state_ = kReading;
      stream_->Read(&req_, this);
      return;
    case kReading:
      if (!ok) { // client half-closed (or went away)
        state_ = kFinishing;
        stream_->Finish(grpc::Status::OK, this);
        return;
      }
      resp_.Clear();
      FillResponse(req_, &resp_);
      state_ = kWriting;
      stream_->Write(resp_, this);
      return;
    case kWriting:
      if (!ok) {
        state_ = kFinishing;
        stream_->Finish(grpc::Status::OK, this);
        return;
      }
      state_ = kReading;
      stream_->Read(&req_, this);
      return;
    case kFinishing:
      Request();
      return;
    }
  }

private:
  void Request() {
    ctx_.reset(new grpc::ServerContext);
    stream_.reset(
        new grpc::ServerAsyncReaderWriter<SimpleResponse, SimpleRequest>(
            ctx_.get()));
    state_ = kRequested;
    svc_->RequestStreamingCall(ctx_.get(), stream_.get(), cq_, cq_, this);
  }
  enum { kRequested, kReading, kWriting, kFinishing } state_ = kRequested;
  BenchmarkService::AsyncService *svc_;
  grpc::ServerCompletionQueue *cq_;
  std::unique_ptr<grpc::ServerContext> ctx_;
  std::unique_ptr<grpc::ServerAsyncReaderWriter<SimpleResponse, SimpleRequest>>
      stream_;
  SimpleRequest req_;
  SimpleResponse resp_;
};

// Calls requested in advance per queue: enough for the largest scenario
// (4 connections x 100 in flight) to find one waiting on a single queue.
constexpr int kUnaryPerCq = 512;
constexpr int kStreamsPerCq = 64;

// ---- callback API ----

class PingPong final
    : public grpc::ServerBidiReactor<SimpleRequest, SimpleResponse> {
public:
  PingPong() { StartRead(&req_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    resp_.Clear();
    FillResponse(req_, &resp_);
    StartWrite(&resp_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    StartRead(&req_);
  }
  void OnDone() override { delete this; }

private:
  SimpleRequest req_;
  SimpleResponse resp_;
};

class CallbackImpl final : public BenchmarkService::CallbackService {
  grpc::ServerUnaryReactor *UnaryCall(grpc::CallbackServerContext *ctx,
                                      const SimpleRequest *req,
                                      SimpleResponse *resp) override {
    FillResponse(*req, resp);
    auto *r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerBidiReactor<SimpleRequest, SimpleResponse> *
  StreamingCall(grpc::CallbackServerContext *) override {
    return new PingPong();
  }
};

} // namespace

int main(int argc, char **argv) {
  bench_server_opts o;
  bench_server_parse(&o, argc, argv, "grpcpp-bench-server", true);
  bench_raise_nofile();
  bool callback = o.api && std::string(o.api) == "callback";
  unsigned threads = o.threads ? o.threads : std::thread::hardware_concurrency();
  if (threads == 0)
    threads = 1;

  grpc::ServerBuilder b;
  int port = 0;
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::InsecureServerCredentials();
  if (o.tls_cert) {
    grpc::SslServerCredentialsOptions so;
    so.pem_key_cert_pairs.push_back(
        {ReadFile(o.tls_key), ReadFile(o.tls_cert)});
    creds = grpc::SslServerCredentials(so);
  }
  b.AddListeningPort("127.0.0.1:" + std::to_string(o.port), creds, &port);
  BenchmarkService::AsyncService async_svc;
  CallbackImpl cb_svc;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  if (callback) {
    b.RegisterService(&cb_svc);
  } else {
    b.RegisterService(&async_svc);
    for (unsigned i = 0; i < threads; i++)
      cqs.emplace_back(b.AddCompletionQueue());
  }
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "grpcpp-bench-server: cannot listen on port %d\n",
                 o.port);
    return 1;
  }
  if (o.port == 0)
    std::printf("%d\n", port);
  std::fflush(stdout);

  if (callback) {
    server->Wait();
    return 0;
  }
  std::vector<std::thread> ts;
  for (auto &cq : cqs) {
    grpc::ServerCompletionQueue *q = cq.get();
    for (int i = 0; i < kUnaryPerCq; i++)
      new UnaryCtx(&async_svc, q);
    for (int i = 0; i < kStreamsPerCq; i++)
      new StreamCtx(&async_svc, q);
    ts.emplace_back([q] {
      void *tag;
      bool ok;
      while (q->Next(&tag, &ok))
        static_cast<Tag *>(tag)->Proceed(ok);
    });
  }
  for (auto &t : ts)
    t.join();
  return 0;
}
