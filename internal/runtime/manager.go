package runtime

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/cm"
	"github.com/berth-dev/berth/internal/image"
)

// Options configures a Manager.
type Options struct {
	// RuntimeEndpoint and ImageEndpoint are CRI endpoints, e.g.
	// "unix:///run/containerd/containerd.sock"; ImageEndpoint defaults to
	// RuntimeEndpoint.
	RuntimeEndpoint, ImageEndpoint string
	// RequestTimeout bounds each CRI call (default 2m, as upstream).
	RequestTimeout time.Duration
	// RootDir holds berth's per-pod files under RootDir/pods/<uid> (the
	// managed /etc/hosts, termination message files); default
	// /var/lib/kubelet.
	RootDir string
	// PodLogsDir is where the runtime writes container logs (default
	// /var/log/pods).
	PodLogsDir string
	NodeName   string
	// NodeIP is the node's address (or comma-separated addresses) as pods
	// see it in status.hostIP(s).
	NodeIP        string
	ClusterDNS    []string
	ClusterDomain string
	// ResolvConf is the host resolv.conf pods inherit with dnsPolicy
	// Default; "" gives them a resolver on the node instead.
	ResolvConf string
	// CgroupDriver is "cgroupfs" (default) or "systemd", as the runtime is
	// configured.
	CgroupDriver string
	// UserNamespaces hands out the ID ranges of pods with hostUsers:
	// false; nil refuses such pods.
	UserNamespaces UserNamespaces
	// SeccompDefault gives containers without a seccomp profile the
	// runtime's default one (RuntimeDefault) instead of none.
	SeccompDefault bool
	// CgroupLayout names the pods' cgroups; nil is upstream's default
	// (cgroupRoot "/", cgroupsPerQOS, CgroupDriver).
	CgroupLayout *cm.Layout
	// OOM, if set, watches started containers' memory cgroups for OOM
	// kills, so that an exit the runtime reports as "Error" while its own
	// OOM event lags is reported OOMKilled.
	OOM OOMWatcher
	// PodCgroups creates a pod's cgroup, with its limits, before its
	// sandbox, and removes it with the pod; nil leaves both to the
	// runtime (which creates the cgroup without limits).
	PodCgroups PodCgroups
	// ContainerGC is the dead-container policy; nil means upstream's
	// default (DefaultGCPolicy()).
	ContainerGC *GCPolicy
	// DisableCPUCFSQuota is cpuCFSQuota false: containers get no CPU
	// quota. CPUCFSQuotaPeriod is cpuCFSQuotaPeriod (default 100 ms).
	DisableCPUCFSQuota bool
	CPUCFSQuotaPeriod  time.Duration
	// Resources records the resources applied to each container (the
	// actuated state); nil records nothing, and no container is resized
	// in place.
	Resources ResourceRecorder
	// PodCgroupResizer writes a resized pod's values to its pod cgroup;
	// nil leaves the pod cgroup as it is (the runtime made it without
	// limits).
	PodCgroupResizer PodCgroupResizer
	// MaxParallelImagePulls bounds concurrent pulls; 0 means unlimited.
	MaxParallelImagePulls int
	// ImagePullRecords keeps the kubelet's image pull records (under the
	// root directory); with ImageVerify it makes a pod prove that it may
	// use an image already on the node. Nil verifies nothing.
	ImagePullRecords *image.Records
	ImageVerify      image.VerifyPolicy
	// CredentialProviders are the node's image credential provider
	// plugins, asked after the pod's pull secrets; nil means none.
	CredentialProviders image.CredentialProviders
	// Recorder receives events with the upstream reasons; nil drops them.
	Recorder record.EventRecorder
	// Clock drives the crash and image pull back-offs and the timing of
	// lifecycle hooks; nil means real time.
	Clock clock.Clock
	// Volumes tells where the pod's volumes are set up on the host; a
	// container mounting a volume it does not know waits with
	// CreateContainerConfigError. nil means no volumes at all.
	Volumes VolumeHostPaths
	// Objects reads the ConfigMaps and Secrets that env vars and image pull
	// secrets refer to. nil (standalone) makes such references fail.
	Objects ObjectGetter
	// ContainerExtras give containers what node plugins (device plugins,
	// DRA drivers) allocated them: env, mounts, devices, annotations, CDI
	// devices; asked in order before each container is created.
	ContainerExtras []ContainerExtrasSource
	// CDISpecDirs are where CDI device specs are read for a runtime that
	// does not resolve CDI devices itself (nil: CDI's defaults, /etc/cdi
	// and /var/run/cdi).
	CDISpecDirs []string
	// Services lists the Services whose addresses containers get as
	// environment variables (enableServiceLinks). nil (standalone) gives
	// them none.
	Services ServiceLister
	// RuntimeClasses resolves pods' runtimeClassName to the runtime
	// handler. nil (standalone) refuses a pod that names a class.
	RuntimeClasses RuntimeHandlers
	// NodeAllocatable, if set, returns the Node's allocatable resources,
	// which the downward API reads for limits a container does not set;
	// when it is unset or returns nothing, the node's capacity counts.
	NodeAllocatable func() v1.ResourceList
	// OnContainerStarted, if set, is told of every container the Manager
	// started (the PLEG watches its process for exits from then on).
	OnContainerStarted func(podUID types.UID, containerID string)
	// OnContainerStopping, if set, is told of every container the Manager
	// is about to stop: its exit is the stopping worker's own doing, not
	// news the PLEG has to bring it.
	OnContainerStopping func(containerID string)
	// WrapRuntimeService and WrapImageService, if set, wrap the CRI
	// services once connected, e.g. to count and time every call.
	WrapRuntimeService func(internalapi.RuntimeService) internalapi.RuntimeService
	WrapImageService   func(internalapi.ImageManagerService) internalapi.ImageManagerService
}

