package stats

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// collectorFor builds a Collector over the env's fixture hierarchy.
func collectorFor(t *testing.T, e *testEnv, v2 bool) *Collector {
	t.Helper()
	e.writeCgroups(t, v2, 10e9)
	var cg cgroupFS = &cgroupV2{root: e.cgRoot}
	if !v2 {
		v1, err := newCgroupV1(e.cgRoot)
		if err != nil {
			t.Fatal(err)
		}
		cg = v1
	}
	return newCollector(e.options(), cg)
}

// twoRounds samples, advances the clock 10 s while the container burns 5 s
// of CPU, and samples again.
func twoRounds(t *testing.T, e *testEnv, c *Collector, v2 bool) {
	t.Helper()
	e.writeCgroups(t, v2, 10e9)
	c.housekeep(testCtx(t))
	e.clock.Step(10 * time.Second)
	e.writeCgroups(t, v2, 15e9)
	c.housekeep(testCtx(t))
}

func u64(p *uint64) uint64 {
	if p == nil {
		return 1<<64 - 1 // stands out in failures
	}
	return *p
}

func TestSummary(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		name := "v1"
		if v2 {
			name = "v2"
		}
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t)
			c := collectorFor(t, e, v2)
			if _, err := c.Summary(context.Background(), false); !errors.Is(err, ErrNotReady) {
				t.Fatalf("Summary before the first round: err = %v, want ErrNotReady", err)
			}
			twoRounds(t, e, c, v2)
			s, err := c.Summary(context.Background(), false)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.snap.Load().Err; err != nil {
				t.Errorf("round error: %v", err)
			}
			checkNode(t, &s.Node)
			if len(s.Pods) != 1 {
				t.Fatalf("pods = %d, want 1", len(s.Pods))
			}
			checkPod(t, &s.Pods[0])
		})
	}
}

func checkNode(t *testing.T, n *statsapi.NodeStats) {
	t.Helper()
	if n.NodeName != "node-1" || !n.StartTime.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("node %q started %v", n.NodeName, n.StartTime)
	}
	if n.CPU == nil || u64(n.CPU.UsageCoreNanoSeconds) != 50e9 || u64(n.CPU.UsageNanoCores) != 0 {
		t.Errorf("node cpu = %s", dump(n.CPU))
	}
	memTotal := uint64(8000000 * 1024)
	if n.Memory == nil || u64(n.Memory.WorkingSetBytes) != 2e9 || u64(n.Memory.UsageBytes) != 3e9 || u64(n.Memory.AvailableBytes) != memTotal-2e9 {
		t.Errorf("node memory = %s", dump(n.Memory))
	}
	if n.Network == nil || n.Network.Name != "eth0" || u64(n.Network.RxBytes) != 1000 || len(n.Network.Interfaces) != 1 {
		t.Errorf("node network = %s", dump(n.Network))
	}
	if n.Fs == nil || u64(n.Fs.CapacityBytes) == 0 || n.Fs.UsedBytes == nil {
		t.Errorf("node fs = %s", dump(n.Fs))
	}
	if n.Runtime == nil || u64(n.Runtime.ImageFs.UsedBytes) != 1<<20 || u64(n.Runtime.ContainerFs.InodesUsed) != 100 || n.Runtime.ImageFs.CapacityBytes == nil {
		t.Errorf("runtime fs = %s", dump(n.Runtime))
	}
	if n.Rlimit == nil || *n.Rlimit.MaxPID != 63000 || *n.Rlimit.NumOfRunningProcesses != 345 {
		t.Errorf("rlimit = %s", dump(n.Rlimit))
	}
	if len(n.SystemContainers) != 1 || n.SystemContainers[0].Name != "pods" || u64(n.SystemContainers[0].CPU.UsageCoreNanoSeconds) != 20e9 {
		t.Errorf("system containers = %s (berth runs in / here: no kubelet container)", dump(n.SystemContainers))
	}
}

