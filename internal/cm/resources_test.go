package cm

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// rl is a resource list of cpu and memory; "" leaves one out.
func rl(cpu, mem string) v1.ResourceList {
	l := v1.ResourceList{}
	if cpu != "" {
		l[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return l
}

func podOf(rs ...v1.ResourceRequirements) *v1.Pod {
	p := &v1.Pod{}
	p.UID = "u"
	for i, r := range rs {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: string(rune('a' + i)), Resources: r})
	}
	return p
}

func TestForPod(t *testing.T) {
	const mi = int64(1) << 20
	def := PodSettings{EnforceCPULimits: true, CPUPeriod: 100000, PageSize: 4096}
	guaranteed := v1.ResourceRequirements{Requests: rl("500m", "128Mi"), Limits: rl("500m", "128Mi")}
	tests := []struct {
		name string
		pod  *v1.Pod
		s    PodSettings
		want ResourceConfig
	}{
		{
			name: "best effort: minimum shares only",
			pod:  podOf(v1.ResourceRequirements{}), s: def,
			want: ResourceConfig{CPUShares: ptr.To[uint64](2)},
		},
		{
			name: "guaranteed: shares, quota, period, memory",
			pod:  podOf(guaranteed, guaranteed), s: def,
			want: ResourceConfig{CPUShares: ptr.To[uint64](1024), CPUQuota: ptr.To[int64](100000), CPUPeriod: ptr.To[uint64](100000), Memory: ptr.To(256 * mi)},
		},
		{
			name: "guaranteed without cpuCFSQuota: quota -1",
			pod:  podOf(guaranteed), s: PodSettings{CPUPeriod: 100000},
			want: ResourceConfig{CPUShares: ptr.To[uint64](512), CPUQuota: ptr.To[int64](-1), CPUPeriod: ptr.To[uint64](100000), Memory: ptr.To(128 * mi)},
		},
		{
			name: "guaranteed with a 50ms period",
			pod:  podOf(guaranteed), s: PodSettings{EnforceCPULimits: true, CPUPeriod: 50000},
			want: ResourceConfig{CPUShares: ptr.To[uint64](512), CPUQuota: ptr.To[int64](25000), CPUPeriod: ptr.To[uint64](50000), Memory: ptr.To(128 * mi)},
		},
		{
			name: "burstable, every container limits memory but not cpu",
			pod: podOf(
				v1.ResourceRequirements{Requests: rl("100m", "64Mi"), Limits: rl("", "100Mi")},
				v1.ResourceRequirements{Requests: rl("", "10Mi"), Limits: rl("", "20Mi")},
			), s: def,
			want: ResourceConfig{CPUShares: ptr.To[uint64](102), Memory: ptr.To(120 * mi)},
		},
		{
			name: "burstable, one container unlimited: no memory limit, quota from cpu limits",
			pod: podOf(
				v1.ResourceRequirements{Requests: rl("100m", "64Mi"), Limits: rl("200m", "100Mi")},
				v1.ResourceRequirements{Requests: rl("100m", ""), Limits: rl("1", "")},
			), s: def,
			want: ResourceConfig{CPUShares: ptr.To[uint64](204), CPUQuota: ptr.To[int64](120000), CPUPeriod: ptr.To[uint64](100000)},
		},
		{
			name: "podPidsLimit",
			pod:  podOf(v1.ResourceRequirements{}), s: PodSettings{CPUPeriod: 100000, PidsLimit: 64},
			want: ResourceConfig{CPUShares: ptr.To[uint64](2), PidsLimit: ptr.To[int64](64)},
		},
		{
			name: "huge pages requested",
			pod: podOf(v1.ResourceRequirements{
				Requests: v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi"), v1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi"), v1.ResourceMemory: resource.MustParse("64Mi")},
			}), s: def,
			want: ResourceConfig{CPUShares: ptr.To[uint64](2), Memory: ptr.To(64 * mi), HugePageLimit: map[int64]int64{2 * mi: 4 * mi}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ForPod(tt.pod, tt.s)
			if got.HugePageLimit != nil && len(got.HugePageLimit) == 0 {
				got.HugePageLimit = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ForPod =\n %s\nwant\n %s", show(got), show(tt.want))
			}
		})
	}
}

