package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/berth-dev/berth/internal/container"
)

func testHandlers(t testing.TB) (Handlers, *fakeStats) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_test_total", Help: "test"})
	c.Inc()
	reg.MustRegister(c)
	stats := &fakeStats{}
	rt := &fakeRuntime{pods: map[types.UID]*container.PodStatus{
		"u1": {UID: "u1", Name: "web", Namespace: "default",
			Sandboxes:  []*container.SandboxStatus{{ID: "sb1", State: container.SandboxReady}},
			Containers: []*container.ContainerStatus{{ID: "c1", Name: "nginx", Image: "nginx:1", State: container.StateRunning}, {ID: "c0", Name: "nginx", State: container.StateExited}}},
		"u2": {UID: "u2", Name: "gone", Namespace: "default",
			Sandboxes: []*container.SandboxStatus{{ID: "sb2", State: container.SandboxNotReady}}},
	}}
	return Handlers{
		Pods:                    podList{{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"}}},
		Health:                  func() error { return nil },
		Runtime:                 rt,
		Stats:                   stats,
		Metrics:                 Gatherers{Berth: reg, CAdvisor: reg},
		Config:                  &kubeletconfig.KubeletConfiguration{Port: 10250},
		EnableDebuggingHandlers: true,
		EnableSystemLogHandler:  true,
		SystemLogDir:            t.TempDir(),
	}, stats
}

func get(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestHandlerEndpoints(t *testing.T) {
	hs, stats := testHandlers(t)
	h := NewHandler(hs)
	tests := []struct {
		name, method, path string
		code               int
		check              func(t *testing.T, body string)
	}{
		{"healthz", "GET", "/healthz", 200, func(t *testing.T, b string) {
			if b != "ok" {
				t.Errorf("body %q", b)
			}
		}},
		{"healthz verbose", "GET", "/healthz?verbose", 200, func(t *testing.T, b string) {
			if b != "[+]ping ok\n[+]syncloop ok\nhealthz check passed\n" {
				t.Errorf("body %q", b)
			}
		}},
		{"healthz check", "GET", "/healthz/syncloop", 200, nil},
		{"pods", "GET", "/pods", 200, func(t *testing.T, b string) {
			var l v1.PodList
			json.Unmarshal([]byte(b), &l)
			if l.Kind != "PodList" || len(l.Items) != 1 || l.Items[0].Name != "web" {
				t.Errorf("list %+v", l)
			}
		}},
		{"pods wrong method", "POST", "/pods", 405, nil},
		{"running pods", "GET", "/runningpods/", 200, func(t *testing.T, b string) {
			var l v1.PodList
			json.Unmarshal([]byte(b), &l)
			if len(l.Items) != 1 || l.Items[0].UID != "u1" || len(l.Items[0].Spec.Containers) != 1 ||
				l.Items[0].Spec.Containers[0].Name != "nginx" || l.Items[0].Spec.Containers[0].Image != "nginx:1" {
				t.Errorf("list %+v", l.Items)
			}
		}},
		{"summary", "GET", "/stats/summary", 200, func(t *testing.T, b string) {
			var s statsapi.Summary
			if err := json.Unmarshal([]byte(b), &s); err != nil || s.Node.NodeName != "node-a" || stats.only {
				t.Errorf("summary %q (only cpu+memory %v)", b, stats.only)
			}
		}},
		{"summary cpu and memory", "GET", "/stats/summary?only_cpu_and_memory=true", 200, func(t *testing.T, b string) {
			if !stats.only {
				t.Error("only_cpu_and_memory not passed on")
			}
		}},
		{"metrics", "GET", "/metrics", 200, func(t *testing.T, b string) {
			if !strings.Contains(b, "berth_test_total 1") {
				t.Errorf("body %q", b)
			}
		}},
		{"metrics cadvisor", "GET", "/metrics/cadvisor", 200, nil},
		{"metrics resource not provided", "GET", "/metrics/resource", 404, nil},
		{"configz", "GET", "/configz", 200, func(t *testing.T, b string) {
			var cz struct {
				Kubeletconfig kubeletconfig.KubeletConfiguration `json:"kubeletconfig"`
			}
			if err := json.Unmarshal([]byte(b), &cz); err != nil || cz.Kubeletconfig.Port != 10250 {
				t.Errorf("configz %q", b)
			}
		}},
		{"pprof disabled", "GET", "/debug/pprof/", 405, func(t *testing.T, b string) {
			if b != "profiling endpoint is disabled.\n" {
				t.Errorf("body %q", b)
			}
		}},
		{"unknown", "GET", "/nothing", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(h, tt.method, tt.path)
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d (body %q)", rec.Code, tt.code, rec.Body.String())
			}
			if tt.check != nil {
				tt.check(t, rec.Body.String())
			}
		})
	}
}

