package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
)

// RuntimePods returns the pods as the runtime last reported them, e.g.
// the PLEG's last relist. The result is only read.
type RuntimePods func() map[types.UID]*container.PodStatus

// RegisterRuntimeCounts registers kubelet_running_pods (pods with a ready
// sandbox) and kubelet_running_containers{container_state}, computed from
// pods at each scrape so that no second copy of the runtime state exists.
func RegisterRuntimeCounts(reg prometheus.Registerer, pods RuntimePods) error {
	return reg.Register(&runtimeCounts{
		pods: pods,
		runningPods: prometheus.NewDesc(prometheus.BuildFQName("", subsystem, "running_pods"),
			alpha("Number of pods that have a running pod sandbox"), nil, nil),
		runningContainers: prometheus.NewDesc(prometheus.BuildFQName("", subsystem, "running_containers"),
			alpha("Number of containers currently running"), []string{"container_state"}, nil),
	})
}

type runtimeCounts struct {
	pods                           RuntimePods
	runningPods, runningContainers *prometheus.Desc
}

func (c *runtimeCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.runningPods
	ch <- c.runningContainers
}

// containerStates are always reported, at zero too, so that series do not
// appear and vanish with the containers.
var containerStates = []container.State{container.StateCreated, container.StateRunning, container.StateExited, container.StateUnknown}

func (c *runtimeCounts) Collect(ch chan<- prometheus.Metric) {
	sandboxes := 0
	states := map[container.State]int{}
	for _, p := range c.pods() {
		for _, sb := range p.Sandboxes {
			if sb.State == container.SandboxReady {
				sandboxes++
			}
		}
		for _, ct := range p.Containers {
			states[ct.State]++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.runningPods, prometheus.GaugeValue, float64(sandboxes))
	for _, s := range containerStates {
		ch <- prometheus.MustNewConstMetric(c.runningContainers, prometheus.GaugeValue, float64(states[s]), string(s))
	}
}

// PodLister is what the PLEG lists pods with (pleg.Lister).
type PodLister interface {
	ListPods(ctx context.Context) (map[types.UID]*container.PodStatus, error)
}

// InstrumentRelist returns l with each ListPods timed as a PLEG relist:
// kubelet_pleg_relist_duration_seconds, _relist_interval_seconds (from the
// start of one relist to the start of the next) and _last_seen_seconds.
// clk may be nil for real time.
func (m *Metrics) InstrumentRelist(l PodLister, clk clock.PassiveClock) PodLister {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &timedLister{l: l, m: m, clk: clk}
}

type timedLister struct {
	l   PodLister
	m   *Metrics
	clk clock.PassiveClock

	mu        sync.Mutex
	lastStart time.Time
}

func (t *timedLister) ListPods(ctx context.Context) (map[types.UID]*container.PodStatus, error) {
	start := t.clk.Now()
	t.mu.Lock()
	if !t.lastStart.IsZero() {
		t.m.PLEGRelistInterval.Observe(start.Sub(t.lastStart).Seconds())
	}
	t.lastStart = start
	t.mu.Unlock()
	pods, err := t.l.ListPods(ctx)
	end := t.clk.Now()
	t.m.PLEGRelistDuration.Observe(end.Sub(start).Seconds())
	if err == nil {
		t.m.PLEGLastSeen.Set(float64(end.Unix()))
	}
	return pods, err
}
