package podworker

import (
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/container"
)

// Wakeups collects what the components the workers depend on (the PLEG,
// the prober, the volume manager) have to tell them: this pod's state
// changed, every pod should sync (the runtime is back), here is a fresh
// runtime snapshot. Those components are built before the workers and
// hold this queue, not the workers; Workers.Run drains it. Its methods
// never block.
type Wakeups struct {
	ready chan struct{} // one pending signal

	mu   sync.Mutex
	uids map[types.UID]struct{}
	all  bool

	relist atomic.Pointer[map[types.UID]*container.PodStatus]
}

// NewWakeups returns an empty queue.
func NewWakeups() *Wakeups {
	return &Wakeups{ready: make(chan struct{}, 1), uids: map[types.UID]struct{}{}}
}

// Wake asks the worker of uid, if any, to sync now.
func (q *Wakeups) Wake(uid types.UID) {
	q.mu.Lock()
	q.uids[uid] = struct{}{}
	q.mu.Unlock()
	q.signal()
}

// WakeAll asks every worker to sync now.
func (q *Wakeups) WakeAll() {
	q.mu.Lock()
	q.all = true
	q.mu.Unlock()
	q.signal()
}

// Relisted hands over the runtime's latest list of pods, to find pods no
// source wants. Only the newest snapshot is kept.
func (q *Wakeups) Relisted(pods map[types.UID]*container.PodStatus) {
	q.relist.Store(&pods)
	q.signal()
}

func (q *Wakeups) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// drain hands what is pending to the workers and clears it: wake(uid)
// for each pod (or wakeAll once), then relisted with the newest runtime
// snapshot if one came.
func (q *Wakeups) drain(wake func(types.UID), wakeAll func(), relisted func(map[types.UID]*container.PodStatus)) {
	q.mu.Lock()
	if q.all {
		q.all = false
		clear(q.uids)
		q.mu.Unlock()
		wakeAll()
	} else {
		for uid := range q.uids {
			wake(uid)
		}
		clear(q.uids)
		q.mu.Unlock()
	}
	if p := q.relist.Swap(nil); p != nil {
		relisted(*p)
	}
}
