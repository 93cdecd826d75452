package app

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/apistatus"
	"github.com/berth-dev/berth/internal/mirror"
	"github.com/berth-dev/berth/internal/nodestatus"
	"github.com/berth-dev/berth/internal/objects"
	"github.com/berth-dev/berth/internal/podworker"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/source/apiserver"
	"github.com/berth-dev/berth/internal/status"
)

// KubeletVersion is what berth reports as the Node's kubelet version and
// prints for --version: the upstream release whose behaviour it follows, so
// that version-skew checks (the control plane's, kubeadm's) treat it like
// that kubelet.
const KubeletVersion = "v1.37.2"

// apiClients are berth's three API clients.
type apiClients struct {
	client kubernetes.Interface
	// events posts events and heartbeat node status and the Lease, each
	// with a rate limit of its own as upstream's kubelet: a burst of pods
	// must not delay the node's heartbeat, nor its events the pods.
	events    kubernetes.Interface
	heartbeat kubernetes.Interface
	// services lists the cluster's Services for the service link
	// variables of containers.
	services *objects.Services
	// runtimeClasses resolves pods' runtimeClassName to runtime handlers.
	runtimeClasses *objects.RuntimeClasses
}

// podClient is the client for pods, status and volumes; nil standalone.
func (c *apiClients) podClient() kubernetes.Interface {
	if c == nil {
		return nil
	}
	return c.client
}

// apiComponents are the parts of berth that exist only with an API server.
type apiComponents struct {
	*apiClients
	node         *nodestatus.Controller
	published    *nodestatus.Published
	podSet       *podworker.PodSet
	pods         *apiserver.Source
	statusSyncer *apistatus.Syncer
	mirrors      *mirror.Manager
	mirrorSync   chan struct{}
}

// newAPIClients builds the clients from cfg, the node's credentials.
func newAPIClients(opts Options, cfg *rest.Config) (*apiClients, error) {
	cfg.UserAgent = "berth/" + KubeletVersion
	if opts.KubeAPIQPS > 0 {
		cfg.QPS = opts.KubeAPIQPS
	}
	if opts.KubeAPIBurst > 0 {
		cfg.Burst = opts.KubeAPIBurst
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build API client from %q: %w", opts.Kubeconfig, err)
	}
	eventCfg := rest.CopyConfig(cfg)
	eventCfg.QPS, eventCfg.Burst = opts.EventRecordQPS, opts.EventBurst
	if eventCfg.QPS == 0 {
		eventCfg.QPS = -1 // no limit, as upstream reads eventRecordQPS 0
	}
	events, err := kubernetes.NewForConfig(eventCfg)
	if err != nil {
		return nil, fmt.Errorf("build event client from %q: %w", opts.Kubeconfig, err)
	}
	// Upstream's heartbeat client: no rate limit, and a timeout short
	// enough that one stuck request cannot let the Lease expire.
	heartbeatCfg := rest.CopyConfig(cfg)
	heartbeatCfg.QPS = -1
	heartbeatCfg.Timeout = opts.NodeStatusUpdateFrequency
	if lease := time.Duration(opts.NodeLeaseDurationSeconds) * time.Second; lease > 0 && (heartbeatCfg.Timeout <= 0 || heartbeatCfg.Timeout > lease) {
		heartbeatCfg.Timeout = lease
	}
	heartbeat, err := kubernetes.NewForConfig(heartbeatCfg)
	if err != nil {
		return nil, fmt.Errorf("build heartbeat client from %q: %w", opts.Kubeconfig, err)
	}
	return &apiClients{
		client: client, events: events, heartbeat: heartbeat,
		services: objects.NewServices(client), runtimeClasses: objects.NewRuntimeClasses(client),
	}, nil
}

// serviceLister gives containers the service link variables; standalone
// (a nil c) there are none.
func (c *apiClients) serviceLister() runtime.ServiceLister {
	if c == nil {
		return nil
	}
	return c.services
}

// runtimeHandlers resolves RuntimeClasses; standalone (a nil c) none.
func (c *apiClients) runtimeHandlers() runtime.RuntimeHandlers {
	if c == nil {
		return nil
	}
	return c.runtimeClasses
}

// recordEventsToAPI posts events as Event objects; client-go's correlator
// aggregates and rate-limits repeated ones.
func (a *apiClients) recordEventsToAPI(b record.EventBroadcaster) {
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.events.CoreV1().Events("")})
}

