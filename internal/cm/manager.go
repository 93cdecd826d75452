package cm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
)

// Options configures a Manager.
type Options struct {
	Layout Layout
	// CgroupMount is where the cgroup file systems are mounted
	// (/sys/fs/cgroup); HugePagesDir lists the host's huge page sizes
	// (/sys/kernel/mm/hugepages). Tests point them elsewhere.
	CgroupMount, HugePagesDir string

	// Capacity is the node's: cpu, memory, huge pages and ResourcePIDs.
	Capacity                     v1.ResourceList
	SystemReserved, KubeReserved v1.ResourceList
	// EnforceNodeAllocatable is enforceNodeAllocatable: "pods",
	// "kube-reserved", "system-reserved" and their "-compressible" forms.
	EnforceNodeAllocatable []string
	// KubeReservedCgroup and SystemReservedCgroup are the existing
	// cgroups the reservations are enforced on.
	KubeReservedCgroup, SystemReservedCgroup string

	Pod PodSettings

	// ActivePods lists the pods whose requests count: the Burstable QoS
	// cgroup's CPU shares are their sum.
	ActivePods func() []*v1.Pod
	// Recorder and NodeName are for the node allocatable events.
	Recorder record.EventRecorder
	NodeName string
	Clock    clock.WithTicker
}

// Enforcement keys of enforceNodeAllocatable (upstream kubetypes).
const (
	EnforcePods                     = "pods"
	EnforceSystemReserved           = "system-reserved"
	EnforceKubeReserved             = "kube-reserved"
	EnforceSystemReservedCompressib = "system-reserved-compressible"
	EnforceKubeReservedCompressible = "kube-reserved-compressible"
	EnforceNone                     = "none"
)

// Event reasons (upstream pkg/kubelet/events).
const (
	reasonSuccessfulNodeAllocatable = "SuccessfulNodeAllocatableEnforcement"
	reasonFailedNodeAllocatable     = "FailedNodeAllocatableEnforcement"
)

// qosUpdatePeriod is upstream's periodicQOSCgroupUpdateInterval.
const qosUpdatePeriod = time.Minute

// Manager owns the node's cgroups: it creates the node allocatable and QoS
// cgroups at Start, keeps the QoS cgroups' shares current, and creates
// each pod's cgroup before its sandbox. Pod cgroups of pods it was not
// asked about are never touched.
type Manager struct {
	opts Options
	fs   *cgroupFS

	// qosMu serialises QoS updates; lastQOS is what was last written, so
	// that a pod that changes nothing costs no write.
	qosMu   sync.Mutex
	lastQOS *QOSConfig
	// nodeDone is set once the node allocatable limit is in place.
	nodeMu   sync.Mutex
	nodeDone bool
}

