// A grpc.testing.TestService client on gRPC C++ running one test case of
// gRPC's doc/interop-test-descriptions.md. A reference peer for crpc's
// interop matrix: exits 0 when the case passed, 1 with a message when it
// failed, 2 on usage errors.
#include <chrono>
#include <cstdarg>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "grpc/testing/test.grpc.pb.h"
#include "interop_common.h"

using grpc::ClientContext;
using grpc::Status;
using grpc::StatusCode;
using grpc::testing::Empty;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingInputCallRequest;
using grpc::testing::StreamingInputCallResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;
using grpc::testing::TestService;

namespace {

const char kEchoInitial[] = "x-grpc-test-echo-initial";
const char kEchoTrailing[] = "x-grpc-test-echo-trailing-bin";
const char kInitialValue[] = "test_initial_metadata_value";
const std::string kTrailingValue("\xab\xab\xab", 3);

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string Fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

void Check(bool cond, const std::string &what) {
  if (!cond)
    throw Failure(what);
}

void ExpectCode(const Status &s, StatusCode want, const char *what) {
  Check(s.error_code() == want,
        Fmt("%s: status %d (%s), want %d", what, (int)s.error_code(),
            s.error_message().c_str(), (int)want));
}

void CheckPayload(const grpc::testing::Payload &p, size_t size,
                  const char *what) {
  Check(p.body().size() == size,
        Fmt("%s: payload of %zu bytes, want %zu", what, p.body().size(), size));
  Check(p.body() == std::string(size, '\0'),
        Fmt("%s: payload is not all zeros", what));
}

void CheckCompressed(ClientContext *ctx, bool want, const char *what) {
  bool got = interop::LastMessageCompressed(ctx->c_call());
  Check(got == want, Fmt("%s: response %s compressed flag", what,
                         got ? "has the" : "lacks the"));
}

SimpleRequest LargeRequest() {
  SimpleRequest req;
  req.set_response_size(314159);
  req.mutable_payload()->set_body(std::string(271828, '\0'));
  return req;
}

StreamingOutputCallRequest StreamRequest(int resp_size, int req_size) {
  StreamingOutputCallRequest req;
  req.add_response_parameters()->set_size(resp_size);
  if (req_size > 0)
    req.mutable_payload()->set_body(std::string(req_size, 0));
  return req;
}

struct Env {
  interop::Flags *flags;
  std::function<std::shared_ptr<grpc::Channel>()> make_channel;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<TestService::Stub> stub;
};

void EmptyUnary(Env &e) {
  ClientContext ctx;
  Empty req, resp;
  ExpectCode(e.stub->EmptyCall(&ctx, req, &resp), StatusCode::OK, "EmptyCall");
}

void LargeUnary(Env &e) {
  ClientContext ctx;
  SimpleResponse resp;
  ExpectCode(e.stub->UnaryCall(&ctx, LargeRequest(), &resp), StatusCode::OK,
             "UnaryCall");
  CheckPayload(resp.payload(), 314159, "UnaryCall");
}

void ClientCompressedUnary(Env &e) {
  SimpleRequest req = LargeRequest();
  req.mutable_expect_compressed()->set_value(true);
  {
    ClientContext ctx;
    SimpleResponse resp;
    ExpectCode(e.stub->UnaryCall(&ctx, req, &resp),
               StatusCode::INVALID_ARGUMENT, "probe");
  }
  {
    ClientContext ctx;
    ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    SimpleResponse resp;
    ExpectCode(e.stub->UnaryCall(&ctx, req, &resp), StatusCode::OK,
               "compressed UnaryCall");
    CheckPayload(resp.payload(), 314159, "compressed UnaryCall");
  }
  {
    req.mutable_expect_compressed()->set_value(false);
    ClientContext ctx;
    SimpleResponse resp;
    ExpectCode(e.stub->UnaryCall(&ctx, req, &resp), StatusCode::OK,
               "uncompressed UnaryCall");
    CheckPayload(resp.payload(), 314159, "uncompressed UnaryCall");
  }
}

void ServerCompressedUnary(Env &e) {
  for (bool c : {true, false}) {
    SimpleRequest req = LargeRequest();
    req.mutable_response_compressed()->set_value(c);
    ClientContext ctx;
    SimpleResponse resp;
    const char *what = c ? "compressed UnaryCall" : "uncompressed UnaryCall";
    ExpectCode(e.stub->UnaryCall(&ctx, req, &resp), StatusCode::OK, what);
    CheckPayload(resp.payload(), 314159, what);
    CheckCompressed(&ctx, c, what);
  }
}

void ClientStreaming(Env &e) {
  ClientContext ctx;
  StreamingInputCallResponse resp;
  auto w = e.stub->StreamingInputCall(&ctx, &resp);
  for (int n : {27182, 8, 1828, 45904}) {
    StreamingInputCallRequest req;
    req.mutable_payload()->set_body(std::string(n, '\0'));
    Check(w->Write(req), "Write failed");
  }
  w->WritesDone();
  ExpectCode(w->Finish(), StatusCode::OK, "StreamingInputCall");
  Check(resp.aggregated_payload_size() == 74922,
        Fmt("aggregated_payload_size %d, want 74922",
            resp.aggregated_payload_size()));
}

void ClientCompressedStreaming(Env &e) {
  StreamingInputCallRequest req;
  req.mutable_expect_compressed()->set_value(true);
  req.mutable_payload()->set_body(std::string(27182, '\0'));
  {
    ClientContext ctx;
    StreamingInputCallResponse resp;
    auto w = e.stub->StreamingInputCall(&ctx, &resp);
    w->Write(req); // may fail once the server has answered
    w->WritesDone();
    ExpectCode(w->Finish(), StatusCode::INVALID_ARGUMENT, "probe");
  }
  ClientContext ctx;
  ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  StreamingInputCallResponse resp;
  auto w = e.stub->StreamingInputCall(&ctx, &resp);
  Check(w->Write(req), "Write of the compressed message failed");
  req.mutable_expect_compressed()->set_value(false);
  req.mutable_payload()->set_body(std::string(45904, '\0'));
  Check(w->Write(req, grpc::WriteOptions().set_no_compression()),
        "Write of the uncompressed message failed");
  w->WritesDone();
  ExpectCode(w->Finish(), StatusCode::OK, "StreamingInputCall");
  Check(resp.aggregated_payload_size() == 73086,
        Fmt("aggregated_payload_size %d, want 73086",
            resp.aggregated_payload_size()));
}

void ServerStreaming(Env &e) {
  const std::vector<int> sizes = {31415, 9, 2653, 58979};
  StreamingOutputCallRequest req;
  for (int n : sizes)
    req.add_response_parameters()->set_size(n);
  ClientContext ctx;
  auto r = e.stub->StreamingOutputCall(&ctx, req);
  StreamingOutputCallResponse resp;
  size_t i = 0;
  for (; r->Read(&resp); i++) {
    Check(i < sizes.size(), "more responses than asked for");
    CheckPayload(resp.payload(), sizes[i], "StreamingOutputCall");
  }
  ExpectCode(r->Finish(), StatusCode::OK, "StreamingOutputCall");
  Check(i == sizes.size(), Fmt("%zu responses, want 4", i));
}

void ServerCompressedStreaming(Env &e) {
  StreamingOutputCallRequest req;
  auto *p = req.add_response_parameters();
  p->set_size(31415);
  p->mutable_compressed()->set_value(true);
  p = req.add_response_parameters();
  p->set_size(92653);
  p->mutable_compressed()->set_value(false);
  ClientContext ctx;
  auto r = e.stub->StreamingOutputCall(&ctx, req);
  StreamingOutputCallResponse resp;
  Check(r->Read(&resp), "no first response");
  CheckPayload(resp.payload(), 31415, "first response");
  CheckCompressed(&ctx, true, "first response");
  Check(r->Read(&resp), "no second response");
  CheckPayload(resp.payload(), 92653, "second response");
  CheckCompressed(&ctx, false, "second response");
  Check(!r->Read(&resp), "more than two responses");
  ExpectCode(r->Finish(), StatusCode::OK, "StreamingOutputCall");
}

void PingPong(Env &e) {
  const int sizes[][2] = {{31415, 27182}, {9, 8}, {2653, 1828}, {58979, 45904}};
  ClientContext ctx;
  auto s = e.stub->FullDuplexCall(&ctx);
  StreamingOutputCallResponse resp;
  for (const auto &sz : sizes) {
    Check(s->Write(StreamRequest(sz[0], sz[1])), "Write failed");
    Check(s->Read(&resp), "no response to a ping");
    CheckPayload(resp.payload(), sz[0], "ping_pong response");
  }
  s->WritesDone();
  Check(!s->Read(&resp), "a response after the last ping");
  ExpectCode(s->Finish(), StatusCode::OK, "FullDuplexCall");
}

void EmptyStream(Env &e) {
  ClientContext ctx;
  auto s = e.stub->FullDuplexCall(&ctx);
  s->WritesDone();
  StreamingOutputCallResponse resp;
  Check(!s->Read(&resp), "a response to an empty stream");
  ExpectCode(s->Finish(), StatusCode::OK, "FullDuplexCall");
}

void CheckEchoed(ClientContext &ctx, const char *what) {
  const auto &initial = ctx.GetServerInitialMetadata();
  auto it = initial.find(kEchoInitial);
  Check(it != initial.end() &&
            std::string(it->second.data(), it->second.size()) == kInitialValue,
        Fmt("%s: initial metadata not echoed", what));
  const auto &trailing = ctx.GetServerTrailingMetadata();
  it = trailing.find(kEchoTrailing);
  Check(it != trailing.end() &&
            std::string(it->second.data(), it->second.size()) == kTrailingValue,
        Fmt("%s: trailing metadata not echoed", what));
}

void CustomMetadata(Env &e) {
  {
    ClientContext ctx;
    ctx.AddMetadata(kEchoInitial, kInitialValue);
    ctx.AddMetadata(kEchoTrailing, kTrailingValue);
    SimpleResponse resp;
    ExpectCode(e.stub->UnaryCall(&ctx, LargeRequest(), &resp), StatusCode::OK,
               "UnaryCall");
    CheckPayload(resp.payload(), 314159, "UnaryCall");
    CheckEchoed(ctx, "UnaryCall");
  }
  ClientContext ctx;
  ctx.AddMetadata(kEchoInitial, kInitialValue);
  ctx.AddMetadata(kEchoTrailing, kTrailingValue);
  auto s = e.stub->FullDuplexCall(&ctx);
  Check(s->Write(StreamRequest(314159, 271828)), "Write failed");
  s->WritesDone();
  StreamingOutputCallResponse resp;
  Check(s->Read(&resp), "no response");
  CheckPayload(resp.payload(), 314159, "FullDuplexCall");
  Check(!s->Read(&resp), "more than one response");
  ExpectCode(s->Finish(), StatusCode::OK, "FullDuplexCall");
  CheckEchoed(ctx, "FullDuplexCall");
}

void StatusEcho(Env &e, const std::string &msg, bool streaming) {
  {
    SimpleRequest req;
    req.mutable_response_status()->set_code(2);
    req.mutable_response_status()->set_message(msg);
    ClientContext ctx;
    SimpleResponse resp;
    Status s = e.stub->UnaryCall(&ctx, req, &resp);
    ExpectCode(s, StatusCode::UNKNOWN, "UnaryCall");
    Check(s.error_message() == msg,
          "UnaryCall: wrong status message: " + s.error_message());
  }
  if (!streaming)
    return;
  StreamingOutputCallRequest req;
  req.mutable_response_status()->set_code(2);
  req.mutable_response_status()->set_message(msg);
  ClientContext ctx;
  auto s = e.stub->FullDuplexCall(&ctx);
  s->Write(req);
  s->WritesDone();
  Status st = s->Finish();
  ExpectCode(st, StatusCode::UNKNOWN, "FullDuplexCall");
  Check(st.error_message() == msg,
        "FullDuplexCall: wrong status message: " + st.error_message());
}

void StatusCodeAndMessage(Env &e) { StatusEcho(e, "test status message", 1); }

void SpecialStatusMessage(Env &e) {
  StatusEcho(e,
             "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and "
             "non-BMP \xf0\x9f\x98\x88\t\n",
             false);
}

void UnimplementedMethod(Env &e) {
  ClientContext ctx;
  Empty req, resp;
  ExpectCode(e.stub->UnimplementedCall(&ctx, req, &resp),
             StatusCode::UNIMPLEMENTED, "UnimplementedCall");
}

void UnimplementedService(Env &e) {
  auto stub = grpc::testing::UnimplementedService::NewStub(e.channel);
  ClientContext ctx;
  Empty req, resp;
  ExpectCode(stub->UnimplementedCall(&ctx, req, &resp),
             StatusCode::UNIMPLEMENTED, "UnimplementedService");
}

void CancelAfterBegin(Env &e) {
  ClientContext ctx;
  StreamingInputCallResponse resp;
  auto w = e.stub->StreamingInputCall(&ctx, &resp);
  ctx.TryCancel();
  ExpectCode(w->Finish(), StatusCode::CANCELLED, "StreamingInputCall");
}

void CancelAfterFirstResponse(Env &e) {
  ClientContext ctx;
  auto s = e.stub->FullDuplexCall(&ctx);
  Check(s->Write(StreamRequest(31415, 27182)), "Write failed");
  StreamingOutputCallResponse resp;
  Check(s->Read(&resp), "no first response");
  CheckPayload(resp.payload(), 31415, "first response");
  ctx.TryCancel();
  ExpectCode(s->Finish(), StatusCode::CANCELLED, "FullDuplexCall");
}

void TimeoutOnSleepingServer(Env &e) {
  ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(1));
  auto s = e.stub->FullDuplexCall(&ctx);
  StreamingOutputCallRequest req;
  req.mutable_payload()->set_body(std::string(27182, '\0'));
  s->Write(req); // may fail: the deadline can pass first
  ExpectCode(s->Finish(), StatusCode::DEADLINE_EXCEEDED, "FullDuplexCall");
}

