// grpcgo-bench-client: the grpc-go reference peer of crpc-bench-client and
// grpcpp-bench-client, with their flags and their final JSON result line.
//
//	--target=host:port --rpc=unary|streaming|idle --connections=N
//	--inflight=N (calls or streams per connection) --req_size=B
//	--resp_size=B --duration=S --warmup=S [--threads=N (GOMAXPROCS)]
//	[--tls_ca=PEM [--tls_server_name=NAME]]
//
// One grpc.ClientConn per connection (grpc-go opens one HTTP/2 connection
// per ClientConn). Any non-OK status or wrong response size exits 1: a
// failed run must never look like a fast one. --rpc=idle makes one call on
// each connection, prints "READY N" and holds them until stdin closes.
package main

import (
	"context"
	"fmt"
	"io"
	"io/ioutil"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "grpc/testing"
)

const prog = "grpcgo-bench-client"

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", prog, fmt.Sprintf(format, a...))
	os.Exit(1)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s --target=host:port "+
		"--rpc=unary|streaming|idle [--connections=N] [--inflight=N] "+
		"[--req_size=B] [--resp_size=B] [--duration=S] [--warmup=S] "+
		"[--threads=N] [--tls_ca=PEM [--tls_server_name=NAME]]\n", prog)
}

func bad(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", prog, fmt.Sprintf(format, a...))
	usage(os.Stderr)
	os.Exit(2)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) +
		float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

type opts struct {
	target, rpc, tlsCA, tlsName string
	conns, inflight, threads    int
	reqSize, respSize           int
	duration, warmup            float64
}

func parse() opts {
	o := opts{rpc: "unary", conns: 1, inflight: 1, duration: 3, warmup: 0.5}
	uint := func(name, v string, lo, hi int) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			bad("--%s=%s: want an integer in %d..%d", name, v, lo, hi)
		}
		return n
	}
	secs := func(name, v string) float64 {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 3600 || math.IsNaN(f) {
			bad("--%s=%s: want seconds in 0..3600", name, v)
		}
		return f
	}
	for _, a := range os.Args[1:] {
		k, v, ok := strings.Cut(a, "=")
		if a == "--help" || a == "-h" {
			usage(os.Stdout)
			os.Exit(0)
		}
		if !ok || !strings.HasPrefix(k, "--") {
			bad("unknown argument '%s'", a)
		}
		switch name := k[2:]; name {
		case "target":
			o.target = v
		case "rpc":
			if v != "unary" && v != "streaming" && v != "idle" {
				bad("--rpc=%s: want unary, streaming or idle", v)
			}
			o.rpc = v
		case "connections":
			o.conns = uint(name, v, 1, 100000)
		case "inflight":
			o.inflight = uint(name, v, 1, 100000)
		case "req_size":
			o.reqSize = uint(name, v, 0, 64<<20)
		case "resp_size":
			o.respSize = uint(name, v, 0, 64<<20)
		case "duration":
			o.duration = secs(name, v)
		case "warmup":
			o.warmup = secs(name, v)
		case "threads":
			o.threads = uint(name, v, 1, 256)
		case "tls_ca":
			o.tlsCA = v
		case "tls_server_name":
			o.tlsName = v
		default:
			bad("unknown argument '%s'", a)
		}
	}
	if o.target == "" {
		bad("--target is required")
	}
	if o.duration <= 0 {
		bad("--duration must be > 0")
	}
	return o
}

// state: 0 warm-up, 1 measuring, 2 done.
var state int32

type worker struct {
	calls uint64
	lat   []time.Duration
}

func (w *worker) done(start time.Time) bool {
	switch atomic.LoadInt32(&state) {
	case 1:
		w.calls++
		w.lat = append(w.lat, time.Since(start))
	case 2:
		return true
	}
	return false
}

func check(resp *pb.SimpleResponse, want int) {
	if got := len(resp.GetPayload().GetBody()); got != want {
		fail("response payload %d bytes, want %d", got, want)
	}
}

