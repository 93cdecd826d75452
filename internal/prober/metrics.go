package prober

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// metrics are upstream's prober metrics, same names and labels.
type metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Values of the result label.
const (
	metricSuccessful = "successful"
	metricFailed     = "failed"
	metricUnknown    = "unknown"
)

// newMetrics registers the metrics on reg; nil reg means no metrics. A
// collector already registered (a second Manager on the same registry) is
// shared.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "prober",
			Name:      "probe_total",
			Help:      "Cumulative number of a liveness, readiness or startup probe for a container by result.",
		}, []string{"probe_type", "result", "container", "pod", "namespace", "pod_uid"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "prober",
			Name:      "probe_duration_seconds",
			Help:      "Duration in seconds for a probe response.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"probe_type", "container", "pod", "namespace"}),
	}
	if err := register(reg, &m.total); err != nil {
		return nil, err
	}
	if err := register(reg, &m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	return err
}

// observe counts one probe. As upstream, the duration is recorded for
// successful and unknown (errored) probes, not for failed ones.
func (m *metrics) observe(w *worker, o outcome, errored bool, seconds float64) {
	if m == nil {
		return
	}
	res := metricSuccessful
	switch {
	case errored:
		res = metricUnknown
	case o.result == failure:
		res = metricFailed
	}
	pod, c := w.pod, w.container.Name
	m.total.WithLabelValues(w.kind.String(), res, c, pod.Name, pod.Namespace, string(pod.UID)).Inc()
	if res != metricFailed {
		m.duration.WithLabelValues(w.kind.String(), c, pod.Name, pod.Namespace).Observe(seconds)
	}
}

// forget drops the series of a pod that is gone, as upstream does when a
// worker ends; the counts live on across restarts of its containers.
func (m *metrics) forget(uid types.UID, name, namespace string) {
	if m == nil {
		return
	}
	m.total.DeletePartialMatch(prometheus.Labels{"pod_uid": string(uid)})
	m.duration.DeletePartialMatch(prometheus.Labels{"pod": name, "namespace": namespace})
}
