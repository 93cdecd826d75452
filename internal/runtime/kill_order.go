package runtime

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
)

// terminationOrdering holds back the stop of sidecars (init containers with
// restartPolicy Always) while a pod is killed, as upstream does: a sidecar
// stops after every app container and after the sidecars declared after it,
// so they go in reverse order once the apps are gone. Each waits at most
// until its grace period runs out.
type terminationOrdering struct {
	mu sync.Mutex
	// terminated has a channel per container name, closed once it stopped
	// (or from the start, when it was not running).
	terminated map[string]chan struct{}
	// prereqs are the channels a container waits on before it stops.
	prereqs map[string][]chan struct{}
}

// newTerminationOrdering orders the stop of pod's running containers.
func newTerminationOrdering(pod *v1.Pod, running []string) *terminationOrdering {
	o := &terminationOrdering{terminated: map[string]chan struct{}{}, prereqs: map[string][]chan struct{}{}}
	isRunning := map[string]bool{}
	for _, name := range running {
		isRunning[name] = true
	}
	channel := func(name string) chan struct{} {
		ch := make(chan struct{})
		if !isRunning[name] {
			close(ch) // nothing to wait for
		}
		o.terminated[name] = ch
		return ch
	}
	var apps []chan struct{}
	for _, c := range pod.Spec.Containers {
		apps = append(apps, channel(c.Name))
	}
	later := "" // the sidecar declared after the current one
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		ic := &pod.Spec.InitContainers[i]
		channel(ic.Name)
		if !container.IsSidecar(ic) {
			continue
		}
		o.prereqs[ic.Name] = append(o.prereqs[ic.Name], apps...)
		if later != "" {
			o.prereqs[ic.Name] = append(o.prereqs[ic.Name], o.terminated[later])
		}
		later = ic.Name
	}
	return o
}

// waitForTurn waits until container name may stop, or until the deadline
// or ctx ends.
func (o *terminationOrdering) waitForTurn(ctx context.Context, clk clock.Clock, name string, deadline time.Time) {
	wait := deadline.Sub(clk.Now())
	if wait <= 0 {
		return
	}
	timer := clk.NewTimer(wait)
	defer timer.Stop()
	for _, ch := range o.prereqs[name] {
		select {
		case <-ch:
		case <-timer.C():
			return
		case <-ctx.Done():
			return
		}
	}
}

// containerTerminated lets the containers that wait on name go on.
func (o *terminationOrdering) containerTerminated(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ch, ok := o.terminated[name]; ok {
		select {
		case <-ch: // closed from the start
		default:
			close(ch)
		}
		delete(o.terminated, name)
	}
}

func hasSidecars(pod *v1.Pod) bool {
	for i := range pod.Spec.InitContainers {
		if container.IsSidecar(&pod.Spec.InitContainers[i]) {
			return true
		}
	}
	return false
}