func checkPod(t *testing.T, p *statsapi.PodStats) {
	t.Helper()
	if p.PodRef != (statsapi.PodReference{Name: "web", Namespace: "default", UID: podUID}) || !p.StartTime.Time.Equal(t0.Add(-time.Hour)) {
		t.Errorf("pod ref %+v start %v", p.PodRef, p.StartTime)
	}
	// 5 s of CPU in 10 s: half a core.
	if p.CPU == nil || u64(p.CPU.UsageCoreNanoSeconds) != 16e9 || u64(p.CPU.UsageNanoCores) != 5e8 || !p.CPU.Time.Time.Equal(t0.Add(10*time.Second)) {
		t.Errorf("pod cpu = %s", dump(p.CPU))
	}
	if p.Memory == nil || u64(p.Memory.WorkingSetBytes) != 200e6 || u64(p.Memory.AvailableBytes) != 1<<30-200e6 || u64(p.Memory.PageFaults) != 7 {
		t.Errorf("pod memory = %s", dump(p.Memory))
	}
	if p.Network == nil || p.Network.Name != "eth0" || u64(p.Network.RxBytes) != 300 || u64(p.Network.TxBytes) != 400 || len(p.Network.Interfaces) != 1 {
		t.Errorf("pod network = %s", dump(p.Network))
	}
	if p.ProcessStats == nil || u64(p.ProcessStats.ProcessCount) != 2 {
		t.Errorf("process stats = %s", dump(p.ProcessStats))
	}
	if len(p.VolumeStats) != 1 || p.VolumeStats[0].Name != "cache" || u64(p.VolumeStats[0].InodesUsed) != 4 {
		t.Errorf("volumes = %s (the emptyDir only; nfs is not walked)", dump(p.VolumeStats))
	}
	if len(p.Containers) != 1 {
		t.Fatalf("containers = %s, want the running app only", dump(p.Containers))
	}
	c := &p.Containers[0]
	if c.Name != "app" || !c.StartTime.Time.Equal(t0.Add(-30*time.Minute)) {
		t.Errorf("container %q started %v", c.Name, c.StartTime)
	}
	if c.CPU == nil || u64(c.CPU.UsageCoreNanoSeconds) != 15e9 || u64(c.CPU.UsageNanoCores) != 5e8 {
		t.Errorf("container cpu = %s", dump(c.CPU))
	}
	if m := c.Memory; m == nil || u64(m.WorkingSetBytes) != 200e6 || u64(m.UsageBytes) != 250e6 || u64(m.RSSBytes) != 150e6 ||
		u64(m.PageFaults) != 11 || u64(m.MajorPageFaults) != 2 || u64(m.AvailableBytes) != 512<<20-200e6 {
		t.Errorf("container memory = %s", dump(c.Memory))
	}
	if c.Rootfs == nil || u64(c.Rootfs.UsedBytes) != 4096 || u64(c.Rootfs.InodesUsed) != 3 || c.Rootfs.CapacityBytes == nil {
		t.Errorf("container rootfs = %s", dump(c.Rootfs))
	}
	if c.Logs == nil || u64(c.Logs.InodesUsed) != 3 || u64(c.Logs.UsedBytes) == 0 || c.Logs.CapacityBytes == nil {
		t.Errorf("container logs = %s (dir + 2 files)", dump(c.Logs))
	}
	// writable layer 3 + logs 3 + volume 4 + stray pod log 1 + etc-hosts 1
	es := p.EphemeralStorage
	if es == nil || u64(es.InodesUsed) != 12 || es.CapacityBytes == nil {
		t.Errorf("ephemeral storage = %s", dump(es))
	} else {
		sum := u64(c.Rootfs.UsedBytes) + u64(c.Logs.UsedBytes) + u64(p.VolumeStats[0].UsedBytes)
		if u64(es.UsedBytes) <= sum {
			t.Errorf("ephemeral used %d, want more than containers+volumes %d (pod logs, etc-hosts)", u64(es.UsedBytes), sum)
		}
	}
}