// PodCgroups owns the pods' cgroups (internal/cm).
type PodCgroups interface {
	// EnsurePod creates the pod's cgroup with its limits unless it exists.
	EnsurePod(ctx context.Context, pod *v1.Pod) error
	// RemovePod removes the pod's cgroup, which the runtime has emptied.
	RemovePod(uid types.UID) error
}

// ResourceRecorder keeps the resources applied to containers
// (allocation.Manager's actuated state).
type ResourceRecorder interface {
	Actuated(uid types.UID, name string) (v1.ResourceRequirements, bool)
	SetActuated(uid types.UID, name string, r v1.ResourceRequirements) error
	ActuatedPodLevel(uid types.UID) (*v1.ResourceRequirements, bool)
	SetActuatedPodLevel(uid types.UID, r *v1.ResourceRequirements)
}

// PodCgroupResizer writes a resized pod's cpu or memory values (those of
// its allocated resources) to its pod cgroup. With grow it writes only the
// values that increase, otherwise only those that decrease: a resize
// raises the pod's values before its containers' and lowers them after.
type PodCgroupResizer interface {
	ResizePodCgroup(ctx context.Context, pod *v1.Pod, resource v1.ResourceName, grow bool) error
}

// OOMWatcher notices OOM kills in containers' cgroups (internal/oom).
type OOMWatcher interface {
	// Watch starts watching the container, whose cgroup is a child of
	// podCgroup.
	Watch(podCgroup, containerID string) error
	// OOMKilled reports whether the container was OOM killed.
	OOMKilled(containerID string) bool
}

// VolumeHostPaths finds the host directory (or file) of a volume of a pod
// that the volume manager has set up.
type VolumeHostPaths interface {
	HostPath(podUID types.UID, volumeName string) (string, bool)
}

// ObjectGetter reads API objects for a pod. Errors for a missing object
// satisfy apierrors.IsNotFound.
type ObjectGetter interface {
	GetConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
	GetSecret(ctx context.Context, namespace, name string) (*v1.Secret, error)
}

// ServiceLister reads Services from a cache of all of them.
type ServiceLister interface {
	// HasSynced reports whether every Service has been read at least once.
	HasSynced() bool
	// List returns the Services of a namespace.
	List(namespace string) ([]*v1.Service, error)
}

// Crash loop back-off of the upstream kubelet (kubelet.go): a container
// that ran for crashBackOffReset since its last restart starts afresh.
const (
	crashBackOffInitial = 10 * time.Second
	crashBackOffMax     = 300 * time.Second
	crashBackOffReset   = 600 * time.Second
)

