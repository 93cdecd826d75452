package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/logs"
	"github.com/berth-dev/berth/internal/metrics"
	"github.com/berth-dev/berth/internal/podworker"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/stats"
)

// observability holds berth's metric registries: its own (/metrics), the
// prober's (/metrics/probes), and the stats collector's two
// (/metrics/cadvisor and /metrics/resource, which share family names with
// different help and so cannot share a registry).
type observability struct {
	berth, probes, cadvisor, resource *prometheus.Registry
	metrics                           *metrics.Metrics
}

func newObservability(nodeName string) *observability {
	o := &observability{
		berth:    prometheus.NewRegistry(),
		probes:   prometheus.NewRegistry(),
		cadvisor: prometheus.NewRegistry(),
		resource: prometheus.NewRegistry(),
	}
	o.metrics = metrics.New(o.berth, metrics.Options{NodeName: nodeName})
	return o
}

// registerRuntimeCounts counts pods and containers from the PLEG's latest
// snapshot, so that no second copy of it is kept.
func (o *observability) registerRuntimeCounts(pods func() map[types.UID]*container.PodStatus) error {
	if err := metrics.RegisterRuntimeCounts(o.berth, pods); err != nil {
		return fmt.Errorf("register runtime pod counts: %w", err)
	}
	return nil
}

// panics is the count of recovered panics of one component; it is
// published, at 0, from the start.
func (o *observability) panics(component string) prometheus.Counter {
	return o.metrics.RecoveredPanics.WithLabelValues(component)
}

func (o *observability) wrapRuntime(rs internalapi.RuntimeService) internalapi.RuntimeService {
	return metrics.InstrumentRuntimeService(rs, o.metrics)
}

func (o *observability) wrapImages(is internalapi.ImageManagerService) internalapi.ImageManagerService {
	return metrics.InstrumentImageService(is, o.metrics)
}

// kubeletAPIDeps is what the kubelet API server is built from.
type kubeletAPIDeps struct {
	opts    Options
	obs     *observability
	runtime *runtime.Manager
	pods    *podworker.PodSet
	health  func() error
	api     *apiComponents // nil in standalone
	// collector is started with the eviction manager (nodeResources).
	collector *stats.Collector
}

// startObservers serves the stats collector's metrics, starts log
// rotation and the kubelet API
// (:10250 and the plain healthz port). A server that cannot start ends
// berth through errc, like the read-only port.
func startObservers(ctx context.Context, run func(func()), errc chan<- error, d kubeletAPIDeps) error {
	logger := klog.FromContext(ctx)
	o := d.opts
	collector := d.collector
	if err := d.obs.cadvisor.Register(collector.CadvisorCollector()); err != nil {
		return fmt.Errorf("register cadvisor metrics: %w", err)
	}
	if err := d.obs.resource.Register(collector.ResourceCollector()); err != nil {
		return fmt.Errorf("register resource metrics: %w", err)
	}
	if err := d.obs.berth.Register(collector.VolumeStatsCollector()); err != nil {
		return fmt.Errorf("register volume stats metrics: %w", err)
	}

	rotation, err := logs.New(logs.Options{
		Runtime:    d.runtime,
		MaxSize:    o.ContainerLogMaxSize,
		MaxFiles:   o.ContainerLogMaxFiles,
		MaxWorkers: o.ContainerLogMaxWorkers,
		Interval:   o.ContainerLogMonitorInterval,
		Clock:      clock.RealClock{},
	})
	if err != nil {
		return fmt.Errorf("container log rotation: %w", err)
	}
	run(func() { rotation.Run(ctx) })

	if o.Port == 0 {
		return nil
	}
	if !canAuthenticate(o) {
		// Standalone with neither a client CA nor anonymous access: nobody
		// could use the API, so don't open the port.
		logger.Info("Not serving the kubelet API: no way to authenticate clients; set authentication.x509.clientCAFile (or --client-ca-file)", "port", o.Port)
		return nil
	}
	auth := server.AuthOptions{NodeName: o.NodeName, Authentication: o.Authentication, Authorization: o.Authorization}
	if d.api != nil {
		auth.TokenReviews = d.api.client.AuthenticationV1()
		auth.SubjectAccessReviews = d.api.client.AuthorizationV1()
	}
	serving, err := servingCertificate(ctx, o, d.api, d.obs, run)
	if err != nil {
		return err
	}
	var ips []net.IP
	for _, s := range nodeIPs(o) {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		}
	}
	tlsOpts := server.TLSOptions{
		CertFile: o.TLSCertFile, KeyFile: o.TLSPrivateKeyFile, CertDir: o.CertDir,
		Hostname: o.NodeName, IPs: ips, MinVersion: o.TLSMinVersion, CipherSuites: o.TLSCipherSuites,
	}
	if serving != nil { // not a typed nil in the interface
		tlsOpts.Certificates = serving
	}
	srv, err := server.New(server.Options{
		Address:        o.Address,
		Port:           o.Port,
		HealthzAddress: o.HealthzBindAddress,
		HealthzPort:    o.HealthzPort,
		TLS:            tlsOpts,
		Auth:           auth,
		Handlers: server.Handlers{
			Pods:       d.pods,
			Health:     d.health,
			Runtime:    d.runtime,
			Streaming:  d.runtime,
			RunTimeout: o.RuntimeRequestTimeout,
			Stats:      collector,
			Metrics: server.Gatherers{
				Berth: d.obs.berth, CAdvisor: d.obs.cadvisor, Resource: d.obs.resource, Probes: d.obs.probes,
			},
			Config:                  o.Configz,
			EnableDebuggingHandlers: o.EnableDebuggingHandlers,
			EnableSystemLogHandler:  o.EnableSystemLogHandler,
			EnableProfilingHandler:  o.EnableProfilingHandler,
		},
		Instrument: func(h http.Handler) http.Handler { return d.obs.metrics.InstrumentHandler("readwrite", h) },
	})
	if errors.Is(err, server.ErrNeedsAPIServer) && d.api == nil {
		logger.Info("Not serving the kubelet API: its authentication or authorization needs an API server; set webhooks off or give a kubeconfig", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	logger.Info("Serving the kubelet API", "address", "https://"+net.JoinHostPort(o.Address, strconv.Itoa(int(o.Port))))
	run(func() {
		if err := srv.Run(ctx); err != nil {
			errc <- fmt.Errorf("kubelet API: %w", err)
		}
	})
	return nil
}

// canAuthenticate reports whether any client could authenticate to the
// kubelet API with these options.
func canAuthenticate(o Options) bool {
	a := o.Authentication
	return a.X509.ClientCAFile != "" ||
		(a.Anonymous.Enabled != nil && *a.Anonymous.Enabled) ||
		(a.Webhook.Enabled != nil && *a.Webhook.Enabled)
}
