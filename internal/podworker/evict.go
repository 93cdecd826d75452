package podworker

import (
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/status"
)

// reasonEvicted: the eviction manager stopped the pod (node pressure or a
// local storage limit).
const reasonEvicted = "evicted"

// Evict fails a running pod for good with ev (phase Failed, its reason and
// message, and its condition) and kills it within grace, as upstream's
// killPodNow for the eviction manager: the status says so before the
// containers are stopped, and the pod stays down while its source lists
// it. It returns false when the pod has no worker or is already being
// stopped.
func (w *Workers) Evict(uid types.UID, grace *int64, ev status.Eviction) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	wk, ok := w.workers[uid]
	if !ok {
		return false
	}
	wk.mu.Lock()
	syncing := wk.state == stateSyncing && wk.pod != nil
	if syncing {
		wk.eviction = &ev
	}
	wk.mu.Unlock()
	if !syncing {
		return false
	}
	w.pods.terminate(uid, nil, grace, reasonEvicted)
	wk.setKill(grace)
	return true
}

// SourcesReady reports whether every pod source has delivered its first
// snapshot and the pods in it were admitted: until then the eviction
// manager does not judge the node, so that the pods that ran before a
// restart are admitted again rather than refused under pressure.
func (w *Workers) SourcesReady() bool { return w.sourcesReady.Load() }
