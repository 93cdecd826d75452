package devicemanager

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/devicemanager/checkpoint"
)

// endpointGracePeriod is how long the resource of a plugin that went away
// stays in the Node's capacity (all its devices unhealthy) before it is
// set to 0, as upstream's endpointStopGracePeriod.
const endpointGracePeriod = 5 * time.Minute

// Options configure a Manager.
type Options struct {
	// Dir is <root dir>/device-plugins.
	Dir string
	// Clock times the grace period of plugins gone (real when nil).
	Clock clock.PassiveClock
}

// Manager is the device manager. Its methods are safe for concurrent use.
type Manager struct {
	dir     string
	clock   clock.PassiveClock
	logger  klog.Logger
	changed chan struct{}

	// allocMu serialises allocations (admission, re-allocation at
	// container start), RPCs included, so that two never pick the same
	// free device. Taken before mu.
	allocMu sync.Mutex
	// wmu orders checkpoint writes: the last written is the newest.
	wmu sync.Mutex

	mu sync.Mutex
	// ctx is Run's: plugin connections live in it. nil before Run.
	ctx          context.Context
	wg           *sync.WaitGroup
	sourcesReady func() bool
	resources    map[string]*resourceState
	// pods: pod UID → container → resource → allocation.
	pods map[string]map[string]map[string]*allocation
}

// resourceState is what berth knows of one resource's devices.
type resourceState struct {
	devices map[string]*pluginapi.Device // the latest ListAndWatch
	// ep is the connected plugin; nil when it went away (or is not back
	// since berth started), stoppedAt telling since when.
	ep        *endpoint
	stoppedAt time.Time
}

// allocation is one container's devices of one resource and the plugin's
// answer for them.
type allocation struct {
	devices checkpoint.DevicesPerNUMA
	resp    *pluginapi.ContainerAllocateResponse
}

// New returns a Manager holding the allocations of its checkpoint. A
// corrupt checkpoint is an error: the allocations of running pods would be
// lost, so berth does not start (as with upstream's other checkpoints, the
// way out is draining the node and deleting the file).
func New(logger klog.Logger, opts Options) (*Manager, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	m := &Manager{
		dir:       opts.Dir,
		clock:     opts.Clock,
		logger:    logger.WithName("devicemanager"),
		changed:   make(chan struct{}, 1),
		resources: map[string]*resourceState{},
		pods:      map[string]map[string]map[string]*allocation{},
	}
	cp, err := checkpoint.Read(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("device manager checkpoint %s: %w", filepath.Join(opts.Dir, checkpoint.FileName), err)
	}
	if cp != nil {
		m.restore(cp)
	}
	return m, nil
}

// restore takes the allocations and resources of a checkpoint: the
// resources are known (so that their pods' requests are judged) but have
// no devices until their plugins register again.
func (m *Manager) restore(cp *checkpoint.Data) {
	now := m.clock.Now()
	for res := range cp.Registered() {
		m.resources[res] = &resourceState{devices: map[string]*pluginapi.Device{}, stoppedAt: now}
	}
	for _, e := range cp.Entries() {
		resp := &pluginapi.ContainerAllocateResponse{}
		if err := unmarshalResponse(e.AllocResp, resp); err != nil {
			m.logger.Error(err, "Cannot read an allocation of the checkpoint; the container gets its devices without the plugin's settings", "podUID", e.PodUID, "container", e.ContainerName, "resource", e.ResourceName)
		}
		m.setAllocation(e.PodUID, e.ContainerName, e.ResourceName, &allocation{devices: e.DeviceIDs, resp: resp})
	}
}

func (m *Manager) setAllocation(pod, container, res string, a *allocation) {
	cs := m.pods[pod]
	if cs == nil {
		cs = map[string]map[string]*allocation{}
		m.pods[pod] = cs
	}
	rs := cs[container]
	if rs == nil {
		rs = map[string]*allocation{}
		cs[container] = rs
	}
	rs[res] = a
}

// Run serves kubelet.sock until ctx ends; the plugins' streams end with
// it. sourcesReady tells when every pod source has delivered its pods:
// only then are the devices of pods no longer active freed at admission.
func (m *Manager) Run(ctx context.Context, sourcesReady func() bool) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	m.mu.Lock()
	m.ctx, m.wg, m.sourcesReady = ctx, &wg, sourcesReady
	m.mu.Unlock()
	stop, err := m.serve(ctx)
	if err != nil {
		return err
	}
	m.logger.Info("Serving device plugin registration", "socket", filepath.Join(m.dir, KubeletSocket))
	<-ctx.Done()
	stop()
	return nil
}

// Changed is signalled when the Node's device resources changed.
func (m *Manager) Changed() <-chan struct{} { return m.changed }

func (m *Manager) notifyChanged() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// connectPlugin connects to the plugin serving res at socket and follows
// its devices. It replaces a plugin serving the same resource.
func (m *Manager) connectPlugin(res, socket string) error {
	m.mu.Lock()
	ctx, wg := m.ctx, m.wg
	m.mu.Unlock()
	if ctx == nil {
		return fmt.Errorf("device manager is not running")
	}
	ep, err := connect(ctx, res, socket)
	if err != nil {
		return err
	}
	m.mu.Lock()
	rs := m.resources[res]
	if rs == nil {
		rs = &resourceState{devices: map[string]*pluginapi.Device{}}
		m.resources[res] = rs
	}
	old := rs.ep
	rs.ep, rs.stoppedAt = ep, time.Time{}
	m.mu.Unlock()
	if old != nil {
		old.close()
	}
	m.logger.Info("Device plugin connected", "resourceName", res, "socket", socket)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := ep.listAndWatch(ctx, func(devs []*pluginapi.Device) { m.updateDevices(ep, devs) })
		if ctx.Err() != nil {
			// berth is stopping: the plugin is not gone, and the
			// checkpoint keeps its devices as they were.
			ep.close()
			return
		}
		m.logger.Error(err, "ListAndWatch ended unexpectedly for device plugin", "resource", res)
		m.disconnected(ep)
	}()
	return nil
}

