package status

import (
	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// phase follows upstream's getPhase. Init containers first: one that failed
// and may not retry fails the pod; one still to finish keeps it Pending.
// Then the app containers (and sidecars): any waiting → Pending; any running
// and all known → Running; all stopped → Succeeded or Failed when none will
// restart, else Running (restarting).
//
// initialized says an app container exists in the current sandbox, so a
// sidecar restarting later doesn't send the pod back to Pending. terminal
// says no container will run again, whatever the restart policy.
func phase(pod *v1.Pod, s *v1.PodStatus, terminal, initialized bool) v1.PodPhase {
	// restartable: whether the container runs again after that exit, by
	// its restart rules and policy, else the pod's.
	restartable := func(c *v1.Container, exitCode int32) bool {
		return container.ShouldRestartAfterExit(c, &pod.Spec, exitCode)
	}
	// lastExit is the exit code of a waiting container's previous run.
	lastExit := func(cs *v1.ContainerStatus) (int32, bool) {
		if t := cs.LastTerminationState.Terminated; t != nil {
			return t.ExitCode, true
		}
		return 0, false
	}

	var pendingInit, pendingSidecars, failedInit int
	var unknown, running, waiting, stopped, stoppedFinal, succeeded int

	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		cs := find(s.InitContainerStatuses, spec.Name)
		if container.IsSidecar(spec) {
			switch {
			case cs == nil:
				unknown++
			case cs.State.Running != nil:
				if cs.Started == nil || !*cs.Started {
					pendingSidecars++
				}
				running++
			case cs.State.Terminated != nil:
				// A stopped sidecar doesn't count towards the phase.
			case cs.State.Waiting != nil:
				if _, ran := lastExit(cs); !ran {
					pendingSidecars++
					waiting++
				}
			default:
				pendingSidecars++
				unknown++
			}
			continue
		}
		switch {
		case cs == nil, cs.State.Running != nil:
			pendingInit++
		case cs.State.Terminated != nil:
			if code := cs.State.Terminated.ExitCode; code != 0 && !restartable(spec, code) {
				failedInit++
			}
		case cs.State.Waiting != nil:
			if code, ran := lastExit(cs); !ran {
				pendingInit++
			} else if code != 0 && !restartable(spec, code) {
				failedInit++
			}
		default:
			pendingInit++
		}
	}

	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		cs := find(s.ContainerStatuses, spec.Name)
		switch {
		case cs == nil:
			unknown++
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			code := cs.State.Terminated.ExitCode
			if !restartable(spec, code) {
				stoppedFinal++
			}
			if code == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			code, ran := lastExit(cs)
			if !ran {
				waiting++
				break
			}
			stopped++ // waiting to restart
			if !restartable(spec, code) {
				stoppedFinal++
			}
		default:
			unknown++
		}
	}

	if failedInit > 0 {
		return v1.PodFailed
	}
	switch {
	case pendingInit > 0, pendingSidecars > 0 && !initialized, waiting > 0:
		return v1.PodPending
	case running > 0 && unknown == 0:
		return v1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if terminal {
			if stopped == succeeded {
				return v1.PodSucceeded
			}
			return v1.PodFailed
		}
		if stopped != stoppedFinal {
			return v1.PodRunning // some will restart
		}
		if stopped == succeeded {
			return v1.PodSucceeded
		}
		return v1.PodFailed
	}
	return v1.PodPending
}

func find(list []v1.ContainerStatus, name string) *v1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}
