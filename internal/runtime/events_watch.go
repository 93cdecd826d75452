package runtime

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
)

// ErrEventsUnsupported is wrapped by WatchContainerEvents' error when the
// runtime has no container event stream (containerd 1.6).
var ErrEventsUnsupported = errors.New("runtime does not stream container events")

// WatchContainerEvents follows the runtime's container event stream and
// calls onEvent with the pod UID of each event, until ctx ends or the
// stream does. It returns at once with an error wrapping
// ErrEventsUnsupported when the runtime does not implement the stream; any
// other error means the caller may reconnect.
func (m *Manager) WatchContainerEvents(ctx context.Context, onEvent func(podUID types.UID)) error {
	rs, err := m.runtime(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan *runtimeapi.ContainerEventResponse, 64)
	done := make(chan error, 1)
	go func() { done <- rs.GetContainerEvents(ctx, events, nil) }()
	deliver := func(ev *runtimeapi.ContainerEventResponse) {
		if uid := eventPodUID(ev); uid != "" {
			onEvent(uid)
		}
	}
	for {
		select {
		case ev := <-events:
			deliver(ev)
		case err := <-done:
			// Events received before the stream ended still count.
			for len(events) > 0 {
				deliver(<-events)
			}
			if s, ok := status.FromError(err); ok && s.Code() == codes.Unimplemented {
				return fmt.Errorf("%w: %v", ErrEventsUnsupported, err)
			}
			if err == nil {
				return errors.New("container event stream ended")
			}
			return fmt.Errorf("container event stream: %w", m.wrap(err))
		}
	}
}

// eventPodUID finds the pod an event is about: from the sandbox status the
// runtime attaches, else from the container's labels.
func eventPodUID(ev *runtimeapi.ContainerEventResponse) types.UID {
	if uid := ev.GetPodSandboxStatus().GetMetadata().GetUid(); uid != "" {
		return types.UID(uid)
	}
	if uid := ev.GetPodSandboxStatus().GetLabels()[container.LabelPodUID]; uid != "" {
		return types.UID(uid)
	}
	for _, cs := range ev.GetContainersStatuses() {
		if uid := cs.GetLabels()[container.LabelPodUID]; uid != "" {
			return types.UID(uid)
		}
	}
	return ""
}
