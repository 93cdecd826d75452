package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// cgroupMount is where the host's cgroup file systems are.
const cgroupMount = "/sys/fs/cgroup"

// cgroupV2 reports whether the host has the unified hierarchy only.
func cgroupV2() bool {
	_, err := os.Stat(filepath.Join(cgroupMount, "cgroup.controllers"))
	return err == nil
}

// appendConfig adds lines to berth's KubeletConfiguration file.
func (b *berth) appendConfig(yaml string) {
	b.t.Helper()
	f, err := os.OpenFile(b.configPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		b.t.Fatal(err)
	}
}

// ownCgroupRoot gives berth a cgroupRoot of the test's own, so that its
// kubepods cannot meet another berth's on this host, and removes the
// tree once the pods are gone.
func (b *berth) ownCgroupRoot() string {
	b.t.Helper()
	root := fmt.Sprintf("/berth-e2e-%d", time.Now().UnixNano())
	b.appendConfig("cgroupRoot: " + root + "\n")
	b.t.Cleanup(func() {
		// Runs before newBerth's clean-up: stop berth and remove the
		// pods first, or the cgroups are still in use.
		b.stop()
		if err := b.env.removeAllPods(); err != nil {
			b.t.Errorf("remove pods: %v", err)
		}
		removeCgroupTree(b.t, root)
	})
	return root
}

// removeCgroupTree removes a cgroup and its descendants, deepest first,
// from every hierarchy; they must be empty.
func removeCgroupTree(t *testing.T, name string) {
	dirs := []string{filepath.Join(cgroupMount, name)}
	if !cgroupV2() {
		entries, _ := os.ReadDir(cgroupMount)
		for _, e := range entries {
			dirs = append(dirs, filepath.Join(cgroupMount, e.Name(), name))
		}
	}
	for _, d := range dirs {
		var all []string
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			if err := os.Remove(all[i]); err != nil && !os.IsNotExist(err) {
				t.Logf("remove cgroup %s: %v", all[i], err)
			}
		}
	}
}

// cgroupValue reads a cgroup file: on v1 from the controller's
// hierarchy, on v2 the file named for v2.
func cgroupValue(t *testing.T, cgroup, controller, v1File, v2File string) string {
	t.Helper()
	p := filepath.Join(cgroupMount, controller, cgroup, v1File)
	if cgroupV2() {
		p = filepath.Join(cgroupMount, cgroup, v2File)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("read %s: %v", p, err)
		return ""
	}
	return strings.TrimSpace(string(b))
}

func withResources(cpuReq, memReq, cpuLim, memLim string) func(*v1.Pod) {
	list := func(cpu, mem string) v1.ResourceList {
		l := v1.ResourceList{}
		if cpu != "" {
			l[v1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[v1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources = v1.ResourceRequirements{Requests: list(cpuReq, memReq), Limits: list(cpuLim, memLim)}
	}
}

// memTotal is the host's MemTotal in bytes.
func memTotal(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal")
	return 0
}

// TestPodCgroups: berth creates kubepods with node allocatable, the QoS
// cgroups, and each pod's cgroup with its limits, as upstream's container
// manager does.
func TestPodCgroups(t *testing.T) {
	b := newBerth(t)
	root := b.ownCgroupRoot()
	b.appendConfig("podPidsLimit: 64\nkubeReserved:\n  cpu: 500m\n  memory: 1Gi\nsystemReserved:\n  memory: 512Mi\n")
	b.start()

	b.writePod(shellPod("guaranteed", "sleep 3600", withResources("250m", "64Mi", "250m", "64Mi")))
	b.writePod(shellPod("burstable", "sleep 3600", withResources("100m", "32Mi", "", "100Mi")))
	b.writePod(shellPod("besteffort", "sleep 3600"))
	uids := map[string]string{}
	for _, name := range []string{"guaranteed", "burstable", "besteffort"} {
		b.eventually(30*time.Second, b.podCond(name, podRunning))
		p, err := b.pod(name)
		if err != nil || p == nil {
			t.Fatalf("pod %s: %v", name, err)
		}
		uids[name] = string(p.UID)
	}
	kubepods := root + "/kubepods"
	g := kubepods + "/pod" + uids["guaranteed"]
	bu := kubepods + "/burstable/pod" + uids["burstable"]
	be := kubepods + "/besteffort/pod" + uids["besteffort"]

	allocatable := memTotal(t) - 1<<30 - 512<<20
	checks := []struct {
		what, cgroup, controller, v1File, v2File, want string
	}{
		{"kubepods memory limit (capacity - reserved)", kubepods, "memory", "memory.limit_in_bytes", "memory.max", strconv.FormatInt(allocatable, 10)},
		{"besteffort QoS shares", kubepods + "/besteffort", "cpu", "cpu.shares", "cpu.weight", v1v2("2", "1")},
		{"burstable QoS shares (100m)", kubepods + "/burstable", "cpu", "cpu.shares", "cpu.weight", v1v2("102", "4")},
		{"guaranteed pod memory limit", g, "memory", "memory.limit_in_bytes", "memory.max", "67108864"},
		{"guaranteed pod cpu quota", g, "cpu", "cpu.cfs_quota_us", "cpu.max", v1v2("25000", "25000 100000")},
		{"guaranteed pod cpu shares", g, "cpu", "cpu.shares", "cpu.weight", v1v2("256", "10")},
		{"guaranteed pod pids.max", g, "pids", "pids.max", "pids.max", "64"},
		{"burstable pod memory limit", bu, "memory", "memory.limit_in_bytes", "memory.max", "104857600"},
		{"burstable pod cpu shares", bu, "cpu", "cpu.shares", "cpu.weight", v1v2("102", "4")},
		{"burstable pod has no quota", bu, "cpu", "cpu.cfs_quota_us", "cpu.max", v1v2("-1", "max 100000")},
		{"besteffort pod cpu shares", be, "cpu", "cpu.shares", "cpu.weight", v1v2("2", "1")},
		{"besteffort pod pids.max", be, "pids", "pids.max", "pids.max", "64"},
	}
	for _, c := range checks {
		got := cgroupValue(t, c.cgroup, c.controller, c.v1File, c.v2File)
		t.Logf("%s: %s/%s = %s", c.what, c.cgroup, c.v1File, got)
		if got != c.want {
			t.Errorf("%s: %s = %q, want %q", c.what, c.v1File, got, c.want)
		}
	}

	// The pods' processes are in them.
	procs := cgroupValue(t, g, "memory", "cgroup.procs", "cgroup.procs")
	sub, _ := os.ReadDir(filepath.Join(cgroupMount, "memory", g))
	if cgroupV2() {
		sub, _ = os.ReadDir(filepath.Join(cgroupMount, g))
	}
	var children int
	for _, e := range sub {
		if e.IsDir() {
			children++
		}
	}
	if children < 2 {
		t.Errorf("guaranteed pod cgroup has %d child cgroups (procs %q), want the sandbox's and the container's", children, procs)
	}

	// A removed pod takes its cgroup along.
	b.removeManifest("besteffort.yaml")
	b.eventually(30*time.Second, func() (bool, string) {
		_, err := os.Stat(filepath.Join(cgroupMount, "cpu", be))
		if cgroupV2() {
			_, err = os.Stat(filepath.Join(cgroupMount, be))
		}
		return os.IsNotExist(err), fmt.Sprintf("besteffort pod cgroup: %v", err)
	})
}

// v1v2 picks the expected value for the host's cgroup version.
func v1v2(v1, v2 string) string {
	if cgroupV2() {
		return v2
	}
	return v1
}
