package e2e

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// TestContainerOOMKilled: a container over its memory limit is killed by
// the kernel and reported OOMKilled (exit code 137) from the first status
// that shows it terminated; with restartPolicy Always it is restarted and
// keeps OOMKilled as its last state.
func TestContainerOOMKilled(t *testing.T) {
	b := newBerth(t)
	b.ownCgroupRoot()
	b.start()

	// tail buffers /dev/zero looking for a newline that never comes.
	hog := "tail /dev/zero"
	b.writePod(shellPod("oom-never", hog, withRestartPolicy(v1.RestartPolicyNever), withResources("", "", "", "16Mi")))
	b.writePod(shellPod("oom-always", hog, withResources("", "", "", "16Mi")))

	// Watch closely: the first terminated state berth reports must
	// already say OOMKilled.
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		p, err := b.pod("oom-never")
		if err == nil && p != nil && len(p.Status.ContainerStatuses) == 1 {
			if term := p.Status.ContainerStatuses[0].State.Terminated; term != nil {
				if term.Reason != "OOMKilled" || term.ExitCode != 137 {
					t.Fatalf("container terminated with reason %q exit code %d, want OOMKilled 137 (%s)", term.Reason, term.ExitCode, describePod(p))
				}
				t.Logf("oom-never: terminated %s, exit %d, phase %s", term.Reason, term.ExitCode, p.Status.Phase)
				break
			}
			last = describePod(p)
		}
		if time.Now().After(deadline) {
			t.Fatalf("oom-never never terminated: %s", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.eventually(10*time.Second, b.podCond("oom-never", func(p *v1.Pod) (bool, string) {
		return p.Status.Phase == v1.PodFailed, describePod(p)
	}))

	b.eventually(60*time.Second, b.podCond("oom-always", func(p *v1.Pod) (bool, string) {
		if len(p.Status.ContainerStatuses) != 1 {
			return false, describePod(p)
		}
		cs := p.Status.ContainerStatuses[0]
		term := cs.LastTerminationState.Terminated
		if cs.RestartCount < 1 || term == nil {
			return false, describePod(p)
		}
		if term.Reason != "OOMKilled" {
			return false, fmt.Sprintf("last state %s (%d), want OOMKilled: %s", term.Reason, term.ExitCode, describePod(p))
		}
		t.Logf("oom-always: restarts %d, last state %s exit %d", cs.RestartCount, term.Reason, term.ExitCode)
		return true, ""
	}))
}
