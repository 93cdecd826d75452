package stats

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"
	testclock "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/container"
)

// writeFiles creates files (and their directories) under root.
func writeFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cgVals are the numbers a fixture cgroup reports.
type cgVals struct {
	cpu, user, system  uint64 // ns
	usage, inactive    uint64
	rss, cache, mapped uint64
	limit              uint64 // 0: none
	pgfault, pgmaj     uint64 // own (v1) / hierarchical (v2)
	totPgfault         uint64 // v1 hierarchical
	pids               uint64
	procs              []int
}

func procsFile(pids []int) string {
	s := ""
	for _, p := range pids {
		s += fmt.Sprintf("%d\n", p)
	}
	return s
}

// writeV1 writes a cgroup in a v1 fixture with separate cpu, cpuacct,
// memory and pids mounts.
func writeV1(t testing.TB, root, name string, v cgVals) {
	t.Helper()
	limit := "9223372036854771712"
	if v.limit != 0 {
		limit = fmt.Sprint(v.limit)
	}
	writeFiles(t, root, map[string]string{
		filepath.Join("cpuacct", name, "cpuacct.usage"):            fmt.Sprintf("%d\n", v.cpu),
		filepath.Join("cpuacct", name, "cpuacct.stat"):             fmt.Sprintf("user %d\nsystem %d\n", v.user/1e7, v.system/1e7),
		filepath.Join("cpu", name, "cpu.shares"):                   "1024\n",
		filepath.Join("cpu", name, "cpu.cfs_period_us"):            "100000\n",
		filepath.Join("cpu", name, "cpu.cfs_quota_us"):             "-1\n",
		filepath.Join("memory", name, "memory.usage_in_bytes"):     fmt.Sprintf("%d\n", v.usage),
		filepath.Join("memory", name, "memory.max_usage_in_bytes"): fmt.Sprintf("%d\n", v.usage+100),
		filepath.Join("memory", name, "memory.limit_in_bytes"):     limit + "\n",
		filepath.Join("memory", name, "memory.failcnt"):            "0\n",
		filepath.Join("memory", name, "memory.stat"): fmt.Sprintf("cache 1\nrss 2\npgfault %d\npgmajfault %d\n"+
			"total_cache %d\ntotal_rss %d\ntotal_mapped_file %d\ntotal_inactive_file %d\ntotal_pgfault %d\ntotal_pgmajfault %d\n",
			v.pgfault, v.pgmaj, v.cache, v.rss, v.mapped, v.inactive, v.totPgfault, v.pgmaj),
		filepath.Join("memory", name, "cgroup.procs"): procsFile(v.procs),
		filepath.Join("pids", name, "pids.current"):   fmt.Sprintf("%d\n", v.pids),
	})
}

// writeV2 writes a cgroup in a unified fixture.
func writeV2(t testing.TB, root, name string, v cgVals) {
	t.Helper()
	limit := "max"
	if v.limit != 0 {
		limit = fmt.Sprint(v.limit)
	}
	writeFiles(t, root, map[string]string{
		filepath.Join(name, "cpu.stat"): fmt.Sprintf("usage_usec %d\nuser_usec %d\nsystem_usec %d\nnr_periods 0\n",
			v.cpu/1000, v.user/1000, v.system/1000),
		filepath.Join(name, "cpu.weight"):     "100\n",
		filepath.Join(name, "cpu.max"):        "max 100000\n",
		filepath.Join(name, "memory.current"): fmt.Sprintf("%d\n", v.usage),
		filepath.Join(name, "memory.max"):     limit + "\n",
		filepath.Join(name, "memory.stat"): fmt.Sprintf("anon %d\nfile %d\nfile_mapped %d\ninactive_file %d\npgfault %d\npgmajfault %d\n",
			v.rss, v.cache, v.mapped, v.inactive, v.pgfault, v.pgmaj),
		filepath.Join(name, "memory.events"):       "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n",
		filepath.Join(name, "memory.swap.current"): "0\n",
		filepath.Join(name, "memory.swap.max"):     "max\n",
		filepath.Join(name, "pids.current"):        fmt.Sprintf("%d\n", v.pids),
		filepath.Join(name, "cgroup.procs"):        procsFile(v.procs),
		filepath.Join(name, "cpu.pressure"):        "some avg10=1.50 avg60=0.00 avg300=0.00 total=2000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n",
	})
}

