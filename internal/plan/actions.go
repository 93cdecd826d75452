// Package plan decides what must change for a pod: it compares the desired
// pod spec with what the runtime reports and returns the actions to take. It
// does no IO and keeps no state, so every decision is table-tested.
package plan

// KillInfo says why a running container must be killed.
type KillInfo struct {
	Name    string // spec name
	Reason  string // short, e.g. "SpecChanged"
	Message string // for the Killing event and logs
}

// PodActions is the result of one planning step for one pod. The runtime
// executor carries it out in this order: kill the pod (all containers, then
// the sandbox) if KillPod; else kill ContainersToKill; create a sandbox if
// CreateSandbox; start EphemeralContainersToStart, then NextInitContainer
// if set, then ContainersToStart.
type PodActions struct {
	// KillPod: stop every container and the sandbox (before a new sandbox is
	// made, or because the pod is done).
	KillPod bool
	// CreateSandbox: make a new sandbox with Attempt before starting anything.
	CreateSandbox bool
	// SandboxID of the sandbox to start containers in when no new one is made.
	SandboxID string
	// Attempt is the attempt number for the new sandbox.
	Attempt uint32
	// NextInitContainer is the index in spec.initContainers of the init
	// container to start next, or NoInit: the next in line while the pod
	// initializes, or a sidecar to restart. One per step: when several
	// sidecars must restart, the first in spec order goes, the others on
	// later steps.
	//
	// It comes together with ContainersToStart only once the pod is
	// initialized, and then it is always a sidecar: the sidecar is started
	// first, and if it cannot start (back-off, image) the app containers
	// are started all the same, as upstream does. Before initialization
	// ContainersToStart is empty.
	NextInitContainer int
	// ContainersToStart are indexes into spec.containers.
	ContainersToStart []int
	// EphemeralContainersToStart are indexes into spec.ephemeralContainers:
	// those the runtime has never run in the pod. They start whether or
	// not the pod is initialized, first, so that a debugger can reach a pod
	// stuck in an init container; they are never restarted.
	EphemeralContainersToStart []int
	// ContainersToKill, by container ID.
	ContainersToKill map[string]KillInfo
	// Resize lists the running containers whose resources change in
	// place; nil when none does. The executor carries it out after the
	// kills and before any start.
	Resize *Resize
}

// Resize is an in-place resize of running containers, upstream's
// ContainersToUpdate: per resource, decreases first, then increases, so
// that the pod's total never passes the larger of old and new. The pod
// cgroup's values for a resource are raised before its containers and
// lowered after them.
type Resize struct {
	Memory, CPU []ResizeContainer
	// Pod: the pod cgroup must follow even without an update in place: a
	// container restarts with its new resources (its resizePolicy), and
	// its cgroup must fit in the pod's (upstream's UpdatePodResources).
	Pod bool
	// PodLevel: the allocated pod-level resources (spec.resources) are
	// not those applied to the pod cgroup; once it has them they are
	// recorded as applied.
	PodLevel bool
}

// ResizeContainer is one container to update.
type ResizeContainer struct {
	ID, Name string
	// Current are the values applied now, Desired the allocated ones.
	Current, Desired ResourceValues
}

// ResourceValues are a container's cpu (milli-CPU) and memory (bytes)
// requests and limits; 0 is unset.
type ResourceValues struct {
	CPURequest, CPULimit, MemoryRequest, MemoryLimit int64
}

// NoInit is the value of NextInitContainer when no init container is to start.
const NoInit = -1

// Changes reports whether the actions would change anything.
func (a PodActions) Changes() bool {
	return a.KillPod || a.CreateSandbox || a.NextInitContainer != NoInit ||
		len(a.ContainersToStart) > 0 || len(a.ContainersToKill) > 0 ||
		len(a.EphemeralContainersToStart) > 0 || a.Resize != nil
}
