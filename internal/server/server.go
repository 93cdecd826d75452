package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"k8s.io/klog/v2"
)

// Options configures the kubelet API server.
type Options struct {
	// Address and Port are where the kubelet API listens with TLS
	// (address, port: 10250).
	Address string
	Port    int32
	// HealthzAddress and HealthzPort are where a plain-HTTP /healthz
	// answers without authentication (healthzBindAddress, healthzPort:
	// 127.0.0.1:10248); port 0 disables it. Like upstream's, it only says
	// that the process serves; the syncloop check is on the API port.
	HealthzAddress string
	HealthzPort    int32

	TLS  TLSOptions
	Auth AuthOptions
	// Handlers are the endpoints behind authentication.
	Handlers Handlers
	// Instrument, when set, wraps the whole API handler, e.g. to count
	// requests (metrics.InstrumentHandler).
	Instrument func(http.Handler) http.Handler
}

// Server is the kubelet API on :10250 and the healthz port.
type Server struct {
	opts    Options
	auth    *Auth
	tls     *servingTLS
	handler http.Handler

	// ready is closed once Run listens; then addr and healthAddr are set.
	ready            chan struct{}
	addr, healthAddr net.Addr
}

// New builds the server: it reads (or creates) the serving certificate and
// the client CA and sets up authentication and authorization, so that
// configuration errors show at start-up. It listens only in Run. With
// webhook authentication or authorization and no API client it returns an
// error wrapping ErrNeedsAPIServer.
func New(opts Options) (*Server, error) {
	if opts.Handlers.Pods == nil || opts.Handlers.Health == nil {
		return nil, errors.New("kubelet API: Pods and Health are required")
	}
	auth, err := NewAuth(opts.Auth)
	if err != nil {
		return nil, fmt.Errorf("kubelet API: %w", err)
	}
	st, err := newServingTLS(opts.TLS, auth.ClientCA())
	if err != nil {
		return nil, fmt.Errorf("kubelet API: %w", err)
	}
	h := auth.Filter(NewHandler(opts.Handlers))
	if opts.Instrument != nil {
		h = opts.Instrument(h)
	}
	return &Server{opts: opts, auth: auth, tls: st, handler: h, ready: make(chan struct{})}, nil
}

// Ready is closed once Run listens on its ports.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is where the API listens, nil until Ready is closed.
func (s *Server) Addr() net.Addr {
	select {
	case <-s.ready:
		return s.addr
	default:
		return nil
	}
}

// HealthzAddr is where healthz listens, nil until Ready is closed or when
// disabled.
func (s *Server) HealthzAddr() net.Addr {
	select {
	case <-s.ready:
		return s.healthAddr
	default:
		return nil
	}
}

// Handler is the authenticated API handler, without TLS; for tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves until ctx is cancelled (call it once), reloading the serving certificate and
// client CA when their files change. A port in use is an error at once.
func (s *Server) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	addr := net.JoinHostPort(s.opts.Address, strconv.Itoa(int(s.opts.Port)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("kubelet API: listen on %s: %w", addr, err)
	}
	var healthLn net.Listener
	if s.opts.HealthzPort > 0 {
		healthAddr := net.JoinHostPort(s.opts.HealthzAddress, strconv.Itoa(int(s.opts.HealthzPort)))
		if healthLn, err = net.Listen("tcp", healthAddr); err != nil {
			ln.Close()
			return fmt.Errorf("healthz: listen on %s: %w", healthAddr, err)
		}
		s.healthAddr = healthLn.Addr()
	}
	s.addr = ln.Addr()
	close(s.ready)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{}, 2)
	go func() { s.auth.Run(ctx); done <- struct{}{} }()
	go func() { s.tls.run(ctx); done <- struct{}{} }()
	defer func() { <-done; <-done }()

	errc := make(chan error, 2)
	logger.Info("Serving the kubelet API", "address", "https://"+ln.Addr().String())
	go func() {
		srv := newAPIServer(s.handler)
		srv.TLSConfig = s.tls.config
		errc <- serveListener(ctx, srv, ln, true)
	}()
	if healthLn != nil {
		logger.Info("Serving healthz", "address", "http://"+healthLn.Addr().String()+healthzPath)
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("GET "+healthzPath, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				fmt.Fprint(w, "ok")
			})
			errc <- serveListener(ctx, newHealthzServer(mux), healthLn, false)
		}()
	} else {
		errc <- nil
	}
	var first error
	for range 2 {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel() // one server failing stops the other
		}
	}
	return first
}

// newAPIServer is an HTTP server with upstream's limits for the kubelet API
// and the read-only port: exec, attach and port-forward sessions and
// followed logs live up to four hours (the read and write deadlines stay on
// a hijacked connection), a keep-alive connection idles at most 90 s,
// headers are at most 1 MiB. berth adds a 10 s limit for reading a
// request's headers, which upstream does not have, so that a client
// trickling headers cannot hold a connection for four hours.
func newAPIServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		IdleTimeout:       90 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       4 * time.Hour,
		WriteTimeout:      4 * time.Hour,
		MaxHeaderBytes:    1 << 20,
	}
}

// newHealthzServer is the healthz server: one short answer per request,
// so every limit is short (upstream's has none).
func newHealthzServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		IdleTimeout:       90 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    1 << 20,
	}
}

// serveListener serves srv on ln until ctx ends, then shuts it down.
// Hijacked connections (exec, port-forward) are not waited for.
func serveListener(ctx context.Context, srv *http.Server, ln net.Listener, useTLS bool) error {
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
		}
		return nil
	}
}
