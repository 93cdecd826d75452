package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killContainerd SIGKILLs the containerd daemon alone, as a crash would: its
// shims and so the containers keep running.
func (env *environment) killContainerd(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.stateDir, "containerd.pid"))
	if err != nil {
		t.Fatalf("containerd pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("containerd pid %q: %v", data, err)
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "containerd" {
		t.Fatalf("pid %d from containerd.pid is %q, not containerd", pid, strings.TrimSpace(string(comm)))
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill containerd: %v", err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		if err == nil {
			// A zombie until setsid's parent shell (gone) lets init reap it.
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if i := strings.LastIndex(string(stat), ") "); i >= 0 && strings.HasPrefix(string(stat)[i+2:], "Z") {
				return true, ""
			}
		}
		return err != nil, fmt.Sprintf("containerd %d still alive", pid)
	})
}

// restartContainerd starts containerd again on the same config and state,
// the way hack/containerd.sh does, and waits until CRI answers.
//
// It does not use `hack/containerd.sh up`: when the daemon is dead, up
// first cleans the leftovers of the dead instance, which kills every
// container and shim, and this test needs them to survive the outage.
func (env *environment) restartContainerd(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(filepath.Join(env.stateDir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("containerd", "--config", filepath.Join(env.stateDir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	// hack/containerd.sh down finds the daemon through the pid file.
	if err := os.WriteFile(filepath.Join(env.stateDir, "containerd.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }() // reap it if it dies while the tests run
	eventually(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := env.rt.ListPodSandbox(ctx, nil); err != nil {
			return false, "CRI not answering: " + err.Error()
		}
		return true, ""
	})
}

func TestRuntimeRestart(t *testing.T) {
	b := startBerth(t)
	env := b.env
	b.writePod(shellPod("survivor", "sleep 3600"))
	before := b.runningContainer("survivor", "main", 10*time.Second)
	b.eventually(10*time.Second, b.podCond("survivor", podRunning))

	logBefore := len(b.log())
	down := time.Now()
	env.killContainerd(t)
	// A pod dropped in while the runtime is down starts once it is back.
	b.writePod(shellPod("latecomer", "sleep 3600"))
	// Let berth's relist (every 1 s) and the new pod's worker hit the outage
	// for a while: long enough that the worker's own retry back-off (1 s
	// doubling) would leave it waiting well after the runtime is back.
	time.Sleep(8 * time.Second)
	if !b.running() {
		t.Fatalf("berth exited while containerd was down: %v", b.exitedUnexpectedly())
	}
	if body, err := b.get("/healthz"); err != nil {
		t.Logf("/healthz during the outage: %v", err)
	} else {
		t.Logf("/healthz during the outage: %q", body)
	}
	outage := b.log()[logBefore:]
	logged := false
	for _, sign := range []string{"Unavailable", "connection refused", "rpc error", "containerd.sock"} {
		if strings.Contains(outage, sign) {
			logged = true
		}
	}
	if !logged {
		t.Errorf("berth's log says nothing about the runtime outage (no Unavailable / connection refused / rpc error / containerd.sock since the kill)")
	}

	env.restartContainerd(t)
	t.Logf("containerd was down for %s", time.Since(down).Round(time.Millisecond))

	d := b.eventually(30*time.Second, b.podCond("latecomer", podRunning))
	t.Logf("latecomer Running %s after containerd was back", d.Round(time.Millisecond))
	// How soon is a speed figure, not a pass/fail rule here: on a loaded
	// machine RunPodSandbox alone can take seconds. That the PLEG wakes every
	// pod on recovery is tested in internal/pleg (OnRecovered).
	b.eventually(10*time.Second, b.podCond("survivor", podRunning))
	cs, err := env.containersNamed("survivor", "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Id != before.Id || len(running(cs)) != 1 {
		t.Errorf("survivor: want its original container %s still running alone, have %s", shortID(before.Id), describeContainers(cs))
	}
	p, err := b.pod("survivor")
	if err != nil || p == nil {
		t.Fatalf("survivor gone from /pods: %v", err)
	}
	if c := containerStatus(p, "main"); c == nil || c.RestartCount != 0 {
		t.Errorf("survivor restarted: %s", describePod(p))
	}
	if !b.running() {
		t.Errorf("berth exited: %v", b.exitedUnexpectedly())
	}
}
