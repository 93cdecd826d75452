package container

import (
	v1 "k8s.io/api/core/v1"
)

// Why a pod needs a new sandbox; the wording is upstream's, as the message of
// the PodReadyToStartContainers condition.
const (
	SandboxMsgNone     = "no pod sandbox exists"
	SandboxMsgMultiple = "multiple pod sandboxes are ready and need to be reconciled"
	SandboxMsgNotReady = "pod sandbox is not ready"
)

// NeedsNewSandbox reports whether the pod must get a new sandbox before any
// container can start, and why: there is none, the newest is not ready, or
// more than one is ready (a leftover that must be reconciled by starting over).
func (s *PodStatus) NeedsNewSandbox() (needed bool, reason string) {
	if s == nil || len(s.Sandboxes) == 0 {
		return true, SandboxMsgNone
	}
	ready := 0
	for _, sb := range s.Sandboxes {
		if sb.State == SandboxReady {
			ready++
		}
	}
	if ready > 1 {
		return true, SandboxMsgMultiple
	}
	if s.Sandboxes[0].State != SandboxReady {
		return true, SandboxMsgNotReady
	}
	return false, ""
}

// ActiveSandboxID is the ID of the newest sandbox when it is ready, else "".
// Containers in that sandbox are the pod's current incarnation; those in older
// sandboxes belong to a previous one.
func (s *PodStatus) ActiveSandboxID() string {
	sb := s.LatestSandbox()
	if sb == nil || sb.State != SandboxReady {
		return ""
	}
	return sb.ID
}

// FindActiveContainer returns the newest container with the given spec name
// in the active sandbox, or nil.
func (s *PodStatus) FindActiveContainer(name string) *ContainerStatus {
	id := s.ActiveSandboxID()
	if id == "" {
		return nil
	}
	for _, c := range s.Containers {
		if c.Name == name && c.SandboxID == id {
			return c
		}
	}
	return nil
}

// IsSidecar reports whether an init container is a restartable ("sidecar")
// init container: one that keeps running beside the app containers.
func IsSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// ShouldRestart reports whether container c must be (re)started given the
// newest runtime container with its name (upstream's
// ShouldContainerBeRestarted): a container never run (or garbage-collected)
// starts; a running one does not; one in state created or unknown always
// does (it never really ran, or may not be running); an exited one as its
// restart rules and policies say (ShouldRestartAfterExit). Nothing
// restarts once the pod is being deleted.
func ShouldRestart(pod *v1.Pod, c *v1.Container, st *PodStatus) bool {
	if pod.DeletionTimestamp != nil {
		return false
	}
	cs := st.FindContainer(c.Name)
	if cs == nil {
		return true
	}
	switch cs.State {
	case StateRunning:
		return false
	case StateCreated, StateUnknown:
		return true
	}
	return ShouldRestartAfterExit(c, &pod.Spec, cs.ExitCode)
}

// AnyRegularContainerCreated reports whether the runtime holds any app
// container of the pod (created, running or exited, in any sandbox): proof
// that the init containers completed at some point.
func AnyRegularContainerCreated(pod *v1.Pod, st *PodStatus) bool {
	for i := range pod.Spec.Containers {
		cs := st.FindContainer(pod.Spec.Containers[i].Name)
		if cs == nil {
			continue
		}
		switch cs.State {
		case StateCreated, StateRunning, StateExited:
			return true
		}
	}
	return false
}

// AnyActiveRegularContainer reports whether any app container exists in the
// active sandbox: the current sandbox finished initialization. Containers of
// an older sandbox don't count, since a new sandbox runs init again.
func AnyActiveRegularContainer(pod *v1.Pod, st *PodStatus) bool {
	id := st.ActiveSandboxID()
	if id == "" {
		return false
	}
	for _, cs := range st.Containers {
		if cs.SandboxID != id {
			continue
		}
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == cs.Name {
				return true
			}
		}
	}
	return false
}