void Soak(Env &e, bool new_channel) {
  const interop::Flags &f = *e.flags;
  long iterations = f.Int("soak_iterations");
  long max_failures = f.Int("soak_max_failures");
  long max_ms = f.Int("soak_per_iteration_max_acceptable_latency_ms");
  long min_gap_ms = f.Int("soak_min_time_ms_between_rpcs");
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::seconds(f.Int("soak_overall_timeout_seconds"));
  long failures = 0;
  for (long i = 0; i < iterations; i++) {
    auto start = std::chrono::steady_clock::now();
    Check(start < deadline, Fmt("soak: overall timeout after %ld", i));
    std::shared_ptr<grpc::Channel> ch =
        new_channel ? e.make_channel() : e.channel;
    auto stub = TestService::NewStub(ch);
    ClientContext ctx;
    SimpleResponse resp;
    Status s = stub->UnaryCall(&ctx, LargeRequest(), &resp);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    if (!s.ok() || resp.payload().body().size() != 314159 || ms > max_ms) {
      failures++;
      std::fprintf(stderr, "soak iteration %ld failed: status %d, %lld ms\n", i,
                   (int)s.error_code(), (long long)ms);
    }
    auto next = start + std::chrono::milliseconds(min_gap_ms);
    std::this_thread::sleep_until(next);
  }
  Check(failures <= max_failures,
        Fmt("soak: %ld of %ld iterations failed (max %ld)", failures,
            iterations, max_failures));
}

