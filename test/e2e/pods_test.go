package e2e

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podRunning is a condition: /pods reports the pod Running and Ready with
// every container running.
func podRunning(p *v1.Pod) (bool, string) {
	ok := p.Status.Phase == v1.PodRunning
	if c := condition(p, v1.PodReady); c == nil || c.Status != v1.ConditionTrue {
		ok = false
	}
	if len(p.Status.ContainerStatuses) == 0 {
		ok = false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil {
			ok = false
		}
	}
	return ok, describePod(p)
}

// runningContainer waits until container cname of pod name runs in CRI and
// returns it.
func (b *berth) runningContainer(name, cname string, timeout time.Duration) *runtimeapi.Container {
	b.t.Helper()
	var found *runtimeapi.Container
	b.eventually(timeout, func() (bool, string) {
		cs, err := b.env.containersNamed(name, cname)
		if err != nil {
			return false, err.Error()
		}
		if r := running(cs); len(r) > 0 {
			found = r[len(r)-1]
			return true, ""
		}
		return false, fmt.Sprintf("%s/%s: %s", name, cname, describeContainers(cs))
	})
	return found
}

func TestPodRuns(t *testing.T) {
	b := startBerth(t)
	pod := shellPod("runs", "sleep 3600")

	start := time.Now()
	b.writePod(pod)
	c := b.runningContainer("runs", "main", 10*time.Second)
	took := time.Since(start)
	t.Logf("manifest written -> container running in CRI: %s (target < 2s)", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Logf("NOTE: slower than the 2 s target")
	}

	for k, want := range map[string]string{
		labelPodName:       staticName("runs"),
		labelPodNamespace:  "default",
		labelContainerName: "main",
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("container label %s = %q, want %q", k, got, want)
		}
	}
	if c.Labels[labelPodUID] == "" {
		t.Errorf("container has no %s label", labelPodUID)
	}

	b.eventually(10*time.Second, b.podCond("runs", podRunning))
	p, err := b.pod("runs")
	if err != nil || p == nil {
		t.Fatalf("pod gone from /pods: %v", err)
	}
	if string(p.UID) != c.Labels[labelPodUID] {
		t.Errorf("/pods uid %q, container label uid %q", p.UID, c.Labels[labelPodUID])
	}
	if p.Namespace != "default" {
		t.Errorf("namespace %q, want default", p.Namespace)
	}
	cs := containerStatus(p, "main")
	if cs == nil {
		t.Fatalf("no status for container main: %s", describePod(p))
	}
	if cs.ContainerID != "containerd://"+c.Id {
		t.Errorf("containerStatuses[0].containerID %q, want containerd://%s", cs.ContainerID, c.Id)
	}
	if cs.RestartCount != 0 {
		t.Errorf("restartCount %d, want 0", cs.RestartCount)
	}
}

