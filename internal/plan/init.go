package plan

import (
	"fmt"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// initActions plans the init containers of a pod whose sandbox is ready and
// reports whether the pod is initialized (every init container done, so app
// containers may run). It follows upstream's computeInitContainerActions.
// Init containers run one at a time, in order; a sidecar (restartPolicy
// Always) counts as done once it runs and passed its startup probe, and is
// restarted whenever it stops, fails a probe or its spec changes, whatever
// the pod's restartPolicy. A failed init container is retried if its
// restart rules or policies say so (ShouldRestartAfterExit); if not, the
// pod has failed and is killed.
//
// Only containers of the current sandbox count: a new sandbox runs
// initialization again.
func initActions(pod *v1.Pod, st *container.PodStatus, probes Probes, a *PodActions) bool {
	inits := pod.Spec.InitContainers
	if len(inits) == 0 {
		return true
	}
	last := len(inits) - 1
	initialized := container.AnyActiveRegularContainer(pod, st)

	// PodActions holds one init container to start; when several qualify
	// (sidecars to restart, the next in line) the first in spec order goes,
	// the rest follow on later syncs.
	start := func(i int) {
		if a.NextInitContainer == NoInit || i < a.NextInitContainer {
			a.NextInitContainer = i
		}
	}

	// Walk backwards: the last init container that ran says how far
	// initialization got, even if earlier ones were garbage-collected.
	// reached means a later init container (or an app container) has run,
	// so this one completed before.
	reached := initialized
	for i := last; i >= 0; i-- {
		c := &inits[i]
		sidecar := container.IsSidecar(c)
		cs := st.FindActiveContainer(c.Name)
		if cs == nil {
			if reached && sidecar {
				start(i) // a sidecar that vanished after it had run
			}
			continue
		}
		if reached && !sidecar {
			continue // done; only sidecars need care once passed
		}

		switch cs.State {
		case container.StateCreated:
			// Created but never started: the start failed; try again.
			start(i)
		case container.StateRunning:
			if !sidecar {
				break // wait for it to finish
			}
			if c.StartupProbe != nil && probes != nil {
				started, known := probes.Startup(cs.ID)
				if !known {
					break // wait for the startup probe to decide
				}
				if !started {
					a.kill(cs, ReasonStartupProbe, fmt.Sprintf("Init container %s failed startup probe", c.Name))
					start(i)
					break
				}
			}
			// A started sidecar lets initialization go on.
			if i == last {
				initialized = true
			} else if !reached {
				start(i + 1)
			}
			switch {
			case !container.HashMatches(c, cs.Hash):
				a.kill(cs, ReasonSpecChanged, fmt.Sprintf("Init container %s definition changed", c.Name))
				start(i)
			case livenessFailed(probes, cs):
				a.kill(cs, ReasonLivenessProbe, fmt.Sprintf("Init container %s failed liveness probe", c.Name))
				start(i)
			case !resizeAction(pod, c, st, cs, a):
				start(i)
			}
		case container.StateExited:
			switch {
			case sidecar:
				start(i)
			case initFailed(cs):
				if !container.ShouldRestartAfterExit(c, &pod.Spec, cs.ExitCode) {
					a.KillPod = true
					a.NextInitContainer = NoInit
					return false
				}
				start(i)
			case i == last:
				initialized = true
			default:
				start(i + 1)
			}
		default: // unknown: it may still run, so kill it before a retry
			if !sidecar && !container.RestartsWhenKilled(c, &pod.Spec) {
				a.KillPod = true
				a.NextInitContainer = NoInit
				return false
			}
			a.kill(cs, ReasonUnknown, fmt.Sprintf("Init container is in %q state, try killing it before restart", cs.State))
			start(i)
		}
		reached = true
	}
	if !reached {
		start(0)
	}
	return initialized
}

// initFailed reports whether an init container failed: it exited non-zero,
// was OOM-killed, or its state is unknown.
func initFailed(cs *container.ContainerStatus) bool {
	return cs.Reason == "OOMKilled" ||
		(cs.State == container.StateExited && cs.ExitCode != 0) ||
		cs.State == container.StateUnknown
}
