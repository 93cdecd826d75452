package stats

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
)

// benchNode says what a benchmark node looks like.
type benchNode struct {
	pods int
	v2   bool
	// podFiles gives every pod what a real node has besides cgroups: a log
	// directory with its container's log, etc-hosts and a projected
	// (service account token) volume.
	podFiles bool
}

// benchCollector is a node with n pods of one container each, sampled
// twice (so CPU rates exist).
func benchCollector(b testing.TB, n benchNode) *Collector {
	b.Helper()
	e := newTestEnv(b)
	e.rt.pods = map[types.UID]*container.PodStatus{}
	e.rt.stats = nil
	writeCg := writeV1
	if n.v2 {
		writeCg = writeV2
	}
	write := func(cpu uint64) {
		writeCg(b, e.cgRoot, "/", cgVals{cpu: cpu, usage: 3e9})
		writeCg(b, e.cgRoot, "/kubepods", cgVals{cpu: cpu, usage: 1e9})
		for i := 0; i < n.pods; i++ {
			uid := fmt.Sprintf("uid-%03d", i)
			pod := "/kubepods/besteffort/pod" + uid
			writeCg(b, e.cgRoot, pod, cgVals{cpu: cpu, usage: 2e6})
			writeCg(b, e.cgRoot, pod+"/sb-"+uid, cgVals{cpu: 1, usage: 1e5, procs: []int{pausePID}})
			writeCg(b, e.cgRoot, pod+"/c-"+uid, cgVals{cpu: cpu, usage: 2e6, procs: []int{1}})
		}
	}
	for i := 0; i < n.pods; i++ {
		uid := fmt.Sprintf("uid-%03d", i)
		e.rt.pods[types.UID(uid)] = &container.PodStatus{
			UID: types.UID(uid), Name: "pod-" + uid, Namespace: "bench",
			Sandboxes:  []*container.SandboxStatus{{ID: "sb-" + uid, State: container.SandboxReady, CreatedAt: t0}},
			Containers: []*container.ContainerStatus{{ID: "c-" + uid, Name: "app", State: container.StateRunning, CreatedAt: t0, Image: "busybox"}},
		}
		e.rt.stats = append(e.rt.stats, &runtimeapi.ContainerStats{
			Attributes:    &runtimeapi.ContainerAttributes{Id: "c-" + uid},
			WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: t0.UnixNano(), UsedBytes: &runtimeapi.UInt64Value{Value: 4096}},
		})
		if n.podFiles {
			vol := "pods/" + uid + "/volumes/kubernetes.io~projected/kube-api-access/..data/"
			writeFiles(b, e.rootDir, map[string]string{
				"pods/" + uid + "/etc-hosts": "127.0.0.1 localhost\n",
				vol + "token":                "t",
				vol + "ca.crt":               "c",
				vol + "namespace":            "bench",
			})
			writeFiles(b, e.logsDir, map[string]string{"bench_pod-" + uid + "_" + uid + "/app/0.log": "hello\n"})
		}
	}
	write(1e9)
	var cg cgroupFS = &cgroupV2{root: e.cgRoot}
	if !n.v2 {
		v1, err := newCgroupV1(e.cgRoot)
		if err != nil {
			b.Fatal(err)
		}
		cg = v1
	}
	c := newCollector(e.options(), cg)
	c.housekeep(testCtx(b))
	e.clock.Step(10 * time.Second)
	write(2e9)
	c.housekeep(testCtx(b))
	if s, err := c.Summary(context.Background(), false); err != nil || len(s.Pods) != n.pods || s.Pods[0].CPU.UsageNanoCores == nil {
		b.Fatalf("summary of the bench node: %v", err)
	}
	return c
}