// New inspects the host's cgroup mount; it writes nothing until Start.
func New(opts Options) (*Manager, error) {
	if opts.CgroupMount == "" {
		opts.CgroupMount = "/sys/fs/cgroup"
	}
	if opts.HugePagesDir == "" {
		opts.HugePagesDir = "/sys/kernel/mm/hugepages"
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.ActivePods == nil {
		opts.ActivePods = func() []*v1.Pod { return nil }
	}
	if opts.Pod.CPUPeriod == 0 {
		opts.Pod.CPUPeriod = QuotaPeriod
	}
	if opts.Pod.PageSize == 0 {
		opts.Pod.PageSize = int64(os.Getpagesize())
	}
	f, err := newCgroupFS(opts.CgroupMount, opts.HugePagesDir)
	if err != nil {
		return nil, err
	}
	// Memory QoS (on by default from v1.37) only acts on cgroup v2.
	opts.Pod.MemoryHigh = opts.Pod.MemoryHigh && f.v2
	return &Manager{opts: opts, fs: f}, nil
}

// V2 reports whether the host has the unified cgroup v2 hierarchy.
func (m *Manager) V2() bool { return m.fs.v2 }

// Layout is how the manager names cgroups.
func (m *Manager) Layout() Layout { return m.opts.Layout }

func (m *Manager) enforced(key string) bool {
	return slices.Contains(m.opts.EnforceNodeAllocatable, key)
}

// nodeConfig is the node allocatable cgroup's configuration: allocatable
// when "pods" is enforced, else capacity (its CPU shares must not be the
// default 1024, which starves pods next to busy system cgroups).
func (m *Manager) nodeConfig() ResourceConfig {
	rl := m.opts.Capacity
	if m.enforced(EnforcePods) {
		rl = NodeAllocatable(m.opts.Capacity, m.opts.SystemReserved, m.opts.KubeReserved)
	}
	return ForNode(rl, false)
}

// Start creates the node allocatable cgroup and the QoS cgroups, enforces
// the reservations on their cgroups, and runs the periodic QoS update
// (and, until it succeeds, the node allocatable enforcement) until ctx
// ends. Errors creating the cgroups are returned: pods cannot be placed
// without them. With cgroupsPerQOS off there is nothing to create.
func (m *Manager) Start(ctx context.Context, run func(func())) error {
	if !m.opts.Layout.PerQOS {
		return nil
	}
	logger := klog.FromContext(ctx)
	pods := m.opts.Layout.Pods()
	if !m.fs.exists(pods) {
		if err := m.fs.create(pods, m.nodeConfig()); err != nil {
			return fmt.Errorf("create node allocatable cgroup: %w", err)
		}
	}
	m.enforceNodeAllocatable(logger)
	if m.fs.v2 {
		// Memory protection left by a memory QoS policy berth does not
		// apply (upstream resets it at start too).
		if err := m.fs.update(pods, ResourceConfig{Unified: map[string]string{"memory.min": "0", "memory.low": "0"}}); err != nil {
			logger.Error(err, "Failed to reset memory protection on the node allocatable cgroup")
		}
	}
	restarted := m.fs.exists(m.opts.Layout.QOS(v1.PodQOSBurstable))
	initial := ForQOS(nil, m.fs.hugePageSizes)
	for _, q := range []struct {
		class v1.PodQOSClass
		rc    ResourceConfig
	}{{v1.PodQOSBurstable, initial.Burstable}, {v1.PodQOSBestEffort, initial.BestEffort}} {
		rc := q.rc
		if q.class == v1.PodQOSBurstable {
			rc.CPUShares = nil // set from the pods below
			if m.fs.v2 {
				rc.Unified = map[string]string{"memory.low": "0"}
			}
		}
		if err := m.fs.create(m.opts.Layout.QOS(q.class), rc); err != nil {
			return fmt.Errorf("create top level %s QOS cgroup: %w", q.class, err)
		}
	}
	if err := m.enforceReserved(logger); err != nil {
		return err
	}
	// After a restart the Burstable shares are still those of the pods
	// that run; the pods are not known yet, so they are recomputed later
	// (the next Burstable pod's cgroup, the minute loop) rather than set
	// to the minimum now.
	if !restarted {
		if err := m.UpdateQOS(); err != nil {
			logger.Info("Failed to update QoS cgroups", "err", err)
		}
	}
	run(func() { m.loop(ctx) })
	return nil
}

// loop updates the QoS cgroups every minute, as upstream, and retries the
// node allocatable limit until it holds.
func (m *Manager) loop(ctx context.Context) {
	logger := klog.FromContext(ctx)
	t := m.opts.Clock.NewTicker(qosUpdatePeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if err := m.UpdateQOS(); err != nil {
			logger.Info("Failed to update QoS cgroups", "err", err)
		}
		m.enforceNodeAllocatable(logger)
	}
}

// enforceNodeAllocatable sets the node allocatable cgroup's limits. It
// can fail while pods use more memory than the new limit (the kernel
// cannot reclaim enough); upstream retries every minute, with an event
// each time, until evictions bring usage down.
func (m *Manager) enforceNodeAllocatable(logger klog.Logger) {
	m.nodeMu.Lock()
	defer m.nodeMu.Unlock()
	if m.nodeDone {
		return
	}
	err := m.fs.update(m.opts.Layout.Pods(), m.nodeConfig())
	if err != nil {
		m.nodeEvent(v1.EventTypeWarning, reasonFailedNodeAllocatable,
			fmt.Sprintf("Failed to update Node Allocatable Limits %q: %v", m.opts.Layout.Pods(), err))
		logger.Error(err, "Failed to enforce node allocatable; retrying in a minute", "cgroup", m.opts.Layout.Pods())
		return
	}
	m.nodeDone = true
	m.nodeEvent(v1.EventTypeNormal, reasonSuccessfulNodeAllocatable, "Updated Node Allocatable limit across pods")
}

// enforceReserved applies kubeReserved and systemReserved to their
// existing cgroups when enforceNodeAllocatable asks for it, as upstream.
func (m *Manager) enforceReserved(logger klog.Logger) error {
	for _, e := range []struct {
		key, what, cgroup string
		rl                v1.ResourceList
		compressible      bool
	}{
		{EnforceSystemReserved, "System Reserved", m.opts.SystemReservedCgroup, m.opts.SystemReserved, false},
		{EnforceKubeReserved, "Kube Reserved", m.opts.KubeReservedCgroup, m.opts.KubeReserved, false},
		{EnforceSystemReservedCompressib, "System Reserved Compressible", m.opts.SystemReservedCgroup, m.opts.SystemReserved, true},
		{EnforceKubeReservedCompressible, "Kube Reserved Compressible", m.opts.KubeReservedCgroup, m.opts.KubeReserved, true},
	} {
		if !m.enforced(e.key) {
			continue
		}
		name := m.opts.Layout.ParseName(e.cgroup)
		logger.V(2).Info("Enforcing reserved resources on cgroup", "what", e.what, "cgroup", name, "limits", e.rl)
		var err error
		switch {
		case e.rl == nil:
			err = fmt.Errorf("%q cgroup is not configured properly", name)
		case !m.fs.exists(name):
			err = fmt.Errorf("cgroup %q does not exist", name)
		default:
			err = m.fs.update(name, ForNode(e.rl, e.compressible))
		}
		if err != nil {
			msg := fmt.Sprintf("Failed to enforce %s Cgroup Limits on %q: %v", e.what, e.cgroup, err)
			m.nodeEvent(v1.EventTypeWarning, reasonFailedNodeAllocatable, msg)
			return errors.New(msg)
		}
		word := "system"
		if e.key == EnforceKubeReserved || e.key == EnforceKubeReservedCompressible {
			word = "kube"
		}
		m.nodeEvent(v1.EventTypeNormal, reasonSuccessfulNodeAllocatable, fmt.Sprintf("Updated limits on %s reserved cgroup %v", word, e.cgroup))
	}
	return nil
}

func (m *Manager) nodeEvent(eventType, reason, msg string) {
	if m.opts.Recorder == nil {
		return
	}
	ref := &v1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: m.opts.NodeName}
	m.opts.Recorder.Event(ref, eventType, reason, msg)
}

