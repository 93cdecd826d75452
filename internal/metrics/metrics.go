// Package metrics holds berth's own Prometheus metrics, served on /metrics.
// Names, labels, help texts and buckets are upstream's kubelet metrics
// (pkg/kubelet/metrics), so dashboards and alerts written for the kubelet
// work unchanged. Everything is registered on a registry the caller passes
// in: the package has no global state.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/apimachinery/pkg/version"
)

const subsystem = "kubelet"

// Upstream's buckets.
var (
	podStartupDurationBuckets = []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}
	runtimeOperationsBuckets  = prometheus.ExponentialBuckets(.005, 2.5, 14)
)

// Options says what New labels its constant metrics with.
type Options struct {
	// NodeName is the node label of kubelet_node_name.
	NodeName string
	// Build, when its GitVersion is set, is published as
	// kubernetes_build_info.
	Build version.Info
	// NoProcessMetrics leaves out the go_* and process_* collectors, for a
	// registry that already has them.
	NoProcessMetrics bool
}

// Metrics are the metrics other components record into. Each field is safe
// for concurrent use.
type Metrics struct {
	// PodStartDuration: seconds from berth first seeing a pod to it
	// running. Recorded by PodStartTracker.
	PodStartDuration prometheus.Histogram
	// PodStartSLIDuration: seconds from pod creation to all containers
	// running as seen on the API watch, without image pulls and init
	// containers. Recorded by PodStartTracker.
	PodStartSLIDuration prometheus.Histogram
	// PodStartTotalDuration: as PodStartSLIDuration, image pulls included.
	PodStartTotalDuration prometheus.Histogram
	// PodWorkerDuration: seconds one pod sync took, by operation_type
	// create (first sync), update or sync.
	PodWorkerDuration *prometheus.HistogramVec

	// PLEG relists; see InstrumentRelist.
	PLEGRelistDuration prometheus.Histogram
	PLEGRelistInterval prometheus.Histogram
	PLEGLastSeen       prometheus.Gauge

	// CRI calls by operation_type; see InstrumentRuntimeService.
	RuntimeOperations         *prometheus.CounterVec
	RuntimeOperationsErrors   *prometheus.CounterVec
	RuntimeOperationsDuration *prometheus.HistogramVec

	// StartedPods counts sandboxes berth created; StartedPodsErrors the
	// creations that failed.
	StartedPods       prometheus.Counter
	StartedPodsErrors prometheus.Counter
	// StartedContainers counts containers started, by container_type
	// (container, init_container, ephemeral_container);
	// StartedContainersErrors the failed starts, by container_type and
	// code (the CRI error code, or "unknown").
	StartedContainers       *prometheus.CounterVec
	StartedContainersErrors *prometheus.CounterVec

	// Evictions counts pods the eviction manager evicted, by
	// eviction_signal (memory.available, ..., emptydirfs.limit).
	Evictions *prometheus.CounterVec

	// RecoveredPanics counts panics recovered in one pod's work, by
	// component (pod_worker, prober, volume): berth's own (upstream's
	// kubelet crashes instead). The pod's step failed and is retried.
	RecoveredPanics *prometheus.CounterVec

	// HTTP requests to the kubelet API; see InstrumentHandler.
	HTTPRequests         *prometheus.CounterVec
	HTTPRequestsDuration *prometheus.HistogramVec
	HTTPInflightRequests *prometheus.GaugeVec
}

func alpha(help string) string { return "[ALPHA] " + help }

