package podworker

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/source"
)

type snapshot struct {
	source string
	pods   []*v1.Pod
}

// runSources applies the snapshots of every source, one at a time, until
// ctx ends.
func (w *Workers) runSources(ctx context.Context) {
	logger := klog.FromContext(ctx)
	names := make([]string, 0, len(w.opts.Sources))
	complete := func() bool {
		for _, src := range w.opts.Sources {
			if src.Complete != nil && !src.Complete() {
				return false
			}
		}
		return true
	}
	updates := make(chan snapshot)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, src := range w.opts.Sources {
		names = append(names, src.Name)
		out := make(chan []*v1.Pod)
		wg.Go(func() { src.Run(ctx, out) })
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case pods := <-out:
					select {
					case updates <- snapshot{source: src.Name, pods: pods}:
					case <-ctx.Done():
						return
					}
				}
			}
		})
	}
	if len(names) == 0 {
		logger.Info("No pod source: berth only cleans up pods it finds in the runtime")
		w.sourcesReady.Store(true)
	}
	// Deferred resizes are also retried now and then, as upstream's
	// allocation manager does: room may appear without a pod leaving (a
	// pod completes, the node's allocatable grows).
	retry := w.opts.Clock.NewTimer(resizeRetryPeriod)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C():
			w.retryResizes(logger)
			retry.Reset(resizeRetryPeriod)
		case u := <-updates:
			w.setSource(logger, u.source, u.pods)
			if !w.sourcesReady.Load() && w.pods.merger.SeenAllSources(names...) && complete() {
				w.sourcesReady.Store(true)
			}
		case <-w.released:
			w.startWaiting(logger)
			w.retryResizes(logger)
		}
	}
}

// setSource takes a source's snapshot into the pod set and acts on what
// changed.
func (w *Workers) setSource(logger klog.Logger, name string, pods []*v1.Pod) {
	w.apply(logger, w.pods.merger.Set(name, pods))
	if name != source.SourceAPI {
		w.opts.Listener.StaticPodsChanged()
	}
}

// runWakeups hands wake-ups and runtime snapshots to the workers.
func (w *Workers) runWakeups(ctx context.Context) {
	q := w.opts.Wakeups
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.ready:
			q.drain(w.wake, w.wakeAll, func(pods map[types.UID]*container.PodStatus) { w.relisted(ctx, pods) })
		}
	}
}

// relisted kills the runtime's pods that no source wants, once every
// source has spoken (before, they may belong to one that has not).
func (w *Workers) relisted(ctx context.Context, pods map[types.UID]*container.PodStatus) {
	w.runtimePods.Store(&pods)
	if !w.sourcesReady.Load() {
		return
	}
	for uid, st := range pods {
		if !w.pods.Admitted(uid) {
			klog.FromContext(ctx).Info("Removing pod that no source wants", "pod", klog.KRef(st.Namespace, st.Name), "podUID", uid)
			w.killOrphan(st)
		}
	}
}

// runOrphanCleanup removes what pods left on disk once they are gone:
// after a restart, pods deleted while berth was down leave volume
// directories.
func (w *Workers) runOrphanCleanup(ctx context.Context) {
	cleaner, _ := w.opts.Volumes.(OrphanVolumes)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.opts.Clock.After(w.opts.OrphanCleanupPeriod):
		}
		p := w.runtimePods.Load()
		if p == nil || !w.sourcesReady.Load() {
			continue
		}
		inRuntime := *p
		keep := func(uid types.UID) bool {
			_, ok := inRuntime[uid]
			return ok || w.pods.Admitted(uid)
		}
		if cleaner != nil {
			if err := cleaner.CleanupOrphans(ctx, keep); err != nil {
				klog.FromContext(ctx).Error(err, "Cleaning up the volumes of removed pods failed; will retry")
			}
		}
		if c, ok := w.opts.Claims.(OrphanClaims); ok {
			if err := c.CleanupOrphans(ctx, keep); err != nil {
				klog.FromContext(ctx).Error(err, "Unpreparing the resource claims of removed pods failed; will retry")
			}
		}
		w.alloc.RemoveOrphans(keep)
	}
}