// disconnectPlugin ends the plugin registered for res at socket (its
// registration socket was removed).
func (m *Manager) disconnectPlugin(res, socket string) {
	m.mu.Lock()
	rs := m.resources[res]
	var ep *endpoint
	if rs != nil && rs.ep != nil && rs.ep.socket == socket {
		ep = rs.ep
	}
	m.mu.Unlock()
	if ep != nil {
		ep.close() // ends its stream: disconnected follows
	}
}

// disconnected marks the devices of a plugin gone unhealthy; its
// resource leaves the Node after the grace period.
func (m *Manager) disconnected(ep *endpoint) {
	ep.close()
	m.mu.Lock()
	rs := m.resources[ep.resource]
	current := rs != nil && rs.ep == ep
	if current {
		rs.ep, rs.stoppedAt = nil, m.clock.Now()
		for _, d := range rs.devices {
			d.Health = pluginapi.Unhealthy
		}
	}
	m.mu.Unlock()
	if current {
		m.logger.Info("Device plugin disconnected; its devices are unhealthy", "resourceName", ep.resource)
		m.notifyChanged()
		m.writeCheckpoint()
	}
}

// updateDevices takes a ListAndWatch answer.
func (m *Manager) updateDevices(ep *endpoint, devs []*pluginapi.Device) {
	m.mu.Lock()
	rs := m.resources[ep.resource]
	if rs == nil || rs.ep != ep {
		m.mu.Unlock()
		return
	}
	devices := make(map[string]*pluginapi.Device, len(devs))
	healthy := 0
	for _, d := range devs {
		devices[d.ID] = d
		if d.Health == pluginapi.Healthy {
			healthy++
		}
	}
	rs.devices = devices
	m.mu.Unlock()
	m.logger.V(2).Info("Processed device updates for resource", "resourceName", ep.resource, "totalCount", len(devs), "healthyCount", healthy)
	m.notifyChanged()
	m.writeCheckpoint()
}

// Capacity is what the Node reports of device plugin resources: capacity
// (all devices) and allocatable (healthy ones) of each resource whose
// plugin is connected or went away less than the grace period ago, and
// the resources whose plugins are gone for longer (set to 0 on the Node,
// as upstream, so that the scheduler knows them for device resources).
func (m *Manager) Capacity() (capacity, allocatable v1.ResourceList, removed []string) {
	capacity, allocatable = v1.ResourceList{}, v1.ResourceList{}
	m.mu.Lock()
	now := m.clock.Now()
	for res, rs := range m.resources {
		if rs.ep == nil && now.Sub(rs.stoppedAt) >= endpointGracePeriod {
			removed = append(removed, res)
			delete(m.resources, res)
			continue
		}
		healthy := 0
		for _, d := range rs.devices {
			if d.Health == pluginapi.Healthy {
				healthy++
			}
		}
		capacity[v1.ResourceName(res)] = *resource.NewQuantity(int64(len(rs.devices)), resource.DecimalSI)
		allocatable[v1.ResourceName(res)] = *resource.NewQuantity(int64(healthy), resource.DecimalSI)
	}
	m.mu.Unlock()
	sort.Strings(removed)
	if len(removed) > 0 {
		m.writeCheckpoint()
	}
	return capacity, allocatable, removed
}

// PodTerminated frees the devices of a pod whose containers are gone.
func (m *Manager) PodTerminated(uid string) {
	m.mu.Lock()
	_, had := m.pods[uid]
	delete(m.pods, uid)
	m.mu.Unlock()
	if had {
		m.logger.V(2).Info("Freed the devices of a terminated pod", "podUID", uid)
		m.writeCheckpoint()
	}
}

// writeCheckpoint writes the allocations and the healthy devices. A
// failure is logged: the allocations stand in memory, and the next change
// writes again.
func (m *Manager) writeCheckpoint() {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.mu.Lock()
	var entries []checkpoint.PodDevicesEntry
	pods := make([]string, 0, len(m.pods))
	for uid := range m.pods {
		pods = append(pods, uid)
	}
	sort.Strings(pods)
	for _, uid := range pods {
		for _, c := range sortedKeys(m.pods[uid]) {
			for _, res := range sortedKeys(m.pods[uid][c]) {
				a := m.pods[uid][c][res]
				b, err := marshalResponse(a.resp)
				if err != nil {
					m.logger.Error(err, "Cannot checkpoint an allocation response", "podUID", uid, "container", c, "resource", res)
				}
				entries = append(entries, checkpoint.PodDevicesEntry{PodUID: uid, ContainerName: c, ResourceName: res, DeviceIDs: a.devices, AllocResp: b})
			}
		}
	}
	registered := map[string][]string{}
	for res, rs := range m.resources {
		ids := []string{}
		for id, d := range rs.devices {
			if d.Health == pluginapi.Healthy {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		registered[res] = ids
	}
	m.mu.Unlock()
	if err := checkpoint.Write(m.dir, checkpoint.New(entries, registered)); err != nil {
		m.logger.Error(err, "Failed to write the device manager checkpoint", "path", filepath.Join(m.dir, checkpoint.FileName))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
