package oom

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestOOMKillsCounter(t *testing.T) {
	if n := oomKills("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n"); n != 2 {
		t.Errorf("oomKills = %d, want 2", n)
	}
	if n := oomKills("low 0\n"); n != 0 {
		t.Errorf("oomKills without the counter = %d", n)
	}
}

// TestContainerMonitor runs a process over its memory limit in a cgroup of
// its own, named as a container's below a pod's, and expects the monitor
// to see the kill. It needs root and a writable cgroup mount.
func TestContainerMonitor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	const mount = "/sys/fs/cgroup"
	m, err := NewContainerMonitor(mount)
	if err != nil {
		t.Fatal(err)
	}
	pod := fmt.Sprintf("/berth-oom-test-%d", time.Now().UnixNano())
	const id = "0123456789abcdef"
	dir := filepath.Join(m.mount, pod, id)
	if m.v2 {
		t.Skip("cgroup v2 controller delegation is the cgroup manager's; covered by the e2e test")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() {
		_ = os.Remove(dir)
		_ = os.Remove(filepath.Join(m.mount, pod))
	})
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte("8388608"), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := m.Watch(pod, id); err != nil {
		t.Fatal(err)
	}
	if m.OOMKilled(id) {
		t.Fatal("OOM reported before any")
	}
	// The shell moves itself into the cgroup, then tail buffers /dev/zero.
	cmd := exec.Command("sh", "-c", "echo $$ > "+filepath.Join(dir, "cgroup.procs")+" && exec tail /dev/zero")
	if err := cmd.Run(); err == nil {
		t.Fatal("the memory hog exited without being killed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !m.OOMKilled(id) {
		if time.Now().After(deadline) {
			t.Fatal("the OOM kill was not noticed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
