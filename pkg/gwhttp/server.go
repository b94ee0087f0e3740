package gwhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/operator"
)

// Paths the endpoint serves.
const (
	PathMetrics = "/metrics"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathStatus  = "/status"
)

// Server limits: a client that trickles its request or holds a connection open costs a
// goroutine for this long at most.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 8 << 10
	// MaxScrapes is how many /metrics requests are served at once; more get 503.
	MaxScrapes = 4
	// StatusMaxAge is how long one read of the gateways' status serves /metrics and /status.
	StatusMaxAge = time.Second
	// statusTimeout bounds one status read (it waits for the boot, like a verb).
	statusTimeout = 2 * time.Second
)

// Handler serves the endpoint's four paths from src, read-only.
func Handler(src Source, log *slog.Logger) http.Handler {
	snap := &snapshot{src: src}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(src, snap),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: MaxScrapes,
		Timeout:             statusTimeout + time.Second,
	})
	mux := map[string]http.Handler{
		PathMetrics: metrics,
		PathHealthz: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			v := src.Live()
			verdict(w, "live", v.Err)
		}),
		PathReadyz: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			v := src.Ready(time.Now())
			verdict(w, "ready", v.Err)
		}),
		PathStatus: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sts, _, err := snap.get(r.Context())
			if err != nil {
				plain(w, http.StatusServiceUnavailable, err.Error())
				return
			}
			b, ok := operator.AppendStatusJSON(nil, sts)
			if !ok {
				plain(w, http.StatusInternalServerError, "status cannot be written as JSON")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(b)
		}),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			plain(w, http.StatusMethodNotAllowed, "method not allowed: this endpoint only reads")
			return
		}
		h, ok := mux[r.URL.Path]
		if !ok {
			plain(w, http.StatusNotFound, "not found: "+PathMetrics+", "+PathHealthz+", "+PathReadyz+", "+PathStatus)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// verdict is a probe's answer: 200 and what passed, or 503 and why not.
func verdict(w http.ResponseWriter, what string, err error) {
	if err != nil {
		plain(w, http.StatusServiceUnavailable, "not "+what+": "+err.Error())
		return
	}
	plain(w, http.StatusOK, what)
}

func plain(w http.ResponseWriter, code int, line string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, line)
}

// slogPrinter is promhttp's error log on slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn(fmt.Sprint(v...)) }

// snapshot is the gateways' status, read at most once per StatusMaxAge: concurrent requests
// wait for the one read in progress and share its result.
type snapshot struct {
	src Source
	mu  sync.Mutex
	at  time.Time
	sts []operator.GatewayStatus
	err error
}

func (s *snapshot) get(ctx context.Context) ([]operator.GatewayStatus, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); s.at.IsZero() || now.Sub(s.at) >= StatusMaxAge || now.Before(s.at) {
		ctx, cancel := context.WithTimeout(ctx, statusTimeout)
		s.sts, s.err = s.src.Status(ctx)
		cancel()
		s.at = time.Now()
	}
	return s.sts, s.at, s.err
}

// CheckAddr checks a listen address (GATEWAY_HTTP_ADDR): host:port with a numeric port; the
// host may be empty (every address).
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return exitcode.Usagef("GATEWAY_HTTP_ADDR=%q: want [HOST]:PORT, e.g. :9090 (%v)", addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return exitcode.Usagef("GATEWAY_HTTP_ADDR=%q: port %q is not a number from 1 to 65535", addr, port)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return exitcode.Usagef("GATEWAY_HTTP_ADDR=%q: host %q is not an IP address", addr, host)
	}
	return nil
}

// NewServer is an http.Server for h with the package's limits.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Serve serves h on ln until ctx ends, then shuts down within a second.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := NewServer(h, log)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