func TestInitContainersInOrder(t *testing.T) {
	b := startBerth(t)
	pod := shellPod("init-order", "sleep 3600", withInit(
		shellContainer("init-a", "sleep 0.3"),
		shellContainer("init-b", "sleep 0.3"),
	))
	b.writePod(pod)
	app := b.runningContainer("init-order", "main", 20*time.Second)
	b.eventually(10*time.Second, b.podCond("init-order", podRunning))

	status := func(cname string) *runtimeapi.ContainerStatus {
		t.Helper()
		cs, err := b.env.containersNamed("init-order", cname)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 {
			t.Fatalf("init container %s: want exactly one instance in CRI, have %s", cname, describeContainers(cs))
		}
		st, err := b.env.containerStatus(cs[0].Id)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	a, bb := status("init-a"), status("init-b")
	appSt, err := b.env.containerStatus(app.Id)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*runtimeapi.ContainerStatus{a, bb} {
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 {
			t.Errorf("init container %s: state %s exit %d, want exited 0", st.GetMetadata().GetName(), st.State, st.ExitCode)
		}
	}
	ts := func(ns int64) string { return time.Unix(0, ns).Format("15:04:05.000") }
	t.Logf("init-a created %s started %s finished %s; init-b created %s started %s finished %s; main created %s",
		ts(a.CreatedAt), ts(a.StartedAt), ts(a.FinishedAt), ts(bb.CreatedAt), ts(bb.StartedAt), ts(bb.FinishedAt), ts(appSt.CreatedAt))
	if !(a.FinishedAt <= bb.CreatedAt) {
		t.Errorf("init-b was created (%s) before init-a finished (%s)", ts(bb.CreatedAt), ts(a.FinishedAt))
	}
	if !(bb.FinishedAt <= appSt.CreatedAt) {
		t.Errorf("main was created (%s) before init-b finished (%s)", ts(appSt.CreatedAt), ts(bb.FinishedAt))
	}

	p, err := b.pod("init-order")
	if err != nil || p == nil {
		t.Fatalf("pod gone from /pods: %v", err)
	}
	for _, name := range []string{"init-a", "init-b"} {
		cs := containerStatus(p, name)
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 || cs.State.Terminated.Reason != "Completed" {
			t.Errorf("/pods init container %s: want terminated, exit 0, reason Completed; pod %s", name, describePod(p))
		}
	}
	if c := condition(p, v1.PodInitialized); c == nil || c.Status != v1.ConditionTrue {
		t.Errorf("Initialized condition not True: %s", describePod(p))
	}
}

func TestFailingInitBlocksApp(t *testing.T) {
	b := startBerth(t)
	b.writePod(shellPod("init-fail-never", "sleep 3600",
		withRestartPolicy(v1.RestartPolicyNever),
		withInit(shellContainer("init", "exit 1"))))
	b.writePod(shellPod("init-fail-always", "sleep 3600",
		withInit(shellContainer("init", "exit 1"))))

	noApp := func(name string) error {
		cs, err := b.env.containersNamed(name, "main")
		if err != nil {
			return err
		}
		if len(cs) > 0 {
			return fmt.Errorf("app container created although init failed: %s", describeContainers(cs))
		}
		return nil
	}
	parallel(t, map[string]func() error{
		"restartPolicy Never": func() error {
			d, err := b.poll(20*time.Second, b.podCond("init-fail-never", func(p *v1.Pod) (bool, string) {
				return p.Status.Phase == v1.PodFailed, describePod(p)
			}))
			if err != nil {
				return err
			}
			t.Logf("init-fail-never: phase Failed after %s", d.Round(time.Millisecond))
			p, err := b.pod("init-fail-never")
			if err != nil {
				return err
			}
			if cs := containerStatus(p, "init"); cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 1 {
				return fmt.Errorf("init status: want terminated exit 1; %s", describePod(p))
			}
			// Nothing more may happen: the init container is not run again.
			time.Sleep(3 * time.Second)
			cs, err := b.env.containersNamed("init-fail-never", "init")
			if err != nil {
				return err
			}
			if len(cs) != 1 {
				return fmt.Errorf("init container ran %d times with restartPolicy Never: %s", len(cs), describeContainers(cs))
			}
			return noApp("init-fail-never")
		},
		"restartPolicy Always": func() error {
			d, err := b.poll(40*time.Second, b.podCond("init-fail-always", func(p *v1.Pod) (bool, string) {
				cs := containerStatus(p, "init")
				return cs != nil && cs.RestartCount >= 1, describePod(p)
			}))
			if err != nil {
				return err
			}
			t.Logf("init-fail-always: init restarted after %s", d.Round(time.Millisecond))
			p, err := b.pod("init-fail-always")
			if err != nil {
				return err
			}
			if p.Status.Phase != v1.PodPending {
				return fmt.Errorf("phase %q, want Pending while init containers fail; %s", p.Status.Phase, describePod(p))
			}
			return noApp("init-fail-always")
		},
	})
}

func TestCrashLoopBackOff(t *testing.T) {
	b := startBerth(t)
	b.writePod(shellPod("crash", "exit 3"))

	// The back-off between starts is measured from the runtime's own
	// timestamps. berth removes an instance once a newer one has exited,
	// so every instance seen while waiting is remembered.
	byAttempt := map[uint32]*runtimeapi.Container{}
	var seen []*runtimeapi.Container
	seenBackOff := false
	crashLooping := b.podCond("crash", func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		if cs == nil {
			return false, describePod(p)
		}
		if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" {
			seenBackOff = true
		}
		return cs.RestartCount >= 2 && seenBackOff, describePod(p) + fmt.Sprintf(" (CrashLoopBackOff seen: %v)", seenBackOff)
	})
	b.eventually(60*time.Second, func() (bool, string) {
		if cs, err := b.env.containersNamed("crash", "main"); err == nil {
			seen = cs
			for _, c := range cs {
				byAttempt[c.GetMetadata().GetAttempt()] = c
			}
		}
		ok, msg := crashLooping()
		return ok && byAttempt[2] != nil, msg
	})
	p, err := b.pod("crash")
	if err != nil || p == nil {
		t.Fatalf("pod gone from /pods: %v", err)
	}
	cs := containerStatus(p, "main")
	if term := cs.LastTerminationState.Terminated; term == nil || term.ExitCode != 3 {
		t.Errorf("lastState.terminated: want exit code 3; %s", describePod(p))
	}
	if p.Status.Phase != v1.PodRunning {
		// Upstream: a pod whose containers all crash-loop under Always is Running.
		t.Errorf("phase %q, want Running; %s", p.Status.Phase, describePod(p))
	}

	second, third := byAttempt[1], byAttempt[2]
	if second == nil || third == nil {
		t.Fatalf("want attempts 1 and 2 seen in CRI to measure the back-off, have %s", describeContainers(seen))
	}
	gap := time.Duration(third.CreatedAt - second.CreatedAt)
	t.Logf("gap between 2nd and 3rd start: %s", gap.Round(time.Millisecond))
	if first := byAttempt[0]; first != nil {
		t.Logf("gap between 1st and 2nd start: %s", time.Duration(second.CreatedAt-first.CreatedAt).Round(time.Millisecond))
	}
	if gap < 9*time.Second {
		t.Errorf("2nd -> 3rd start took %s, want >= ~10s of back-off", gap)
	}
}

