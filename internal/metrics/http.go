package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

var httpLabels = []string{"method", "path", "server_type", "long_running"}

// httpPathBuckets are the path labels of kubelet_http_*: the first path
// element, or the second level under /metrics; anything else is "other"
// so that a scan of random paths cannot blow up the label set.
var httpPathBuckets = map[string]bool{
	"healthz": true, "pods": true, "runningpods": true, "stats": true, "logs": true, "configz": true,
	"metrics": true, "metrics/cadvisor": true, "metrics/probes": true, "metrics/resource": true,
	"run": true, "exec": true, "attach": true, "portForward": true, "containerLogs": true, "debug": true,
}

var httpMethods = map[string]bool{
	"OPTIONS": true, "GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "TRACE": true, "CONNECT": true,
}

// longRunning are the buckets whose requests last as long as a session.
var longRunning = map[string]bool{"exec": true, "attach": true, "portForward": true, "debug": true}

// httpPathBucket returns the path label for a request path.
func httpPathBucket(path string) string {
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 3)
	root := parts[0]
	if root == "metrics" && len(parts) > 1 && parts[1] != "" {
		root += "/" + parts[1]
	}
	if httpPathBuckets[root] {
		return root
	}
	return "other"
}

// InstrumentHandler counts and times the requests h serves in
// kubelet_http_requests_total, _duration_seconds and _inflight_requests;
// serverType is "readwrite" for the kubelet API, "readonly" for the
// read-only port. The response writer is passed on untouched, so upgrades
// (exec, port-forward) still hijack the connection.
func (m *Metrics) InstrumentHandler(serverType string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if !httpMethods[method] {
			method = "other"
		}
		path := httpPathBucket(r.URL.Path)
		labels := []string{method, path, serverType, strconv.FormatBool(longRunning[path])}
		m.HTTPRequests.WithLabelValues(labels...).Inc()
		inflight := m.HTTPInflightRequests.WithLabelValues(labels...)
		inflight.Inc()
		defer inflight.Dec()
		start := time.Now()
		defer func() { m.HTTPRequestsDuration.WithLabelValues(labels...).Observe(time.Since(start).Seconds()) }()
		h.ServeHTTP(w, r)
	})
}
