package prober

import (
	"context"
	"errors"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/panics"
)

// Run probes until ctx is cancelled, then waits for probes in flight.
func (m *Manager) Run(ctx context.Context) {
	defer m.wg.Wait()
	clk := m.opts.Clock
	timer := clk.NewTimer(idleWait)
	defer timer.Stop()
	for {
		now := clk.Now()
		wait := idleWait
		if next := m.dispatch(ctx, now); !next.IsZero() {
			wait = next.Sub(now)
		}
		if !timer.Stop() {
			select {
			case <-timer.C():
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-timer.C():
		}
	}
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// job is one probe to make, with what it needs copied out of the lock.
type job struct {
	key    key
	w      *worker
	target target
}

// dispatch starts every probe due at now and returns when the next waiting
// one falls due (zero when none waits on time). Liveness and readiness wait
// for the container's startup probe to pass. A scan of all workers is cheap
// at a node's scale (hundreds); a finished probe or a Sync calls again.
func (m *Manager) dispatch(ctx context.Context, now time.Time) time.Time {
	var jobs []job
	var next time.Time
	m.mu.Lock()
	for k, w := range m.workers {
		if w.hold || w.inFlight || (k.kind != startup && !m.startedLocked(k.containerID)) {
			continue
		}
		if w.due(now) {
			w.begin(now)
			jobs = append(jobs, job{key: k, w: w, target: target{
				containerID: k.containerID, container: w.container, podIP: m.pods[w.pod.UID].ip}})
			continue
		}
		if next.IsZero() || w.next.Before(next) {
			next = w.next
		}
	}
	m.mu.Unlock()
	for _, j := range jobs {
		m.launch(func() { m.probe(ctx, j) })
	}
	return next
}

// startedLocked reports whether the container passed its startup probe, or
// has none.
func (m *Manager) startedLocked(containerID string) bool {
	w := m.workers[key{containerID, startup}]
	return w == nil || w.result == success
}

// probe makes one probe and records its outcome, unless the worker was
// dropped meanwhile (the container stopped).
func (m *Manager) probe(ctx context.Context, j job) {
	w := j.w
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(w.pod), "podUID", w.pod.UID,
		"container", w.container.Name, "probeType", w.kind.String())
	start := m.opts.Clock.Now()
	var o outcome
	var err error
	var perr *panics.Error
	for range maxTries {
		err = panics.Do(m.opts.Panics, func() (err error) {
			o, err = m.pr.run(ctx, w.probe, j.target, w.timeout())
			return err
		})
		if errors.As(err, &perr) {
			// A bug: the probe errors for this period and is tried
			// again at the next one, as any probe that errors.
			logger.Error(err, "Probe panicked; retrying at its next period", "stack", string(perr.Stack))
			break
		}
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	elapsed := m.opts.Clock.Since(start).Seconds()
	if ctx.Err() != nil {
		// Shutting down: the result means nothing.
		m.mu.Lock()
		w.abandon()
		m.mu.Unlock()
		return
	}

	m.mu.Lock()
	current := m.workers[j.key] == w
	changed := false
	switch {
	case !current:
	case err != nil:
		w.abandon()
	default:
		changed = w.observe(o.result)
	}
	m.mu.Unlock()
	if !current {
		return
	}

	m.metrics.observe(w, o, err != nil, elapsed)
	switch {
	case err != nil:
		logger.V(1).Info("Probe errored", "err", err)
		m.event(w, v1.EventTypeWarning, eventUnhealthy, w.kind.String()+" probe errored and resulted in unknown state: "+err.Error())
	case o.result == failure:
		logger.V(1).Info("Probe failed", "output", o.output)
		m.event(w, v1.EventTypeWarning, eventUnhealthy, w.kind.String()+" probe failed: "+o.output)
	case o.warning:
		logger.V(3).Info("Probe succeeded with a warning", "output", o.output)
		m.event(w, v1.EventTypeWarning, eventProbeWarning, w.kind.String()+" probe warning: "+o.output)
	default:
		logger.V(4).Info("Probe succeeded")
	}
	if changed {
		logger.V(2).Info("Probe result changed", "containerID", j.key.containerID, "result", resultName(w.result))
		if m.opts.OnChange != nil {
			m.opts.OnChange(w.pod.UID)
		}
	}
	m.poke() // schedule this worker's next probe (and, on startup, the others)
}

// Event reasons, upstream's.
const (
	eventUnhealthy    = "Unhealthy"
	eventProbeWarning = "ProbeWarning"
)

// event records an event on the container, as upstream's container refs do.
func (m *Manager) event(w *worker, eventType, reason, message string) {
	if m.opts.Recorder == nil {
		return
	}
	field := "spec.containers{" + w.container.Name + "}"
	if w.sidecar {
		field = "spec.initContainers{" + w.container.Name + "}"
	}
	ref := &v1.ObjectReference{Kind: "Pod", APIVersion: "v1", Name: w.pod.Name, Namespace: w.pod.Namespace,
		UID: w.pod.UID, ResourceVersion: w.pod.ResourceVersion, FieldPath: field}
	m.opts.Recorder.Event(ref, eventType, reason, message)
}

func resultName(r result) string {
	switch r {
	case success:
		return "success"
	case failure:
		return "failure"
	}
	return "unknown"
}
