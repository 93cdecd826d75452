package prober

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/panics"
)

// Exec runs a command in a running container (CRI ExecSync). A non-zero
// exit is not an error: it is exitCode. A command still running after
// timeout must end in an error wrapping context.DeadlineExceeded or
// cri-client's ErrCommandTimedOut (a gRPC DeadlineExceeded status counts
// too): that is a failed probe. Any other error means the probe could not
// be made, which counts for nothing.
type Exec interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int32, err error)
}

// Options configures a Manager.
type Options struct {
	// Exec runs exec probes; without it they error.
	Exec Exec
	// Recorder receives the Unhealthy and ProbeWarning events; may be nil.
	Recorder record.EventRecorder
	// Clock schedules probes; default the real clock.
	Clock clock.Clock
	// OnChange is called, from a probe goroutine, whenever a result that
	// the Manager reports changes, with the UID of the pod concerned. It
	// must not block.
	OnChange func(podUID types.UID)
	// Metrics, if set, gets prober_probe_total and
	// prober_probe_duration_seconds.
	Metrics prometheus.Registerer
	// Panics counts the panics recovered in probes (the probe errors for
	// that period); may be nil.
	Panics panics.Counter
}

// Manager runs the probes of every pod's running containers and keeps their
// results. The pod worker tells it what runs (Sync, RemovePod); the planner
// and the status computation read the results (Liveness, Startup,
// Readiness). All methods are safe for concurrent use.
type Manager struct {
	opts    Options
	pr      *prober
	metrics *metrics
	wake    chan struct{}
	// jitter is how much later than its initial delay a worker first
	// probes, at most its period; tests make it 0.
	jitter func(period time.Duration) time.Duration
	// started is when the manager was made: containers that were already
	// running then (adopted after a berth restart) get the jitter.
	started time.Time
	// launch runs one probe; tests run it inline.
	launch func(func())
	wg     sync.WaitGroup

	mu      sync.Mutex
	workers map[key]*worker
	pods    map[types.UID]*podProbes
}

// key names one probe of one container instance.
type key struct {
	containerID string
	kind        kind
}

// podProbes is what the Manager knows of a pod between syncs.
type podProbes struct {
	name, namespace string
	ip              string // probes go here unless they name a host
	keys            map[key]struct{}
}

// prober performs single probes; it holds the shared HTTP transports.
type prober struct {
	execer Exec
	h1     *http.Transport
	h2c    *http.Transport
}

// maxTries is how often a probe that errors (rather than fails) is tried
// before giving up for this period, as upstream.
const maxTries = 3

// idleWait is how long Run sleeps when no probe is scheduled; a Sync or a
// finished probe wakes it earlier.
const idleWait = time.Hour

// New returns a Manager; probes run once Run is called.
func New(opts Options) *Manager {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	met, err := newMetrics(opts.Metrics)
	if err != nil {
		klog.Background().Error(err, "Prober metrics not registered")
	}
	h1, h2c := newTransports()
	m := &Manager{
		opts:    opts,
		pr:      &prober{execer: opts.Exec, h1: h1, h2c: h2c},
		metrics: met,
		wake:    make(chan struct{}, 1),
		jitter:  func(p time.Duration) time.Duration { return rand.N(p) },
		started: opts.Clock.Now(),
		workers: map[key]*worker{},
		pods:    map[types.UID]*podProbes{},
	}
	m.launch = func(f func()) { m.wg.Go(f) }
	return m
}

// Readiness reports whether the container's readiness probe last passed;
// known is false for a container without readiness probe (or not running).
func (m *Manager) Readiness(containerID string) (ready, known bool) {
	return m.result(containerID, readiness)
}

// Startup reports whether the container's startup probe passed; known is
// false while it has not decided (and for a container without one). Known
// and false means it failed: the container must be restarted.
func (m *Manager) Startup(containerID string) (started, known bool) {
	return m.result(containerID, startup)
}

// Liveness reports whether the container is healthy; known and false means
// its liveness probe failed: the container must be restarted.
func (m *Manager) Liveness(containerID string) (healthy, known bool) {
	return m.result(containerID, liveness)
}

func (m *Manager) result(containerID string, k kind) (bool, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.workers[key{rawID(containerID), k}]
	if w == nil || w.result == unknown {
		return false, false
	}
	return w.result == success, true
}

