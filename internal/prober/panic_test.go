package prober

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

type panicCounter int

func (c *panicCounter) Inc() { *c++ }

// A probe that panics errors for its period, is counted, and runs again
// at its next period; it decides nothing about the container.
func TestPanickingProbeIsRecovered(t *testing.T) {
	e := newEnv(t)
	var panicked panicCounter
	e.m.opts.Panics = &panicked
	panicsLeft := 1
	e.exec.fn = func(string, []string) (string, int32, error) {
		if panicsLeft > 0 {
			panicsLeft--
			var p *v1.Probe
			_ = p.PeriodSeconds // a nil dereference, as a bug would make
		}
		return "", 1, nil
	}
	pod := testPod(v1.Container{Name: "app", LivenessProbe: execProbe("live", func(p *v1.Probe) { p.FailureThreshold = 1 })})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	e.step(0)
	check(t, "Liveness", e.m.Liveness, "c1", true, true)
	if e.calls() != 1 || panicked != 1 {
		t.Fatalf("%d tries, %d panics counted; want 1, 1 (a panic is not tried again in the same period)", e.calls(), panicked)
	}
	if got := counter(t, e.reg, "Liveness", metricUnknown); got != 1 {
		t.Errorf("unknown count %v, want 1", got)
	}
	e.step(10 * time.Second)
	check(t, "Liveness", e.m.Liveness, "c1", false, true)
}
