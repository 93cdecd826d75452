package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sameContainers checks that every pod still runs exactly the containers
// the API reported in before, none restarted, and that the API still
// reports those containers.
func (env *environment) sameContainers(t *testing.T, before map[types.UID][]string, now []v1.Pod) {
	t.Helper()
	after := containerIDs(now)
	for uid, ids := range before {
		cs, err := env.podContainers(uid)
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, c := range cs {
			if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Errorf("pod %s: container %s is %s", uid, shortID(c.Id), c.State)
			}
			have = append(have, c.Id)
		}
		slices.Sort(have)
		want := slices.Sorted(slices.Values(ids))
		if !slices.Equal(have, want) {
			t.Errorf("pod %s: runtime has %s, want the containers %v from before", uid, describeContainers(cs), want)
		}
		if got := slices.Sorted(slices.Values(after[uid])); !slices.Equal(got, want) {
			t.Errorf("pod %s: the API now reports containers %v, before %v", uid, got, want)
		}
	}
	for _, p := range now {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount != 0 {
				t.Errorf("pod %s container %s: restartCount %d, want 0", p.Name, cs.Name, cs.RestartCount)
			}
		}
	}
}

func TestBerthRestart(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createDeployment(t, ns, deployment("steady", 2, sleeper("steady")))
	doomed := env.createPod(t, ns, sleeper("doomed", withGrace(2)))
	pods, _ := env.waitReady(t, ns, "steady", 2, 30*time.Second)
	env.waitReady(t, ns, "doomed", 1, 30*time.Second)
	before := containerIDs(pods)

	if err := env.berth.kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// Deleted while berth is down: the pod waits, being deleted, for a
	// kubelet to stop it.
	env.deletePod(t, doomed)
	p, err := env.getPod(ns, doomed.Name)
	if err != nil || p == nil || p.DeletionTimestamp == nil {
		t.Fatalf("pod %s right after deletion with berth down: err %v, exists %v; want it there, being deleted", doomed.Name, err, p != nil)
	}

	start := time.Now()
	if err := env.berth.start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("berth started again %s after SIGKILL; healthy in %s", since(killed), since(start))
	env.eventually(t, 30*time.Second, env.nodeReady)
	took := env.eventually(t, 20*time.Second, env.leaseRenewedAfter(start))
	t.Logf("lease renewed %s after the restart", took.Round(time.Millisecond))

	env.eventually(t, 30*time.Second, env.noContainers(doomed.UID, false))
	env.eventually(t, 10*time.Second, env.podGone(ns, doomed.Name))
	t.Logf("pod deleted while berth was down: containers and pod gone %s after the restart", since(start))

	now, _ := env.waitReady(t, ns, "steady", 2, 10*time.Second)
	env.sameContainers(t, before, now)
}

func TestAPIServerRestart(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createDeployment(t, ns, deployment("survivor", 1, sleeper("survivor")))
	pods, _ := env.waitReady(t, ns, "survivor", 1, 30*time.Second)
	before := containerIDs(pods)

	// Registered after the namespace's clean-up, so run before it: the
	// clean-up needs the apiserver.
	t.Cleanup(func() {
		if !env.apiserverReady() {
			if out, err := env.clusterScript("up"); err != nil {
				t.Errorf("hack/cluster.sh up: %v\n%s", err, out)
			}
		}
	})
	// It stops serving at SIGTERM.
	down := time.Now()
	env.stopComponent(t, "kube-apiserver")
	for time.Since(down) < 20*time.Second {
		if err := env.berth.exitedUnexpectedly(); err != nil {
			t.Fatalf("%s after the apiserver stopped: %v", since(down), err)
		}
		for uid, ids := range before {
			for _, id := range ids {
				if err := env.containerRunning(id); err != nil {
					t.Fatalf("%s after the apiserver stopped: pod %s: %v", since(down), uid, err)
				}
			}
		}
		time.Sleep(time.Second)
	}

	t.Logf("apiserver down for %s; berth and the pod's container ran on", since(down))
	start := time.Now()
	if out, err := env.clusterScript("up"); err != nil {
		t.Fatalf("hack/cluster.sh up: %v\n%s", err, out)
	}
	t.Logf("hack/cluster.sh up restarted it in %s", since(start))
	took := env.eventually(t, 60*time.Second, env.leaseRenewedAfter(start))
	t.Logf("lease renewed %s after the apiserver came back", took.Round(time.Millisecond))
	env.eventually(t, 30*time.Second, env.nodeReady)

	start = time.Now()
	env.scale(t, ns, "survivor", 2)
	now, took := env.waitReady(t, ns, "survivor", 2, 60*time.Second)
	t.Logf("scaled to 2 after the apiserver restart -> 2 Ready: %s", took.Round(time.Millisecond))
	var old []v1.Pod
	for _, p := range now {
		if _, ok := before[p.UID]; ok {
			old = append(old, p)
		}
	}
	if len(old) != 1 {
		t.Fatalf("the pod from before the restart is gone: %s", describePods(now))
	}
	env.sameContainers(t, before, old)
}

// containerRunning fails unless the container with id runs.
func (env *environment) containerRunning(id string) error {
	ctx, cancel := criContext()
	defer cancel()
	resp, err := env.rt.ContainerStatus(ctx, id, false)
	if err != nil {
		return fmt.Errorf("container %s: %w", shortID(id), err)
	}
	if s := resp.GetStatus().GetState(); s != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("container %s is %s", shortID(id), s)
	}
	return nil
}

// stopComponent stops the control plane process name through its pid file
// in the state dir as hack/cluster.sh does: SIGTERM, then SIGKILL after
// 15 s. (The apiserver stops serving at once but drains long-running
// requests for up to a minute.)
func (env *environment) stopComponent(t *testing.T, name string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.stateDir, name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("%s.pid: %v", name, err)
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if got := strings.TrimSpace(string(comm)); got != name[:min(len(name), 15)] {
		t.Fatalf("pid %d from %s.pid is %q, not %s", pid, name, got, name)
	}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop %s: %v", name, err)
	}
	gone := func() (bool, string) {
		return !processRunning(pid), fmt.Sprintf("%s (pid %d) still runs", name, pid)
	}
	if _, err := poll(15*time.Second, func() (bool, string, error) { ok, msg := gone(); return ok, msg, nil }); err != nil {
		t.Logf("%s still runs 15 s after SIGTERM; killing it", name)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		env.eventually(t, 10*time.Second, gone)
	}
	t.Logf("stopped %s (pid %d) in %s", name, pid, since(start))
}

// processRunning: the process exists and is not a zombie.
func processRunning(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(stat), ") ")
	return ok && !strings.HasPrefix(rest, "Z")
}
