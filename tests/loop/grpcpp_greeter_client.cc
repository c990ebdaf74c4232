// A gRPC C++ Greeter client for the loop tests: --target=HOST:PORT
// --name=NAME --count=N makes N SayHello calls at once (async API) and
// prints "Greeter received: Hello NAME" once when all N answered right;
// exits 1 otherwise.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "helloworld.grpc.pb.h"

int main(int argc, char **argv) {
  std::string target, name = "world";
  int count = 1;
  for (int i = 1; i < argc; i++) {
    if (!strncmp(argv[i], "--target=", 9))
      target = argv[i] + 9;
    else if (!strncmp(argv[i], "--name=", 7))
      name = argv[i] + 7;
    else if (!strncmp(argv[i], "--count=", 8))
      count = atoi(argv[i] + 8);
  }
  if (target.empty() || count < 1) {
    fprintf(stderr, "usage: grpcpp-greeter-client --target=HOST:PORT "
                    "[--name=NAME] [--count=N]\n");
    return 2;
  }
  auto stub = helloworld::Greeter::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  struct Pending {
    grpc::ClientContext ctx;
    helloworld::HelloReply reply;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<helloworld::HelloReply>>
        rpc;
  };
  std::vector<std::unique_ptr<Pending>> calls;
  helloworld::HelloRequest req;
  req.set_name(name);
  for (int i = 0; i < count; i++) {
    auto p = std::make_unique<Pending>();
    p->ctx.set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(20));
    p->rpc = stub->AsyncSayHello(&p->ctx, req, &cq);
    p->rpc->Finish(&p->reply, &p->status, p.get());
    calls.push_back(std::move(p));
  }
  int ok = 0;
  for (int i = 0; i < count; i++) {
    void *tag;
    bool done;
    if (!cq.Next(&tag, &done))
      break;
    auto *p = static_cast<Pending *>(tag);
    if (p->status.ok() && p->reply.message() == "Hello " + name)
      ok++;
    else
      fprintf(stderr, "SayHello: %d %s / %s\n", p->status.error_code(),
              p->status.error_message().c_str(), p->reply.message().c_str());
  }
  if (ok != count)
    return 1;
  printf("Greeter received: Hello %s\n", name.c_str());
  return 0;
}
