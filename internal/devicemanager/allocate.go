package devicemanager

import (
	"context"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/runtime"
)

// ReasonUnexpectedAdmissionError is upstream's reason for a pod whose
// devices could not be allocated.
const ReasonUnexpectedAdmissionError = "UnexpectedAdmissionError"

// Admit allocates the devices the pod's containers ask for, as upstream's
// allocate-resources admit handler (before the resource fit): too few free
// healthy devices, an unknown plugin or a failing Allocate rejects the pod
// with UnexpectedAdmissionError and upstream's message. active are the
// pods admitted before (the devices of other pods are freed once every
// source has delivered its pods).
func (m *Manager) Admit(pod *v1.Pod, active []*v1.Pod) admission.Result {
	if !m.wantsDevices(pod) {
		return admission.Result{Admit: true}
	}
	m.allocMu.Lock()
	defer m.allocMu.Unlock()
	m.freeInactive(pod, active)
	if err := m.allocatePod(pod); err != nil {
		msg := fmt.Sprintf("Allocate failed due to %v, which is unexpected", err)
		m.logger.Info("Failed to admit pod", "pod", klog.KObj(pod), "message", msg)
		return admission.Result{Reason: ReasonUnexpectedAdmissionError, Message: msg}
	}
	return admission.Result{Admit: true}
}

// wantsDevices: a container limits a resource of a device plugin.
func (m *Manager) wantsDevices(pod *v1.Pod) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.resources) == 0 && len(m.pods) == 0 {
		return false
	}
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if len(m.deviceResourcesLocked(pod, &cs[i])) > 0 {
				return true
			}
		}
	}
	return false
}

// deviceResourcesLocked are the device plugin resources container c
// limits, in name order; those a DRA claim provides are not (upstream's
// isDRAExtendedResource).
func (m *Manager) deviceResourcesLocked(pod *v1.Pod, c *v1.Container) []string {
	var out []string
	for name, q := range c.Resources.Limits {
		res := string(name)
		// Native resources (cpu, memory, hugepages-...) have no domain.
		if !strings.Contains(res, "/") || q.Value() == 0 || !m.isDeviceResourceLocked(res) || backedByClaim(pod, c.Name, res) {
			continue
		}
		out = append(out, res)
	}
	sort.Strings(out)
	return out
}

func (m *Manager) isDeviceResourceLocked(res string) bool {
	if _, ok := m.resources[res]; ok {
		return true
	}
	for _, cs := range m.pods {
		for _, rs := range cs {
			if _, ok := rs[res]; ok {
				return true
			}
		}
	}
	return false
}

func backedByClaim(pod *v1.Pod, container, res string) bool {
	st := pod.Status.ExtendedResourceClaimStatus
	if st == nil {
		return false
	}
	for _, mp := range st.RequestMappings {
		if mp.ContainerName == container && mp.ResourceName == res {
			return true
		}
	}
	return false
}

// freeInactive frees the devices of pods neither active nor pod, once the
// sources are ready (before, a pod not re-admitted yet after a restart
// would lose its devices).
func (m *Manager) freeInactive(pod *v1.Pod, active []*v1.Pod) {
	m.mu.Lock()
	ready := m.sourcesReady != nil && m.sourcesReady()
	if !ready {
		m.mu.Unlock()
		return
	}
	keep := sets.New(string(pod.UID))
	for _, p := range active {
		keep.Insert(string(p.UID))
	}
	var freed []string
	for uid := range m.pods {
		if !keep.Has(uid) {
			delete(m.pods, uid)
			freed = append(freed, uid)
		}
	}
	m.mu.Unlock()
	if len(freed) > 0 {
		m.logger.V(3).Info("Freed the devices of pods no longer active", "podUIDs", freed)
		m.writeCheckpoint()
	}
}

// allocatePod allocates for the init containers, then the others; the
// devices of an init container (not a sidecar) may be reused by the
// containers after it, as upstream.
func (m *Manager) allocatePod(pod *v1.Pod) error {
	reuse := map[string]sets.Set[string]{}
	changed := false
	defer func() {
		if changed {
			m.writeCheckpoint()
		}
	}()
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		got, err := m.allocateContainer(pod, c, reuse)
		changed = changed || got
		if err != nil {
			return err
		}
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
		m.updateReuse(pod, c, reuse, !sidecar)
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		got, err := m.allocateContainer(pod, c, reuse)
		changed = changed || got
		if err != nil {
			return err
		}
		m.updateReuse(pod, c, reuse, false)
	}
	return nil
}

// updateReuse adds the container's devices to those reusable (an init
// container done before the next starts) or takes them out (a container
// that keeps running).
func (m *Manager) updateReuse(pod *v1.Pod, c *v1.Container, reuse map[string]sets.Set[string], add bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for res, a := range m.pods[string(pod.UID)][c.Name] {
		if reuse[res] == nil {
			reuse[res] = sets.New[string]()
		}
		if add {
			reuse[res].Insert(deviceIDs(a.devices)...)
		} else {
			reuse[res].Delete(deviceIDs(a.devices)...)
		}
	}
}

