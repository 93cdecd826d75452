package nodestatus

import (
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// reservation is what is held back from the node's capacity: the
// kube-reserved and system-reserved resources and the hard eviction
// thresholds that upstream subtracts (memory.available from memory,
// nodefs.available from ephemeral-storage).
type reservation struct {
	kube, system   v1.ResourceList
	evictionMemory threshold
	evictionNodeFS threshold
}

// threshold is an eviction threshold: an absolute quantity or a fraction
// of capacity. The zero value reserves nothing.
type threshold struct {
	quantity *resource.Quantity
	// percentage is a fraction (0.1 for "10%") and a float32, as upstream
	// keeps it, so that berth computes the same bytes.
	percentage float32
}

// newReservation builds a reservation from the options. Values that do not
// parse are ignored: internal/config has validated them.
func newReservation(kube, system v1.ResourceList, evictionHard map[string]string) reservation {
	return reservation{
		kube:           kube,
		system:         system,
		evictionMemory: parseThreshold(evictionHard["memory.available"]),
		evictionNodeFS: parseThreshold(evictionHard["nodefs.available"]),
	}
}

// parseThreshold parses "100Mi" or "10%" as upstream's
// parseThresholdStatement does; "0%" and "100%" mean no threshold.
func parseThreshold(val string) threshold {
	if val == "" || val == "0%" || val == "100%" {
		return threshold{}
	}
	if pct, ok := strings.CutSuffix(val, "%"); ok {
		f, err := strconv.ParseFloat(pct, 32)
		if err != nil || f < 0 || f > 100 {
			return threshold{}
		}
		return threshold{percentage: float32(f) / 100}
	}
	q, err := resource.ParseQuantity(val)
	if err != nil || q.Sign() <= 0 {
		return threshold{}
	}
	return threshold{quantity: &q}
}

// of returns the threshold for a resource of the given capacity, as
// upstream's GetThresholdQuantity.
func (t threshold) of(capacity resource.Quantity) resource.Quantity {
	if t.quantity != nil {
		return t.quantity.DeepCopy()
	}
	return *resource.NewQuantity(int64(float64(capacity.Value())*float64(t.percentage)), resource.BinarySI)
}

// hugePageResource names the huge page resource of a page size, e.g.
// "hugepages-2Mi".
func hugePageResource(pageSize int64) v1.ResourceName {
	return v1.ResourceName(v1.ResourceHugePagesPrefix + resource.NewQuantity(pageSize, resource.BinarySI).String())
}

func isHugePageResource(name v1.ResourceName) bool {
	return strings.HasPrefix(string(name), v1.ResourceHugePagesPrefix)
}

// capacity computes the node's capacity from the machine, starting from
// the capacity the Node has: resources berth does not manage (an extended
// resource someone patched in) are kept, as upstream keeps them. Huge
// page sizes the machine no longer has are dropped.
func capacity(old v1.ResourceList, m machine, maxPods int) v1.ResourceList {
	c := v1.ResourceList{}
	for name, q := range old {
		if !isHugePageResource(name) {
			c[name] = q.DeepCopy()
		}
	}
	c[v1.ResourceCPU] = *resource.NewMilliQuantity(int64(m.numCPU)*1000, resource.DecimalSI)
	c[v1.ResourceMemory] = *resource.NewQuantity(m.memoryBytes, resource.BinarySI)
	c[v1.ResourcePods] = *resource.NewQuantity(int64(maxPods), resource.DecimalSI)
	if m.rootFSBytes > 0 {
		c[v1.ResourceEphemeralStorage] = *resource.NewQuantity(m.rootFSBytes, resource.BinarySI)
	}
	for size, total := range m.hugePages {
		c[hugePageResource(size)] = *resource.NewQuantity(total, resource.BinarySI)
	}
	return c
}

// allocatable is capacity minus the reservation, never below zero, and
// memory minus the huge pages (they are not available as ordinary
// memory), as upstream's MachineInfo setter computes it.
func allocatable(capacity v1.ResourceList, r reservation) v1.ResourceList {
	reserved := r.total(capacity)
	a := v1.ResourceList{}
	for name, c := range capacity {
		v := c.DeepCopy()
		if res, ok := reserved[name]; ok {
			v.Sub(res)
		}
		if v.Sign() < 0 {
			v.Set(0)
		}
		a[name] = v
	}
	for name, c := range capacity {
		if !isHugePageResource(name) {
			continue
		}
		mem := a[v1.ResourceMemory]
		mem.Sub(c)
		if mem.Sign() < 0 {
			mem.Set(0)
		}
		a[v1.ResourceMemory] = mem
	}
	return a
}

// total sums system-reserved, kube-reserved and the eviction thresholds
// for each resource in capacity, as upstream's
// GetNodeAllocatableReservation.
func (r reservation) total(capacity v1.ResourceList) v1.ResourceList {
	eviction := v1.ResourceList{}
	if r.evictionMemory != (threshold{}) {
		eviction[v1.ResourceMemory] = r.evictionMemory.of(capacity[v1.ResourceMemory])
	}
	if r.evictionNodeFS != (threshold{}) {
		eviction[v1.ResourceEphemeralStorage] = r.evictionNodeFS.of(capacity[v1.ResourceEphemeralStorage])
	}
	total := v1.ResourceList{}
	for name := range capacity {
		v := resource.NewQuantity(0, resource.DecimalSI)
		v.Add(r.system[name])
		v.Add(r.kube[name])
		v.Add(eviction[name])
		if !v.IsZero() {
			total[name] = *v
		}
	}
	return total
}

// MachineCapacity is the capacity the Node reports for this host (cpu,
// memory, huge pages, ephemeral-storage; pods as maxPods), read now. The
// node's cgroups are sized from it (internal/cm), so that they agree with
// the Node. Facts that cannot be read are left out, with the errors.
func MachineCapacity(rootDir string, maxPods int) (v1.ResourceList, []error) {
	m, errs := readMachine(linuxFiles(), rootDir)
	c := capacity(nil, m, maxPods)
	if m.memoryBytes == 0 {
		delete(c, v1.ResourceMemory)
	}
	return c, errs
}

// withDevices sets the device plugins' resources in capacity, as
// upstream's MachineInfo setter: each resource's device count, and 0 for
// a resource whose plugin is gone (kept on the Node, so that the scheduler
// knows the resource is the node's and not a cluster-level one).
func withDevices(c v1.ResourceList, d deviceResources) v1.ResourceList {
	for name, q := range d.capacity {
		c[name] = q.DeepCopy()
	}
	for _, name := range d.removed {
		c[v1.ResourceName(name)] = *resource.NewQuantity(0, resource.DecimalSI)
	}
	return c
}
