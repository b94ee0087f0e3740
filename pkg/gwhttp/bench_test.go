package gwhttp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/s6gate/s6gate/pkg/state"
)

// BenchmarkEndpointAt1000PerSecond sends b.N requests at 1,000 a second (8 clients with
// keep-alive, a mix of every path, bad methods and unknown paths included) to a real server
// over loopback, reporting the heap in use (after a GC) before and after, and its growth per
// 1,000 requests: the endpoint's memory stays flat when heap-growth-KB/1k-req stays near 0 as
// -benchtime grows (`go test -run '^$' -bench EndpointAt1000 -benchtime 20000x ./pkg/gwhttp/`).
// The source reports 100 gateways.
func BenchmarkEndpointAt1000PerSecond(b *testing.B) {
	f := newFake()
	for i := range 100 {
		g := twoGateways()[i%2]
		g.Profile = fmt.Sprintf("gw-%03d", i)
		g.GatewayState = &[]string{state.Running, state.Failed}[i%2]
		f.sts = append(f.sts, g)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Handler(f, quiet()), quiet()) }()
	defer func() { cancel(); <-done }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	reqs := []struct{ method, path string }{
		{"GET", PathMetrics}, {"GET", PathStatus}, {"GET", PathHealthz}, {"GET", PathReadyz},
		{"HEAD", PathMetrics}, {"POST", PathStatus}, {"GET", "/nope"}, {"GET", PathMetrics},
	}
	do := func(i int) {
		r := reqs[i%len(reqs)]
		req, _ := http.NewRequest(r.method, base+r.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// paced sends n requests, one per tick when tick is set, through 8 clients (8 kept-alive
	// connections).
	paced := func(n int, tick <-chan time.Time) {
		work := make(chan int)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					do(i)
				}
			}()
		}
		for i := 0; i < n; i++ {
			if tick != nil {
				<-tick
			}
			work <- i
		}
		close(work)
		wg.Wait()
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	// Warm up, unpaced: the 8 connections and their buffers, the first snapshot, the
	// collectors, the server's pools; what stays after this is the endpoint's working set.
	paced(512, nil)
	before := heap()
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	paced(b.N, tick.C)
	elapsed := time.Since(start)
	b.StopTimer()
	after := heap()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(before)/1024, "heap-before-KB")
	b.ReportMetric(float64(after)/1024, "heap-after-KB")
	b.ReportMetric((float64(after)-float64(before))/1024/(float64(b.N)/1000), "heap-growth-KB/1k-req")
}