func TestForPodMemoryHigh(t *testing.T) {
	pod := podOf(v1.ResourceRequirements{Requests: rl("100m", "100Mi")})
	pod.Spec.Resources = &v1.ResourceRequirements{Requests: rl("1", "100Mi"), Limits: rl("2", "200Mi")}
	s := PodSettings{EnforceCPULimits: true, CPUPeriod: 100000, MemoryHigh: true, MemoryThrottlingFactor: 0.9, PageSize: 4096}
	got := ForPod(pod, s)
	// 100Mi + 0.9 * 100Mi, rounded down to a page.
	if want := "199229440"; got.Unified["memory.high"] != want {
		t.Errorf("memory.high = %q, want %s", got.Unified["memory.high"], want)
	}
	if *got.Memory != 200<<20 || *got.CPUShares != 1024 || *got.CPUQuota != 200000 {
		t.Errorf("pod-level resources not used: %s", show(got))
	}
	s.MemoryHigh = false
	if got := ForPod(pod, s); got.Unified != nil {
		t.Errorf("memory.high without memory QoS: %v", got.Unified)
	}
}

func TestForNodeAndQOS(t *testing.T) {
	capacity := rl("2", "8Gi")
	capacity[ResourcePIDs] = resource.MustParse("32768")
	capacity["hugepages-2Mi"] = resource.MustParse("0")
	capacity[v1.ResourceEphemeralStorage] = resource.MustParse("100Gi")
	alloc := NodeAllocatable(capacity, rl("500m", "1Gi"), v1.ResourceList{v1.ResourceMemory: resource.MustParse("512Mi"), ResourcePIDs: resource.MustParse("1000")})
	got := ForNode(alloc, false)
	want := ResourceConfig{
		CPUShares: ptr.To[uint64](1536), Memory: ptr.To(int64(8<<30 - 1<<30 - 512<<20)), PidsLimit: ptr.To[int64](31768),
		HugePageLimit: map[int64]int64{2 << 20: 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ForNode(allocatable) =\n %s\nwant\n %s", show(got), show(want))
	}
	if got := ForNode(alloc, true); got.Memory != nil || got.PidsLimit != nil || *got.CPUShares != 1536 {
		t.Errorf("compressible only = %s", show(got))
	}
	// Reserving more than there is leaves zero, not a negative limit.
	if m := NodeAllocatable(rl("1", "1Gi"), rl("", "2Gi"), nil)[v1.ResourceMemory]; m.Value() != 0 {
		t.Errorf("over-reserved memory = %s", m.String())
	}

	burstable := podOf(v1.ResourceRequirements{Requests: rl("250m", "")})
	pods := []*v1.Pod{
		burstable, burstable,
		podOf(v1.ResourceRequirements{Requests: rl("1", "1Gi"), Limits: rl("1", "1Gi")}), // Guaranteed: not counted
		podOf(v1.ResourceRequirements{}),
	}
	q := ForQOS(pods, []int64{2 << 20})
	if *q.Burstable.CPUShares != 512 || *q.BestEffort.CPUShares != 2 {
		t.Errorf("QoS shares = burstable %d, besteffort %d; want 512 and 2", *q.Burstable.CPUShares, *q.BestEffort.CPUShares)
	}
	if q.Burstable.HugePageLimit[2<<20] != 1<<62 {
		t.Errorf("QoS huge pages not unbounded: %v", q.Burstable.HugePageLimit)
	}
	if q := ForQOS(nil, nil); *q.Burstable.CPUShares != 2 {
		t.Errorf("no burstable pods: shares %d, want 2", *q.Burstable.CPUShares)
	}
}

func TestConversions(t *testing.T) {
	for in, want := range map[int64]uint64{0: 2, 1: 2, 2: 2, 10: 10, 100: 102, 1000: 1024, 300000: 262144} {
		if got := MilliCPUToShares(in); got != want {
			t.Errorf("MilliCPUToShares(%d) = %d, want %d", in, got, want)
		}
	}
	for in, want := range map[int64]int64{0: 0, 1: 1000, 10: 1000, 250: 25000, 2000: 200000} {
		if got := MilliCPUToQuota(in, QuotaPeriod); got != want {
			t.Errorf("MilliCPUToQuota(%d) = %d, want %d", in, got, want)
		}
	}
	// runc's and upstream's conversion: 2 → 1, 1024 → 39, 262144 → 10000.
	for in, want := range map[uint64]uint64{2: 1, 102: 4, 1024: 39, 262144: 10000, 300000: 10000} {
		if got := CPUWeight(in); got != want {
			t.Errorf("CPUWeight(%d) = %d, want %d", in, got, want)
		}
	}
}