func main() {
	o := parse()
	if o.threads > 0 {
		runtime.GOMAXPROCS(o.threads)
	}
	dial := []grpc.DialOption{grpc.WithBlock()}
	if o.tlsCA != "" {
		creds, err := credentials.NewClientTLSFromFile(o.tlsCA, o.tlsName)
		if err != nil {
			fail("TLS: %v", err)
		}
		dial = append(dial, grpc.WithTransportCredentials(creds))
	} else {
		dial = append(dial, grpc.WithInsecure())
	}
	clients := make([]pb.BenchmarkServiceClient, o.conns)
	for i := range clients {
		ctx, cancel := context.WithTimeout(context.Background(),
			30*time.Second)
		cc, err := grpc.DialContext(ctx, o.target, dial...)
		cancel()
		if err != nil {
			fail("connect %s: %v", o.target, err)
		}
		clients[i] = pb.NewBenchmarkServiceClient(cc)
	}
	req := &pb.SimpleRequest{ResponseSize: int32(o.respSize)}
	if o.reqSize > 0 {
		req.Payload = &pb.Payload{Body: make([]byte, o.reqSize)}
	}
	ctx := context.Background()

	if o.rpc == "idle" {
		for _, c := range clients {
			resp, err := c.UnaryCall(ctx, req)
			if err != nil {
				fail("UnaryCall: %v", err)
			}
			check(resp, o.respSize)
		}
		fmt.Printf("READY %d\n", o.conns)
		os.Stdout.Sync()
		io.Copy(ioutil.Discard, os.Stdin)
		return
	}

	workers := make([]*worker, o.conns*o.inflight)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{}
		workers[i] = w
		c := clients[i%o.conns]
		wg.Add(1)
		if o.rpc == "unary" {
			go func() {
				defer wg.Done()
				for {
					start := time.Now()
					resp, err := c.UnaryCall(ctx, req)
					if err != nil {
						fail("UnaryCall: %v", err)
					}
					check(resp, o.respSize)
					if w.done(start) {
						return
					}
				}
			}()
		} else {
			go func() {
				defer wg.Done()
				s, err := c.StreamingCall(ctx)
				if err != nil {
					fail("StreamingCall: %v", err)
				}
				for {
					start := time.Now()
					if err := s.Send(req); err != nil {
						fail("StreamingCall send: %v", err)
					}
					resp, err := s.Recv()
					if err != nil {
						fail("StreamingCall recv: %v", err)
					}
					check(resp, o.respSize)
					if w.done(start) {
						break
					}
				}
				s.CloseSend()
				if _, err := s.Recv(); err != io.EOF {
					fail("StreamingCall end: %v", err)
				}
			}()
		}
	}
	time.Sleep(time.Duration(o.warmup * float64(time.Second)))
	cpu0, t0 := cpuSeconds(), time.Now()
	atomic.StoreInt32(&state, 1)
	time.Sleep(time.Duration(o.duration * float64(time.Second)))
	atomic.StoreInt32(&state, 2)
	elapsed, cpu := time.Since(t0).Seconds(), cpuSeconds()-cpu0
	wg.Wait()

	var calls uint64
	var lat []time.Duration
	for _, w := range workers {
		calls += w.calls
		lat = append(lat, w.lat...)
	}
	if calls == 0 {
		fail("no call completed in the measured window")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	q := func(f float64) float64 {
		i := int(f * float64(len(lat)))
		if i >= len(lat) {
			i = len(lat) - 1
		}
		return float64(lat[i]) / 1e3
	}
	rate := float64(calls) / elapsed
	mbps := rate * float64(o.reqSize+o.respSize) / 1e6
	unit := "calls"
	if o.rpc == "streaming" {
		unit = "msgs"
	}
	fmt.Printf("grpcgo client, %s: %d connection(s) x %d in flight, req %d B, "+
		"resp %d B\n", o.rpc, o.conns, o.inflight, o.reqSize, o.respSize)
	fmt.Printf("  %d %s in %.3f s: %.1f %s/s, %.2f MB/s\n", calls, unit,
		elapsed, rate, unit, mbps)
	fmt.Printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  "+
		"mean %.1f  max %.1f\n", q(0.5), q(0.9), q(0.99), q(0.999),
		float64(sum)/float64(len(lat))/1e3, float64(lat[len(lat)-1])/1e3)
	fmt.Printf("  client CPU: %.2f CPUs busy\n", cpu/elapsed)
	fmt.Printf("{\"impl\":\"grpcgo\",\"rpc\":\"%s\",\"connections\":%d,"+
		"\"inflight\":%d,\"req_size\":%d,\"resp_size\":%d,"+
		"\"calls\":%d,\"elapsed_s\":%.4f,\"calls_per_s\":%.1f,"+
		"\"mb_per_s\":%.3f,\"p50_us\":%.2f,\"p90_us\":%.2f,"+
		"\"p99_us\":%.2f,\"p999_us\":%.2f,\"mean_us\":%.2f,"+
		"\"tls\":%t,\"client_cpu\":%.3f}\n", o.rpc, o.conns, o.inflight,
		o.reqSize, o.respSize, calls, elapsed, rate, mbps, q(0.5), q(0.9),
		q(0.99), q(0.999), float64(sum)/float64(len(lat))/1e3,
		o.tlsCA != "", cpu/elapsed)
}