// BenchmarkSummary is the cost of one /stats/summary request on a node
// with 100 pods: built from memory, no IO.
func BenchmarkSummary(b *testing.B) {
	c := benchCollector(b, benchNode{pods: 100})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Summary(context.Background(), false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMetricsCadvisor is the cost of one /metrics/cadvisor gather on
// a node with 100 pods.
func BenchmarkMetricsCadvisor(b *testing.B) {
	c := benchCollector(b, benchNode{pods: 100})
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.CadvisorCollector())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHousekeeping is one sampling round over 100 pods (the IO that
// requests never do): cgroup v1 with separate controller mounts, cgroup
// v2, and v1 with each pod's logs, etc-hosts and token volume. The
// fixtures live on an ordinary file system, so they measure berth's own
// work per file, not the kernel's; BenchmarkHousekeepingCgroupfs measures
// the real thing.
func BenchmarkHousekeeping(b *testing.B) {
	for _, tc := range []struct {
		name string
		node benchNode
	}{
		{"v1", benchNode{pods: 100}},
		{"v2", benchNode{pods: 100, v2: true}},
		{"v1-podfiles", benchNode{pods: 100, podFiles: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := benchCollector(b, tc.node)
			ctx := testCtx(b)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c.housekeep(ctx)
			}
		})
	}
}

// BenchmarkHousekeepingCgroupfs is one round over 100 pods whose cgroups
// (pod, sandbox, container; no processes) are real: created under a
// private parent in every hierarchy mounted at /sys/fs/cgroup and removed
// afterwards. It needs root and BERTH_STATS_CGROUPFS_BENCH=1; on a hybrid
// host it measures v1 and the (controller-less) unified hierarchy.
func BenchmarkHousekeepingCgroupfs(b *testing.B) {
	if os.Getenv("BERTH_STATS_CGROUPFS_BENCH") != "1" {
		b.Skip("BERTH_STATS_CGROUPFS_BENCH=1 not set")
	}
	const mount = "/sys/fs/cgroup"
	parent := fmt.Sprintf("berth-stats-bench-%d", os.Getpid())
	cgs := []string{"/kubepods", "/kubepods/besteffort"}
	for i := 0; i < 100; i++ {
		pod := fmt.Sprintf("/kubepods/besteffort/poduid-%03d", i)
		cgs = append(cgs, pod, fmt.Sprintf("%s/sb-uid-%03d", pod, i), fmt.Sprintf("%s/c-uid-%03d", pod, i))
	}
	// mkTree creates the pods' cgroups below root/parent and returns that
	// directory, the stand-in for the hierarchy's root.
	mkTree := func(b *testing.B, root string) string {
		dir := filepath.Join(root, parent)
		b.Cleanup(func() {
			for i := len(cgs) - 1; i >= 0; i-- {
				_ = os.Remove(join(dir, cgs[i]))
			}
			_ = os.Remove(dir)
		})
		for _, cg := range append([]string{"/"}, cgs...) {
			if err := os.Mkdir(join(dir, cg), 0o755); err != nil {
				b.Fatalf("create a bench cgroup: %v", err)
			}
		}
		return dir
	}
	run := func(b *testing.B, cg cgroupFS) {
		e := newTestEnv(b)
		e.rt.pods = map[types.UID]*container.PodStatus{}
		e.rt.stats = nil
		for i := 0; i < 100; i++ {
			uid := fmt.Sprintf("uid-%03d", i)
			e.rt.pods[types.UID(uid)] = &container.PodStatus{
				UID: types.UID(uid), Name: "pod-" + uid, Namespace: "bench",
				Sandboxes:  []*container.SandboxStatus{{ID: "sb-" + uid, State: container.SandboxReady, CreatedAt: t0}},
				Containers: []*container.ContainerStatus{{ID: "c-" + uid, Name: "app", State: container.StateRunning, CreatedAt: t0, Image: "busybox"}},
			}
		}
		c := newCollector(e.options(), cg)
		ctx := testCtx(b)
		c.housekeep(ctx)
		if s := c.snap.Load(); len(s.Pods) != 100 || s.Pods[0].CG == nil || s.Pods[0].Containers[0].CG == nil {
			b.Fatalf("bench pods' cgroups not read: %v", s.Err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			e.clock.Step(10 * time.Second)
			c.housekeep(ctx)
		}
	}
	cg, err := newCgroupFS(mount)
	if err != nil {
		b.Skip(err)
	}
	if _, ok := cg.(*cgroupV2); ok {
		b.Run("v2", func(b *testing.B) { run(b, &cgroupV2{root: mkTree(b, mount)}) })
		return
	}
	b.Run("v1", func(b *testing.B) {
		v1 := *cg.(*cgroupV1)
		made := map[string]string{} // joint mounts (cpu -> cpu,cpuacct) get one tree
		for _, p := range []*string{&v1.cpuacct, &v1.cpu, &v1.memory, &v1.pids} {
			if *p == "" {
				continue
			}
			real, err := filepath.EvalSymlinks(*p)
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := made[real]; !ok {
				made[real] = mkTree(b, real)
			}
			*p = made[real]
		}
		run(b, &v1)
	})
	if _, err := os.Stat(filepath.Join(mount, "unified", "cgroup.procs")); err == nil {
		b.Run("v2-unified", func(b *testing.B) { run(b, &cgroupV2{root: mkTree(b, filepath.Join(mount, "unified"))}) })
	}
}
