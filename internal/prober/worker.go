package prober

import (
	"time"

	v1 "k8s.io/api/core/v1"
)

// kind is which of a container's probes a worker runs.
type kind int8

const (
	liveness kind = iota
	readiness
	startup
)

// String is upstream's spelling, used in events and the probe_type label.
func (k kind) String() string {
	switch k {
	case liveness:
		return "Liveness"
	case readiness:
		return "Readiness"
	default:
		return "Startup"
	}
}

func (k kind) spec(c *v1.Container) *v1.Probe {
	switch k {
	case liveness:
		return c.LivenessProbe
	case readiness:
		return c.ReadinessProbe
	default:
		return c.StartupProbe
	}
}

// result is the outcome of one probe, or a worker's published result.
type result int8

const (
	unknown result = iota // no result yet (or the probe errored)
	success
	failure
)

// Defaults of the API, for probes that reach berth undefaulted.
const (
	defaultPeriod           = 10 * time.Second
	defaultTimeout          = time.Second
	defaultFailureThreshold = 3
	defaultSuccessThreshold = 1
)

// worker is one probe of one container instance (one runtime container ID).
// It holds no goroutine and does no IO: the Manager asks it whether it is
// due, runs the probe, and feeds the outcome back with observe. Its fields
// are guarded by the Manager's lock.
type worker struct {
	kind        kind
	containerID string
	pod         *v1.Pod
	container   *v1.Container
	sidecar     bool
	probe       *v1.Probe

	// next is when the next probe is due. The first is set by newWorker:
	// after the initial delay and a random part of the period, so that
	// containers started together don't probe together.
	next     time.Time
	inFlight bool
	// hold stops probing for good: a failed liveness probe (the container
	// will be killed), a startup probe that decided, a pod being deleted.
	// A new container instance gets a new worker.
	hold bool

	result result // what the Manager reports
	last   result // the latest probe outcome
	run    int    // how many probes in a row had outcome last
}

// newWorker makes the worker for probe k of container c, which runs as
// containerID since startedAt. seed is the container's latest reported
// status (may be nil): a container berth already reported started or ready
// (before berth restarted) keeps that result until a probe says otherwise,
// rather than flapping.
func newWorker(k kind, pod *v1.Pod, c *v1.Container, sidecar bool, containerID string, startedAt, now time.Time, jitter time.Duration, seed *v1.ContainerStatus) *worker {
	w := &worker{kind: k, containerID: containerID, pod: pod, container: c, sidecar: sidecar, probe: k.spec(c)}
	switch k {
	case liveness:
		w.result = success // healthy until proven otherwise
	case readiness:
		w.result = failure // not ready until a probe succeeds
		if seed != nil && seed.Ready {
			w.result = success
		}
	case startup:
		if seed != nil && seed.Started != nil && *seed.Started {
			w.result, w.hold = success, true
		}
	}
	w.next = now.Add(jitter)
	if startedAt.IsZero() {
		startedAt = now
	}
	if first := startedAt.Add(time.Duration(w.probe.InitialDelaySeconds) * time.Second); first.After(w.next) {
		w.next = first
	}
	return w
}

func (w *worker) period() time.Duration { return probePeriod(w.probe) }

func (w *worker) timeout() time.Duration {
	if s := w.probe.TimeoutSeconds; s > 0 {
		return time.Duration(s) * time.Second
	}
	return defaultTimeout
}

func (w *worker) threshold(r result) int {
	if r == success {
		return int(max(w.probe.SuccessThreshold, defaultSuccessThreshold))
	}
	if t := w.probe.FailureThreshold; t > 0 {
		return int(t)
	}
	return defaultFailureThreshold
}

// due reports whether a probe should start at now.
func (w *worker) due(now time.Time) bool {
	return !w.hold && !w.inFlight && !now.Before(w.next)
}

// begin marks a probe as started at now; the next falls due one period
// later (or as soon as this one ends, if it takes longer).
func (w *worker) begin(now time.Time) {
	w.inFlight = true
	w.next = now.Add(w.period())
}

// abandon ends a probe that gave no result (it errored): it counts for
// nothing.
func (w *worker) abandon() { w.inFlight = false }

// observe ends a probe with outcome r and reports whether the published
// result changed: only successThreshold successes or failureThreshold
// failures in a row change it.
func (w *worker) observe(r result) (changed bool) {
	w.inFlight = false
	if r == w.last {
		w.run++
	} else {
		w.last, w.run = r, 1
	}
	if w.run < w.threshold(r) {
		return false
	}
	changed = w.result != r
	w.result = r
	if (w.kind == liveness && r == failure) || w.kind == startup {
		// Nothing more to learn from this container instance: it is
		// killed, or started (liveness and readiness take over).
		w.hold = true
	}
	return changed
}

// quiet makes a liveness or startup worker report success and stop, so a
// pod being deleted is not killed by its probes while it shuts down.
func (w *worker) quiet() (changed bool) {
	if w.kind == readiness {
		return false
	}
	w.hold = true
	changed = w.result != success
	w.result = success
	return changed
}
