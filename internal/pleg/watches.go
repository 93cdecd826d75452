package pleg

import (
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
)

// Watches takes the containers the runtime manager has just started or is
// about to stop. It is built before the runtime manager (which tells it)
// and the PLEG (which needs the runtime manager to list), so neither holds
// the other. Its methods never block.
type Watches struct {
	// started takes containers the runtime just started, so that their
	// exits are watched before the next relist.
	started chan watchRequest
	// exits is set by PLEG.Run; nil without pidfd support.
	exits atomic.Pointer[exitWatcher]
}

// watchRequest is a container that was just started.
type watchRequest struct {
	containerID string
	uid         types.UID
}

// startedBacklog bounds the started containers waiting to be watched; past
// it the relist finds them.
const startedBacklog = 256

// NewWatches returns an empty Watches.
func NewWatches() *Watches {
	return &Watches{started: make(chan watchRequest, startedBacklog)}
}

// Watch says that the runtime just started a container of pod uid, so that
// its process is watched now rather than after the next relist: a container
// that exits within its first second (an init container, a short job) is
// then noticed as quickly as any other.
func (w *Watches) Watch(uid types.UID, containerID string) {
	select {
	case w.started <- watchRequest{containerID: containerID, uid: uid}:
	default:
	}
}

// Unwatch says that a container is being stopped by its pod's worker,
// which notices the exit itself: waking it for that exit would only cost
// runtime calls. If the container keeps running, the next relist watches it
// again.
func (w *Watches) Unwatch(containerID string) {
	if e := w.exits.Load(); e != nil {
		e.remove(containerID)
	}
}
