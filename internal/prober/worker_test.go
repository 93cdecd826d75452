package prober

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func letter(r result) string {
	switch r {
	case success:
		return "s"
	case failure:
		return "f"
	}
	return "u"
}

// A worker's published result after each outcome, given its thresholds.
func TestWorkerThresholds(t *testing.T) {
	yes := true
	rows := []struct {
		name     string
		kind     kind
		probe    v1.Probe
		seed     *v1.ContainerStatus
		outcomes string // s = success, f = failure
		want     string // the result before any probe, then after each
		hold     bool
	}{
		{name: "readiness: not ready until the first success", kind: readiness,
			outcomes: "sfffs", want: "f sssfs"},
		{name: "readiness: successThreshold 2", kind: readiness, probe: v1.Probe{SuccessThreshold: 2},
			outcomes: "sfsss", want: "f fffss"},
		{name: "readiness: failureThreshold 1", kind: readiness, probe: v1.Probe{FailureThreshold: 1},
			outcomes: "sfs", want: "f sfs"},
		{name: "readiness: seeded from a status that said ready", kind: readiness, seed: &v1.ContainerStatus{Ready: true},
			outcomes: "ff", want: "s ss"},
		{name: "liveness: healthy until 3 failures in a row, then held", kind: liveness,
			outcomes: "ffsfff", want: "s sssssf", hold: true},
		{name: "liveness: failureThreshold 1", kind: liveness, probe: v1.Probe{FailureThreshold: 1},
			outcomes: "sf", want: "s sf", hold: true},
		{name: "startup: unknown until it passes, then done", kind: startup,
			outcomes: "ffs", want: "u uus", hold: true},
		{name: "startup: fails after failureThreshold", kind: startup, probe: v1.Probe{FailureThreshold: 2},
			outcomes: "ff", want: "u uf", hold: true},
		{name: "startup: seeded from a status that said started", kind: startup, seed: &v1.ContainerStatus{Started: &yes},
			want: "s", hold: true},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			c := &v1.Container{Name: "app"}
			p := r.probe
			switch r.kind {
			case liveness:
				c.LivenessProbe = &p
			case readiness:
				c.ReadinessProbe = &p
			case startup:
				c.StartupProbe = &p
			}
			w := newWorker(r.kind, &v1.Pod{}, c, false, "c1", t0, t0, 0, r.seed)
			got := []string{letter(w.result), ""}
			for _, o := range r.outcomes {
				w.begin(t0)
				if o == 's' {
					w.observe(success)
				} else {
					w.observe(failure)
				}
				got[1] += letter(w.result)
			}
			if s := strings.TrimSpace(strings.Join(got, " ")); s != r.want {
				t.Errorf("results %q, want %q", s, r.want)
			}
			if w.hold != r.hold {
				t.Errorf("hold %v, want %v", w.hold, r.hold)
			}
		})
	}
}

// The first probe waits for the initial delay (from the container's start)
// and the jitter (from now), whichever ends later; then one per period.
func TestWorkerSchedule(t *testing.T) {
	rows := []struct {
		name      string
		delay     int32
		startedAt time.Time
		jitter    time.Duration
		want      time.Time
	}{
		{"no delay, no jitter: at once", 0, t0, 0, t0.Add(5 * time.Second)},
		{"jitter", 0, t0, 3 * time.Second, t0.Add(8 * time.Second)},
		{"initial delay counts from the start", 30, t0, 3 * time.Second, t0.Add(30 * time.Second)},
		{"initial delay already over", 2, t0, 0, t0.Add(5 * time.Second)},
		{"start unknown: the delay counts from now", 30, time.Time{}, 0, t0.Add(35 * time.Second)},
	}
	now := t0.Add(5 * time.Second)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			c := &v1.Container{ReadinessProbe: &v1.Probe{InitialDelaySeconds: r.delay, PeriodSeconds: 10}}
			w := newWorker(readiness, &v1.Pod{}, c, false, "c1", r.startedAt, now, r.jitter, nil)
			if !w.next.Equal(r.want) {
				t.Errorf("first probe at %v, want %v", w.next, r.want)
			}
		})
	}

	c := &v1.Container{LivenessProbe: &v1.Probe{PeriodSeconds: 10}}
	w := newWorker(liveness, &v1.Pod{}, c, false, "c1", t0, t0, 0, nil)
	if !w.due(t0) {
		t.Fatal("not due at first")
	}
	w.begin(t0)
	if w.due(t0.Add(time.Minute)) {
		t.Error("due while a probe is in flight")
	}
	w.abandon() // an errored probe counts for nothing
	if w.due(t0.Add(9*time.Second)) || !w.due(t0.Add(10*time.Second)) {
		t.Errorf("next probe at %v, want one period later", w.next)
	}
	if w.result != success || w.run != 0 {
		t.Errorf("abandoned probe changed the result: %v run %d", w.result, w.run)
	}
}

func TestWorkerDefaults(t *testing.T) {
	c := &v1.Container{LivenessProbe: &v1.Probe{}}
	w := newWorker(liveness, &v1.Pod{}, c, false, "c1", t0, t0, 0, nil)
	if w.period() != 10*time.Second || w.timeout() != time.Second || w.threshold(failure) != 3 || w.threshold(success) != 1 {
		t.Errorf("defaults: period %v timeout %v thresholds %d/%d", w.period(), w.timeout(), w.threshold(failure), w.threshold(success))
	}
}

func TestWorkerQuiet(t *testing.T) {
	c := &v1.Container{LivenessProbe: &v1.Probe{FailureThreshold: 1}, ReadinessProbe: &v1.Probe{}}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	live := newWorker(liveness, pod, c, false, "c1", t0, t0, 0, nil)
	live.begin(t0)
	live.observe(failure)
	if !live.quiet() || live.result != success || !live.hold {
		t.Errorf("liveness after quiet: %v hold %v", live.result, live.hold)
	}
	ready := newWorker(readiness, pod, c, false, "c1", t0, t0, 0, nil)
	if ready.quiet() || ready.hold {
		t.Error("readiness was quieted; it must keep probing")
	}
}
