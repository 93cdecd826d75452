package cm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// fakeV1 lays out a cgroup v1 mount in a directory: one hierarchy per
// controller. Files appear when written (a real cgroupfs has them).
func fakeV1(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, c := range []string{"cpu", "memory", "pids", "cpuset"} {
		if err := os.MkdirAll(filepath.Join(root, c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

type podList struct {
	mu   sync.Mutex
	pods []*v1.Pod
}

func (l *podList) get() []*v1.Pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*v1.Pod(nil), l.pods...)
}

func TestManager(t *testing.T) {
	root := fakeV1(t)
	if err := os.MkdirAll(filepath.Join(root, "memory", "kube-reserved"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"cpu", "pids"} {
		if err := os.MkdirAll(filepath.Join(root, c, "kube-reserved"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	capacity := rl("2", "8Gi")
	capacity[ResourcePIDs] = resource.MustParse("32768")
	active := &podList{}
	rec := record.NewFakeRecorder(10)
	m, err := New(Options{
		Layout:                 NewLayout("/", true, "cgroupfs"),
		CgroupMount:            root,
		HugePagesDir:           filepath.Join(root, "none"),
		Capacity:               capacity,
		SystemReserved:         rl("", "1Gi"),
		KubeReserved:           rl("500m", "512Mi"),
		EnforceNodeAllocatable: []string{EnforcePods, EnforceKubeReserved},
		KubeReservedCgroup:     "/kube-reserved",
		Pod:                    PodSettings{EnforceCPULimits: true, CPUPeriod: 100000, PidsLimit: 42},
		ActivePods:             active.get,
		Recorder:               rec,
		NodeName:               "n",
	})
	if err != nil {
		t.Fatal(err)
	}
	m.fs.openFlags |= os.O_CREATE
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if err := m.Start(ctx, func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }); err != nil {
		t.Fatal(err)
	}

	for path, want := range map[string]string{
		// Allocatable: 8Gi - 1Gi - 512Mi; 1.5 CPUs.
		"memory/kubepods/memory.limit_in_bytes": "6979321856",
		"cpu/kubepods/cpu.shares":               "1536",
		"pids/kubepods/pids.max":                "32768",
		"cpu/kubepods/besteffort/cpu.shares":    "2",
		"cpu/kubepods/burstable/cpu.shares":     "2",
		// kubeReserved on its own cgroup.
		"memory/kube-reserved/memory.limit_in_bytes": "536870912",
		"cpu/kube-reserved/cpu.shares":               "512",
	} {
		if got := read(t, filepath.Join(root, path)); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}
	events := strings.Join([]string{<-rec.Events, <-rec.Events}, "\n")
	for _, want := range []string{
		"Normal SuccessfulNodeAllocatableEnforcement Updated Node Allocatable limit across pods",
		"Normal SuccessfulNodeAllocatableEnforcement Updated limits on kube reserved cgroup /kube-reserved",
	} {
		if !strings.Contains(events, want) {
			t.Errorf("events %q lack %q", events, want)
		}
	}

	// A Burstable pod: the QoS cgroup counts it before its cgroup exists.
	pod := podOf(v1.ResourceRequirements{Requests: rl("250m", "64Mi"), Limits: rl("500m", "128Mi")})
	active.pods = []*v1.Pod{pod}
	if err := m.EnsurePod(ctx, pod); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"cpu/kubepods/burstable/cpu.shares":                    "256",
		"cpu/kubepods/burstable/podu/cpu.shares":               "256",
		"cpu/kubepods/burstable/podu/cpu.cfs_period_us":        "100000",
		"cpu/kubepods/burstable/podu/cpu.cfs_quota_us":         "50000",
		"memory/kubepods/burstable/podu/memory.limit_in_bytes": "134217728",
		"pids/kubepods/burstable/podu/pids.max":                "42",
	} {
		if got := read(t, filepath.Join(root, path)); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}
	// An existing cgroup is left as it is.
	if err := os.WriteFile(filepath.Join(root, "pids/kubepods/burstable/podu/pids.max"), []byte("7"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.EnsurePod(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(root, "pids/kubepods/burstable/podu/pids.max")); got != "7" {
		t.Errorf("EnsurePod rewrote an existing cgroup: pids.max %s", got)
	}

	// Removal takes the pod's directories from every hierarchy, also one
	// only the runtime made (cpuset); a cgroup in use stays.
	if err := os.MkdirAll(filepath.Join(root, "cpuset/kubepods/burstable/podu"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"cpu", "memory", "pids"} {
		_ = os.RemoveAll(filepath.Join(root, c, "kubepods/burstable/podu"))
		_ = os.MkdirAll(filepath.Join(root, c, "kubepods/burstable/podu"), 0o755)
	}
	if err := m.RemovePod(pod.UID); err != nil {
		t.Fatalf("RemovePod: %v", err)
	}
	for _, c := range []string{"cpu", "memory", "pids", "cpuset"} {
		if _, err := os.Stat(filepath.Join(root, c, "kubepods/burstable/podu")); !os.IsNotExist(err) {
			t.Errorf("%s pod cgroup left: %v", c, err)
		}
	}
}

func TestManagerWithoutQOSCgroups(t *testing.T) {
	root := fakeV1(t)
	m, err := New(Options{Layout: NewLayout("/", false, "cgroupfs"), CgroupMount: root, HugePagesDir: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background(), func(func()) { t.Error("no loop without QoS cgroups") }); err != nil {
		t.Fatal(err)
	}
	if err := m.EnsurePod(context.Background(), podOf(v1.ResourceRequirements{})); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "cpu"))
	if len(entries) != 0 {
		t.Errorf("cgroups made without cgroupsPerQOS: %v", entries)
	}
}

func TestReservedCgroupMissing(t *testing.T) {
	root := fakeV1(t)
	m, err := New(Options{
		Layout: NewLayout("/", true, "cgroupfs"), CgroupMount: root, HugePagesDir: root,
		Capacity: rl("1", "1Gi"), SystemReserved: rl("", "100Mi"),
		EnforceNodeAllocatable: []string{EnforcePods, EnforceSystemReserved}, SystemReservedCgroup: "/system.slice",
	})
	if err != nil {
		t.Fatal(err)
	}
	m.fs.openFlags |= os.O_CREATE
	err = m.Start(context.Background(), func(func()) {})
	if err == nil || !strings.Contains(err.Error(), `Failed to enforce System Reserved Cgroup Limits on "/system.slice"`) {
		t.Errorf("Start with a missing system reserved cgroup: %v", err)
	}
}

// TestRestartKeepsQOSShares: a restarted manager does not reset the
// Burstable shares before it knows the pods.
func TestRestartKeepsQOSShares(t *testing.T) {
	root := fakeV1(t)
	opts := Options{Layout: NewLayout("/", true, "cgroupfs"), CgroupMount: root, HugePagesDir: root, Capacity: rl("1", "1Gi")}
	start := func() {
		m, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		m.fs.openFlags |= os.O_CREATE
		if err := m.Start(context.Background(), func(func()) {}); err != nil {
			t.Fatal(err)
		}
	}
	shares := filepath.Join(root, "cpu/kubepods/burstable/cpu.shares")
	start()
	if got := read(t, shares); got != "2" {
		t.Fatalf("first start: burstable shares %s, want 2", got)
	}
	if err := os.WriteFile(shares, []byte("512"), 0o644); err != nil {
		t.Fatal(err)
	}
	start()
	if got := read(t, shares); got != "512" {
		t.Errorf("restart reset the burstable shares to %s", got)
	}
}

// TestCgroupV2Create: on cgroup v2 each level delegates its controllers to
// its children before the next is made, and the values go to v2's files.
func TestCgroupV2Create(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("cpu memory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &cgroupFS{root: root, v2: true, enabled: map[string]bool{}, openFlags: os.O_WRONLY | os.O_TRUNC | os.O_CREATE}
	// A real kernel fills a new cgroup's controllers from its parent's
	// subtree_control; here the test does, for kubepods.
	if err := os.Mkdir(filepath.Join(root, "kubepods"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"cgroup.controllers": "cpuset cpu io memory pids", "cgroup.subtree_control": ""} {
		if err := os.WriteFile(filepath.Join(root, "kubepods", name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rc := ResourceConfig{CPUShares: ptr.To[uint64](1024), Memory: ptr.To[int64](1 << 30), PidsLimit: ptr.To[int64](100)}
	if err := f.create("/kubepods/burstable", rc); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"cgroup.subtree_control":          "+cpuset +io +pids", // cpu and memory were on
		"kubepods/cgroup.subtree_control": "+cpuset +cpu +io +memory +pids",
		"kubepods/burstable/cpu.weight":   "39",
		"kubepods/burstable/memory.max":   "1073741824",
		"kubepods/burstable/pids.max":     "100",
	} {
		if got := read(t, filepath.Join(root, path)); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}
