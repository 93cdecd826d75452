package volume

import (
	"context"
	"errors"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/panics"
)

// refreshTimeout bounds the API calls of one pod's refresh.
const refreshTimeout = 30 * time.Second

// ObjectChanged tells the manager that a ConfigMap or Secret changed; wire
// it to objects.Options.OnChange. Run rewrites the volumes showing it at
// once. kind is "ConfigMap" or "Secret". It does not block.
func (m *Manager) ObjectChanged(kind, namespace, name string) {
	m.mu.Lock()
	m.changed[objectKey{kind, namespace, name}] = struct{}{}
	m.mu.Unlock()
	m.signal()
}

// Run keeps file-based volumes fresh until ctx is cancelled: it rewrites
// the volumes of a changed ConfigMap or Secret as soon as ObjectChanged
// reports it, and rewrites projected volumes when a token is due for
// refresh (80% of its lifetime) or trust bundles are due to be re-read.
// DownwardAPI files follow pod updates through SetUp.
func (m *Manager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("volume")
	ctx = klog.NewContext(ctx, logger)
	for {
		// Pick the pods to refresh without taking their locks: a pod
		// busy in SetUp must not hold up the others.
		now := m.clock.Now()
		m.mu.Lock()
		changed := m.changed
		m.changed = make(map[objectKey]struct{})
		var work []*podState
		for _, ps := range m.pods {
			if touches(ps.sched.objects, changed) || (!ps.sched.due.IsZero() && !now.Before(ps.sched.due)) {
				work = append(work, ps)
			}
		}
		m.mu.Unlock()

		for _, ps := range work {
			// A bug reached by one pod's volumes must not stop the
			// refreshes of the others: that pod is tried again after
			// tokenRetry.
			err := panics.Do(m.panics, func() error { m.refresh(ctx, ps, changed, now); return nil })
			if perr := (*panics.Error)(nil); errors.As(err, &perr) {
				m.logger(ctx, ps.pod).Error(err, "Volume refresh panicked; retrying later", "retryIn", tokenRetry,
					"stack", string(perr.Stack))
				m.retryLater(ps)
			}
		}

		var next time.Time
		m.mu.Lock()
		for _, ps := range m.pods {
			if due := ps.sched.due; !due.IsZero() && (next.IsZero() || due.Before(next)) {
				next = due
			}
		}
		m.mu.Unlock()

		var timeout <-chan time.Time
		var stop func() bool
		if !next.IsZero() {
			t := m.clock.NewTimer(next.Sub(m.clock.Now()))
			timeout, stop = t.C(), t.Stop
		}
		select {
		case <-ctx.Done():
		case <-m.wake:
		case <-timeout:
		}
		if stop != nil {
			stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func touches(objects map[objectKey]bool, changed map[objectKey]struct{}) bool {
	for k := range changed {
		if objects[k] {
			return true
		}
	}
	return false
}

// refresh rewrites the pod's file-based volumes that show a changed object
// or are due. A pod still waiting for a volume is woken instead when an
// object it needs changed: its worker retries SetUp at once rather than
// after its back-off.
func (m *Manager) refresh(ctx context.Context, ps *podState, changed map[objectKey]struct{}, now time.Time) {
	// One pod's slow API call must not hold up the others for long.
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	if wake := m.refreshLocked(ctx, ps, changed, now); wake {
		m.notify(ps.uid)
	}
}

// refreshLocked does refresh's work under ps.mu, released even on a panic,
// and reports whether the pod's worker must be woken.
func (m *Manager) refreshLocked(ctx context.Context, ps *podState, changed map[objectKey]struct{}, now time.Time) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pod := ps.pod
	if ps.gone || pod == nil {
		return false
	}
	wake, rewrote := false, false
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		vs := ps.volumes[vol.Name]
		touched := false
		for _, k := range volumeObjects(pod.Namespace, vol) {
			if _, ok := changed[k]; ok {
				touched = true
			}
		}
		if vs == nil || !vs.ready || !vs.files {
			// Not set up (yet): the worker's next SetUp does it.
			wake = wake || (touched && ps.failed)
			continue
		}
		if touched || (!vs.refreshAt.IsZero() && !now.Before(vs.refreshAt)) {
			if m.refreshVolume(ctx, ps, vol, vs) {
				rewrote = true
			}
		}
	}
	m.reschedule(ps)
	return wake || rewrote
}

// retryLater makes every set-up file volume of a pod whose refresh
// panicked due after tokenRetry, so that Run neither spins on the pod nor
// forgets the change it was refreshing for.
func (m *Manager) retryLater(ps *podState) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	at := m.clock.Now().Add(tokenRetry)
	for _, vs := range ps.volumes {
		if vs.ready && vs.files && (vs.refreshAt.IsZero() || vs.refreshAt.After(at)) {
			vs.refreshAt = at
		}
	}
	m.reschedule(ps)
}

// refreshVolume rewrites one set-up volume and reports whether its files
// changed. A failure keeps the files as they are and is reported once
// until it changes or clears. ps.mu is held.
func (m *Manager) refreshVolume(ctx context.Context, ps *podState, vol *v1.Volume, vs *volumeState) bool {
	logger := m.logger(ctx, ps.pod)
	changed, err := m.setUpVolume(ctx, ps, vol)
	if err != nil {
		if msg := err.Error(); msg != vs.lastErr {
			vs.lastErr = msg
			logger.Error(err, "Cannot refresh volume; keeping its current content", "volume", vol.Name)
			m.event(ps.pod, v1.EventTypeWarning, "FailedMount", failureMessage(vol.Name, err))
		}
		if vs.refreshAt.IsZero() || !vs.refreshAt.After(m.clock.Now()) {
			// Try again later rather than spin.
			vs.refreshAt = m.clock.Now().Add(tokenRetry)
		}
		return false
	}
	vs.lastErr = ""
	if changed {
		logger.V(2).Info("Updated volume", "volume", vol.Name)
	}
	return changed
}

// reschedule records what Run needs to know of the pod and wakes Run, as
// the pod's deadlines may have moved. ps.mu is held.
func (m *Manager) reschedule(ps *podState) {
	sched := schedule{objects: make(map[objectKey]bool)}
	if pod := ps.pod; pod != nil && !ps.gone {
		used := usedVolumes(pod)
		for i := range pod.Spec.Volumes {
			vol := &pod.Spec.Volumes[i]
			if !used[vol.Name] {
				continue
			}
			for _, k := range volumeObjects(pod.Namespace, vol) {
				sched.objects[k] = true
			}
			if vs := ps.volumes[vol.Name]; vs != nil && vs.ready && vs.files && !vs.refreshAt.IsZero() {
				if sched.due.IsZero() || vs.refreshAt.Before(sched.due) {
					sched.due = vs.refreshAt
				}
			}
		}
	}
	m.mu.Lock()
	ps.sched = sched
	m.mu.Unlock()
	m.signal()
}