// Manager carries out pod actions through the CRI and reads the pods'
// runtime state back. It is safe for concurrent use by pod workers, each
// working on its own pod.
type Manager struct {
	opts  Options
	node  nodeConfig
	clock clock.Clock
	// started is when this Manager was made: a container created before
	// and never started was left by a berth that died in between.
	started  time.Time
	gcPolicy GCPolicy
	recorder record.EventRecorder

	// conn connects lazily; services returns fixed services when it is nil.
	conn    *connection
	rs      internalapi.RuntimeService
	is      internalapi.ImageManagerService
	images  *image.Puller
	crashBO *flowcontrol.Backoff
	// hooks runs lifecycle hooks; its HTTP client is replaced in tests.
	hooks hookRunner
	// sandboxSlots bounds the sandboxes being created at once (see
	// parallelSandboxStarts).
	sandboxSlots chan struct{}
	// name is the runtime's name once it has answered a Version call.
	name atomic.Pointer[string]
}

// New returns a Manager for the runtime at opts.RuntimeEndpoint. It does not
// need the runtime to be up: it connects on first use and retries, and
// calls fail fast with an error wrapping ErrUnreachable until it is.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if opts.RuntimeEndpoint == "" {
		return nil, errors.New("runtime endpoint is required")
	}
	m, err := newManager(opts)
	if err != nil {
		return nil, err
	}
	m.conn = &connection{
		runtimeEndpoint: m.opts.RuntimeEndpoint,
		imageEndpoint:   m.opts.ImageEndpoint,
		timeout:         m.opts.RequestTimeout,
		clock:           m.clock,
		wrapRuntime:     m.opts.WrapRuntimeService,
		wrapImage:       m.opts.WrapImageService,
	}
	return m, nil
}

// NewForServices returns a Manager that uses the given CRI services, e.g.
// the fakes of k8s.io/cri-api/pkg/apis/testing.
func NewForServices(opts Options, rs internalapi.RuntimeService, is internalapi.ImageManagerService) (*Manager, error) {
	m, err := newManager(opts)
	if err != nil {
		return nil, err
	}
	m.rs, m.is = rs, is
	return m, nil
}

func newManager(opts Options) (*Manager, error) {
	if opts.ImageEndpoint == "" {
		opts.ImageEndpoint = opts.RuntimeEndpoint
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 2 * time.Minute
	}
	if opts.RootDir == "" {
		opts.RootDir = "/var/lib/kubelet"
	}
	if opts.PodLogsDir == "" {
		opts.PodLogsDir = "/var/log/pods"
	}
	switch opts.CgroupDriver {
	case "":
		opts.CgroupDriver = "cgroupfs"
	case "cgroupfs", "systemd":
	default:
		return nil, fmt.Errorf("unknown cgroup driver %q (want cgroupfs or systemd)", opts.CgroupDriver)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	gcPolicy := DefaultGCPolicy()
	if opts.ContainerGC != nil {
		gcPolicy = *opts.ContainerGC
	}
	m := &Manager{
		opts:     opts,
		clock:    opts.Clock,
		started:  opts.Clock.Now(),
		gcPolicy: gcPolicy,
		recorder: opts.Recorder,
		node: nodeConfig{
			nodeName:       opts.NodeName,
			rootDir:        opts.RootDir,
			podLogsDir:     opts.PodLogsDir,
			clusterDNS:     opts.ClusterDNS,
			clusterDomain:  opts.ClusterDomain,
			resolvConf:     opts.ResolvConf,
			cgroups:        cm.NewLayout("/", true, opts.CgroupDriver),
			seccompDefault: opts.SeccompDefault,

			disableCPUQuota: opts.DisableCPUCFSQuota,
			cfsPeriod:       opts.CPUCFSQuotaPeriod.Microseconds(),
		},
		// The flowcontrol "fake" constructor only means "with this clock".
		crashBO:      flowcontrol.NewFakeBackOff(crashBackOffInitial, crashBackOffMax, opts.Clock),
		sandboxSlots: make(chan struct{}, parallelSandboxStarts(goruntime.NumCPU())),
	}
	// Upstream sets the reset explicitly rather than relying on the
	// default of twice the maximum (which happens to be the same today).
	m.crashBO.HasExpiredFunc = func(eventTime, lastUpdate time.Time, _ time.Duration) bool {
		return eventTime.Sub(lastUpdate) > crashBackOffReset
	}
	if opts.CgroupLayout != nil {
		m.node.cgroups = *opts.CgroupLayout
	}
	m.hooks = hookRunner{http: newHookHTTPClient()}
	for _, ip := range strings.Split(opts.NodeIP, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			m.node.nodeIPs = append(m.node.nodeIPs, ip)
		}
	}
	m.node.readNodeResources()
	// The pod's pull secrets first, then the node's plugins, as
	// upstream's union keyring.
	var keyring image.Keyrings
	if opts.Objects != nil {
		keyring = append(keyring, image.PullSecretKeyring{Secrets: opts.Objects})
	}
	if opts.CredentialProviders != nil {
		keyring = append(keyring, image.ProviderKeyring{Providers: opts.CredentialProviders})
	}
	m.images = image.New(image.Options{
		Service:          lazyImages{m},
		Recorder:         opts.Recorder,
		Clock:            opts.Clock,
		MaxParallelPulls: opts.MaxParallelImagePulls,
		Keyring:          keyring,
		Records:          opts.ImagePullRecords,
		Verify:           opts.ImageVerify,
	})
	return m, nil
}

