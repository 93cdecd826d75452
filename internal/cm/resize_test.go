package cm

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// ResizePodCgroup raises only the values that grow when grow, lowers only
// those that shrink otherwise.
func TestResizePodCgroup(t *testing.T) {
	root := fakeV1(t)
	m, err := New(Options{
		Layout:       NewLayout("/", true, "cgroupfs"),
		CgroupMount:  root,
		HugePagesDir: filepath.Join(root, "none"),
		Capacity:     rl("2", "8Gi"),
		Pod:          PodSettings{EnforceCPULimits: true, CPUPeriod: 100000},
		ActivePods:   func() []*v1.Pod { return nil },
		NodeName:     "n",
	})
	if err != nil {
		t.Fatal(err)
	}
	m.fs.openFlags |= os.O_CREATE // the fake tree has no files until written
	ctx := context.Background()
	old := podOf(v1.ResourceRequirements{Requests: rl("250m", "64Mi"), Limits: rl("500m", "128Mi")})
	if err := m.EnsurePod(ctx, old); err != nil {
		t.Fatal(err)
	}
	// cpu limit up, cpu request down, memory limit down.
	resized := podOf(v1.ResourceRequirements{Requests: rl("100m", "64Mi"), Limits: rl("800m", "96Mi")})
	files := func() map[string]string {
		out := map[string]string{}
		for _, f := range []string{"cpu/kubepods/burstable/podu/cpu.shares", "cpu/kubepods/burstable/podu/cpu.cfs_quota_us", "memory/kubepods/burstable/podu/memory.limit_in_bytes"} {
			out[f] = read(t, filepath.Join(root, f))
		}
		return out
	}
	check := func(step string, want map[string]string) {
		t.Helper()
		got := files()
		for f, w := range want {
			if got[f] != w {
				t.Errorf("%s: %s = %s, want %s", step, f, got[f], w)
			}
		}
	}
	for _, r := range []v1.ResourceName{v1.ResourceMemory, v1.ResourceCPU} {
		if err := m.ResizePodCgroup(ctx, resized, r, true); err != nil {
			t.Fatal(err)
		}
	}
	check("grow", map[string]string{
		"cpu/kubepods/burstable/podu/cpu.shares":               "256",
		"cpu/kubepods/burstable/podu/cpu.cfs_quota_us":         "80000",
		"memory/kubepods/burstable/podu/memory.limit_in_bytes": "134217728",
	})
	for _, r := range []v1.ResourceName{v1.ResourceMemory, v1.ResourceCPU} {
		if err := m.ResizePodCgroup(ctx, resized, r, false); err != nil {
			t.Fatal(err)
		}
	}
	check("shrink", map[string]string{
		"cpu/kubepods/burstable/podu/cpu.shares":               "102",
		"cpu/kubepods/burstable/podu/cpu.cfs_quota_us":         "80000",
		"memory/kubepods/burstable/podu/memory.limit_in_bytes": "100663296",
	})
}
