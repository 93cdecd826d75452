package eviction

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func TestMemcgValue(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	const mi = 1 << 20
	// capacity 1000Mi (available 300 + working set 700), inactive file 50Mi.
	m := &statsapi.MemoryStats{AvailableBytes: u(300 * mi), WorkingSetBytes: u(700 * mi), UsageBytes: u(750 * mi)}
	q := resource.MustParse("100Mi")
	if v, ok := memcgValue(Threshold{Value: Value{Quantity: &q}}, m); !ok || v != 950*mi {
		t.Errorf("quantity threshold: usage %d, want %d", v, 950*mi)
	}
	if v, ok := memcgValue(Threshold{Value: Value{Percentage: 0.5}}, m); !ok || v != 550*mi {
		t.Errorf("percentage threshold: usage %d, want %d", v, 550*mi)
	}
	if _, ok := memcgValue(Threshold{Value: Value{Quantity: &q}}, &statsapi.MemoryStats{}); ok {
		t.Error("incomplete stats gave a value")
	}
}

// The kernel signals the notifier when a cgroup's usage crosses the value,
// on a cgroup v1 memory hierarchy (root needed): a process charging 8 MiB
// of shared memory to a fresh cgroup crosses a value 4 MiB above its usage.
func TestNotifierIntegration(t *testing.T) {
	root := "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(root, "cgroup.event_control")); err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and a cgroup v1 memory hierarchy")
	}
	dir := filepath.Join(root, fmt.Sprintf("berth-eviction-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shm := filepath.Join("/dev/shm", filepath.Base(dir))
	t.Cleanup(func() {
		os.Remove(shm) // uncharges the pages, so that the cgroup can go
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	b, err := os.ReadFile(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	usage, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	crossed := make(chan struct{}, 1)
	n, err := startNotifier(dir, usage+4<<20, crossed)
	if err != nil {
		t.Fatal(err)
	}
	defer n.stop()
	select {
	case <-crossed:
		t.Fatal("notified before anything was charged")
	default:
	}
	script := fmt.Sprintf("echo $$ > %s/cgroup.procs && dd if=/dev/zero of=%s bs=1M count=8 2>/dev/null", dir, shm)
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("charge the cgroup: %v: %s", err, out)
	}
	select {
	case <-crossed:
	case <-time.After(10 * time.Second): // a hang guard, not a timing target
		t.Fatal("no notification after the usage crossed the value")
	}
}
