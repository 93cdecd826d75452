package runtime

import (
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
)

func containerState(s runtimeapi.ContainerState) container.State {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return container.StateCreated
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return container.StateRunning
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return container.StateExited
	}
	return container.StateUnknown
}

func sandboxState(s runtimeapi.PodSandboxState) container.SandboxState {
	if s == runtimeapi.PodSandboxState_SANDBOX_READY {
		return container.SandboxReady
	}
	return container.SandboxNotReady
}

// unixNano converts a CRI timestamp; 0 (unset) stays the zero time.
func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// sandboxFromList converts a sandbox as ListPodSandbox reports it: no IPs
// and no namespace options, which only PodSandboxStatus has.
func sandboxFromList(s *runtimeapi.PodSandbox) *container.SandboxStatus {
	return &container.SandboxStatus{
		ID:        s.GetId(),
		State:     sandboxState(s.GetState()),
		Attempt:   s.GetMetadata().GetAttempt(),
		CreatedAt: unixNano(s.GetCreatedAt()),
	}
}

// sandboxFromStatus converts a sandbox's full status. Only a ready sandbox
// reports IPs: a stopped sandbox's address may already belong to another.
func sandboxFromStatus(s *runtimeapi.PodSandboxStatus) *container.SandboxStatus {
	sb := &container.SandboxStatus{
		ID:          s.GetId(),
		State:       sandboxState(s.GetState()),
		Attempt:     s.GetMetadata().GetAttempt(),
		CreatedAt:   unixNano(s.GetCreatedAt()),
		HostNetwork: s.GetLinux().GetNamespaces().GetOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE,
	}
	if sb.State == container.SandboxReady {
		sb.IPs = sandboxIPs(s)
	}
	return sb
}

func sandboxIPs(s *runtimeapi.PodSandboxStatus) []string {
	var ips []string
	if ip := s.GetNetwork().GetIp(); ip != "" {
		ips = append(ips, ip)
	}
	for _, ip := range s.GetNetwork().GetAdditionalIps() {
		if ip.GetIp() != "" {
			ips = append(ips, ip.GetIp())
		}
	}
	return ips
}

// containerName is the spec name of a container: its label, or the CRI
// metadata name for containers labelled by someone else.
func containerName(labels map[string]string, meta *runtimeapi.ContainerMetadata) string {
	if n := labels[container.LabelContainerName]; n != "" {
		return n
	}
	return meta.GetName()
}

// imageName is the image as the pod spec named it when the runtime kept
// that (CRI UserSpecifiedImage), else what the runtime reports.
func imageName(spec *runtimeapi.ImageSpec) string {
	if u := spec.GetUserSpecifiedImage(); u != "" {
		return u
	}
	return spec.GetImage()
}

// containerFromList converts a container as ListContainers reports it:
// enough for the relist (state, identity, hash, restart count), no exit
// details.
func containerFromList(c *runtimeapi.Container) *container.ContainerStatus {
	info := parseAnnotations(c.GetAnnotations())
	ref := c.GetImageRef()
	if id := c.GetImageId(); id != "" {
		ref = id
	}
	return &container.ContainerStatus{
		ID:           c.GetId(),
		Name:         containerName(c.GetLabels(), c.GetMetadata()),
		SandboxID:    c.GetPodSandboxId(),
		State:        containerState(c.GetState()),
		CreatedAt:    unixNano(c.GetCreatedAt()),
		Image:        imageName(c.GetImage()),
		ImageRef:     ref,
		Hash:         info.hash,
		RestartCount: info.restartCount,
	}
}

// containerFromStatus converts a container's full status; sandboxID comes
// from the list, as ContainerStatus does not carry it.
func containerFromStatus(s *runtimeapi.ContainerStatus, sandboxID string) *container.ContainerStatus {
	info := parseAnnotations(s.GetAnnotations())
	ref := s.GetImageRef()
	if id := s.GetImageId(); id != "" {
		ref = id
	}
	cs := &container.ContainerStatus{
		ID:           s.GetId(),
		Name:         containerName(s.GetLabels(), s.GetMetadata()),
		SandboxID:    sandboxID,
		State:        containerState(s.GetState()),
		CreatedAt:    unixNano(s.GetCreatedAt()),
		Image:        imageName(s.GetImage()),
		ImageRef:     ref,
		Hash:         info.hash,
		RestartCount: info.restartCount,
		LogPath:      s.GetLogPath(),
	}
	if s.GetState() != runtimeapi.ContainerState_CONTAINER_CREATED {
		cs.StartedAt = unixNano(s.GetStartedAt())
	}
	if s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
		cs.FinishedAt = unixNano(s.GetFinishedAt())
		cs.ExitCode = s.GetExitCode()
		cs.Reason = s.GetReason()
		cs.Message = s.GetMessage()
	}
	return cs
}
