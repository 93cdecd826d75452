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
			got, err := cg.read(testReader(t), "/kubepods/pod1/c1", t0)
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
			if _, err := cg.read(testReader(t), "/kubepods/pod1/gone", t0); !errors.Is(err, fs.ErrNotExist) {
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
	s, err := cg.read(testReader(t), "/c", t0)
	if err != nil {
		t.Fatal(err)
	}
	if s.MemWorkingSet != 0 {
		t.Errorf("working set = %d, want 0 when inactive_file exceeds usage", s.MemWorkingSet)
	}
}

func TestParsePSI(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *statsapi.PSIStats
		wantErr bool
	}{{
		name: "some and full",
		in:   "some avg10=0.12 avg60=3.40 avg300=5.00 total=123\nfull avg10=0.01 avg60=0.02 avg300=0.03 total=45\n",
		want: &statsapi.PSIStats{
			Some: statsapi.PSIData{Avg10: 0.12, Avg60: 3.4, Avg300: 5, Total: 123},
			Full: statsapi.PSIData{Avg10: 0.01, Avg60: 0.02, Avg300: 0.03, Total: 45},
		},
	}, {
		name: "some only, extra spaces, no newline",
		in:   "  some  avg10=1.00 total=7",
		want: &statsapi.PSIStats{Some: statsapi.PSIData{Avg10: 1, Total: 7}},
	}, {
		name: "unknown keys and lines skipped",
		in:   "other x=1\nsome avg10=0.50 future=9 total=8\n",
		want: &statsapi.PSIStats{Some: statsapi.PSIData{Avg10: 0.5, Total: 8}},
	}, {
		name:    "bad number",
		in:      "some avg10=x total=1\n",
		wantErr: true,
	}, {
		name:    "empty",
		in:      "",
		wantErr: true,
	}}
	for _, tt := range tests {
		got, err := parsePSI([]byte(tt.in))
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(tt.want, got) {
			t.Errorf("%s: got %s, %v; want %s, error %v", tt.name, dump(got), err, dump(tt.want), tt.wantErr)
		}
	}
}