func TestSummaryOnlyCPUAndMemory(t *testing.T) {
	e := newTestEnv(t)
	c := collectorFor(t, e, false)
	twoRounds(t, e, c, false)
	s, err := c.Summary(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	n, p := s.Node, s.Pods[0]
	if n.CPU == nil || n.Memory == nil || n.Network != nil || n.Fs != nil || n.Runtime != nil || n.Rlimit != nil {
		t.Errorf("node = %s", dump(n))
	}
	if p.CPU == nil || p.Memory == nil || p.Network != nil || p.VolumeStats != nil || p.EphemeralStorage != nil || p.ProcessStats != nil {
		t.Errorf("pod = %s", dump(p))
	}
	if c0 := p.Containers[0]; c0.CPU == nil || c0.Memory == nil || c0.Rootfs != nil || c0.Logs != nil {
		t.Errorf("container = %s", dump(c0))
	}
}

func TestSummaryRuntimeFallbackAndHostNetwork(t *testing.T) {
	e := newTestEnv(t)
	c := collectorFor(t, e, true)
	e.writeCgroups(t, true, 10e9)
	// The container's cgroup is not where berth looks: the runtime's
	// numbers stand in.
	if err := os.RemoveAll(filepath.Join(e.cgRoot, podCgroup, ctrID)); err != nil {
		t.Fatal(err)
	}
	e.rt.stats[0].Cpu = &runtimeapi.CpuUsage{Timestamp: t0.UnixNano(), UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: 77}, UsageNanoCores: &runtimeapi.UInt64Value{Value: 5}}
	e.rt.stats[0].Memory = &runtimeapi.MemoryUsage{Timestamp: t0.UnixNano(), WorkingSetBytes: &runtimeapi.UInt64Value{Value: 88}}
	// The pause process shares the node's network namespace.
	link := filepath.Join(e.procRoot, "4242", "ns", "net")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("net:[4026531840]", link); err != nil {
		t.Fatal(err)
	}
	c.housekeep(testCtx(t))
	s, err := c.Summary(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Pods[0]
	if p.Network != nil {
		t.Errorf("host-network pod reports network %s", dump(p.Network))
	}
	ct := p.Containers[0]
	if u64(ct.CPU.UsageCoreNanoSeconds) != 77 || u64(ct.CPU.UsageNanoCores) != 5 || u64(ct.Memory.WorkingSetBytes) != 88 {
		t.Errorf("container = %s, want the runtime's numbers", dump(ct))
	}
}

func TestRuntimeErrorKeepsLastPods(t *testing.T) {
	e := newTestEnv(t)
	c := collectorFor(t, e, false)
	twoRounds(t, e, c, false)
	e.rt.listErr = errors.New("runtime down")
	e.clock.Step(10 * time.Second)
	c.housekeep(testCtx(t))
	snap := c.snap.Load()
	if snap.Err == nil {
		t.Error("round error not recorded")
	}
	if len(snap.Pods) != 1 || !snap.Pods[0].CG.Time.Equal(t0.Add(10*time.Second)) {
		t.Errorf("pods after a runtime error: %d, want the last good sample's", len(snap.Pods))
	}
	if _, ok := c.prevCPU[cpuKey{"pod", podUID}]; !ok {
		t.Error("previous CPU readings dropped while the runtime was down")
	}
}

func TestCachesFollowPods(t *testing.T) {
	e := newTestEnv(t)
	c := collectorFor(t, e, false)
	twoRounds(t, e, c, false)
	if len(c.podCgroups) != 1 || len(c.sbCgroups) != 1 || len(c.ctrCgroups) != 1 || len(c.netPIDs) != 1 || len(c.volumes) != 1 {
		t.Fatalf("caches: pods %v sandboxes %v containers %v pids %v volumes %d", c.podCgroups, c.sbCgroups, c.ctrCgroups, c.netPIDs, len(c.volumes))
	}
	e.rt.pods = nil
	c.housekeep(testCtx(t))
	if len(c.podCgroups)+len(c.sbCgroups)+len(c.ctrCgroups)+len(c.netPIDs)+len(c.volumes) != 0 {
		t.Errorf("caches keep gone pods: %v %v %v %v %d", c.podCgroups, c.sbCgroups, c.ctrCgroups, c.netPIDs, len(c.volumes))
	}
	for k := range c.prevCPU {
		if k != (cpuKey{kind: "node"}) && k != (cpuKey{"system", "pods"}) {
			t.Errorf("previous CPU reading %q kept for a gone pod", k)
		}
	}
}

// countingFS counts the directory listings a round makes.
type countingFS struct {
	cgroupFS
	listings int
}

func (f *countingFS) children(name string) ([]string, error) {
	f.listings++
	return f.cgroupFS.children(name)
}

func TestCgroupPathsRemembered(t *testing.T) {
	e := newTestEnv(t)
	e.writeCgroups(t, false, 10e9)
	v1, err := newCgroupV1(e.cgRoot)
	if err != nil {
		t.Fatal(err)
	}
	cg := &countingFS{cgroupFS: v1}
	c := newCollector(e.options(), cg)
	round := func() podSnap {
		t.Helper()
		cg.listings = 0
		e.clock.Step(10 * time.Second)
		c.housekeep(testCtx(t))
		pods := c.snap.Load().Pods
		if len(pods) != 1 || pods[0].CG == nil || pods[0].SandboxCG == nil || len(pods[0].Containers) != 1 || pods[0].Containers[0].CG == nil {
			t.Fatalf("pod not fully sampled: %s", dump(pods))
		}
		return pods[0]
	}
	round()
	if cg.listings != 1 {
		t.Errorf("first round listed %d cgroups, want the pod's", cg.listings)
	}
	round()
	if cg.listings != 0 {
		t.Errorf("second round listed %d cgroups, want none: the paths are remembered", cg.listings)
	}
	// The pod's cgroup moves (as if made again under another QoS class):
	// the remembered paths fail and are found again.
	moved := "/kubepods/besteffort/pod" + podUID
	for _, ctl := range []string{"cpu", "cpuacct", "memory", "pids"} {
		if err := os.MkdirAll(filepath.Join(e.cgRoot, ctl, "kubepods", "besteffort"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(join(filepath.Join(e.cgRoot, ctl), podCgroup), join(filepath.Join(e.cgRoot, ctl), moved)); err != nil {
			t.Fatal(err)
		}
	}
	p := round()
	if p.Cgroup != moved || p.SandboxCgroup != moved+"/"+sandboxID || p.Containers[0].Cgroup != moved+"/"+ctrID || cg.listings != 1 {
		t.Errorf("after the move: pod %s sandbox %s container %s, %d listings; want them under %s, one listing",
			p.Cgroup, p.SandboxCgroup, p.Containers[0].Cgroup, cg.listings, moved)
	}
}

func TestVolumeWalkedOncePerPeriod(t *testing.T) {
	e := newTestEnv(t)
	c := collectorFor(t, e, false)
	twoRounds(t, e, c, false)
	writeFiles(t, e.rootDir, map[string]string{"pods/" + podUID + "/volumes/kubernetes.io~empty-dir/cache/new": "n"})
	inodes := func() uint64 {
		s, err := c.Summary(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		return u64(s.Pods[0].VolumeStats[0].InodesUsed)
	}
	e.clock.Step(10 * time.Second)
	c.housekeep(testCtx(t))
	if got := inodes(); got != 4 {
		t.Errorf("inodes = %d 20 s after the walk, want the walk's 4", got)
	}
	e.clock.Step(time.Minute)
	c.housekeep(testCtx(t))
	if got := inodes(); got != 5 {
		t.Errorf("inodes = %d a period later, want 5", got)
	}
}

func TestRunSamplesEveryInterval(t *testing.T) {
	e := newTestEnv(t)
	c := collectorFor(t, e, false)
	e.rt.rounds = make(chan struct{})
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()

	<-e.rt.rounds // first round, at once
	// Requests race with the loop; the race detector checks they may.
	go func() {
		for i := 0; i < 50; i++ {
			_, _ = c.Summary(context.Background(), false)
			_ = testutilCollect(c)
		}
	}()
	// Run made its ticker before the first round: stepping now fires it.
	if !e.clock.HasWaiters() {
		t.Fatal("no ticker after the first round")
	}
	e.clock.Step(10 * time.Second)
	<-e.rt.rounds // second round, one interval later
	cancel()
	<-done
	s, err := c.Summary(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Node.CPU == nil || !s.Node.CPU.Time.Time.Equal(t0.Add(10*time.Second)) {
		t.Errorf("node cpu = %s, want the second round's sample", dump(s.Node.CPU))
	}
}

func TestVolumeWalksShareARoundBudget(t *testing.T) {
	e := newTestEnv(t)
	writeFiles(t, e.rootDir, map[string]string{"pods/" + podUID + "/volumes/kubernetes.io~configmap/conf/k": "v"})
	c := collectorFor(t, e, false)
	c.volumeRoundBudget = 1 // one walk per round
	volumes := func() []string {
		s, err := c.Summary(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, v := range s.Pods[0].VolumeStats {
			names = append(names, v.Name)
		}
		return names
	}
	c.housekeep(testCtx(t))
	if got := volumes(); len(got) != 1 || got[0] != "cache" {
		t.Errorf("first round volumes = %v, want [cache] (conf waits)", got)
	}
	c.housekeep(testCtx(t))
	if got := volumes(); len(got) != 2 {
		t.Errorf("second round volumes = %v, want both", got)
	}
}
