package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podGone is a condition: the runtime has no container and no sandbox left
// of pod name.
func (env *environment) podGone(name string) func() (bool, string) {
	return func() (bool, string) {
		cs, err := env.containers(name)
		if err != nil {
			return false, err.Error()
		}
		sbs, err := env.sandboxes(name)
		if err != nil {
			return false, err.Error()
		}
		return len(cs) == 0 && len(sbs) == 0, fmt.Sprintf("%s: %s; %s", name, describeContainers(cs), describeSandboxes(sbs))
	}
}

func TestManifestRemovedStopsPod(t *testing.T) {
	b := startBerth(t)
	b.writePod(shellPod("graceful", `trap 'exit 0' TERM; while true; do sleep 0.2; done`, withGrace(30)))
	b.writePod(shellPod("stubborn", `trap '' TERM; while true; do sleep 0.2; done`, withGrace(3)))
	b.runningContainer("graceful", "main", 10*time.Second)
	b.runningContainer("stubborn", "main", 10*time.Second)
	b.eventually(10*time.Second, b.podCond("graceful", podRunning))
	b.eventually(10*time.Second, b.podCond("stubborn", podRunning))

	b.removeManifest("graceful.yaml")
	b.removeManifest("stubborn.yaml")
	parallel(t, map[string]func() error{
		"exits on TERM": func() error {
			d, err := b.poll(10*time.Second, b.env.podGone("graceful"))
			t.Logf("graceful pod (grace 30 s, exits on TERM) gone after %s", d.Round(time.Millisecond))
			return err
		},
		"ignores TERM": func() error {
			d, err := b.poll(10*time.Second, b.env.podGone("stubborn"))
			t.Logf("stubborn pod (grace 3 s, ignores TERM) gone after %s", d.Round(time.Millisecond))
			if err == nil && d < 2500*time.Millisecond {
				return fmt.Errorf("gone after %s: killed before its 3 s grace period ended", d)
			}
			return err
		},
	})
	b.eventually(5*time.Second, func() (bool, string) {
		pods, err := b.pods()
		if err != nil {
			return false, err.Error()
		}
		var names []string
		for _, p := range pods {
			names = append(names, p.Name)
		}
		return len(pods) == 0, fmt.Sprintf("/pods still lists %v", names)
	})
}

func TestManifestChangedReplacesPod(t *testing.T) {
	b := startBerth(t)
	b.writePod(shellPod("changing", "sleep 3600"))
	old := b.runningContainer("changing", "main", 10*time.Second)
	b.eventually(10*time.Second, b.podCond("changing", podRunning))

	b.writePod(shellPod("changing", "sleep 7200"))
	var replacement *runtimeapi.Container
	d := b.eventually(20*time.Second, func() (bool, string) {
		cs, err := b.env.containers("changing")
		if err != nil {
			return false, err.Error()
		}
		replacement = nil
		oldLeft := false
		for _, c := range cs {
			if c.Labels[labelPodUID] == old.Labels[labelPodUID] {
				oldLeft = true
			} else if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				replacement = c
			}
		}
		return !oldLeft && replacement != nil, describeContainers(cs)
	})
	t.Logf("old container gone and new one running %s after the change", d.Round(time.Millisecond))
	b.eventually(10*time.Second, b.podCond("changing", func(p *v1.Pod) (bool, string) {
		ok, msg := podRunning(p)
		return ok && string(p.UID) == replacement.Labels[labelPodUID], msg
	}))
	// The old sandbox goes too.
	b.eventually(10*time.Second, func() (bool, string) {
		sbs, err := b.env.sandboxes("changing")
		if err != nil {
			return false, err.Error()
		}
		return len(sbs) == 1 && sbs[0].Labels[labelPodUID] != old.Labels[labelPodUID], describeSandboxes(sbs)
	})
}

