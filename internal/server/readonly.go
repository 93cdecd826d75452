package server

import (
	"context"
	"fmt"
	"net"
	"net/http"

	v1 "k8s.io/api/core/v1"
)

// PodLister returns the pods berth manages, with their current status.
type PodLister interface {
	Pods() []*v1.Pod
}

// HealthFunc returns nil when berth is healthy, else why not.
type HealthFunc func() error

// NewReadOnlyHandler serves the read-only API: /healthz and /pods.
func NewReadOnlyHandler(pods PodLister, health HealthFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := health(); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "unhealthy: %v\n", err)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.Handle("GET /pods", podsHandler(pods))
	// The read-only port does not take /pods/ with a trailing slash or any
	// other path; say so plainly rather than with the mux's bare 404.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("%s %s: not served on the read-only port (try /healthz or /pods)", r.Method, r.URL.Path), http.StatusNotFound)
	})
	return mux
}

// Serve listens on addr and serves h until ctx is cancelled. The listener is
// opened before Serve returns its first error, so a port in use is reported
// at start-up.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return serveListener(ctx, newAPIServer(h), ln, false)
}
