// Package container holds berth's model of what the container runtime
// reports about a pod: the observed side that the planner compares with the
// desired pod spec. It has no IO; internal/runtime fills it from CRI.
package container

import (
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

// State is the runtime state of one container.
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// SandboxState is the runtime state of a pod sandbox.
type SandboxState string

const (
	SandboxReady    SandboxState = "ready"
	SandboxNotReady SandboxState = "notready"
)

// ContainerStatus is one container as the runtime last reported it.
type ContainerStatus struct {
	ID        string
	Name      string // the name in the pod spec
	SandboxID string
	State     State
	CreatedAt time.Time
	StartedAt time.Time
	// FinishedAt is zero until the container has exited.
	FinishedAt time.Time
	ExitCode   int32
	Reason     string
	Message    string
	Image      string // as the pod spec named it
	ImageRef   string // the image ID the runtime resolved it to
	// Hash of the container spec that created this container (see HashContainer).
	Hash uint64
	// RestartCount as berth recorded it on the container when it created it.
	RestartCount int
	// LogPath is the absolute path of the container's log file.
	LogPath string
	// Resources are the container's cgroup values as the runtime reports
	// them (CRI ContainerStatus resources), completed from Actuated where
	// the runtime says nothing; nil when neither knows. Full status only.
	Resources *Resources
	// Actuated are the resources berth last applied to the container
	// (created with, or updated in place to); nil when not recorded (a
	// container from before berth recorded them). Full status only.
	Actuated *v1.ResourceRequirements
}

// Resources are the cpu and memory values a running container has, in
// the API's units; nil fields are unknown.
type Resources struct {
	CPURequest, CPULimit, MemoryRequest, MemoryLimit *resource.Quantity
}

// SandboxStatus is one pod sandbox as the runtime last reported it.
type SandboxStatus struct {
	ID        string
	State     SandboxState
	Attempt   uint32
	CreatedAt time.Time
	IPs       []string
	// HostNetwork is true when the sandbox uses the node's network namespace.
	HostNetwork bool
}

// PodStatus is everything the runtime holds for one pod UID.
type PodStatus struct {
	UID       types.UID
	Name      string
	Namespace string
	// Sandboxes, newest first.
	Sandboxes []*SandboxStatus
	// Containers, newest first (by CreatedAt), across all sandboxes.
	Containers []*ContainerStatus
	// ActuatedPodLevel are the pod-level resources (spec.resources) berth
	// last applied to the pod's cgroup; nil when not recorded. Full
	// status only.
	ActuatedPodLevel *v1.ResourceRequirements
}

// Sort orders sandboxes and containers newest first, the order the rest of
// berth relies on.
func (s *PodStatus) Sort() {
	sort.SliceStable(s.Sandboxes, func(i, j int) bool {
		return s.Sandboxes[i].CreatedAt.After(s.Sandboxes[j].CreatedAt)
	})
	sort.SliceStable(s.Containers, func(i, j int) bool {
		return s.Containers[i].CreatedAt.After(s.Containers[j].CreatedAt)
	})
}

// FindContainer returns the newest container with the given spec name, or nil.
func (s *PodStatus) FindContainer(name string) *ContainerStatus {
	if s == nil {
		return nil
	}
	for _, c := range s.Containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ContainersNamed returns every container with the given spec name, newest first.
func (s *PodStatus) ContainersNamed(name string) []*ContainerStatus {
	if s == nil {
		return nil
	}
	var out []*ContainerStatus
	for _, c := range s.Containers {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// LatestSandbox returns the newest sandbox, or nil when there is none.
func (s *PodStatus) LatestSandbox() *SandboxStatus {
	if s == nil || len(s.Sandboxes) == 0 {
		return nil
	}
	return s.Sandboxes[0]
}

// RunningContainers returns the containers in StateRunning.
func (s *PodStatus) RunningContainers() []*ContainerStatus {
	if s == nil {
		return nil
	}
	var out []*ContainerStatus
	for _, c := range s.Containers {
		if c.State == StateRunning {
			out = append(out, c)
		}
	}
	return out
}

// IsRunning reports whether any sandbox is ready or any container is running.
func (s *PodStatus) IsRunning() bool {
	if s == nil {
		return false
	}
	for _, sb := range s.Sandboxes {
		if sb.State == SandboxReady {
			return true
		}
	}
	return len(s.RunningContainers()) > 0
}

// Waiting explains why a container is not running yet, as the sync that last
// tried to start it found it (e.g. reason "CrashLoopBackOff", "ErrImagePull").
type Waiting struct {
	Reason  string
	Message string
}

// SyncResult is what carrying out one pod's actions produced.
type SyncResult struct {
	// Waiting holds, by container spec name, why a container that should run
	// is not running (back-off, image pull failure, config error, ...).
	Waiting map[string]Waiting
	// RequeueAfter, when non-zero, asks for another sync of the pod after this
	// long (e.g. when a back-off expires).
	RequeueAfter time.Duration
	// Err is the first error that stopped the sync early, if any.
	Err error
	// ResizeErr is why an in-place resize failed (the PodResizeInProgress
	// condition's Error message); "" when none was tried or it worked.
	ResizeErr string
}
