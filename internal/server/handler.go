package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
)

// RuntimePods is the runtime's view of pods: what /runningpods/ lists and
// where logs, exec and port-forward find containers and sandboxes.
// *runtime.Manager satisfies it.
type RuntimePods interface {
	ListPods(ctx context.Context) (map[types.UID]*container.PodStatus, error)
	GetPodStatus(ctx context.Context, uid types.UID, name, namespace string) (*container.PodStatus, error)
}

// Streamer is the part of the CRI runtime service behind /exec, /attach,
// /portForward and /run; internalapi.RuntimeService satisfies it. Exec,
// Attach and PortForward return a URL on the runtime's streaming server,
// to which berth proxies the client's connection.
type Streamer interface {
	Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error)
}

// StatsProvider serves /stats/summary.
type StatsProvider interface {
	// Summary returns the node's and its pods' stats. With
	// onlyCPUAndMemory only CPU and memory need be filled (what
	// metrics-server asks for).
	Summary(ctx context.Context, onlyCPUAndMemory bool) (*statsapi.Summary, error)
}

// Gatherers are the metrics served under /metrics; a nil one is not
// served (404).
type Gatherers struct {
	Berth    prometheus.Gatherer // /metrics: berth's own metrics
	CAdvisor prometheus.Gatherer // /metrics/cadvisor: container_* metrics
	Resource prometheus.Gatherer // /metrics/resource: what metrics-server reads
	Probes   prometheus.Gatherer // /metrics/probes: prober_probe_total
}

// Handlers is what the kubelet API endpoints are built from. Every
// provider may be nil, which disables the endpoints that need it (404),
// except Pods and Health, which are required.
type Handlers struct {
	Pods      PodLister
	Health    HealthFunc
	Runtime   RuntimePods
	Streaming Streamer
	// RunTimeout bounds a /run command: the runtime kills it after that
	// long (runtimeRequestTimeout; default 2 min). Upstream passes none.
	RunTimeout time.Duration
	Stats      StatsProvider
	Metrics    Gatherers
	// Config is served on /configz as {"kubeletconfig": Config}.
	Config any

	// EnableDebuggingHandlers serves /run, /exec, /attach, /portForward,
	// /containerLogs and /runningpods/, and allows /logs/ and
	// /debug/pprof/ (see below); without it they all answer 405 "Debug
	// endpoints are disabled.", as upstream.
	EnableDebuggingHandlers bool
	// EnableSystemLogHandler serves SystemLogDir on /logs/.
	EnableSystemLogHandler bool
	SystemLogDir           string // default /var/log
	// EnableProfilingHandler serves /debug/pprof/.
	EnableProfilingHandler bool

	// Clock paces following logs; default real time.
	Clock clock.Clock
}

// NewHandler returns the kubelet API's endpoints, without authentication:
// New puts Auth.Filter in front of it.
func NewHandler(h Handlers) http.Handler {
	if h.Clock == nil {
		h.Clock = clock.RealClock{}
	}
	if h.SystemLogDir == "" {
		h.SystemLogDir = "/var/log"
	}
	mux := http.NewServeMux()
	installHealthz(mux, h.Health)
	mux.Handle("GET /pods", podsHandler(h.Pods))
	mux.Handle("GET "+statsPath+"summary", available(h.Stats != nil, summaryHandler(h.Stats)))
	mux.Handle("POST "+statsPath+"summary", available(h.Stats != nil, summaryHandler(h.Stats)))
	installMetrics(mux, h.Metrics)
	mux.Handle("GET "+configzPath, configzHandler(h.Config))

	if !h.EnableDebuggingHandlers {
		disabled := disabledHandler("Debug endpoints are disabled.")
		for _, p := range []string{"/run/", "/exec/", "/attach/", "/portForward/", "/containerLogs/", runningPodsPath, "/debug/pprof/", logsPath} {
			mux.Handle(p, disabled)
		}
		return mux
	}

	if h.RunTimeout <= 0 {
		h.RunTimeout = defaultRunTimeout
	}
	s := &streaming{pods: h.Pods, runtime: h.Runtime, cri: h.Streaming, runTimeout: h.RunTimeout}
	for _, m := range []string{"GET ", "POST "} {
		mux.Handle(m+"/exec/{ns}/{pod}/{container}", available(s.ready(), http.HandlerFunc(s.exec)))
		mux.Handle(m+"/exec/{ns}/{pod}/{uid}/{container}", available(s.ready(), http.HandlerFunc(s.exec)))
		mux.Handle(m+"/attach/{ns}/{pod}/{container}", available(s.ready(), http.HandlerFunc(s.attach)))
		mux.Handle(m+"/attach/{ns}/{pod}/{uid}/{container}", available(s.ready(), http.HandlerFunc(s.attach)))
		mux.Handle(m+"/portForward/{ns}/{pod}", available(s.ready(), http.HandlerFunc(s.portForward)))
		mux.Handle(m+"/portForward/{ns}/{pod}/{uid}", available(s.ready(), http.HandlerFunc(s.portForward)))
	}
	mux.Handle("POST /run/{ns}/{pod}/{container}", available(s.ready(), http.HandlerFunc(s.run)))
	mux.Handle("POST /run/{ns}/{pod}/{uid}/{container}", available(s.ready(), http.HandlerFunc(s.run)))

	cl := &containerLogs{pods: h.Pods, runtime: h.Runtime, clock: h.Clock}
	mux.Handle("GET /containerLogs/{ns}/{pod}/{container}", available(h.Runtime != nil, cl))
	mux.Handle("GET "+runningPodsPath, available(h.Runtime != nil, runningPodsHandler(h.Runtime)))

	if h.EnableSystemLogHandler {
		mux.Handle("GET "+logsPath+"{path...}", systemLogsHandler(h.SystemLogDir))
		mux.Handle("GET /logs", http.RedirectHandler(logsPath, http.StatusMovedPermanently))
	} else {
		mux.Handle(logsPath, disabledHandler("logs endpoint is disabled."))
	}
	if h.EnableProfilingHandler {
		installPprof(mux)
	} else {
		mux.Handle("/debug/pprof/", disabledHandler("profiling endpoint is disabled."))
	}
	return mux
}

// available returns h when its provider is there (ok), else a 404 that
// says the endpoint is not available on this node.
func available(ok bool, h http.Handler) http.Handler {
	if ok {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, r.URL.Path+": not available on this node", http.StatusNotFound)
	})
}

// disabledHandler answers as upstream does for an endpoint turned off in
// the configuration.
func disabledHandler(msg string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, msg, http.StatusMethodNotAllowed)
	})
}

// findPod returns the pod berth manages with that namespace and name.
func findPod(pods PodLister, namespace, name string) *v1.Pod {
	for _, p := range pods.Pods() {
		if p.Namespace == namespace && p.Name == name {
			return p
		}
	}
	return nil
}