type apiDeps struct {
	clock    clock.Clock
	runtime  *runtime.Manager
	health   func() error
	node     *nodestatus.Published
	pods     *podworker.PodSet
	statuses *status.Store
	// pressure: the node's pressure conditions (the eviction manager's).
	pressure func() []v1.NodeConditionType
	// devices: the device plugins' resources on the Node.
	devices nodestatus.DeviceResources
	// shuttingDown: why the node is not ready while it shuts down.
	shuttingDown func() error
}

// newAPIComponents builds the API components.
func newAPIComponents(c *apiClients, o Options, d apiDeps) *apiComponents {
	a := &apiComponents{apiClients: c, published: d.node, podSet: d.pods, mirrorSync: make(chan struct{}, 1)}
	a.node = nodestatus.New(nodestatus.Options{
		Client:                a.heartbeat,
		NodeName:              o.NodeName,
		NodeIP:                o.NodeIP,
		ExternalCloudProvider: o.ExternalCloudProvider,
		ProviderID:            o.ProviderID,
		NodeLabels:            o.NodeLabels,
		RegisterWithTaints:    o.RegisterWithTaints,
		MaxPods:               o.MaxPods,
		KubeReserved:          o.KubeReserved,
		SystemReserved:        o.SystemReserved,
		EvictionHard:          o.EvictionHard,
		RootDir:               o.RootDir,
		Port:                  o.Port,
		UpdateFrequency:       o.NodeStatusUpdateFrequency,
		ReportFrequency:       o.NodeStatusReportFrequency,
		LeaseDurationSeconds:  o.NodeLeaseDurationSeconds,
		KubeletVersion:        KubeletVersion,
		DeclaredFeatures:      o.DeclaredFeatures,
		Runtime:               d.runtime,
		Health:                d.health,
		ShuttingDown:          d.shuttingDown,
		Pressure:              d.pressure,
		Devices:               d.devices,
		Clock:                 d.clock,
		Published:             d.node,
	})
	a.pods = apiserver.New(apiserver.Options{Client: a.client, NodeName: o.NodeName, OnMirrorChange: a.triggerMirrorSync})
	a.statusSyncer = apistatus.New(apistatus.Options{
		Client:   a.client,
		Statuses: d.statuses,
		Desired:  d.pods,
		API:      a.pods,
		Clock:    d.clock,
	})
	a.mirrors = mirror.New(mirror.Options{Client: a.client, NodeName: o.NodeName, Node: a.node.Node})
	return a
}

// run starts the API components' loops under ctx.
// syncNodeStatus posts the node status now; standalone it does nothing.
func (a *apiComponents) syncNodeStatus() {
	if a != nil {
		a.node.SyncNow()
	}
}

func (a *apiComponents) run(ctx context.Context, run func(func())) {
	run(func() { a.services.Run(ctx) })
	run(func() { a.runtimeClasses.Run(ctx) })
	run(func() { a.node.Run(ctx) })
	run(func() { a.statusSyncer.Run(ctx) })
	run(func() {
		a.mirrors.Run(ctx, mirror.Loop{
			Static:     a.podSet.StaticPods,
			Mirrors:    a.pods.MirrorPods,
			Registered: a.node.Registered(),
			Trigger:    a.mirrorSync,
			Synced:     a.statusSyncer.Enqueue,
		})
	})
}

// admit runs node admission against the latest Node object. Before the
// node is registered nothing is checked: only static pods can arrive then,
// since the scheduler binds no pod to a node that does not exist.
func (a *apiComponents) admit(pod *v1.Pod, active []*v1.Pod) admission.Result {
	node, ok := a.published.Node()
	if !ok {
		return admission.Result{Admit: true}
	}
	return admission.Admit(pod, node, active)
}

func (a *apiComponents) triggerMirrorSync() {
	select {
	case a.mirrorSync <- struct{}{}:
	default:
	}
}

// detectNodeIP picks the node's address when --node-ip is not given.
func detectNodeIP(logger klog.Logger) string {
	ip, err := nodestatus.DetectNodeIP()
	if err != nil {
		logger.Error(err, "Cannot find the node's IP address; set --node-ip")
		return ""
	}
	logger.Info("Using detected node IP; set --node-ip to choose another", "nodeIP", ip)
	return ip
}