// services returns the CRI services, connecting if need be.
func (m *Manager) services(ctx context.Context) (internalapi.RuntimeService, internalapi.ImageManagerService, error) {
	if m.conn == nil {
		return m.rs, m.is, nil
	}
	return m.conn.services(ctx)
}

func (m *Manager) runtime(ctx context.Context) (internalapi.RuntimeService, error) {
	rs, _, err := m.services(ctx)
	return rs, err
}

// wrap marks errors that mean the runtime went away.
func (m *Manager) wrap(err error) error {
	return wrapUnavailable(m.opts.RuntimeEndpoint, err)
}

// Version returns the runtime's name and version ("containerd",
// "1.6.20"). It doubles as a health check.
func (m *Manager) Version(ctx context.Context) (name, version string, err error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return "", "", err
	}
	// The CRI v1 API ignores the requested version; upstream sends this.
	v, err := rs.Version(ctx, "0.1.0")
	if err != nil {
		return "", "", fmt.Errorf("runtime version: %w", m.wrap(err))
	}
	name = v.GetRuntimeName()
	m.name.Store(&name)
	return name, v.GetRuntimeVersion(), nil
}

// Status returns the runtime's CRI Status (conditions, runtime handlers
// and features), for the node's Ready condition and status.
func (m *Manager) Status(ctx context.Context) (*runtimeapi.StatusResponse, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := rs.Status(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("runtime status: %w", m.wrap(err))
	}
	return resp, nil
}

// UpdatePodCIDR hands the node's pod CIDRs (comma-separated) to the
// runtime, as upstream does when the Node's spec.podCIDRs change: a
// runtime with a CNI configuration template (containerd's conf_template)
// writes the node's CNI configuration from them.
func (m *Manager) UpdatePodCIDR(ctx context.Context, cidr string) error {
	rs, err := m.runtime(ctx)
	if err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Updating runtime config through cri with podcidr", "CIDR", cidr)
	err = rs.UpdateRuntimeConfig(ctx, &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: cidr}})
	if err != nil {
		return fmt.Errorf("update runtime config with pod CIDR %q: %w", cidr, m.wrap(err))
	}
	return nil
}

// runtimeNameTimeout bounds the Version call RuntimeName makes while the
// name is not known yet.
const runtimeNameTimeout = 5 * time.Second

// RuntimeName returns the runtime's name ("containerd", "cri-o"), which
// prefixes container IDs in pod status. It asks the runtime only until it
// has answered once (berth may start while the runtime is down); "" while
// it cannot tell.
func (m *Manager) RuntimeName() string {
	if p := m.name.Load(); p != nil {
		return *p
	}
	ctx, cancel := context.WithTimeout(context.Background(), runtimeNameTimeout)
	defer cancel()
	name, _, err := m.Version(ctx)
	if err != nil {
		return ""
	}
	return name
}

// lazyImages gives the image puller the CRI image service, connecting on
// first use like everything else.
type lazyImages struct{ m *Manager }

func (l lazyImages) ImageStatus(ctx context.Context, spec *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	_, is, err := l.m.services(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := is.ImageStatus(ctx, spec, verbose)
	return resp, wrapUnavailable(l.m.opts.ImageEndpoint, err)
}

func (l lazyImages) PullImage(ctx context.Context, spec *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, sandbox *runtimeapi.PodSandboxConfig) (string, error) {
	_, is, err := l.m.services(ctx)
	if err != nil {
		return "", err
	}
	ref, err := is.PullImage(ctx, spec, auth, sandbox)
	return ref, wrapUnavailable(l.m.opts.ImageEndpoint, err)
}