void RpcSoak(Env &e) { Soak(e, false); }
void ChannelSoak(Env &e) { Soak(e, true); }

const struct {
  const char *name;
  void (*fn)(Env &);
} kCases[] = {
    {"empty_unary", EmptyUnary},
    {"large_unary", LargeUnary},
    {"client_compressed_unary", ClientCompressedUnary},
    {"server_compressed_unary", ServerCompressedUnary},
    {"client_streaming", ClientStreaming},
    {"client_compressed_streaming", ClientCompressedStreaming},
    {"server_streaming", ServerStreaming},
    {"server_compressed_streaming", ServerCompressedStreaming},
    {"ping_pong", PingPong},
    {"empty_stream", EmptyStream},
    {"custom_metadata", CustomMetadata},
    {"status_code_and_message", StatusCodeAndMessage},
    {"special_status_message", SpecialStatusMessage},
    {"unimplemented_method", UnimplementedMethod},
    {"unimplemented_service", UnimplementedService},
    {"cancel_after_begin", CancelAfterBegin},
    {"cancel_after_first_response", CancelAfterFirstResponse},
    {"timeout_on_sleeping_server", TimeoutOnSleepingServer},
    {"rpc_soak", RpcSoak},
    {"channel_soak", ChannelSoak},
};

} // namespace