func TestRestartAdoptsContainers(t *testing.T) {
	b := startBerth(t)
	b.writePod(shellPod("kept", "sleep 3600", withInit(shellContainer("init", "true"))))
	b.writePod(shellPod("dropped", "sleep 3600"))
	b.runningContainer("kept", "main", 15*time.Second)
	b.runningContainer("dropped", "main", 15*time.Second)
	b.eventually(10*time.Second, b.podCond("kept", podRunning))
	b.eventually(10*time.Second, b.podCond("dropped", podRunning))

	ids := func(name string) []string {
		t.Helper()
		cs, err := b.env.containers(name)
		if err != nil {
			t.Fatal(err)
		}
		sbs, err := b.env.sandboxes(name)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, "container "+c.Labels[labelContainerName]+" "+c.Id+" "+c.State.String())
		}
		for _, s := range sbs {
			out = append(out, "sandbox "+s.Id+" "+s.State.String())
		}
		slices.Sort(out)
		return out
	}
	keptBefore := ids("kept")

	b.kill()
	b.removeManifest("dropped.yaml")
	b.start()

	// Synced: the kept pod is reported Running again and the dropped pod is
	// cleaned up as an orphan.
	b.eventually(15*time.Second, b.podCond("kept", podRunning))
	d := b.eventually(20*time.Second, b.env.podGone("dropped"))
	t.Logf("dropped pod removed %s after berth was Running again", d.Round(time.Millisecond))

	// Nothing more may happen to the kept pod.
	time.Sleep(5 * time.Second)
	if after := ids("kept"); !slices.Equal(keptBefore, after) {
		t.Errorf("kept pod's runtime objects changed across the restart:\nbefore %v\nafter  %v", keptBefore, after)
	}
	p, err := b.pod("kept")
	if err != nil || p == nil {
		t.Fatalf("kept pod gone from /pods: %v", err)
	}
	if ok, msg := podRunning(p); !ok {
		t.Errorf("kept pod not Running after restart: %s", msg)
	}
	for _, cs := range append(p.Status.ContainerStatuses, p.Status.InitContainerStatuses...) {
		if cs.RestartCount != 0 {
			t.Errorf("%s restartCount %d after berth's restart, want 0: %s", cs.Name, cs.RestartCount, describePod(p))
		}
	}
	if cs := containerStatus(p, "init"); cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
		t.Errorf("init container not reported as completed after the restart: %s", describePod(p))
	}
	if strings.Count(b.log(), "berth start #") != 2 {
		t.Errorf("berth log does not show two starts")
	}
}

// A changed manifest of a pod that takes its whole grace period to stop:
// the new pod (new UID, same name) starts only once the old one's
// containers are gone, so the two never run side by side (upstream runs
// one static pod per name).
func TestChangedStaticPodWaitsForItsPredecessor(t *testing.T) {
	b := startBerth(t)
	stubborn := `trap '' TERM; while true; do sleep 0.2; done`
	b.writePod(shellPod("successor", stubborn, withGrace(3)))
	old := b.runningContainer("successor", "main", 10*time.Second)
	b.eventually(10*time.Second, b.podCond("successor", podRunning))

	b.writePod(shellPod("successor", stubborn+" # v2", withGrace(3)))
	changed := time.Now()
	d := b.eventually(20*time.Second, func() (bool, string) {
		cs, err := b.env.containers("successor")
		if err != nil {
			return false, err.Error()
		}
		oldRunning, newExists := false, false
		for _, c := range cs {
			if c.Labels[labelPodUID] == old.Labels[labelPodUID] {
				oldRunning = oldRunning || c.State == runtimeapi.ContainerState_CONTAINER_RUNNING
			} else {
				newExists = true
			}
		}
		if oldRunning && newExists {
			t.Fatalf("the new pod's container exists while the old one still runs: %s", describeContainers(cs))
		}
		return newExists, describeContainers(cs)
	})
	t.Logf("new pod's container created %s after the change (old pod's grace period 3 s)", d.Round(time.Millisecond))
	if elapsed := time.Since(changed); elapsed < 2500*time.Millisecond {
		t.Errorf("new pod started %s after the change, before the old one's grace period could end", elapsed)
	}
	b.eventually(10*time.Second, b.podCond("successor", func(p *v1.Pod) (bool, string) {
		ok, msg := podRunning(p)
		return ok && string(p.UID) != old.Labels[labelPodUID], msg
	}))
}