func TestChildFor(t *testing.T) {
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

// testReader is a fileReader whose directories are closed when t ends.
func testReader(t testing.TB) *fileReader {
	r := &fileReader{}
	t.Cleanup(r.closeDirs)
	return r
}

// memoryStatV1Sample is a v1 memory.stat as a 6.x kernel writes it.
const memoryStatV1Sample = `cache 1052672
rss 33677312
rss_huge 0
shmem 0
mapped_file 0
dirty 0
writeback 0
swap 0
pgpgin 9081
pgpgout 60
pgfault 17270
pgmajfault 3
inactive_anon 33685504
active_anon 0
inactive_file 1052672
active_file 0
unevictable 0
hierarchical_memory_limit 9223372036854771712
hierarchical_memsw_limit 9223372036854771712
total_cache 1052672
total_rss 33677312
total_rss_huge 0
total_shmem 0
total_mapped_file 4096
total_dirty 0
total_writeback 0
total_swap 0
total_pgpgin 9081
total_pgpgout 60
total_pgfault 17290
total_pgmajfault 4
total_inactive_anon 33685504
total_active_anon 0
total_inactive_file 1052672
total_active_file 0
total_unevictable 0
`

func TestParseMemoryStat(t *testing.T) {
	v1 := []struct {
		name string
		in   string
		want memoryStatV1
	}{
		{"kernel sample", memoryStatV1Sample, memoryStatV1{
			Cache: 1052672, RSS: 33677312, MappedFile: 4096, InactiveFile: 1052672,
			PgFault: 17270, PgMajFault: 3, HierPgFault: 17290, HierPgMajFault: 4,
		}},
		{"own fields are not the hierarchy's", "cache 5\nrss 6\ninactive_file 7\n", memoryStatV1{}},
		{"no trailing newline", "total_rss 9", memoryStatV1{RSS: 9}},
		{"malformed lines skipped", "total_rss x\ntotal_cache\n\ntotal_mapped_file 3\n", memoryStatV1{MappedFile: 3}},
		{"empty", "", memoryStatV1{}},
	}
	for _, tt := range v1 {
		if got := parseMemoryStatV1([]byte(tt.in)); got != tt.want {
			t.Errorf("v1 %s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
	v2 := []struct {
		name string
		in   string
		want memoryStatV2
	}{
		{"kernel sample", "anon 33677312\nfile 1052672\nkernel 12288\nshmem 0\nfile_mapped 4096\nfile_dirty 0\n" +
			"inactive_anon 33685504\nactive_anon 0\ninactive_file 1052672\nactive_file 0\npgfault 17270\npgmajfault 3\n",
			memoryStatV2{Anon: 33677312, File: 1052672, FileMapped: 4096, InactiveFile: 1052672, PgFault: 17270, PgMajFault: 3}},
		{"v1 names mean nothing", "total_rss 5\nrss 6\n", memoryStatV2{}},
		{"empty", "", memoryStatV2{}},
	}
	for _, tt := range v2 {
		if got := parseMemoryStatV2([]byte(tt.in)); got != tt.want {
			t.Errorf("v2 %s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseCPUFiles(t *testing.T) {
	acct := []struct {
		in           string
		user, system uint64
	}{
		{"user 250\nsystem 100\n", 2500e6, 1000e6},
		{"system 1\n", 0, 10e6},
		{"", 0, 0},
	}
	for _, tt := range acct {
		if u, s := parseCPUAcctStat([]byte(tt.in)); u != tt.user || s != tt.system {
			t.Errorf("cpuacct.stat %q = %d, %d; want %d, %d", tt.in, u, s, tt.user, tt.system)
		}
	}
	stat := []struct {
		in                  string
		ok                  bool
		usage, user, system uint64
	}{
		{"usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 0\n", true, 5e6, 3e6, 2e6},
		{"usage_usec 0\n", true, 0, 0, 0},
		{"user_usec 3\n", false, 0, 3000, 0},
		{"", false, 0, 0, 0},
	}
	for _, tt := range stat {
		ok, usage, user, system := parseCPUStatV2([]byte(tt.in))
		if ok != tt.ok || usage != tt.usage || user != tt.user || system != tt.system {
			t.Errorf("cpu.stat %q = %v %d %d %d; want %v %d %d %d", tt.in, ok, usage, user, system, tt.ok, tt.usage, tt.user, tt.system)
		}
	}
	max := []struct {
		in            string
		quota, period uint64
	}{
		{"max 100000\n", 0, 100000},
		{"50000 100000\n", 50000, 100000},
		{"max\n", 0, 0},
		{"", 0, 0},
	}
	for _, tt := range max {
		if q, p := parseCPUMax([]byte(tt.in)); q != tt.quota || p != tt.period {
			t.Errorf("cpu.max %q = %d %d; want %d %d", tt.in, q, p, tt.quota, tt.period)
		}
	}
}

func TestParseSmallFiles(t *testing.T) {
	uints := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"42", 42, false},
		{"max", 0, false},
		{"-1", 0, false},
		{"18446744073709551615", 1<<64 - 1, false},
		{"18446744073709551616", 0, true},
		{"-0", 0, true},
		{"+5", 0, true},
		{"", 0, true},
	}
	for _, tt := range uints {
		if got, err := parseUint([]byte(tt.in)); got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseUint(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	procs := []struct {
		in   string
		want []int
	}{
		{"1\n22\n333\n", []int{1, 22, 333}},
		{"", nil},
		{"\n", nil},
		{"7", []int{7}},
		{"x\n8\n", []int{8}},
	}
	for _, tt := range procs {
		if got := parseProcs([]byte(tt.in), nil); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseProcs(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	events := []struct {
		in   string
		want uint64
	}{
		{"low 0\nhigh 1\nmax 3\noom 4\noom_kill 5\n", 3},
		{"max_x 3\n", 0},
		{"", 0},
	}
	for _, tt := range events {
		if got := parseMemoryEventsMax([]byte(tt.in)); got != tt.want {
			t.Errorf("memory.events %q: max = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestCgroupV1Swap(t *testing.T) {
	root := t.TempDir()
	writeV1(t, root, "/c", cgVals{usage: 100, limit: 1000})
	writeFiles(t, root, map[string]string{
		"memory/memory.memsw.usage_in_bytes":   "0\n", // at the mount: the kernel accounts swap
		"memory/c/memory.memsw.usage_in_bytes": "150\n",
		"memory/c/memory.memsw.limit_in_bytes": "1500\n",
	})
	cg, err := newCgroupV1(root)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cg.read(testReader(t), "/c", t0)
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasSwap || s.SwapUsage != 50 || s.SwapLimit != 500 {
		t.Errorf("swap = %v %d/%d, want 50/500", s.HasSwap, s.SwapUsage, s.SwapLimit)
	}
}
