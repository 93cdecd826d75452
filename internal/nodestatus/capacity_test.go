package nodestatus

import (
	"maps"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const (
	gi = int64(1) << 30
	mi = int64(1) << 20
)

// testMachine is a 2-CPU, 4 GiB, 100 GiB-disk host with both huge page
// sizes and none allocated.
func testMachine() machine {
	return machine{
		numCPU:      2,
		memoryBytes: 4 * gi,
		rootFSBytes: 100 * gi,
		hugePages:   map[int64]int64{2 * mi: 0, gi: 0},
	}
}

// resources builds a resource list from strings, for readable tables.
func resources(m map[string]string) v1.ResourceList {
	rl := v1.ResourceList{}
	for k, v := range m {
		rl[v1.ResourceName(k)] = resource.MustParse(v)
	}
	return rl
}

func checkResources(t *testing.T, what string, got v1.ResourceList, want map[string]string) {
	t.Helper()
	names := func(rl v1.ResourceList) []string {
		var out []string
		for k := range rl {
			out = append(out, string(k))
		}
		slices.Sort(out)
		return out
	}
	if g, w := names(got), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Errorf("%s has %v, want %v", what, g, w)
	}
	for k, v := range want {
		q, ok := got[v1.ResourceName(k)]
		if ok && q.Cmp(resource.MustParse(v)) != 0 {
			t.Errorf("%s[%s] = %s, want %s", what, k, q.String(), v)
		}
	}
}

func TestCapacityAndAllocatable(t *testing.T) {
	defaultEviction := map[string]string{"memory.available": "100Mi", "nodefs.available": "10%", "nodefs.inodesFree": "5%", "imagefs.available": "15%"}
	tests := []struct {
		name            string
		machine         func(m *machine)
		old             map[string]string // the Node's capacity before
		kube, system    map[string]string
		evictionHard    map[string]string
		maxPods         int
		wantCapacity    map[string]string
		wantAllocatable map[string]string
	}{
		{
			name:    "no reservation",
			maxPods: 110,
			wantCapacity: map[string]string{
				"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "100Gi",
				"hugepages-2Mi": "0", "hugepages-1Gi": "0",
			},
			wantAllocatable: map[string]string{
				"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "100Gi",
				"hugepages-2Mi": "0", "hugepages-1Gi": "0",
			},
		},
		{
			// nodefs 10% is a float32 fraction as upstream: 10737418400
			// bytes rather than 10737418240.
			name:         "upstream default eviction thresholds",
			evictionHard: defaultEviction,
			maxPods:      110,
			wantCapacity: map[string]string{
				"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "100Gi",
				"hugepages-2Mi": "0", "hugepages-1Gi": "0",
			},
			wantAllocatable: map[string]string{
				"cpu": "2", "memory": "3996Mi", "pods": "110", "ephemeral-storage": "96636764000",
				"hugepages-2Mi": "0", "hugepages-1Gi": "0",
			},
		},
		{
			name:         "kube and system reserved add up with the thresholds",
			kube:         map[string]string{"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "1Gi", "pid": "100"},
			system:       map[string]string{"cpu": "200m", "memory": "512Mi"},
			evictionHard: map[string]string{"memory.available": "5%", "nodefs.available": "2Gi"},
			maxPods:      20,
			wantCapacity: map[string]string{
				"cpu": "2", "memory": "4Gi", "pods": "20", "ephemeral-storage": "100Gi",
				"hugepages-2Mi": "0", "hugepages-1Gi": "0",
			},
			// memory: 4Gi - 256Mi - 512Mi - 214748368 (5% as float32).
			wantAllocatable: map[string]string{
				"cpu": "1700m", "memory": "3274912560", "pods": "20", "ephemeral-storage": "97Gi",
				"hugepages-2Mi": "0", "hugepages-1Gi": "0",
			},
		},
		{
			name:         "reservation above capacity is zero, 0% and 100% are no threshold",
			kube:         map[string]string{"cpu": "3", "memory": "5Gi"},
			evictionHard: map[string]string{"memory.available": "0%", "nodefs.available": "100%"},
			maxPods:      110,
			wantCapacity: map[string]string{
				"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "100Gi",
				"hugepages-2Mi": "0", "hugepages-1Gi": "0",
			},
			wantAllocatable: map[string]string{
				"cpu": "0", "memory": "0", "pods": "110", "ephemeral-storage": "100Gi",
				"hugepages-2Mi": "0", "hugepages-1Gi": "0",
			},
		},
		{
			name:         "huge pages are not ordinary memory",
			machine:      func(m *machine) { m.hugePages = map[int64]int64{2 * mi: 512 * 2 * mi} },
			evictionHard: map[string]string{"memory.available": "100Mi"},
			maxPods:      110,
			wantCapacity: map[string]string{
				"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "100Gi", "hugepages-2Mi": "1Gi",
			},
			wantAllocatable: map[string]string{
				"cpu": "2", "memory": "2972Mi", "pods": "110", "ephemeral-storage": "100Gi", "hugepages-2Mi": "1Gi",
			},
		},
		{
			name:    "foreign resources are kept, stale huge page sizes dropped",
			old:     map[string]string{"example.com/dongle": "4", "hugepages-64Ki": "0", "cpu": "64"},
			machine: func(m *machine) { m.hugePages = nil },
			maxPods: 110,
			wantCapacity: map[string]string{
				"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "100Gi", "example.com/dongle": "4",
			},
			wantAllocatable: map[string]string{
				"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "100Gi", "example.com/dongle": "4",
			},
		},
		{
			name:            "unknown disk size: no ephemeral-storage",
			machine:         func(m *machine) { m.rootFSBytes = 0; m.hugePages = nil },
			evictionHard:    defaultEviction,
			maxPods:         110,
			wantCapacity:    map[string]string{"cpu": "2", "memory": "4Gi", "pods": "110"},
			wantAllocatable: map[string]string{"cpu": "2", "memory": "3996Mi", "pods": "110"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMachine()
			if tt.machine != nil {
				tt.machine(&m)
			}
			var old v1.ResourceList
			if tt.old != nil {
				old = resources(tt.old)
			}
			var kube, system v1.ResourceList
			if tt.kube != nil {
				kube = resources(tt.kube)
			}
			if tt.system != nil {
				system = resources(tt.system)
			}
			c := capacity(old, m, tt.maxPods)
			checkResources(t, "capacity", c, tt.wantCapacity)
			a := allocatable(c, newReservation(kube, system, tt.evictionHard))
			checkResources(t, "allocatable", a, tt.wantAllocatable)
		})
	}
}

func TestParseThreshold(t *testing.T) {
	q := resource.MustParse("100Mi")
	tests := []struct {
		in   string
		want threshold
	}{
		{"100Mi", threshold{quantity: &q}},
		{"10%", threshold{percentage: float32(10) / 100}},
		{"7.5%", threshold{percentage: float32(7.5) / 100}},
		{"", threshold{}},
		{"0%", threshold{}},
		{"100%", threshold{}},
		{"-1Gi", threshold{}},
		{"0", threshold{}},
		{"lots", threshold{}},
		{"120%", threshold{}},
	}
	for _, tt := range tests {
		got := parseThreshold(tt.in)
		same := got.percentage == tt.want.percentage && (got.quantity == nil) == (tt.want.quantity == nil) &&
			(got.quantity == nil || got.quantity.Cmp(*tt.want.quantity) == 0)
		if !same {
			t.Errorf("parseThreshold(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