// UpdateQOS writes the QoS cgroups' settings for the active pods, if they
// changed since the last write.
func (m *Manager) UpdateQOS() error {
	if !m.opts.Layout.PerQOS {
		return nil
	}
	cfg := ForQOS(m.opts.ActivePods(), m.fs.hugePageSizes)
	m.qosMu.Lock()
	defer m.qosMu.Unlock()
	if m.lastQOS != nil && *m.lastQOS.Burstable.CPUShares == *cfg.Burstable.CPUShares {
		return nil
	}
	if err := m.fs.update(m.opts.Layout.QOS(v1.PodQOSBurstable), cfg.Burstable); err != nil {
		return err
	}
	if err := m.fs.update(m.opts.Layout.QOS(v1.PodQOSBestEffort), cfg.BestEffort); err != nil {
		return err
	}
	m.lastQOS = &cfg
	return nil
}

// Parent is the cgroup parent of the pod's sandbox.
func (m *Manager) Parent(pod *v1.Pod) string {
	return m.opts.Layout.Pod(pod.UID, container.PodQOS(pod))
}

// EnsurePod creates the pod's cgroup with its limits (ForPod) unless it
// exists, as upstream's pod container manager: an existing cgroup is
// left as it is. Before a Burstable pod's cgroup the QoS cgroups' shares
// are brought up to date, so that they count it. Nothing is done without
// cgroupsPerQOS.
func (m *Manager) EnsurePod(ctx context.Context, pod *v1.Pod) error {
	if !m.opts.Layout.PerQOS {
		return nil
	}
	name := m.Parent(pod)
	if m.fs.exists(name) {
		return nil
	}
	if container.PodQOS(pod) == v1.PodQOSBurstable {
		if err := m.UpdateQOS(); err != nil {
			klog.FromContext(ctx).V(2).Info("Failed to update QoS cgroups while creating a pod's cgroup", "err", err)
		}
	}
	if err := m.fs.create(name, ForPod(pod, m.opts.Pod)); err != nil {
		return fmt.Errorf("failed to create container for %s: %w", name, err)
	}
	return nil
}

// PodConfig is what EnsurePod and ResizePodCgroup set on the pod's
// cgroup for pod (its allocated resources): computed, not read back,
// since berth is the cgroup's only writer. nil without cgroupsPerQOS.
func (m *Manager) PodConfig(pod *v1.Pod) *ResourceConfig {
	if !m.opts.Layout.PerQOS {
		return nil
	}
	rc := ForPod(pod, m.opts.Pod)
	return &rc
}

// RemovePod removes the pod's cgroup once the runtime has removed its
// containers, whatever class it had (the spec may be gone). A cgroup
// still in use is left (rmdir fails on it).
func (m *Manager) RemovePod(uid types.UID) error {
	var errs []error
	for _, name := range m.opts.Layout.PodCandidates(uid) {
		if err := m.fs.remove(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