// allocateContainer gives container c the devices it asks for that it
// has not got yet; true if it got any.
func (m *Manager) allocateContainer(pod *v1.Pod, c *v1.Container, reuse map[string]sets.Set[string]) (bool, error) {
	m.mu.Lock()
	resources := m.deviceResourcesLocked(pod, c)
	ctx := m.ctx
	m.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	got := false
	for _, res := range resources {
		q := c.Resources.Limits[v1.ResourceName(res)]
		ok, err := m.allocateResource(ctx, pod, c, res, int(q.Value()), reuse[res])
		got = got || ok
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// allocateResource allocates needed devices of res to container c, with
// upstream's errors.
func (m *Manager) allocateResource(ctx context.Context, pod *v1.Pod, c *v1.Container, res string, needed int, reusable sets.Set[string]) (bool, error) {
	uid := string(pod.UID)
	m.mu.Lock()
	if a := m.pods[uid][c.Name][res]; a != nil {
		// Held already (admitted again after a berth restart): kept,
		// whether or not its plugin is back yet.
		m.mu.Unlock()
		if n := len(deviceIDs(a.devices)); n != needed {
			return false, fmt.Errorf("pod %q container %q changed request for resource %q from %d to %d", uid, c.Name, res, n, needed)
		}
		return false, nil
	}
	rs := m.resources[res]
	if rs == nil {
		m.mu.Unlock()
		return false, fmt.Errorf("cannot allocate unregistered device %s", res)
	}
	healthy := sets.New[string]()
	for id, d := range rs.devices {
		if d.Health == pluginapi.Healthy {
			healthy.Insert(id)
		}
	}
	if healthy.Len() == 0 {
		m.mu.Unlock()
		return false, fmt.Errorf("no healthy devices present; cannot allocate unhealthy devices %s", res)
	}
	inUse := sets.New[string]()
	for _, cs := range m.pods {
		for _, rsAlloc := range cs {
			if a := rsAlloc[res]; a != nil {
				inUse.Insert(deviceIDs(a.devices)...)
			}
		}
	}
	reused := pickDevices(sets.List(reusable), nil, nil, needed)
	available := healthy.Difference(inUse)
	ep, devices := rs.ep, rs.devices
	m.mu.Unlock()

	if remaining := needed - len(reused); remaining > available.Len() {
		return false, fmt.Errorf("requested number of devices unavailable for %s. Requested: %d, Available: %d", res, remaining, available.Len())
	}
	if ep == nil {
		return false, fmt.Errorf("unknown Device Plugin %s", res)
	}
	var preferred []string
	if ep.opts.GetPreferredAllocationAvailable && len(reused) < needed {
		var err error
		preferred, err = ep.preferred(ctx, sets.List(available.Union(sets.New(reused...))), reused, needed)
		if err != nil {
			return false, err
		}
	}
	devs := pickDevices(reused, sets.List(available), preferred, needed)
	if len(devs) < needed {
		return false, fmt.Errorf("unexpectedly allocated less resources than required. Requested: %d, Got: %d", needed, len(devs))
	}
	m.logger.V(3).Info("Allocating devices", "pod", klog.KObj(pod), "container", c.Name, "resourceName", res, "devices", devs)
	resp, err := ep.allocate(ctx, devs)
	if err != nil {
		return false, err
	}
	if len(resp.ContainerResponses) == 0 {
		return false, fmt.Errorf("no containers return in allocation response %v", resp)
	}
	m.mu.Lock()
	m.setAllocation(uid, c.Name, res, &allocation{devices: byNUMA(devs, devices), resp: resp.ContainerResponses[0]})
	m.mu.Unlock()
	return true, nil
}

var _ runtime.ContainerExtrasSource = (*Manager)(nil)

// ContainerExtras is what the plugins answered for container c's devices
// (runtime.ContainerExtrasSource). A container without device resources
// costs a map lookup. Devices missing (a checkpoint lost) are allocated
// now; a plugin that asks for it hears PreStartContainer first.
func (m *Manager) ContainerExtras(ctx context.Context, pod *v1.Pod, c *v1.Container) (runtime.ContainerExtras, error) {
	m.mu.Lock()
	resources := m.deviceResourcesLocked(pod, c)
	m.mu.Unlock()
	if len(resources) == 0 {
		return runtime.ContainerExtras{}, nil
	}
	uid := string(pod.UID)
	if m.missingAllocation(uid, c.Name, resources) {
		m.allocMu.Lock()
		got, err := m.allocateContainer(pod, c, nil)
		m.allocMu.Unlock()
		if got {
			m.writeCheckpoint()
		}
		if err != nil {
			return runtime.ContainerExtras{}, err
		}
	}
	var responses []*pluginapi.ContainerAllocateResponse
	for _, res := range resources {
		m.mu.Lock()
		a := m.pods[uid][c.Name][res]
		var ep *endpoint
		if rs := m.resources[res]; rs != nil {
			ep = rs.ep
		}
		m.mu.Unlock()
		if a == nil {
			return runtime.ContainerExtras{}, fmt.Errorf("no devices found allocated in local cache for pod %s, container %s, resource %s", uid, c.Name, res)
		}
		if ep != nil && ep.opts.PreStartRequired {
			if err := ep.preStart(ctx, deviceIDs(a.devices)); err != nil {
				return runtime.ContainerExtras{}, err
			}
		}
		responses = append(responses, a.resp)
	}
	return extrasFrom(responses), nil
}

func (m *Manager) missingAllocation(uid, container string, resources []string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, res := range resources {
		if m.pods[uid][container][res] == nil {
			return true
		}
	}
	return false
}
