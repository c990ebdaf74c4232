// grpcpp-bench-client: the gRPC C++ reference peer of crpc-bench-client.
//
// Closed-loop load through gRPC C++'s async completion-queue API (as gRPC's
// own qps client): C channels, each its own connection, K calls or
// ping-pong streams in flight on each, T threads each draining one
// completion queue. Every response's status and payload size is checked;
// the first wrong one fails the run.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "grpc/testing/benchmark_service.grpc.pb.h"

using grpc::testing::BenchmarkService;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;

namespace {

enum Phase { kWarmup = 0, kMeasure = 1, kStop = 2 };
std::atomic<int> g_phase{kWarmup};
std::atomic<long> g_outstanding{0};
std::mutex g_mu;
std::condition_variable g_cv;
const bench_client_opts *g_opts;

struct Stats { // one per completion-queue thread, touched only by it
  uint64_t calls = 0;
  bench_hist hist;
  Stats() { bench_hist_init(&hist); }
};

void Done() {
  if (g_outstanding.fetch_sub(1) == 1) {
    std::lock_guard<std::mutex> l(g_mu);
    g_cv.notify_all();
  }
}

void CheckResponse(const grpc::Status &s, const SimpleResponse &resp) {
  if (!s.ok())
    bench_fail("call failed: status %d (%s)", static_cast<int>(s.error_code()),
               s.error_message().c_str());
  size_t got = resp.payload().body().size();
  if (got != g_opts->resp_size)
    bench_fail("response payload is %zu bytes, want %u", got,
               g_opts->resp_size);
}

void Record(Stats *st, uint64_t start_ns) {
  if (g_phase.load(std::memory_order_relaxed) == kMeasure) {
    st->calls++;
    bench_hist_add(&st->hist, bench_now_ns() - start_ns);
  }
}

class Tag {
public:
  virtual ~Tag() = default;
  virtual void Proceed(bool ok) = 0;
};

class UnaryCall final : public Tag {
public:
  UnaryCall(BenchmarkService::Stub *stub, grpc::CompletionQueue *cq,
            const SimpleRequest *req, Stats *st)
      : stub_(stub), cq_(cq), req_(req), st_(st) {}
  void Start() {
    ctx_.reset(new grpc::ClientContext);
    resp_.Clear();
    start_ns_ = bench_now_ns();
    reader_ = stub_->PrepareAsyncUnaryCall(ctx_.get(), *req_, cq_);
    reader_->StartCall();
    reader_->Finish(&resp_, &status_, this);
  }
  void Proceed(bool ok) override {
    if (!ok)
      bench_fail("unary call: completion queue reported failure");
    CheckResponse(status_, resp_);
    Record(st_, start_ns_);
    if (g_phase.load(std::memory_order_relaxed) == kStop) {
      Done();
      return;
    }
    Start();
  }

private:
  BenchmarkService::Stub *stub_;
  grpc::CompletionQueue *cq_;
  const SimpleRequest *req_;
  Stats *st_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<SimpleResponse>> reader_;
  SimpleResponse resp_;
  grpc::Status status_;
  uint64_t start_ns_ = 0;
};

class PingPong final : public Tag {
public:
  PingPong(BenchmarkService::Stub *stub, grpc::CompletionQueue *cq,
           const SimpleRequest *req, Stats *st)
      : cq_(cq), req_(req), st_(st) {
    stream_ = stub->PrepareAsyncStreamingCall(&ctx_, cq_);
    state_ = kStarting;
    stream_->StartCall(this);
  }
  void Proceed(bool ok) override {
    switch (state_) {
    case kStarting:
      if (!ok)
        bench_fail("streaming call could not start");
      Write();
      return;
    case kWriting:
      if (!ok) { // the stream broke: its status says why
        state_ = kFinishing;
        stream_->Finish(&status_, this);
        return;
      }
      state_ = kReading;
      stream_->Read(&resp_, this);
      return;
    case kReading:
      if (!ok) {
        state_ = kFinishing;
        stream_->Finish(&status_, this);
        return;
      }
      CheckResponse(grpc::Status::OK, resp_);
      Record(st_, start_ns_);
      if (g_phase.load(std::memory_order_relaxed) == kStop) {
        state_ = kClosing;
        stream_->WritesDone(this);
        return;
      }
      Write();
      return;
    case kClosing:
      state_ = kFinishing;
      stream_->Finish(&status_, this);
      return;
    case kFinishing:
      if (!status_.ok())
        bench_fail("stream failed: status %d (%s)",
                   static_cast<int>(status_.error_code()),
                   status_.error_message().c_str());
      if (!ok || g_phase.load() != kStop)
        bench_fail("stream ended early");
      Done();
      return;
    }
  }

private:
  void Write() {
    state_ = kWriting;
    start_ns_ = bench_now_ns();
    stream_->Write(*req_, this);
  }
  enum { kStarting, kWriting, kReading, kClosing, kFinishing } state_;
  grpc::CompletionQueue *cq_;
  const SimpleRequest *req_;
  Stats *st_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<SimpleRequest, SimpleResponse>>
      stream_;
  SimpleResponse resp_;
  grpc::Status status_;
  uint64_t start_ns_ = 0;
};

std::string ReadFile(const char *path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    bench_fail("cannot read %s", path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string &target,
                                          unsigned i) {
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> creds =
      grpc::InsecureChannelCredentials();
  if (g_opts->tls_ca) {
    grpc::SslCredentialsOptions so;
    so.pem_root_certs = ReadFile(g_opts->tls_ca);
    creds = grpc::SslCredentials(so);
    if (g_opts->tls_server_name)
      args.SetSslTargetNameOverride(g_opts->tls_server_name);
  }
  // A subchannel pool of its own: each channel gets its own connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("crpc.bench.channel_id", static_cast<int>(i));
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(target, creds, args);
}

int RunIdle(const bench_client_opts &o,
            std::vector<std::unique_ptr<BenchmarkService::Stub>> &stubs,
            const SimpleRequest &req) {
  for (auto &stub : stubs) {
    grpc::ClientContext ctx;
    SimpleResponse resp;
    grpc::Status s = stub->UnaryCall(&ctx, req, &resp);
    CheckResponse(s, resp);
  }
  std::printf("READY %u\n", o.connections);
  std::fflush(stdout);
  // Hold the connections until the driver closes our stdin.
  char buf[256];
  while (std::fread(buf, 1, sizeof buf, stdin) > 0) {
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  bench_client_opts o;
  bench_client_parse(&o, argc, argv, "grpcpp-bench-client");
  if (o.sync) {
    std::fprintf(stderr, "grpcpp-bench-client: --sync is crpc-only (this "
                         "client always uses the completion-queue API)\n");
    return 2;
  }
  g_opts = &o;
  bench_raise_nofile();

  SimpleRequest req;
  req.set_response_size(static_cast<int32_t>(o.resp_size));
  if (o.req_size > 0)
    req.mutable_payload()->mutable_body()->assign(o.req_size, '\0');

  std::vector<std::shared_ptr<grpc::Channel>> chans;
  std::vector<std::unique_ptr<BenchmarkService::Stub>> stubs;
  for (unsigned i = 0; i < o.connections; i++) {
    chans.push_back(NewChannel(o.target, i));
    if (!chans.back()->WaitForConnected(
            std::chrono::system_clock::now() + std::chrono::seconds(10)))
      bench_fail("cannot connect to %s (connection %u)", o.target, i);
    stubs.emplace_back(BenchmarkService::NewStub(chans.back()));
  }
  if (o.rpc == BENCH_RPC_IDLE)
    return RunIdle(o, stubs, req);

  unsigned nthreads = o.threads;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs;
  std::vector<Stats> stats(nthreads);
  for (unsigned i = 0; i < nthreads; i++)
    cqs.emplace_back(new grpc::CompletionQueue);

  std::vector<std::unique_ptr<Tag>> tags;
  g_outstanding = static_cast<long>(o.connections) * o.inflight;
  for (unsigned c = 0; c < o.connections; c++) {
    unsigned t = c % nthreads;
    for (unsigned k = 0; k < o.inflight; k++) {
      if (o.rpc == BENCH_RPC_UNARY) {
        auto *u = new UnaryCall(stubs[c].get(), cqs[t].get(), &req, &stats[t]);
        tags.emplace_back(u);
        u->Start();
      } else {
        tags.emplace_back(
            new PingPong(stubs[c].get(), cqs[t].get(), &req, &stats[t]));
      }
    }
  }
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < nthreads; i++) {
    grpc::CompletionQueue *q = cqs[i].get();
    ts.emplace_back([q] {
      void *tag;
      bool ok;
      while (q->Next(&tag, &ok))
        static_cast<Tag *>(tag)->Proceed(ok);
    });
  }

  auto secs = [](double s) {
    return std::chrono::nanoseconds(static_cast<int64_t>(s * 1e9));
  };
  std::this_thread::sleep_for(secs(o.warmup_s));
  uint64_t t0 = bench_now_ns();
  double cpu0 = bench_cpu_s();
  g_phase = kMeasure;
  std::this_thread::sleep_for(secs(o.duration_s));
  g_phase = kStop;
  uint64_t t1 = bench_now_ns();
  double cpu1 = bench_cpu_s();
  {
    std::unique_lock<std::mutex> l(g_mu);
    if (!g_cv.wait_for(l, std::chrono::seconds(10),
                       [] { return g_outstanding.load() == 0; }))
      bench_fail("%ld calls still running 10 s after the end of the run",
                 g_outstanding.load());
  }
  for (auto &q : cqs)
    q->Shutdown();
  for (auto &t : ts)
    t.join();

  bench_result r;
  r.impl = "grpcpp";
  r.calls = 0;
  r.cpu_s = cpu1 - cpu0;
  r.elapsed_s = static_cast<double>(t1 - t0) / 1e9;
  bench_hist_init(&r.hist);
  for (auto &s : stats) {
    r.calls += s.calls;
    bench_hist_merge(&r.hist, &s.hist);
  }
  if (r.calls == 0)
    bench_fail("no call completed in the measured %.2f s", r.elapsed_s);
  bench_report(&o, &r);
  return 0;
}
