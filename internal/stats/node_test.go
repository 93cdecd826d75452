package stats

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseMeminfo(t *testing.T) {
	m, err := parseMeminfo([]byte("MemTotal:       16314424 kB\nMemFree:  100 kB\nInactive(file):   50 kB\nHugePages_Total:       0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := meminfo{MemTotal: 16314424 * 1024, MemFree: 100 * 1024, InactiveFile: 50 * 1024}
	if m != want {
		t.Errorf("meminfo = %+v, want %+v", m, want)
	}
	if _, err := parseMeminfo([]byte("MemFree: 1 kB\n")); err == nil {
		t.Error("meminfo without MemTotal parsed")
	}
}

func TestParseProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal
	ps, err := parseProcStat([]byte("cpu  100 10 50 9999 77 5 5 2 0 0\ncpu0 1 1 1 1 1 1 1 1\nbtime 1700000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	tick := uint64(time.Second / userHZ)
	if want := (100 + 10 + 50 + 5 + 5 + 2) * tick; ps.CPUUsage != want {
		t.Errorf("usage = %d, want %d (idle and iowait are not busy)", ps.CPUUsage, want)
	}
	if !ps.BootTime.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("boot time = %v", ps.BootTime)
	}
}

func TestParseNetDev(t *testing.T) {
	got, err := parseNetDev([]byte(netDevHeader + netDevLine("lo", 1, 1) + netDevLine("eth0", 1000, 2000) +
		netDevLine("veth9", 3, 3) + netDevLine("cni0", 5, 6)))
	if err != nil {
		t.Fatal(err)
	}
	want := []ifaceStats{
		{Name: "eth0", RxBytes: 1000, RxPackets: 10, RxErrors: 1, RxDropped: 2, TxBytes: 2000, TxPackets: 20, TxErrors: 3, TxDropped: 4},
		{Name: "cni0", RxBytes: 5, RxPackets: 10, RxErrors: 1, RxDropped: 2, TxBytes: 6, TxPackets: 20, TxErrors: 3, TxDropped: 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("interfaces:\n got %+v\nwant %+v", got, want)
	}
	if _, err := parseNetDev([]byte(netDevHeader + "eth0: 1 2 3\n")); err == nil {
		t.Error("short line parsed")
	}
}

func TestReadRlimit(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, 1)
	got := readRlimit(testReader(t), root)
	want := rlimit{MaxPID: 63000, Running: 345, HasMax: true, HasRun: true}
	if got != want {
		t.Errorf("rlimit = %+v, want %+v (the smaller of pid_max and threads-max)", got, want)
	}
}

func TestReadNodeV2UsesRootMemoryStat(t *testing.T) {
	root, proc := t.TempDir(), t.TempDir()
	writeProc(t, proc, 1)
	// A v2 root has cpu.stat and memory.stat but no memory.current.
	writeFiles(t, root, map[string]string{
		"cpu.stat":    "usage_usec 5000000\n",
		"memory.stat": "anon 100\nfile 300\ninactive_file 50\npgfault 9\n",
	})
	s, err := readNode(testReader(t), &cgroupV2{root: root}, proc, t0)
	if err != nil {
		t.Fatal(err)
	}
	if s.CPUUsage != 5e9 || s.MemUsage != 400 || s.MemWorkingSet != 350 || s.MemRSS != 100 || s.PgFault != 9 {
		t.Errorf("node sample = %+v", s)
	}
	if s.MemLimit != 8000000*1024 || s.SwapUsage != 100000*1024 || s.SwapLimit != 1000000*1024 {
		t.Errorf("node limits = mem %d swap %d/%d", s.MemLimit, s.SwapUsage, s.SwapLimit)
	}
}

func TestReadNodeFallsBackToProc(t *testing.T) {
	proc := t.TempDir()
	writeProc(t, proc, 1)
	s, err := readNode(testReader(t), noCgroups{err: os.ErrNotExist}, proc, t0)
	if err != nil {
		t.Fatal(err)
	}
	tick := uint64(time.Second / userHZ)
	if s.CPUUsage != 150*tick {
		t.Errorf("cpu = %d, want /proc/stat's busy time", s.CPUUsage)
	}
	// meminfo: total 8000000 kB, free 2000000 kB, inactive file 300000 kB.
	if s.MemUsage != 6000000*1024 || s.MemWorkingSet != 5700000*1024 {
		t.Errorf("memory usage %d working set %d", s.MemUsage, s.MemWorkingSet)
	}
}

func TestDirUsage(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a": strings.Repeat("x", 10000), "sub/b": "y"})
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "sub", "a-link")); err != nil {
		t.Fatal(err)
	}
	u, truncated, err := dirUsage(dir, 100)
	if err != nil || truncated {
		t.Fatalf("dirUsage: %v, truncated %v", err, truncated)
	}
	// dir, a, sub, sub/b; the hard link counts once.
	if u.Inodes != 4 {
		t.Errorf("inodes = %d, want 4", u.Inodes)
	}
	if u.Bytes < 10000 {
		t.Errorf("bytes = %d, want at least the 10000 bytes of a", u.Bytes)
	}
	u, truncated, err = dirUsage(dir, 2)
	if err != nil || !truncated || u.Inodes != 2 {
		t.Errorf("with budget 2: %+v truncated=%v err=%v; want 2 entries, truncated", u, truncated, err)
	}
}

func TestLogDirUsage(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"app/0.log": "a", "app/0.log.20260101-000000": "b", "side/0.log": "c", "pod.txt": "d"})
	pod, ctrs, err := logDirUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Inodes != 1 || ctrs["app"].Inodes != 3 || ctrs["side"].Inodes != 2 {
		t.Errorf("pod %+v containers %+v", pod, ctrs)
	}
}

func TestMountDevices(t *testing.T) {
	f := filepath.Join(t.TempDir(), "mountinfo")
	writeFiles(t, filepath.Dir(f), map[string]string{"mountinfo": "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n" +
		"30 22 0:45 / /run rw - tmpfs tmpfs rw\n"})
	devs, err := mountDevices(f)
	if err != nil {
		t.Fatal(err)
	}
	if devs[mkdev(253, 1)] != "/dev/vda1" || devs[mkdev(0, 45)] != "tmpfs" {
		t.Errorf("devices = %v", devs)
	}
}

func TestParseLoadavgTasks(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0.10 0.20 0.30 2/345 678\n", 345, true},
		{"0.10 0.20 0.30 2/345", 345, true},
		{"0.10 0.20 0.30 2345 678\n", 0, false},
		{"0.10 0.20 0.30 2/x 678\n", 0, false},
		{"0.10 0.20\n", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if got, ok := parseLoadavgTasks([]byte(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("parseLoadavgTasks(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
