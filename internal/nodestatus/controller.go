package nodestatus

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Runtime is what the node status needs from the container runtime.
type Runtime interface {
	// Version returns the runtime's name and version ("containerd",
	// "1.6.20").
	Version(ctx context.Context) (name, version string, err error)
	// ListImages returns the images to report, largest first, at most 50.
	ListImages(ctx context.Context) ([]v1.ContainerImage, error)
	// Status is the runtime's CRI Status: its RuntimeReady and
	// NetworkReady conditions, runtime handlers and features.
	Status(ctx context.Context) (*runtimeapi.StatusResponse, error)
	// UpdatePodCIDR hands the Node's spec.podCIDRs (comma-separated) to
	// the runtime (CRI UpdateRuntimeConfig), whose CNI configuration
	// takes its pod addresses from them.
	UpdatePodCIDR(ctx context.Context, cidr string) error
}

// Options configures a Controller.
type Options struct {
	// Client talks to the API server as the node (system:node:<name>).
	Client kubernetes.Interface
	// DeclaredFeatures go to status.declaredFeatures (DeclaredFeatures).
	DeclaredFeatures []string
	NodeName         string
	// NodeIP is the InternalIP to report, or a dual-stack pair
	// (comma-separated, primary first); empty means DetectNodeIP's choice,
	// made again on every update.
	NodeIP string
	// ExternalCloudProvider registers the Node with upstream's
	// node.cloudprovider.kubernetes.io/uninitialized taint and leaves its
	// addresses to the provider once it has some; ProviderID is its
	// spec.providerID.
	ExternalCloudProvider bool
	ProviderID            string
	NodeLabels            map[string]string // set when the Node is created
	RegisterWithTaints    []v1.Taint        // set when the Node is created
	MaxPods               int
	// KubeReserved, SystemReserved and the memory.available and
	// nodefs.available thresholds of EvictionHard are held back from
	// allocatable.
	KubeReserved, SystemReserved v1.ResourceList
	EvictionHard                 map[string]string
	// RootDir's file system gives the ephemeral-storage capacity.
	RootDir string
	// Port is the kubelet API port, reported in daemonEndpoints.
	Port int32
	// UpdateFrequency is how often the status is computed (and posted if
	// it changed); ReportFrequency is the longest time between two posts
	// when nothing changed. Defaults 10s and 5m.
	UpdateFrequency, ReportFrequency time.Duration
	// LeaseDurationSeconds is the node lease's duration; the lease is
	// renewed every quarter of it. Default 40.
	LeaseDurationSeconds int32
	// KubeletVersion is reported as nodeInfo.kubeletVersion; it must be a
	// version the API server accepts for a kubelet (not newer than it).
	KubeletVersion string
	// Runtime may be nil (nothing reported about the runtime).
	Runtime Runtime
	// Health returns nil when berth is healthy, else why the node is not
	// ready (e.g. "container runtime is down"). Nil means always healthy.
	Health func() error
	// ShuttingDown returns why the node is not ready while it shuts down
	// (graceful node shutdown), reported after the runtime's reasons as
	// upstream; nil means never.
	ShuttingDown func() error
	// Pressure returns the pressure conditions that are True (the
	// eviction manager's); nil means none.
	Pressure func() []v1.NodeConditionType
	// Devices reports the device plugins' extended resources (nil: none);
	// a value on its Changed channel updates the status at once instead
	// of at the next UpdateFrequency tick.
	Devices DeviceResources
	// Clock drives the loops; nil means real time.
	Clock clock.Clock
	// Published, if set, is given every Node the controller learns of, for
	// components built before it (the volume manager's downward API).
	Published *Published
}

// DeviceResources are the extended resources of device plugins: their
// capacity and allocatable, and the resources whose plugins are gone (0 on
// the Node, as upstream).
type DeviceResources interface {
	Capacity() (capacity, allocatable v1.ResourceList, removed []string)
	Changed() <-chan struct{}
}

// Published holds the latest Node object the controller learned of. It
// is a plain holder, safe for concurrent use.
type Published struct{ node atomic.Pointer[v1.Node] }

// Node returns the latest Node (shared: read-only), false before the Node
// is registered.
func (p *Published) Node() (*v1.Node, bool) {
	n := p.node.Load()
	return n, n != nil
}

// Allocatable returns the node's allocatable resources, nil before the
// Node is registered.
func (p *Published) Allocatable() v1.ResourceList {
	if n := p.node.Load(); n != nil {
		return n.Status.Allocatable
	}
	return nil
}

// Defaults of the upstream kubelet.
const (
	defaultUpdateFrequency      = 10 * time.Second
	defaultReportFrequency      = 5 * time.Minute
	defaultLeaseDurationSeconds = 40
	defaultMaxPods              = 110
	defaultKubeletPort          = 10250
)

