package runtime

import (
	"fmt"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// ReasonCrashLoopBackOff is the waiting reason of a container whose restart
// is held back after it exited.
const ReasonCrashLoopBackOff = "CrashLoopBackOff"

// crashBackOffKey identifies a container for the crash back-off. The spec
// hash is part of it, so that changing the spec starts afresh.
func crashBackOffKey(pod *v1.Pod, c *v1.Container) string {
	return fmt.Sprintf("%s_%s_%s_%s_%s", pod.Name, pod.Namespace, pod.UID, c.Name, strconv.FormatUint(container.HashContainer(c), 16))
}

// crashBackOff decides whether container c may be restarted now (upstream
// doBackOff). The clock starts when the newest exited instance finished;
// every restart it lets through doubles the next wait, up to 5 minutes, and
// ten quiet minutes reset it. When the container must wait, it returns why
// and for how long.
func (m *Manager) crashBackOff(id podIdentity, pod *v1.Pod, c *v1.Container, st *container.PodStatus) (*container.Waiting, time.Duration) {
	var exited *container.ContainerStatus
	for _, cs := range st.ContainersNamed(c.Name) {
		if cs.State == container.StateExited {
			exited = cs
			break
		}
	}
	if exited == nil {
		return nil, 0
	}
	key := crashBackOffKey(pod, c)
	finished := exited.FinishedAt
	if m.crashBO.IsInBackOffSince(key, finished) {
		delay := m.crashBO.Get(key)
		m.containerEvent(id, c.Name, "", v1.EventTypeWarning, eventBackOff,
			fmt.Sprintf("Back-off restarting failed container %s in pod %s", c.Name, podDesc(pod)))
		return &container.Waiting{
			Reason:  ReasonCrashLoopBackOff,
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", delay, c.Name, podDesc(pod)),
		}, finished.Add(delay).Sub(m.clock.Now())
	}
	m.crashBO.Next(key, finished)
	return nil, 0
}