int main(int argc, char **argv) {
  interop::Flags flags;
  flags.Define("server_host", "localhost");
  flags.Define("server_port", "0");
  flags.Define("server_host_override", "");
  flags.Define("test_case", "large_unary");
  flags.Define("use_tls", "false");
  flags.Define("use_test_ca", "false");
  flags.Define("ca_file", "");
  flags.Define("soak_iterations", "10");
  flags.Define("soak_max_failures", "0");
  flags.Define("soak_per_iteration_max_acceptable_latency_ms", "1000");
  flags.Define("soak_overall_timeout_seconds", "60");
  flags.Define("soak_min_time_ms_between_rpcs", "0");
  if (!flags.Parse(argc, argv))
    return 2;

  std::string name = flags.Str("test_case");
  void (*fn)(Env &) = nullptr;
  for (const auto &c : kCases)
    if (name == c.name)
      fn = c.fn;
  if (fn == nullptr) {
    std::fprintf(stderr, "unknown --test_case=%s%s\n", name.c_str(),
                 name == "cacheable_unary" ? " (needs a caching proxy)" : "");
    return 2;
  }
  if (flags.Int("server_port") <= 0) {
    std::fprintf(stderr, "--server_port is required\n");
    return 2;
  }

  std::string target =
      flags.Str("server_host") + ":" + flags.Str("server_port");
  std::string override_name = flags.Str("server_host_override");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (flags.Bool("use_tls")) {
    grpc::SslCredentialsOptions opts;
    if (flags.Bool("use_test_ca")) {
      if (flags.Str("ca_file").empty()) {
        std::fprintf(stderr, "--use_test_ca needs --ca_file\n");
        return 2;
      }
      opts.pem_root_certs = interop::ReadFile(flags.Str("ca_file"));
    }
    creds = grpc::SslCredentials(opts);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  bool tls = flags.Bool("use_tls");

  Env env;
  env.flags = &flags;
  env.make_channel = [&]() {
    grpc::ChannelArguments args;
    // A channel of its own for each channel_soak iteration, not a shared
    // subchannel.
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    if (!override_name.empty()) {
      if (tls)
        args.SetSslTargetNameOverride(override_name);
      else
        args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, override_name);
    }
    return grpc::CreateCustomChannel(target, creds, args);
  };
  env.channel = env.make_channel();
  env.stub = TestService::NewStub(env.channel);
  try {
    fn(env);
  } catch (const Failure &f) {
    std::fprintf(stderr, "%s FAILED: %s\n", name.c_str(), f.what());
    return 1;
  }
  std::printf("%s: PASS\n", name.c_str());
  return 0;
}