// Sync brings the pod's probes in line with its latest status: every probe
// of a running app container or sidecar has a worker (keyed by container
// ID), workers of containers no longer running are dropped with their
// results. A terminal pod loses all. A pod being deleted has its liveness
// and startup probes report success and stop, so they don't kill it while
// it shuts down. Sync does not call OnChange.
func (m *Manager) Sync(pod *v1.Pod, st v1.PodStatus) {
	if st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed {
		m.RemovePod(pod.UID)
		return
	}
	want := wanted(pod, &st)
	now := m.opts.Clock.Now()

	m.mu.Lock()
	pp := m.pods[pod.UID]
	if pp == nil {
		if len(want) == 0 {
			m.mu.Unlock()
			return
		}
		pp = &podProbes{name: pod.Name, namespace: pod.Namespace, keys: map[key]struct{}{}}
		m.pods[pod.UID] = pp
	}
	pp.ip = st.PodIP
	for k := range pp.keys {
		if _, ok := want[k]; !ok {
			delete(pp.keys, k)
			delete(m.workers, k)
		}
	}
	added := false
	for k, c := range want {
		w := m.workers[k]
		if w == nil {
			// Only containers that were running before berth started are
			// spread over their period, as upstream spreads probes only
			// right after a kubelet start: those all get workers at once.
			// A new container is probed as soon as its initial delay
			// ends (its start time already differs from its neighbours').
			var jitter time.Duration
			if c.startedAt.IsZero() || c.startedAt.Before(m.started) {
				jitter = m.jitter(probePeriod(k.kind.spec(c.spec)))
			}
			w = newWorker(k.kind, pod, c.spec, c.sidecar, k.containerID, c.startedAt, now, jitter, c.status)
			m.workers[k] = w
			pp.keys[k] = struct{}{}
			added = true
		}
		if pod.DeletionTimestamp != nil {
			w.quiet()
		}
	}
	m.mu.Unlock()
	if added {
		m.poke()
	}
}

// RemovePod stops every probe of the pod and forgets their results.
func (m *Manager) RemovePod(uid types.UID) {
	m.mu.Lock()
	pp := m.pods[uid]
	if pp == nil {
		m.mu.Unlock()
		return
	}
	for k := range pp.keys {
		delete(m.workers, k)
	}
	delete(m.pods, uid)
	m.mu.Unlock()
	m.metrics.forget(uid, pp.name, pp.namespace)
}

// wantedProbe is a container's probe that should run.
type wantedProbe struct {
	spec      *v1.Container
	sidecar   bool
	startedAt time.Time
	status    *v1.ContainerStatus
}

// wanted lists the probes of the pod's running app containers and sidecars,
// by container ID, from its latest status.
func wanted(pod *v1.Pod, st *v1.PodStatus) map[key]wantedProbe {
	var out map[key]wantedProbe
	add := func(c *v1.Container, sidecar bool, statuses []v1.ContainerStatus) {
		if c.LivenessProbe == nil && c.ReadinessProbe == nil && c.StartupProbe == nil {
			return
		}
		cs := findStatus(statuses, c.Name)
		if cs == nil || cs.State.Running == nil || cs.ContainerID == "" {
			return
		}
		id := rawID(cs.ContainerID)
		for _, k := range []kind{liveness, readiness, startup} {
			if k.spec(c) == nil {
				continue
			}
			if out == nil {
				out = map[key]wantedProbe{}
			}
			out[key{id, k}] = wantedProbe{spec: c, sidecar: sidecar, startedAt: cs.State.Running.StartedAt.Time, status: cs}
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i], false, st.ContainerStatuses)
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if container.IsSidecar(c) {
			add(c, true, st.InitContainerStatuses)
		}
	}
	return out
}

func findStatus(list []v1.ContainerStatus, name string) *v1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// rawID strips "<runtime>://" from a container ID.
func rawID(id string) string {
	if _, raw, ok := strings.Cut(id, "://"); ok {
		return raw
	}
	return id
}

func probePeriod(p *v1.Probe) time.Duration {
	if p.PeriodSeconds > 0 {
		return time.Duration(p.PeriodSeconds) * time.Second
	}
	return defaultPeriod
}
