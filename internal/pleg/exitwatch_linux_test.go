package pleg

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	testclock "k8s.io/utils/clock/testing"
)

func TestExitWatcherNoticesExit(t *testing.T) {
	exited := make(chan types.UID, 2)
	w, err := newExitWatcher(func(_ string, uid types.UID) { exited <- uid }, clock.RealClock{})
	if err != nil {
		t.Skipf("no epoll here: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := w.add("c1", "pod-a", cmd.Process.Pid); err != nil {
		t.Skipf("pidfd_open not supported: %v", err)
	}
	if !w.watching("c1") {
		t.Fatal("not watching c1 after add")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	select {
	case uid := <-exited:
		if uid != "pod-a" {
			t.Fatalf("exit reported for %q", uid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exit not noticed")
	}
	if w.watching("c1") {
		t.Fatal("still watching a container whose process exited")
	}

	// A process that is already gone counts as exited at once.
	if err := w.add("c2", "pod-b", cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	select {
	case uid := <-exited:
		if uid != "pod-b" {
			t.Fatalf("exit reported for %q", uid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a gone process was not reported")
	}
}

func TestExitWatcherKeepOnly(t *testing.T) {
	clk := testclock.NewFakeClock(time.Unix(100, 0))
	w, err := newExitWatcher(func(string, types.UID) {}, clk)
	if err != nil {
		t.Skipf("no epoll here: %v", err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := w.add("c1", "pod-a", cmd.Process.Pid); err != nil {
		t.Skipf("pidfd_open not supported: %v", err)
	}
	// A relist that started before the watch began does not know the
	// container yet: the watch stays (timing.go).
	w.keepOnly(map[string]bool{"other": true}, clk.Now().Add(-time.Millisecond))
	if !w.watching("c1") {
		t.Fatal("keepOnly dropped a watch newer than the relist")
	}
	clk.Step(time.Second)
	w.keepOnly(map[string]bool{"other": true}, clk.Now())
	if w.watching("c1") {
		t.Fatal("keepOnly kept a container that is not running")
	}
}
