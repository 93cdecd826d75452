package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// installHealthz serves /healthz with the checks ping and syncloop (berth's
// health), in the format of the API server's healthz package: "ok", or a
// 500 listing the failed checks with their reasons withheld (the details
// are logged, and on /healthz/<check>). ?verbose lists every check.
func installHealthz(mux *http.ServeMux, health HealthFunc) {
	checks := []struct {
		name  string
		check func() error
	}{
		{"ping", func() error { return nil }},
		{"syncloop", health},
	}
	mux.HandleFunc("GET "+healthzPath, func(w http.ResponseWriter, r *http.Request) {
		var out bytes.Buffer
		failed := false
		for _, c := range checks {
			if err := c.check(); err != nil {
				failed = true
				fmt.Fprintf(&out, "[-]%s failed: reason withheld\n", c.name)
				klog.FromContext(r.Context()).V(2).Info("Health check failed", "check", c.name, "err", err)
				continue
			}
			fmt.Fprintf(&out, "[+]%s ok\n", c.name)
		}
		if failed {
			http.Error(w, out.String()+"healthz check failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if _, verbose := r.URL.Query()["verbose"]; !verbose {
			fmt.Fprint(w, "ok")
			return
		}
		out.WriteString("healthz check passed\n")
		out.WriteTo(w)
	})
	for _, c := range checks {
		mux.HandleFunc("GET "+healthzPath+"/"+c.name, func(w http.ResponseWriter, r *http.Request) {
			if err := c.check(); err != nil {
				http.Error(w, fmt.Sprintf("internal server error: %v", err), http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, "ok")
		})
	}
}

// summaryHandler serves /stats/summary; only_cpu_and_memory=true (in the
// query or a POSTed form) asks for CPU and memory only.
func summaryHandler(stats StatsProvider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, fmt.Sprintf("Internal Error: parse form failed: %v", err), http.StatusInternalServerError)
			return
		}
		only := r.Form["only_cpu_and_memory"]
		summary, err := stats.Summary(r.Context(), len(only) == 1 && only[0] == "true")
		if err != nil {
			klog.FromContext(r.Context()).Error(err, "Serving /stats/summary failed")
			http.Error(w, fmt.Sprintf("Internal Error: %v", err), http.StatusInternalServerError)
			return
		}
		writeJSON(w, r, summary)
	})
}

// installMetrics serves each gatherer in the Prometheus formats; a
// collector that fails leaves its metrics out rather than failing the
// scrape, as upstream.
func installMetrics(mux *http.ServeMux, g Gatherers) {
	for path, gatherer := range map[string]prometheus.Gatherer{
		metricsPath:               g.Berth,
		metricsPath + "/cadvisor": g.CAdvisor,
		metricsPath + "/resource": g.Resource,
		metricsPath + "/probes":   g.Probes,
	} {
		var h http.Handler
		if gatherer != nil {
			h = promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
		}
		mux.Handle("GET "+path, available(gatherer != nil, h))
	}
}

// configzHandler serves the configuration in force (config.InForce), as upstream
// does: {"kubeletconfig": {...}}.
func configzHandler(cfg any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg == nil {
			http.Error(w, "no configuration registered", http.StatusInternalServerError)
			return
		}
		writeJSON(w, r, map[string]any{"kubeletconfig": cfg})
	})
}

// systemLogsHandler serves the files under dir (the node's /var/log),
// directories as listings. The directory is opened as an os.Root, so
// neither ".." nor a symbolic link leads outside it.
func systemLogsHandler(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		root, err := os.OpenRoot(dir)
		if err != nil {
			http.Error(w, fmt.Sprintf("open %s: %v", dir, err), http.StatusInternalServerError)
			return
		}
		defer root.Close()
		http.StripPrefix(logsPath, http.FileServerFS(root.FS())).ServeHTTP(w, r)
	})
}

// installPprof serves Go's profiles under /debug/pprof/.
func installPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