// Controller registers the Node and keeps its status and lease fresh.
type Controller struct {
	opts   Options
	cfg    nodeConfig
	client kubernetes.Interface
	clock  clock.Clock

	// Host readers; tests replace them.
	readMachine func() (machine, []error)
	detectIP    func() (string, error)
	// trace, when set, is told of each step ("registered", "wait:status",
	// ...) so tests can wait for them instead of sleeping.
	trace func(event string)
	// syncNow asks the status loop for an update now (SyncNow).
	syncNow chan struct{}

	registered     chan struct{}
	registeredOnce sync.Once

	mu   sync.Mutex
	node *v1.Node // latest Node from the API server; nil before registration

	// Owned by the status loop.
	machine        machine
	lastReport     time.Time
	runtimeName    string
	runtimeVersion string
	images         []v1.ContainerImage
	rtState        runtimeState // from the runtime's CRI Status
	podCIDR        string       // the pod CIDRs the runtime last accepted
}

// New returns a Controller; Run starts it.
func New(opts Options) *Controller {
	if opts.UpdateFrequency <= 0 {
		opts.UpdateFrequency = defaultUpdateFrequency
	}
	if opts.ReportFrequency <= 0 {
		opts.ReportFrequency = defaultReportFrequency
	}
	if opts.LeaseDurationSeconds <= 0 {
		opts.LeaseDurationSeconds = defaultLeaseDurationSeconds
	}
	if opts.MaxPods <= 0 {
		opts.MaxPods = defaultMaxPods
	}
	if opts.Port <= 0 {
		opts.Port = defaultKubeletPort
	}
	if opts.RootDir == "" {
		opts.RootDir = "/var/lib/kubelet"
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	c := &Controller{
		opts:   opts,
		client: opts.Client,
		clock:  opts.Clock,
		cfg: nodeConfig{
			name:                  opts.NodeName,
			labels:                opts.NodeLabels,
			taints:                opts.RegisterWithTaints,
			externalCloudProvider: opts.ExternalCloudProvider,
			providerID:            opts.ProviderID,
			maxPods:               opts.MaxPods,
			reservation:           newReservation(opts.KubeReserved, opts.SystemReserved, opts.EvictionHard),
			port:                  opts.Port,
			kubeletVersion:        opts.KubeletVersion,
			declaredFeatures:      opts.DeclaredFeatures,
		},
		registered: make(chan struct{}),
		syncNow:    make(chan struct{}, 1),
		rtState:    newRuntimeState(),
		detectIP:   DetectNodeIP,
	}
	c.readMachine = func() (machine, []error) { return readMachine(linuxFiles(), opts.RootDir) }
	return c
}

// Run registers the Node, retrying with back-off until it succeeds, then
// keeps its status and its lease fresh until ctx ends. API errors never
// stop it; each loop logs once per outage.
func (c *Controller) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("nodestatus").WithValues("node", c.opts.NodeName)
	ctx = klog.NewContext(ctx, logger)

	m, errs := c.readMachine()
	for _, err := range errs {
		logger.Error(err, "Cannot read a machine fact; the node status leaves it out")
	}
	c.machine = m

	var wg sync.WaitGroup
	wg.Go(func() { c.leaseLoop(ctx) })
	c.statusLoop(ctx)
	wg.Wait()
}

// Node returns a copy of the latest Node object berth knows, and false
// before the Node is registered.
func (c *Controller) Node() (*v1.Node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node == nil {
		return nil, false
	}
	return c.node.DeepCopy(), true
}

// Registered is closed once the Node exists.
func (c *Controller) Registered() <-chan struct{} { return c.registered }

// setNode records the latest Node from the API server.
func (c *Controller) setNode(node *v1.Node) {
	c.mu.Lock()
	c.node = node
	c.mu.Unlock()
	if c.opts.Published != nil {
		c.opts.Published.node.Store(node.DeepCopy())
	}
}

// SyncNow makes the status loop compute and post the status at once
// instead of at its next period (the node starts shutting down).
func (c *Controller) SyncNow() {
	select {
	case c.syncNow <- struct{}{}:
	default:
	}
}

// wait waits for d on the controller's clock (the status loop also for
// SyncNow); false means ctx ended. The timer exists before tests are told,
// so a test that steps a fake clock after seeing "wait:<loop>" always
// fires it.
func (c *Controller) wait(ctx context.Context, d time.Duration, loop string) bool {
	t := c.clock.NewTimer(d)
	defer t.Stop()
	c.traceEvent("wait:" + loop)
	var devices <-chan struct{}
	if loop == "status" && c.opts.Devices != nil {
		devices = c.opts.Devices.Changed()
	}
	var now chan struct{}
	if loop == "status" {
		now = c.syncNow
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	case <-devices:
		return true
	case <-now:
		return true
	}
}

func (c *Controller) traceEvent(event string) {
	if c.trace != nil {
		c.trace(event)
	}
}
