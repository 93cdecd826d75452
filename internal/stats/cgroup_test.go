package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func TestCgroupRead(t *testing.T) {
	v := cgVals{
		cpu: 12e9, user: 8e9, system: 3e9, usage: 400e6, inactive: 150e6, rss: 200e6, cache: 180e6, mapped: 9e6,
		limit: 1 << 30, pgfault: 5, pgmaj: 1, totPgfault: 50, pids: 6,
	}
	psi := &statsapi.PSIStats{
		Some: statsapi.PSIData{Avg10: 1.5, Total: 2000000},
		Full: statsapi.PSIData{Total: 1000000},
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, root string) cgroupFS
		want  cgroupSample
	}{{
		name: "v1 separate mounts",
		setup: func(t *testing.T, root string) cgroupFS {
			writeV1(t, root, "/kubepods/pod1/c1", v)
			cg, err := newCgroupV1(root)
			if err != nil {
				t.Fatal(err)
			}
			return cg
		},
		want: cgroupSample{
			Time: t0, HasCPU: true, CPUUsage: 12e9, CPUUser: 8e9, CPUSystem: 3e9, CPUShares: 1024, CPUPeriod: 100000,
			HasMemory: true, MemUsage: 400e6, MemMaxUsage: 400e6 + 100, MemWorkingSet: 250e6, MemRSS: 200e6, MemCache: 180e6,
			MemMappedFile: 9e6, PgFault: 5, PgMajFault: 1, HierPgFault: 50, HierPgMajFault: 1, MemLimit: 1 << 30,
			HasPids: true, Pids: 6,
		},
	}, {
		name: "v1 joint cpu,cpuacct mount",
		setup: func(t *testing.T, root string) cgroupFS {
			writeV1(t, root, "/kubepods/pod1/c1", v)
			if err := os.Rename(filepath.Join(root, "cpuacct"), filepath.Join(root, "cpu,cpuacct")); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(root, "cpu")); err != nil {
				t.Fatal(err)
			}
			cg, err := newCgroupV1(root)
			if err != nil {
				t.Fatal(err)
			}
			if got := cg.cpu; got != filepath.Join(root, "cpu,cpuacct") {
				t.Errorf("cpu controller at %s, want the joint mount", got)
			}
			return cg
		},
		want: cgroupSample{
			Time: t0, HasCPU: true, CPUUsage: 12e9, CPUUser: 8e9, CPUSystem: 3e9,
			HasMemory: true, MemUsage: 400e6, MemMaxUsage: 400e6 + 100, MemWorkingSet: 250e6, MemRSS: 200e6, MemCache: 180e6,
			MemMappedFile: 9e6, PgFault: 5, PgMajFault: 1, HierPgFault: 50, HierPgMajFault: 1, MemLimit: 1 << 30,
			HasPids: true, Pids: 6,
		},
	}, {
		name: "v2",
		setup: func(t *testing.T, root string) cgroupFS {
			writeV2(t, root, "/kubepods/pod1/c1", v)
			return &cgroupV2{root: root}
		},
		want: cgroupSample{
			Time: t0, HasCPU: true, CPUUsage: 12e9, CPUUser: 8e9, CPUSystem: 3e9, CPUShares: 2, CPUPeriod: 100000,
			HasMemory: true, MemUsage: 400e6, MemWorkingSet: 250e6, MemRSS: 200e6, MemCache: 180e6, MemMappedFile: 9e6,
			MemFailcnt: 3, PgFault: 5, PgMajFault: 1, HierPgFault: 5, HierPgMajFault: 1, MemLimit: 1 << 30,
			HasSwap: true, HasPids: true, Pids: 6, CPUPSI: psi,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cg := tt.setup(t, t.TempDir())
			got, err := cg.read("/kubepods/pod1/c1", t0)
			if err != nil {
				t.Fatal(err)
			}
			// weight 100 is shares 2+99*262142/9999.
			if _, v2 := cg.(*cgroupV2); v2 {
				tt.want.CPUShares = weightToShares(100)
			}
			if !reflect.DeepEqual(tt.want, got) {
				t.Errorf("sample:\n got %s\nwant %s", dump(got), dump(tt.want))
			}
			if _, err := cg.read("/kubepods/pod1/gone", t0); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("reading a missing cgroup: err = %v, want one wrapping ErrNotExist", err)
			}
			children, err := cg.children("/kubepods/pod1")
			if err != nil || len(children) != 1 || children[0] != "c1" {
				t.Errorf("children = %v, %v; want [c1]", children, err)
			}
		})
	}
}

func TestWorkingSetNeverNegative(t *testing.T) {
	root := t.TempDir()
	writeV1(t, root, "/c", cgVals{usage: 100, inactive: 500})
	cg, err := newCgroupV1(root)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cg.read("/c", t0)
	if err != nil {
		t.Fatal(err)
	}
	if s.MemWorkingSet != 0 {
		t.Errorf("working set = %d, want 0 when inactive_file exceeds usage", s.MemWorkingSet)
	}
}

func TestParsePSI(t *testing.T) {
	got, err := parsePSI([]byte("some avg10=0.12 avg60=3.40 avg300=5.00 total=123\nfull avg10=0.01 avg60=0.02 avg300=0.03 total=45\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &statsapi.PSIStats{
		Some: statsapi.PSIData{Avg10: 0.12, Avg60: 3.4, Avg300: 5, Total: 123},
		Full: statsapi.PSIData{Avg10: 0.01, Avg60: 0.02, Avg300: 0.03, Total: 45},
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("PSI:\n got %s\nwant %s", dump(got), dump(want))
	}
	if _, err := parsePSI([]byte("")); err == nil {
		t.Error("empty PSI file parsed without error")
	}
}

func TestPodCgroupCandidates(t *testing.T) {
	got := podCgroupCandidates("a-b", "systemd")
	want := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poda_b.slice"
	if got[0] != want {
		t.Errorf("systemd candidate = %s, want %s", got[0], want)
	}
	if c, ok := childFor([]string{"cri-containerd-abc.scope", "other"}, "abc"); !ok || c != "cri-containerd-abc.scope" {
		t.Errorf("childFor systemd scope = %q, %v", c, ok)
	}
	if c, ok := childFor([]string{"abcd", "abc"}, "abc"); !ok || c != "abc" {
		t.Errorf("childFor prefers the exact name, got %q", c)
	}
}

func TestSelfCgroup(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"self/cgroup": "5:cpu,cpuacct:/x\n4:memory:/system.slice/berth.service\n0::/unified\n"})
	if got := selfCgroup(root, false); got != "/system.slice/berth.service" {
		t.Errorf("v1 self cgroup = %q", got)
	}
	if got := selfCgroup(root, true); got != "/unified" {
		t.Errorf("v2 self cgroup = %q", got)
	}
}

// dump renders a value for failure messages, pointers followed.
func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}
