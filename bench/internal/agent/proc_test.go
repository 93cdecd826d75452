package agent

import (
	"os"
	"strings"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// Field 2 with spaces and a ")" must not shift the counting.
	line := []byte("1234 (kube let) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 12 0 100 0 0\n")
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.8 {
		t.Fatalf("got %v, want 3.8 (380 ticks)", got)
	}
	if _, err := parseStatCPU([]byte("garbage")); err == nil {
		t.Fatal("no error for a malformed line")
	}
}

func TestParseStatus(t *testing.T) {
	rss, anon, threads, err := parseStatus([]byte("Name:\tberth\nVmRSS:\t   40960 kB\nRssAnon:\t 1024 kB\nThreads:\t17\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rss != 40960*1024 || anon != 1024*1024 || threads != 17 {
		t.Fatalf("got rss %v anon %v threads %d", rss, anon, threads)
	}
	if _, _, _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Fatal("no error without VmRSS")
	}
}

func TestReadUsageSelf(t *testing.T) {
	u, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.Threads <= 0 {
		t.Fatalf("implausible usage %+v", u)
	}
}

func TestConfigYAML(t *testing.T) {
	c := Config{Name: "berth", Dir: "/d", RuntimeEndpoint: "unix:///s", ClientCAFile: "/ca", Port: 1, HealthzPort: 2, MaxPods: 3, CgroupRoot: "/r"}
	b, err := c.ConfigYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"containerRuntimeEndpoint: unix:///s\n", "podLogsDir: /d/pod-logs\n", "maxPods: 3\n", "cgroupRoot: /r\n", "clientCAFile: /ca\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config lacks %q:\n%s", want, b)
		}
	}
}

func TestParseHistograms(t *testing.T) {
	text := `# HELP kubelet_runtime_operations_duration_seconds x
# TYPE kubelet_runtime_operations_duration_seconds histogram
kubelet_runtime_operations_duration_seconds_bucket{operation_type="run_podsandbox",le="+Inf"} 2
kubelet_runtime_operations_duration_seconds_sum{operation_type="run_podsandbox"} 0.5
kubelet_runtime_operations_duration_seconds_count{operation_type="run_podsandbox"} 2
kubelet_runtime_operations_duration_seconds_bucket{operation_type="start_container",le="+Inf"} 1
kubelet_runtime_operations_duration_seconds_sum{operation_type="start_container"} 0.1
kubelet_runtime_operations_duration_seconds_count{operation_type="start_container"} 1
`
	got, err := parseHistograms(text, "kubelet_runtime_operations_duration_seconds", "operation_type")
	if err != nil {
		t.Fatal(err)
	}
	if s := got["run_podsandbox"]; s.Sum != 0.5 || s.Count != 2 {
		t.Fatalf("run_podsandbox = %+v", s)
	}
	before := OpStats{"run_podsandbox": {Sum: 0.2, Count: 1}, "start_container": {Sum: 0.1, Count: 1}}
	d := got.Sub(before)
	if s := d["run_podsandbox"]; s.Count != 1 || s.Sum < 0.299 || s.Sum > 0.301 {
		t.Fatalf("diff = %+v", d)
	}
	if _, ok := d["start_container"]; ok {
		t.Fatalf("unchanged series kept: %+v", d)
	}
}

func TestParseNodeCPU(t *testing.T) {
	got, err := parseNodeCPU([]byte("cpu  100 5 50 1000 20 3 2 1 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq+steal = 161 ticks.
	if got != 1.61 {
		t.Fatalf("got %v, want 1.61", got)
	}
}
