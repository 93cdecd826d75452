package volume

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/panics"
)

// Objects reads the ConfigMaps and Secrets of pods; *objects.Manager
// implements it. RegisterPod is called on every SetUp and UnregisterPod on
// TearDown, so the watches follow the pods this manager sets up.
type Objects interface {
	RegisterPod(pod *v1.Pod)
	UnregisterPod(pod *v1.Pod)
	GetConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
	GetSecret(ctx context.Context, namespace, name string) (*v1.Secret, error)
}

// Options configures a Manager.
type Options struct {
	// Client requests service-account tokens and reads PVCs, PVs, the Node
	// and ClusterTrustBundles. Nil in standalone mode: volumes that need
	// the API then fail to set up with a clear error.
	Client kubernetes.Interface
	// Objects serves ConfigMaps and Secrets. Nil: such volumes fail.
	Objects Objects
	// CSI serves CSI volumes (PersistentVolumes with spec.csi, inline csi
	// volumes). Nil: they fail as not supported.
	CSI CSI
	// RootDir holds the pods' volumes under RootDir/pods/<uid>.
	RootDir string
	// NodeName is checked against the node affinity of local
	// PersistentVolumes.
	NodeName string
	// NodeAllocatable, if set, returns the node's allocatable resources:
	// the size of memory-backed volumes of pods without a memory limit and
	// the value of resourceFieldRefs to unset limits. May be nil.
	NodeAllocatable func() v1.ResourceList
	// Recorder receives FailedMount events. May be nil.
	Recorder record.EventRecorder
	// Clock times token refreshes. Nil means the real clock.
	Clock clock.Clock
	// Tokens, if set, checkpoints service-account tokens (node
	// autonomy). May be nil.
	Tokens TokenCheckpoint
	// OnChange, if set, is called (without locks held; it must not block)
	// when the files of a running pod's volumes changed, or when an object
	// that a pod waiting for its volumes references changed, so that its
	// worker syncs again at once.
	OnChange func(podUID types.UID)
	// Panics counts the panics recovered in volume refreshes (that pod's
	// refresh is retried later; SetUp runs in the pod's worker, which
	// recovers its own); may be nil.
	Panics panics.Counter
}

// Manager sets up, refreshes and tears down pod volumes.
type Manager struct {
	client          kubernetes.Interface
	objects         Objects
	csi             CSI
	rootDir         string
	nodeName        string
	nodeAllocatable func() v1.ResourceList
	recorder        record.EventRecorder
	clock           clock.Clock
	onChange        func(types.UID)
	tokens          TokenCheckpoint
	panics          panics.Counter

	mu   sync.Mutex
	pods map[types.UID]*podState
	// changed holds the objects reported by ObjectChanged that Run has not
	// handled yet.
	changed map[objectKey]struct{}
	// orphansSeen holds the orphaned pod directories already logged about.
	orphansSeen map[types.UID]struct{}
	// trustBundles caches which ClusterTrustBundle API version the server
	// serves, once known.
	trustBundles *trustBundleAPI

	wake chan struct{}
}

// podState is what the manager knows of one pod; mu serializes SetUp,
// refresh and TearDown of the pod. Lock order: podState.mu before
// Manager.mu, never the other way.
type podState struct {
	mu      sync.Mutex
	uid     types.UID
	pod     *v1.Pod
	volumes map[string]*volumeState
	// failed: the last SetUp left a volume not set up.
	failed bool
	// gone: torn down; a late refresh must not recreate anything.
	gone bool

	// sched is what Run needs to pick the pods to refresh without
	// waiting for their locks; guarded by Manager.mu.
	sched schedule
}

// schedule: the objects the pod's volumes show and when its volumes are
// next due for a refresh.
type schedule struct {
	objects map[objectKey]bool
	due     time.Time
}

// volumeState is one volume of a pod.
type volumeState struct {
	// path is the host path containers mount; readOnly forces read-only
	// mounts (configMap, secret, downwardAPI, projected; a PVC so declared).
	path     string
	readOnly bool
	// ready: set up at least once. Directory and mount volumes are then not
	// looked at again; file volumes are rewritten when their content changes.
	ready bool
	// files: a file-based volume that Run refreshes.
	files bool
	// digest of the payload last written, so an unchanged volume costs no IO.
	digest [32]byte
	// tokens are the service-account tokens of a projected volume, by
	// source index.
	tokens map[int]*token
	// refreshAt: when the volume must be rewritten even if nothing signals
	// a change (a token nears expiry, trust bundles are re-read). Zero: never.
	refreshAt time.Time
	// lastErr is the last refresh error reported, so a persisting one is
	// reported once.
	lastErr string
}

// token is a service-account token of a projected volume.
type token struct {
	tr        *authenticationv1.TokenRequest
	expires   time.Time
	refreshAt time.Time
	// restored: from the checkpoint, kept until the API issues another.
	restored bool
}

type objectKey struct{ kind, namespace, name string }

// Volume is what a container needs to mount a set-up volume.
type Volume struct {
	// Path is the host path to bind-mount.
	Path string
	// ReadOnly: the volume must be mounted read-only whatever the
	// container's volumeMount says, as upstream does for configMap,
	// secret, downwardAPI and projected volumes and read-only claims.
	ReadOnly bool
}

