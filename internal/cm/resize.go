package cm

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// SharesToMilliCPU and QuotaToMilliCPU are upstream's inverses of the
// conversions above, for what the runtime reports of a container.
func SharesToMilliCPU(shares int64) int64 {
	if shares < MinShares {
		return 0
	}
	return int64(math.Ceil(float64(shares*MilliCPUToCPU) / float64(SharesPerCPU)))
}

func QuotaToMilliCPU(quota, period int64) int64 {
	if quota == -1 {
		return 0
	}
	return quota * MilliCPUToCPU / period
}

// podValues are a pod cgroup's cpu and memory values; "no limit" is
// math.MaxInt64, and shares are cpu.weight on cgroup v2.
type podValues struct {
	shares, quota, memory int64
}

// ResizePodCgroup brings the pod cgroup's cpu or memory values to those
// of pod (its allocated resources, ForPod): with grow only the values
// that increase, otherwise only those that decrease, so that an in-place
// resize raises the pod's values before its containers' and lowers them
// after (upstream's doPodResizeAction). A value ForPod leaves unset (no
// limit declared) is not touched: upstream does not remove limits either.
// Without cgroupsPerQOS there is no pod cgroup of berth's to change.
func (m *Manager) ResizePodCgroup(ctx context.Context, pod *v1.Pod, resource v1.ResourceName, grow bool) error {
	if !m.opts.Layout.PerQOS {
		return nil
	}
	name := m.Parent(pod)
	cur, err := m.podValues(name)
	if err != nil {
		return fmt.Errorf("read pod cgroup %s: %w", name, err)
	}
	want := ForPod(pod, m.opts.Pod)
	moves := func(desired, current int64) bool {
		if grow {
			return desired > current
		}
		return desired < current
	}
	var rc ResourceConfig
	switch resource {
	case v1.ResourceMemory:
		if want.Memory != nil && moves(unlimited(*want.Memory), cur.memory) {
			rc.Memory = want.Memory
		}
	case v1.ResourceCPU:
		if want.CPUQuota != nil && moves(unlimited(*want.CPUQuota), cur.quota) {
			rc.CPUQuota, rc.CPUPeriod = want.CPUQuota, want.CPUPeriod
		}
		if want.CPUShares != nil {
			shares := int64(*want.CPUShares)
			if m.fs.v2 {
				shares = int64(CPUWeight(*want.CPUShares))
			}
			if moves(shares, cur.shares) {
				rc.CPUShares = want.CPUShares
			}
		}
	}
	if rc.Memory == nil && rc.CPUQuota == nil && rc.CPUShares == nil {
		return nil
	}
	return m.fs.update(name, rc)
}

// unlimited maps "no limit" (-1, or 0 for a quota) to math.MaxInt64.
func unlimited(v int64) int64 {
	if v <= 0 {
		return math.MaxInt64
	}
	return v
}

func (m *Manager) podValues(name string) (podValues, error) {
	var v podValues
	var err error
	if m.fs.v2 {
		dir := filepath.Join(m.fs.root, name)
		if v.shares, err = readInt(filepath.Join(dir, "cpu.weight")); err != nil {
			return v, err
		}
		b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
		if err != nil {
			return v, err
		}
		quota := strings.Fields(string(b))
		if len(quota) == 0 {
			return v, fmt.Errorf("empty cpu.max")
		}
		v.quota = math.MaxInt64
		if quota[0] != "max" {
			if v.quota, err = strconv.ParseInt(quota[0], 10, 64); err != nil {
				return v, err
			}
		}
		if v.memory, err = readInt(filepath.Join(dir, "memory.max")); err != nil {
			return v, err
		}
		v.memory = unlimited(v.memory)
		return v, nil
	}
	cpu, ok := m.fs.dirOf(name, "cpu")
	if !ok {
		return v, fmt.Errorf("no cpu controller")
	}
	if v.shares, err = readInt(filepath.Join(cpu, "cpu.shares")); err != nil {
		return v, err
	}
	if v.quota, err = readInt(filepath.Join(cpu, "cpu.cfs_quota_us")); err != nil {
		return v, err
	}
	v.quota = unlimited(v.quota)
	mem, ok := m.fs.dirOf(name, "memory")
	if !ok {
		return v, fmt.Errorf("no memory controller")
	}
	if v.memory, err = readInt(filepath.Join(mem, "memory.limit_in_bytes")); err != nil {
		return v, err
	}
	// v1 says "no limit" with a page-rounded MaxInt64.
	if v.memory >= math.MaxInt64/2 {
		v.memory = math.MaxInt64
	}
	return v, nil
}