// New creates berth's metrics and registers them on reg. It panics only if
// reg already holds metrics of the same names, a wiring mistake.
func New(reg prometheus.Registerer, opts Options) *Metrics {
	m := &Metrics{
		PodStartDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "pod_start_duration_seconds",
			Help:    alpha("Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run"),
			Buckets: podStartupDurationBuckets,
		}),
		PodStartSLIDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "pod_start_sli_duration_seconds",
			Help:    alpha("Duration in seconds to start a pod, excluding time to pull images and run init containers, measured from pod creation timestamp to when all its containers are reported as started and observed via watch"),
			Buckets: podStartupDurationBuckets,
		}),
		PodStartTotalDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "pod_start_total_duration_seconds",
			Help:    alpha("Duration in seconds to start a pod since creation, including time to pull images and run init containers, measured from pod creation timestamp to when all its containers are reported as started and observed via watch"),
			Buckets: podStartupDurationBuckets,
		}),
		PodWorkerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "pod_worker_duration_seconds",
			Help:    alpha("Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync"),
			Buckets: prometheus.DefBuckets,
		}, []string{"operation_type"}),
		PLEGRelistDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "pleg_relist_duration_seconds",
			Help:    alpha("Duration in seconds for relisting pods in PLEG."),
			Buckets: prometheus.DefBuckets,
		}),
		PLEGRelistInterval: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "pleg_relist_interval_seconds",
			Help:    alpha("Interval in seconds between relisting in PLEG."),
			Buckets: prometheus.DefBuckets,
		}),
		PLEGLastSeen: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: subsystem, Name: "pleg_last_seen_seconds",
			Help: alpha("Timestamp in seconds when PLEG was last seen active."),
		}),
		RuntimeOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "runtime_operations_total",
			Help: alpha("Cumulative number of runtime operations by operation type."),
		}, []string{"operation_type"}),
		RuntimeOperationsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "runtime_operations_errors_total",
			Help: alpha("Cumulative number of runtime operation errors by operation type."),
		}, []string{"operation_type"}),
		RuntimeOperationsDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "runtime_operations_duration_seconds",
			Help:    alpha("Duration in seconds of runtime operations. Broken down by operation type."),
			Buckets: runtimeOperationsBuckets,
		}, []string{"operation_type"}),
		StartedPods: prometheus.NewCounter(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "started_pods_total",
			Help: alpha("Cumulative number of pods started"),
		}),
		StartedPodsErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "started_pods_errors_total",
			Help: alpha("Cumulative number of errors when starting pods"),
		}),
		StartedContainers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "started_containers_total",
			Help: alpha("Cumulative number of containers started"),
		}, []string{"container_type"}),
		StartedContainersErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "started_containers_errors_total",
			Help: alpha("Cumulative number of errors when starting containers"),
		}, []string{"container_type", "code"}),
		Evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "evictions",
			Help: alpha("Cumulative number of pod evictions by eviction signal"),
		}, []string{"eviction_signal"}),
		RecoveredPanics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "recovered_panics_total",
			Help: alpha("Cumulative number of panics recovered in the work of one pod, by component (pod_worker, prober, volume); the pod's step is retried"),
		}, []string{"component"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "http_requests_total",
			Help: alpha("Number of the http requests received since the server started"),
		}, httpLabels),
		HTTPRequestsDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "http_requests_duration_seconds",
			Help:    alpha("Duration in seconds to serve http requests"),
			Buckets: prometheus.DefBuckets,
		}, httpLabels),
		HTTPInflightRequests: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: subsystem, Name: "http_inflight_requests",
			Help: alpha("Number of the inflight http requests"),
		}, httpLabels),
	}
	reg.MustRegister(
		m.PodStartDuration, m.PodStartSLIDuration, m.PodStartTotalDuration, m.PodWorkerDuration,
		m.PLEGRelistDuration, m.PLEGRelistInterval, m.PLEGLastSeen,
		m.RuntimeOperations, m.RuntimeOperationsErrors, m.RuntimeOperationsDuration,
		m.StartedPods, m.StartedPodsErrors, m.StartedContainers, m.StartedContainersErrors,
		m.Evictions, m.RecoveredPanics,
		m.HTTPRequests, m.HTTPRequestsDuration, m.HTTPInflightRequests,
	)

	nodeName := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: subsystem, Name: "node_name",
		Help: alpha("The node's name. The count is always 1."),
	}, []string{"node"})
	nodeName.WithLabelValues(opts.NodeName).Set(1)
	reg.MustRegister(nodeName)

	if b := opts.Build; b.GitVersion != "" {
		info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubernetes_build_info",
			Help: "[BETA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.",
		}, []string{"major", "minor", "git_version", "git_commit", "git_tree_state", "build_date", "go_version", "compiler", "platform"})
		info.WithLabelValues(b.Major, b.Minor, b.GitVersion, b.GitCommit, b.GitTreeState, b.BuildDate, b.GoVersion, b.Compiler, b.Platform).Set(1)
		reg.MustRegister(info)
	}
	if !opts.NoProcessMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}