func TestHealthzFailureWithholdsReason(t *testing.T) {
	hs, _ := testHandlers(t)
	hs.Health = func() error { return errUnhealthy }
	h := NewHandler(hs)
	rec := get(h, "GET", "/healthz")
	if rec.Code != 500 || rec.Body.String() != "[+]ping ok\n[-]syncloop failed: reason withheld\nhealthz check failed\n" {
		t.Errorf("got %d %q", rec.Code, rec.Body.String())
	}
	rec = get(h, "GET", "/healthz/syncloop")
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "runtime down") {
		t.Errorf("named check: %d %q", rec.Code, rec.Body.String())
	}
}

func TestDebuggingHandlersDisabled(t *testing.T) {
	hs, _ := testHandlers(t)
	hs.EnableDebuggingHandlers = false
	h := NewHandler(hs)
	for _, p := range []string{"/exec/ns/p/c", "/attach/ns/p/c", "/portForward/ns/p", "/run/ns/p/c", "/containerLogs/ns/p/c", "/runningpods/", "/logs/", "/debug/pprof/"} {
		rec := get(h, "POST", p)
		if rec.Code != 405 || rec.Body.String() != "Debug endpoints are disabled.\n" {
			t.Errorf("%s: %d %q", p, rec.Code, rec.Body.String())
		}
	}
	if rec := get(h, "GET", "/pods"); rec.Code != 200 {
		t.Errorf("/pods with debugging disabled: %d", rec.Code)
	}
}

func TestMissingProviders(t *testing.T) {
	h := NewHandler(Handlers{Pods: podList{}, Health: func() error { return nil }, EnableDebuggingHandlers: true})
	for _, p := range []string{"/stats/summary", "/metrics", "/runningpods/", "/containerLogs/ns/p/c"} {
		if rec := get(h, "GET", p); rec.Code != 404 {
			t.Errorf("%s without provider: %d", p, rec.Code)
		}
	}
}

func TestSystemLogs(t *testing.T) {
	hs, _ := testHandlers(t)
	dir := hs.SystemLogDir
	os.MkdirAll(filepath.Join(dir, "pods"), 0o755)
	os.WriteFile(filepath.Join(dir, "syslog"), []byte("boot\n"), 0o644)
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o600)
	os.Symlink(outside, filepath.Join(dir, "escape"))
	h := NewHandler(hs)

	if rec := get(h, "GET", "/logs/syslog"); rec.Code != 200 || rec.Body.String() != "boot\n" {
		t.Errorf("file: %d %q", rec.Code, rec.Body.String())
	}
	if rec := get(h, "GET", "/logs/"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `href="syslog"`) || !strings.Contains(rec.Body.String(), `href="pods/"`) {
		t.Errorf("listing: %d %q", rec.Code, rec.Body.String())
	}
	if rec := get(h, "GET", "/logs"); rec.Code != http.StatusMovedPermanently {
		t.Errorf("/logs: %d", rec.Code)
	}
	if rec := get(h, "GET", "/logs/escape"); rec.Code == 200 || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("symlink out of the log dir served: %d %q", rec.Code, rec.Body.String())
	}
	r := httptest.NewRequest("GET", "/logs/x", nil)
	r.URL.Path = "/logs/../../etc/passwd" // as a raw client could send it
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code == 200 {
		t.Errorf("path traversal served: %q", rec.Body.String())
	}
}