const netDevHeader = "Inter-|   Receive                                                |  Transmit\n" +
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"

func netDevLine(name string, rx, tx uint64) string {
	return fmt.Sprintf("%6s: %d 10 1 2 0 0 0 0 %d 20 3 4 0 0 0 0\n", name, rx, tx)
}

// writeProc writes the /proc files the collector reads; the sandbox's
// pause process is pausePID, in its own network namespace.
func writeProc(t testing.TB, root string, pausePID int) {
	t.Helper()
	writeFiles(t, root, map[string]string{
		"meminfo": "MemTotal:        8000000 kB\nMemFree:         2000000 kB\nCached:          1000000 kB\n" +
			"AnonPages:        500000 kB\nInactive(file):   300000 kB\nSwapTotal:       1000000 kB\nSwapFree:         900000 kB\n",
		"stat":                              "cpu  100 0 50 1000 0 0 0 0 0 0\ncpu0 100 0 50 1000 0 0 0 0 0 0\nbtime 1700000000\n",
		"net/dev":                           netDevHeader + netDevLine("lo", 5, 5) + netDevLine("eth0", 1000, 2000) + netDevLine("veth123", 7, 7),
		"loadavg":                           "0.10 0.20 0.30 2/345 678\n",
		"sys/kernel/pid_max":                "4194304\n",
		"sys/kernel/threads-max":            "63000\n",
		"self/cgroup":                       "4:memory:/\n0::/\n",
		"self/mountinfo":                    "",
		fmt.Sprintf("%d/net/dev", pausePID): netDevHeader + netDevLine("lo", 1, 1) + netDevLine("eth0", 300, 400),
	})
	for dir, target := range map[string]string{"self": "net:[4026531840]", fmt.Sprint(pausePID): "net:[4026532001]"} {
		if err := os.MkdirAll(filepath.Join(root, dir, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, dir, "ns", "net")); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeRuntime serves fixed pods and CRI stats.
type fakeRuntime struct {
	pods    map[types.UID]*container.PodStatus
	stats   []*runtimeapi.ContainerStats
	imageFs *runtimeapi.ImageFsInfoResponse
	listErr error
	// rounds, when set, receives a value at the start of each round's pod
	// listing: a waitable counter for tests of Run.
	rounds chan struct{}
}

func (f *fakeRuntime) ListPods(context.Context) (map[types.UID]*container.PodStatus, error) {
	if f.rounds != nil {
		f.rounds <- struct{}{}
	}
	return f.pods, f.listErr
}

func (f *fakeRuntime) ListContainerStats(context.Context) ([]*runtimeapi.ContainerStats, error) {
	return f.stats, nil
}

func (f *fakeRuntime) ImageFsInfo(context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	if f.imageFs == nil {
		return &runtimeapi.ImageFsInfoResponse{}, nil
	}
	return f.imageFs, nil
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testEnv is a node with one pod (sandbox + container "app") and the
// directories a Collector reads.
type testEnv struct {
	cgRoot, procRoot, rootDir, logsDir string
	clock                              *testclock.FakeClock
	rt                                 *fakeRuntime
}

const (
	podUID    = "11111111-2222-3333-4444-555555555555"
	sandboxID = "sb0123456789"
	ctrID     = "ctr0123456789"
	pausePID  = 4242
)

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{
		cgRoot:   filepath.Join(dir, "cgroup"),
		procRoot: filepath.Join(dir, "proc"),
		rootDir:  filepath.Join(dir, "kubelet"),
		logsDir:  filepath.Join(dir, "logs"),
		clock:    testclock.NewFakeClock(t0),
	}
	writeProc(t, e.procRoot, pausePID)
	podDir := e.logsDir + "/default_web_" + podUID
	writeFiles(t, podDir, map[string]string{
		"app/0.log": "hello\n",
		"app/1.log": "world\n",
		"stray.log": "x",
	})
	writeFiles(t, e.rootDir, map[string]string{
		"pods/" + podUID + "/etc-hosts":                                 "127.0.0.1 localhost\n",
		"pods/" + podUID + "/volumes/kubernetes.io~empty-dir/cache/a":   "aaaa",
		"pods/" + podUID + "/volumes/kubernetes.io~empty-dir/cache/d/b": "bbbb",
		"pods/" + podUID + "/volumes/kubernetes.io~nfs/remote/x":        "not walked",
	})
	e.rt = &fakeRuntime{
		pods: map[types.UID]*container.PodStatus{
			podUID: {
				UID: podUID, Name: "web", Namespace: "default",
				Sandboxes: []*container.SandboxStatus{{ID: sandboxID, State: container.SandboxReady, CreatedAt: t0.Add(-time.Hour)}},
				Containers: []*container.ContainerStatus{
					{ID: ctrID, Name: "app", SandboxID: sandboxID, State: container.StateRunning, CreatedAt: t0.Add(-30 * time.Minute), Image: "busybox:1.36"},
					{ID: "old", Name: "app", SandboxID: sandboxID, State: container.StateExited, CreatedAt: t0.Add(-50 * time.Minute)},
				},
			},
		},
		stats: []*runtimeapi.ContainerStats{{
			Attributes: &runtimeapi.ContainerAttributes{Id: ctrID},
			WritableLayer: &runtimeapi.FilesystemUsage{
				Timestamp:  t0.UnixNano(),
				FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: dir},
				UsedBytes:  &runtimeapi.UInt64Value{Value: 4096},
				InodesUsed: &runtimeapi.UInt64Value{Value: 3},
			},
		}},
		imageFs: &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{
			Timestamp:  t0.UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: dir},
			UsedBytes:  &runtimeapi.UInt64Value{Value: 1 << 20},
			InodesUsed: &runtimeapi.UInt64Value{Value: 100},
		}}},
	}
	return e
}

