// grpcgo-bench-server: the grpc-go reference peer of crpc-bench-server and
// grpcpp-bench-server.
//
// Serves grpc.testing.BenchmarkService (UnaryCall, StreamingCall) with
// grpc-go's ordinary API, as grpc-go's own benchmark server does: the
// response carries response_size zero bytes; StreamingCall answers every
// request with one response until the client half-closes.
//
// Flags as the other bench servers: --port=N (0: pick a free port and print
// it on stdout), --threads=N (GOMAXPROCS; default: the number of CPUs),
// --tls_cert=PEM --tls_key=PEM (TLS on when both are set).
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "grpc/testing"
)

const prog = "grpcgo-bench-server"

type server struct {
	pb.UnimplementedBenchmarkServiceServer
}

func fill(req *pb.SimpleRequest) *pb.SimpleResponse {
	resp := &pb.SimpleResponse{}
	if n := req.GetResponseSize(); n > 0 {
		resp.Payload = &pb.Payload{Body: make([]byte, n)}
	}
	return resp
}

func (server) UnaryCall(_ context.Context, req *pb.SimpleRequest) (*pb.SimpleResponse, error) {
	return fill(req), nil
}

func (server) StreamingCall(s pb.BenchmarkService_StreamingCallServer) error {
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(fill(req)); err != nil {
			return err
		}
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s --port=N [--threads=N] "+
		"[--tls_cert=PEM --tls_key=PEM]\n", prog)
}

func bad(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", prog, fmt.Sprintf(format, a...))
	usage(os.Stderr)
	os.Exit(2)
}

func main() {
	port, havePort, threads := 0, false, 0
	var cert, key string
	var haveCert, haveKey bool
	for _, a := range os.Args[1:] {
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case a == "--help" || a == "-h":
			usage(os.Stdout)
			os.Exit(0)
		case name == "--port" && hasVal:
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > 65535 {
				bad("--port=%s: want an integer in 0..65535", val)
			}
			port, havePort = n, true
		case name == "--threads" && hasVal:
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 256 {
				bad("--threads=%s: want an integer in 1..256", val)
			}
			threads = n
		case name == "--tls_cert" && hasVal:
			cert, haveCert = val, true
		case name == "--tls_key" && hasVal:
			key, haveKey = val, true
		default:
			bad("unknown argument '%s'", a)
		}
	}
	if !havePort {
		bad("--port is required (0: any free port)")
	}
	if haveCert != haveKey || (haveCert && (cert == "" || key == "")) {
		bad("TLS needs both --tls_cert and --tls_key")
	}
	if threads > 0 {
		runtime.GOMAXPROCS(threads)
	}

	var opts []grpc.ServerOption
	if haveCert {
		creds, err := credentials.NewServerTLSFromFile(cert, key)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: TLS: %v\n", prog, err)
			os.Exit(1)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot listen on port %d: %v\n", prog,
			port, err)
		os.Exit(1)
	}
	s := grpc.NewServer(opts...)
	pb.RegisterBenchmarkServiceServer(s, server{})
	if port == 0 {
		fmt.Println(lis.Addr().(*net.TCPAddr).Port)
	}
	os.Stdout.Sync()

	// SIGTERM / SIGINT (run.py stops servers with SIGTERM): stop at once,
	// exit 0.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		s.Stop()
	}()
	if err := s.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(1)
	}
}
