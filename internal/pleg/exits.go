package pleg

import (
	"context"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// The runtime records a container's exit a moment after its process is
// gone (containerd first deletes the task, then updates the status), so a
// pidfd exit is confirmed by asking the runtime about that one container
// until it says so. That costs one small call per exit instead of a relist
// of every pod, and wakes the worker as soon as its GetPodStatus will see
// the exit.
const (
	// exitConfirmInterval is how often pending exits are asked about.
	exitConfirmInterval = 10 * time.Millisecond
	// exitConfirmGiveUp is when a pending exit is left to the relist.
	exitConfirmGiveUp = 500 * time.Millisecond
	// maxExitConfirmsPerTick bounds the runtime calls of one tick, for when
	// many containers exit at once (a burst of deletions).
	maxExitConfirmsPerTick = 8
)

// pendingExit is a container whose process exited and whose exit the
// runtime has not confirmed yet.
type pendingExit struct {
	uid   types.UID
	since time.Time
}

// dueExits decides which pending exits to ask the runtime about now (the
// oldest first, at most limit) and which to give up on (pending longer than
// giveUp; the relist notices those).
func dueExits(pending map[string]pendingExit, now time.Time, limit int, giveUp time.Duration) (check, drop []string) {
	ids := make([]string, 0, len(pending))
	for id, p := range pending {
		if now.Sub(p.since) > giveUp {
			drop = append(drop, id)
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := pending[ids[i]], pending[ids[j]]
		if !a.since.Equal(b.since) {
			return a.since.Before(b.since)
		}
		return ids[i] < ids[j]
	})
	sort.Strings(drop)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, drop
}

// exitConfirmer turns process exits into worker wake-ups once the runtime
// reports them.
type exitConfirmer struct {
	exited   func(ctx context.Context, containerID string) (bool, error)
	onChange func(types.UID)
	clock    clock.Clock
	notify   chan struct{}

	mu      sync.Mutex
	pending map[string]pendingExit
}

func newExitConfirmer(exited func(context.Context, string) (bool, error), onChange func(types.UID), clk clock.Clock) *exitConfirmer {
	return &exitConfirmer{
		exited:   exited,
		onChange: onChange,
		clock:    clk,
		notify:   make(chan struct{}, 1),
		pending:  map[string]pendingExit{},
	}
}

// add records that a container's process exited.
func (c *exitConfirmer) add(containerID string, uid types.UID) {
	c.mu.Lock()
	if _, ok := c.pending[containerID]; !ok {
		c.pending[containerID] = pendingExit{uid: uid, since: c.clock.Now()}
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// run confirms pending exits until ctx ends.
func (c *exitConfirmer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.notify:
		}
		for c.tick(ctx) {
			select {
			case <-ctx.Done():
				return
			case <-c.clock.After(exitConfirmInterval):
			}
		}
	}
}

// tick asks the runtime about the exits that are due; it reports whether
// any remain pending.
func (c *exitConfirmer) tick(ctx context.Context) bool {
	c.mu.Lock()
	check, drop := dueExits(c.pending, c.clock.Now(), maxExitConfirmsPerTick, exitConfirmGiveUp)
	for _, id := range drop {
		delete(c.pending, id)
	}
	pending := make(map[string]types.UID, len(check))
	for _, id := range check {
		pending[id] = c.pending[id].uid
	}
	c.mu.Unlock()
	if len(drop) > 0 {
		klog.FromContext(ctx).V(4).Info("Runtime has not reported container exits yet; leaving them to the relist", "containers", drop)
	}
	for _, id := range check {
		exited, err := c.exited(ctx, id)
		if err != nil || !exited {
			// An error here is the relist's to report; keep asking until
			// the exit is given up on.
			continue
		}
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		c.onChange(pending[id])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) > 0
}