func (e *testEnv) options() Options {
	return Options{
		Runtime: e.rt, CgroupRoot: e.cgRoot, RootDir: e.rootDir, PodLogsDir: e.logsDir,
		NodeName: "node-1", ProcRoot: e.procRoot, Clock: e.clock,
		HousekeepingInterval: 10 * time.Second,
	}
}

// podCgroup is where the fixture pod lives (a burstable pod, cgroupfs).
const podCgroup = "/kubepods/burstable/pod" + podUID

// writeCgroups writes the node, pods, pod, sandbox and container cgroups
// with the container's CPU at cpu ns.
func (e *testEnv) writeCgroups(t testing.TB, v2 bool, cpu uint64) {
	write := writeV1
	if v2 {
		write = writeV2
	}
	write(t, e.cgRoot, "/", cgVals{cpu: 50e9, usage: 3e9, inactive: 1e9, rss: 1e9, cache: 2e9})
	write(t, e.cgRoot, "/kubepods", cgVals{cpu: 20e9, usage: 600e6, inactive: 100e6})
	write(t, e.cgRoot, podCgroup, cgVals{cpu: cpu + 1e9, usage: 300e6, inactive: 100e6, rss: 150e6, pgfault: 7, totPgfault: 70, pids: 3, limit: 1 << 30})
	write(t, e.cgRoot, podCgroup+"/"+sandboxID, cgVals{cpu: 1e9, usage: 1e6, pids: 1, procs: []int{pausePID}})
	write(t, e.cgRoot, podCgroup+"/"+ctrID, cgVals{
		cpu: cpu, user: 6e9, system: 2e9, usage: 250e6, inactive: 50e6, rss: 150e6, cache: 100e6, mapped: 5e6,
		limit: 512 << 20, pgfault: 11, pgmaj: 2, totPgfault: 11, pids: 4, procs: []int{10, 11},
	})
}

// testCtx routes the collector's logs to the test's log.
func testCtx(t testing.TB) context.Context {
	_, ctx := ktesting.NewTestContext(t)
	return ctx
}
