package mirror

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Resync is how often mirror pods are reconciled even when nothing
// signalled a change (a safety net, as upstream's housekeeping).
const Resync = 10 * time.Second

// Loop is what the mirror pod loop reads and tells.
type Loop struct {
	// Static returns the static pods berth runs (podworker.PodSet).
	Static func() []*v1.Pod
	// Mirrors returns the mirror pods bound to the node (the API source).
	Mirrors func() []*v1.Pod
	// Registered is closed once the Node exists: mirror pods are owned by it.
	Registered <-chan struct{}
	// Trigger asks for a sync now (a static pod or a mirror pod changed).
	Trigger <-chan struct{}
	// Synced is told of every static pod after each sync: a new mirror pod
	// can now take its status (the status syncer's Enqueue).
	Synced func(uid types.UID)
}

// Run keeps a mirror pod in the API for every static pod until ctx ends.
func (m *Manager) Run(ctx context.Context, l Loop) {
	logger := klog.FromContext(ctx).WithName("mirror")
	select {
	case <-l.Registered:
	case <-ctx.Done():
		return
	}
	ticker := time.NewTicker(Resync)
	defer ticker.Stop()
	for {
		static := l.Static()
		if err := m.Sync(ctx, static, l.Mirrors()); err != nil {
			logger.V(1).Info("Mirror pod sync incomplete; will retry", "err", err)
		}
		for _, p := range static {
			l.Synced(p.UID)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-l.Trigger:
		}
	}
}
