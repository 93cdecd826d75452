package status

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// Store keeps the latest status berth computed for each pod, by UID. It is
// the one place components read a pod's reported status from. Values are
// copied in and out, so no caller shares memory with another.
type Store struct {
	onChange func(types.UID)

	mu       sync.RWMutex
	statuses map[types.UID]v1.PodStatus
}

// NewStore returns an empty store. onChange, if not nil, is called with the
// pod's UID after Set stores a status that differs from the one before, and
// after Delete removes one. It runs on the caller's goroutine, outside the
// store's lock, and must not block: hand the UID to a queue and return.
// (Calls for one pod are ordered as long as one goroutine — its pod worker —
// updates that pod, which is how berth uses it.)
func NewStore(onChange func(uid types.UID)) *Store {
	return &Store{onChange: onChange, statuses: make(map[types.UID]v1.PodStatus)}
}

// Set stores the pod's status and reports whether it changed.
func (s *Store) Set(uid types.UID, status v1.PodStatus) bool {
	status = *status.DeepCopy()
	s.mu.Lock()
	old, ok := s.statuses[uid]
	changed := !ok || !apiequality.Semantic.DeepEqual(old, status)
	if changed {
		s.statuses[uid] = status
	}
	s.mu.Unlock()
	if changed && s.onChange != nil {
		s.onChange(uid)
	}
	return changed
}

// Get returns the pod's latest status.
func (s *Store) Get(uid types.UID) (v1.PodStatus, bool) {
	s.mu.RLock()
	status, ok := s.statuses[uid]
	s.mu.RUnlock()
	if !ok {
		return v1.PodStatus{}, false
	}
	return *status.DeepCopy(), true
}

// Delete forgets the pod.
func (s *Store) Delete(uid types.UID) {
	s.mu.Lock()
	_, ok := s.statuses[uid]
	delete(s.statuses, uid)
	s.mu.Unlock()
	if ok && s.onChange != nil {
		s.onChange(uid)
	}
}

// List returns a copy of every stored status, by UID.
func (s *Store) List() map[types.UID]v1.PodStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[types.UID]v1.PodStatus, len(s.statuses))
	for uid, status := range s.statuses {
		out[uid] = *status.DeepCopy()
	}
	return out
}