func TestRestartPolicyNever(t *testing.T) {
	b := startBerth(t)
	cases := []struct {
		pod   string
		exit  int
		rp    v1.RestartPolicy
		phase v1.PodPhase
	}{
		{"never-ok", 0, v1.RestartPolicyNever, v1.PodSucceeded},
		{"never-fail", 2, v1.RestartPolicyNever, v1.PodFailed},
		{"onfailure-ok", 0, v1.RestartPolicyOnFailure, v1.PodSucceeded},
	}
	for _, c := range cases {
		b.writePod(shellPod(c.pod, fmt.Sprintf("exit %d", c.exit), withRestartPolicy(c.rp)))
	}
	checks := map[string]func() error{}
	for _, c := range cases {
		checks[c.pod] = func() error {
			d, err := b.poll(20*time.Second, b.podCond(c.pod, func(p *v1.Pod) (bool, string) {
				return p.Status.Phase == c.phase, describePod(p)
			}))
			if err != nil {
				return err
			}
			t.Logf("%s: phase %s after %s", c.pod, c.phase, d.Round(time.Millisecond))
			p, err := b.pod(c.pod)
			if err != nil {
				return err
			}
			cs := containerStatus(p, "main")
			if cs == nil || cs.State.Terminated == nil || int(cs.State.Terminated.ExitCode) != c.exit {
				return fmt.Errorf("want terminated with exit %d; %s", c.exit, describePod(p))
			}
			// Nothing may happen now: the container is not restarted.
			time.Sleep(5 * time.Second)
			all, err := b.env.containersNamed(c.pod, "main")
			if err != nil {
				return err
			}
			if len(all) != 1 || all[0].State != runtimeapi.ContainerState_CONTAINER_EXITED {
				return fmt.Errorf("want one exited container 5 s after the pod finished, have %s", describeContainers(all))
			}
			p, err = b.pod(c.pod)
			if err != nil {
				return err
			}
			if cs := containerStatus(p, "main"); p.Status.Phase != c.phase || cs == nil || cs.RestartCount != 0 {
				return fmt.Errorf("5 s later: want phase %s and no restart; %s", c.phase, describePod(p))
			}
			return nil
		}
	}
	parallel(t, checks)
}