// New returns a Manager. Call Run to keep volumes fresh.
func New(opts Options) *Manager {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.RootDir == "" {
		opts.RootDir = "/var/lib/kubelet"
	}
	return &Manager{
		client:          opts.Client,
		objects:         opts.Objects,
		csi:             opts.CSI,
		rootDir:         opts.RootDir,
		nodeName:        opts.NodeName,
		nodeAllocatable: opts.NodeAllocatable,
		recorder:        opts.Recorder,
		clock:           opts.Clock,
		onChange:        opts.OnChange,
		tokens:          opts.Tokens,
		panics:          opts.Panics,
		pods:            make(map[types.UID]*podState),
		changed:         make(map[objectKey]struct{}),
		orphansSeen:     make(map[types.UID]struct{}),
		wake:            make(chan struct{}, 1),
	}
}

// SetUp sets up every volume that a container of the pod mounts. It is
// idempotent and cheap when nothing changed, so the worker calls it on
// every sync: that also rewrites downwardAPI files after a label or
// annotation change. Each volume that cannot be set up gets a FailedMount
// event; the returned error names them all, and the caller retries with
// back-off. A volume set up before never fails SetUp again: if it cannot
// be updated it keeps its files.
func (m *Manager) SetUp(ctx context.Context, pod *v1.Pod) error {
	ps := m.podState(pod.UID)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.gone = false
	ps.pod = pod
	if m.objects != nil {
		m.objects.RegisterPod(pod)
	}

	used := usedVolumes(pod)
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if !used[vol.Name] {
			// As upstream: a volume no container mounts is not set up.
			continue
		}
		if vs := ps.volumes[vol.Name]; vs != nil && vs.ready {
			// Set up before: an update that fails (say, its ConfigMap was
			// deleted) keeps the current files and must not stop the pod's
			// sync, as upstream. Reported once.
			m.refreshVolume(ctx, ps, vol, vs)
			continue
		}
		if _, err := m.setUpVolume(ctx, ps, vol); err != nil {
			m.event(pod, v1.EventTypeWarning, "FailedMount", failureMessage(vol.Name, err))
			errs = append(errs, fmt.Errorf("volume %q: %w", vol.Name, err))
		}
	}
	ps.failed = len(errs) > 0
	m.reschedule(ps)
	if len(errs) > 0 {
		return fmt.Errorf("unmounted volumes: %w", errors.Join(errs...))
	}
	return nil
}

// Volume returns where a container mounts the named volume of the pod from;
// false if the volume is not set up.
func (m *Manager) Volume(podUID types.UID, volumeName string) (Volume, bool) {
	m.mu.Lock()
	ps := m.pods[podUID]
	m.mu.Unlock()
	if ps == nil {
		return Volume{}, false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	vs := ps.volumes[volumeName]
	if ps.gone || vs == nil || !vs.ready {
		return Volume{}, false
	}
	return Volume{Path: vs.path, ReadOnly: vs.readOnly}, true
}

// HostPath returns the host path to bind-mount for a set-up volume.
func (m *Manager) HostPath(podUID types.UID, volumeName string) (string, bool) {
	v, ok := m.Volume(podUID, volumeName)
	return v.Path, ok
}

// podState returns the state of a pod, creating it.
func (m *Manager) podState(uid types.UID) *podState {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.pods[uid]
	if ps == nil {
		ps = &podState{uid: uid, volumes: make(map[string]*volumeState)}
		m.pods[uid] = ps
	}
	return ps
}

// signal wakes Run.
func (m *Manager) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) event(pod *v1.Pod, eventType, reason, message string) {
	if m.recorder != nil && pod != nil {
		m.recorder.Event(pod, eventType, reason, message)
	}
}

func (m *Manager) notify(uid types.UID) {
	if m.onChange != nil {
		m.onChange(uid)
	}
}

// opError is an error of a step other than SetUp, named in the event as
// upstream names it (e.g. "MountVolume.NodeAffinity check failed").
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// failureMessage is the FailedMount event message in upstream's words:
// `MountVolume.SetUp failed for volume "x" : configmap "y" not found`.
func failureMessage(volume string, err error) string {
	op := "MountVolume.SetUp failed"
	var oe *opError
	if errors.As(err, &oe) {
		op = oe.op
	}
	return fmt.Sprintf("%s for volume %q : %v", op, volume, err)
}

// Paths.

func (m *Manager) podDir(uid types.UID) string {
	return filepath.Join(m.rootDir, "pods", string(uid))
}

func (m *Manager) volumeDir(uid types.UID, pluginDir, name string) string {
	return filepath.Join(m.podDir(uid), "volumes", pluginDir, name)
}

func (m *Manager) pluginDir(uid types.UID, pluginDir, name string) string {
	return filepath.Join(m.podDir(uid), "plugins", pluginDir, name)
}

func (m *Manager) logger(ctx context.Context, pod *v1.Pod) klog.Logger {
	return klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "podUID", pod.UID)
}
