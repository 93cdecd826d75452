package prober

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
)

// env is a Manager on a fake clock whose probes run inline in dispatch, so
// a test steps time and sees the results at once.
type env struct {
	t       *testing.T
	m       *Manager
	clk     *testingclock.FakeClock
	exec    *fakeExec
	exits   map[string]int32 // exit code of the next exec, by command
	changes []types.UID
	events  *record.FakeRecorder
	reg     *prometheus.Registry
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, clk: testingclock.NewFakeClock(t0), exits: map[string]int32{},
		events: record.NewFakeRecorder(100), reg: prometheus.NewRegistry()}
	e.exec = &fakeExec{fn: func(_ string, cmd []string) (string, int32, error) {
		return "out", e.exits[strings.Join(cmd, " ")], nil
	}}
	e.m = New(Options{Exec: e.exec, Recorder: e.events, Clock: e.clk, Metrics: e.reg,
		OnChange: func(uid types.UID) { e.changes = append(e.changes, uid) }})
	e.m.jitter = func(time.Duration) time.Duration { return 0 }
	e.m.launch = func(f func()) { f() }
	return e
}

// step advances the clock and runs what is due.
func (e *env) step(d time.Duration) {
	e.clk.Step(d)
	e.m.dispatch(context.Background(), e.clk.Now())
}

func (e *env) calls() int { return len(e.exec.calls) }

func (e *env) drainEvents() []string {
	var out []string
	for {
		select {
		case ev := <-e.events.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func execProbe(cmd string, mods ...func(*v1.Probe)) *v1.Probe {
	p := &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: strings.Fields(cmd)}},
		PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
	for _, m := range mods {
		m(p)
	}
	return p
}

func testPod(c v1.Container) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid"},
		Spec: v1.PodSpec{Containers: []v1.Container{c}}}
}

// runningStatus reports the pod's one app container running as id.
func runningStatus(pod *v1.Pod, id string) v1.PodStatus {
	return v1.PodStatus{Phase: v1.PodRunning, PodIP: "127.0.0.1", ContainerStatuses: []v1.ContainerStatus{{
		Name: pod.Spec.Containers[0].Name, ContainerID: "containerd://" + id,
		State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}},
	}}}
}

func check(t *testing.T, what string, get func(string) (bool, bool), id string, wantOK, wantKnown bool) {
	t.Helper()
	if ok, known := get(id); ok != wantOK || known != wantKnown {
		t.Errorf("%s(%s) = %v, %v; want %v, %v", what, id, ok, known, wantOK, wantKnown)
	}
}

func TestReadiness(t *testing.T) {
	e := newEnv(t)
	pod := testPod(v1.Container{Name: "app", ReadinessProbe: execProbe("ready")})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	check(t, "Readiness", e.m.Readiness, "c1", false, true) // not ready before a probe
	check(t, "Readiness", e.m.Readiness, "containerd://c1", false, true)
	check(t, "Readiness", e.m.Readiness, "other", false, false)

	e.step(0)
	check(t, "Readiness", e.m.Readiness, "c1", true, true)
	if len(e.changes) != 1 || e.changes[0] != "uid" {
		t.Errorf("OnChange calls %v, want one for uid", e.changes)
	}

	e.exits["ready"] = 1
	for i := range 3 {
		e.step(9 * time.Second)
		if e.calls() != 1+i {
			t.Fatalf("probed before its period: %d calls", e.calls())
		}
		e.step(time.Second)
	}
	check(t, "Readiness", e.m.Readiness, "c1", false, true)
	if e.calls() != 4 || len(e.changes) != 2 {
		t.Errorf("%d probes, %d changes; want 4, 2", e.calls(), len(e.changes))
	}
	evs := e.drainEvents()
	if len(evs) != 3 || evs[0] != "Warning Unhealthy Readiness probe failed: out!" {
		t.Errorf("events %q", evs)
	}
	// Syncing the same status again changes nothing.
	e.m.Sync(pod, runningStatus(pod, "c1"))
	check(t, "Readiness", e.m.Readiness, "c1", false, true)
}

func TestInitialDelay(t *testing.T) {
	e := newEnv(t)
	pod := testPod(v1.Container{Name: "app", LivenessProbe: execProbe("live", func(p *v1.Probe) { p.InitialDelaySeconds = 30 })})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	if next := e.m.dispatch(context.Background(), e.clk.Now()); !next.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("next probe at %v, want t0+30s", next)
	}
	e.step(29 * time.Second)
	if e.calls() != 0 {
		t.Fatal("probed during the initial delay")
	}
	e.step(time.Second)
	if e.calls() != 1 {
		t.Fatalf("%d probes after the initial delay, want 1", e.calls())
	}
}

func TestJitter(t *testing.T) {
	e := newEnv(t)
	e.m.jitter = func(p time.Duration) time.Duration { return p / 2 }
	// Running before berth started (adopted after a restart): spread.
	e.m.started = t0.Add(time.Second)
	pod := testPod(v1.Container{Name: "app", LivenessProbe: execProbe("live")})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	if next := e.m.dispatch(context.Background(), e.clk.Now()); !next.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("first probe at %v, want t0+5s", next)
	}
	// Started after berth: probed at once (after its initial delay).
	fresh := newEnv(t)
	fresh.m.jitter = func(p time.Duration) time.Duration { return p / 2 }
	fresh.m.Sync(pod, runningStatus(pod, "c2"))
	fresh.m.dispatch(context.Background(), fresh.clk.Now())
	if fresh.calls() != 1 {
		t.Errorf("a container started after berth was probed %d times at once, want 1 (no jitter)", fresh.calls())
	}
	// The real jitter stays within the period.
	m := New(Options{})
	for range 100 {
		if j := m.jitter(10 * time.Second); j < 0 || j >= 10*time.Second {
			t.Fatalf("jitter %v out of [0, 10s)", j)
		}
	}
}

func TestLivenessFailureHoldsUntilReplaced(t *testing.T) {
	e := newEnv(t)
	e.exits["live"] = 1
	pod := testPod(v1.Container{Name: "app", LivenessProbe: execProbe("live", func(p *v1.Probe) { p.FailureThreshold = 2 })})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	check(t, "Liveness", e.m.Liveness, "c1", true, true)
	e.step(0)
	check(t, "Liveness", e.m.Liveness, "c1", true, true)
	e.step(10 * time.Second)
	check(t, "Liveness", e.m.Liveness, "c1", false, true)
	e.step(time.Minute)
	if e.calls() != 2 {
		t.Errorf("%d probes; a failed container must not be probed again", e.calls())
	}
	if evs := e.drainEvents(); len(evs) != 2 || evs[1] != "Warning Unhealthy Liveness probe failed: out!" {
		t.Errorf("events %q", evs)
	}

	// The planner restarted it: a new instance, new results.
	e.exits["live"] = 0
	e.m.Sync(pod, runningStatus(pod, "c2"))
	check(t, "Liveness", e.m.Liveness, "c1", false, false)
	check(t, "Liveness", e.m.Liveness, "c2", true, true)
	e.step(0)
	if e.calls() != 3 || e.exec.calls[2] != "c2: live" {
		t.Errorf("calls %q", e.exec.calls)
	}
}

func TestStartupHoldsTheOthers(t *testing.T) {
	e := newEnv(t)
	e.exits["start"] = 1
	pod := testPod(v1.Container{Name: "app",
		StartupProbe:   execProbe("start", func(p *v1.Probe) { p.FailureThreshold = 30 }),
		LivenessProbe:  execProbe("live"),
		ReadinessProbe: execProbe("ready"),
	})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	for range 3 {
		e.step(10 * time.Second)
	}
	if got := strings.Join(e.exec.calls, ","); got != "c1: start,c1: start,c1: start" {
		t.Fatalf("calls %s: only the startup probe may run", got)
	}
	check(t, "Startup", e.m.Startup, "c1", false, false)
	check(t, "Readiness", e.m.Readiness, "c1", false, true)

	e.exits["start"] = 0
	e.step(10 * time.Second)
	check(t, "Startup", e.m.Startup, "c1", true, true)
	// The others were due long ago: they run on the next dispatch, which
	// the finished probe asks for.
	e.step(0)
	check(t, "Readiness", e.m.Readiness, "c1", true, true)
	e.step(10 * time.Second)
	calls := strings.Join(e.exec.calls, ",")
	if strings.Count(calls, "start") != 4 || strings.Count(calls, "live") != 2 || strings.Count(calls, "ready") != 2 {
		t.Errorf("calls %s", calls)
	}
}

func TestStartupFailure(t *testing.T) {
	e := newEnv(t)
	e.exits["start"] = 1
	pod := testPod(v1.Container{Name: "app", StartupProbe: execProbe("start", func(p *v1.Probe) { p.FailureThreshold = 2 }), LivenessProbe: execProbe("live")})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	e.step(0)
	e.step(10 * time.Second)
	check(t, "Startup", e.m.Startup, "c1", false, true)
	check(t, "Liveness", e.m.Liveness, "c1", true, true) // never probed
	if len(e.changes) != 1 {
		t.Errorf("changes %v", e.changes)
	}
	e.step(time.Minute)
	if e.calls() != 2 {
		t.Errorf("%d probes after the startup probe failed, want 2", e.calls())
	}
}

func TestSyncSeedsFromStatus(t *testing.T) {
	e := newEnv(t)
	pod := testPod(v1.Container{Name: "app", StartupProbe: execProbe("start"), ReadinessProbe: execProbe("ready")})
	st := runningStatus(pod, "c1")
	yes := true
	st.ContainerStatuses[0].Started, st.ContainerStatuses[0].Ready = &yes, true
	e.m.Sync(pod, st)
	check(t, "Startup", e.m.Startup, "c1", true, true)
	check(t, "Readiness", e.m.Readiness, "c1", true, true)
	e.step(0)
	if got := strings.Join(e.exec.calls, ","); got != "c1: ready" {
		t.Errorf("calls %s: a started container runs no startup probe", got)
	}
}

func TestContainersComeAndGo(t *testing.T) {
	e := newEnv(t)
	pod := testPod(v1.Container{Name: "app", ReadinessProbe: execProbe("ready")})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	e.step(0)

	st := runningStatus(pod, "c1")
	st.ContainerStatuses[0].State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1}}
	e.m.Sync(pod, st)
	check(t, "Readiness", e.m.Readiness, "c1", false, false)
	e.step(time.Minute)
	if e.calls() != 1 {
		t.Errorf("a stopped container was probed")
	}

	e.m.Sync(pod, runningStatus(pod, "c2"))
	e.step(0)
	check(t, "Readiness", e.m.Readiness, "c2", true, true)

	terminal := runningStatus(pod, "c2")
	terminal.Phase = v1.PodSucceeded
	e.m.Sync(pod, terminal)
	check(t, "Readiness", e.m.Readiness, "c2", false, false)

	e.m.Sync(pod, runningStatus(pod, "c3"))
	e.m.RemovePod(pod.UID)
	check(t, "Readiness", e.m.Readiness, "c3", false, false)
	e.step(time.Minute)
	if e.calls() != 2 || len(e.m.workers) != 0 || len(e.m.pods) != 0 {
		t.Errorf("%d probes, %d workers, %d pods left", e.calls(), len(e.m.workers), len(e.m.pods))
	}
}

// A probe in flight when its container goes reports nothing.
func TestResultOfARemovedWorkerIsDropped(t *testing.T) {
	e := newEnv(t)
	pod := testPod(v1.Container{Name: "app", ReadinessProbe: execProbe("ready")})
	var pending []func()
	e.m.launch = func(f func()) { pending = append(pending, f) }
	e.m.Sync(pod, runningStatus(pod, "c1"))
	e.step(0)
	e.m.RemovePod(pod.UID)
	pending[0]()
	check(t, "Readiness", e.m.Readiness, "c1", false, false)
	if len(e.changes) != 0 || len(e.drainEvents()) != 0 {
		t.Errorf("changes %v after the pod was removed", e.changes)
	}
}

func TestDeletionQuietsLivenessAndStartup(t *testing.T) {
	e := newEnv(t)
	e.exits["live"] = 1
	pod := testPod(v1.Container{Name: "app", LivenessProbe: execProbe("live", func(p *v1.Probe) { p.FailureThreshold = 1 }), ReadinessProbe: execProbe("ready")})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	e.step(0)
	check(t, "Liveness", e.m.Liveness, "c1", false, true)

	deleted := pod.DeepCopy()
	ts := metav1.NewTime(t0)
	deleted.DeletionTimestamp = &ts
	e.m.Sync(deleted, runningStatus(deleted, "c1"))
	check(t, "Liveness", e.m.Liveness, "c1", true, true)
	e.step(10 * time.Second)
	if got := e.exec.calls[len(e.exec.calls)-1]; got != "c1: ready" {
		t.Errorf("last call %s: only readiness goes on while the pod shuts down", got)
	}
}

func TestSidecarProbes(t *testing.T) {
	e := newEnv(t)
	e.exits["ready"] = 1
	always := v1.ContainerRestartPolicyAlways
	pod := testPod(v1.Container{Name: "app"})
	pod.Spec.InitContainers = []v1.Container{
		{Name: "init", ReadinessProbe: execProbe("never")}, // not a sidecar: never probed
		{Name: "side", RestartPolicy: &always, ReadinessProbe: execProbe("ready")},
	}
	running := v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}
	st := v1.PodStatus{Phase: v1.PodPending, InitContainerStatuses: []v1.ContainerStatus{
		{Name: "init", ContainerID: "containerd://i1", State: running},
		{Name: "side", ContainerID: "containerd://s1", State: running},
	}}
	e.m.Sync(pod, st)
	e.step(0)
	if got := strings.Join(e.exec.calls, ","); got != "s1: ready" {
		t.Errorf("calls %s", got)
	}
	if len(e.events.Events) != 1 {
		t.Fatalf("%d events", len(e.events.Events))
	}
}

func TestEventRefs(t *testing.T) {
	var refs []*v1.ObjectReference
	rec := recorderFunc(func(ref *v1.ObjectReference) { refs = append(refs, ref) })
	m := New(Options{Exec: &fakeExec{fn: func(string, []string) (string, int32, error) { return "", 1, nil }}, Recorder: rec, Clock: testingclock.NewFakeClock(t0)})
	m.jitter = func(time.Duration) time.Duration { return 0 }
	m.launch = func(f func()) { f() }
	always := v1.ContainerRestartPolicyAlways
	pod := testPod(v1.Container{Name: "app", LivenessProbe: execProbe("live")})
	pod.Spec.InitContainers = []v1.Container{{Name: "side", RestartPolicy: &always, LivenessProbe: execProbe("live")}}
	st := runningStatus(pod, "c1")
	st.InitContainerStatuses = []v1.ContainerStatus{{Name: "side", ContainerID: "containerd://s1", State: st.ContainerStatuses[0].State}}
	m.Sync(pod, st)
	m.dispatch(context.Background(), t0)
	got := map[string]bool{}
	for _, r := range refs {
		got[r.FieldPath] = r.Kind == "Pod" && r.Name == "p" && r.Namespace == "ns" && r.UID == "uid"
	}
	if !got["spec.containers{app}"] || !got["spec.initContainers{side}"] {
		t.Errorf("refs %v", got)
	}
}

type recorderFunc func(*v1.ObjectReference)

func (f recorderFunc) Event(o runtime.Object, _, _, _ string) { f(o.(*v1.ObjectReference)) }
func (f recorderFunc) Eventf(o runtime.Object, _, _, _ string, _ ...any) {
	f(o.(*v1.ObjectReference))
}
func (f recorderFunc) AnnotatedEventf(o runtime.Object, _ map[string]string, _, _, _ string, _ ...any) {
	f(o.(*v1.ObjectReference))
}

func TestErroredProbeCountsForNothing(t *testing.T) {
	e := newEnv(t)
	e.exec.fn = func(string, []string) (string, int32, error) { return "", 0, errors.New("runtime unavailable") }
	pod := testPod(v1.Container{Name: "app", LivenessProbe: execProbe("live", func(p *v1.Probe) { p.FailureThreshold = 1 })})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	e.step(0)
	check(t, "Liveness", e.m.Liveness, "c1", true, true)
	if e.calls() != maxTries {
		t.Errorf("%d tries, want %d", e.calls(), maxTries)
	}
	if evs := e.drainEvents(); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning Unhealthy Liveness probe errored and resulted in unknown state: ") {
		t.Errorf("events %q", evs)
	}
	if got := counter(t, e.reg, "Liveness", metricUnknown); got != 1 {
		t.Errorf("unknown count %v, want 1", got)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	pod := testPod(v1.Container{Name: "app", ReadinessProbe: execProbe("ready")})
	e.m.Sync(pod, runningStatus(pod, "c1"))
	e.step(0)
	e.exits["ready"] = 1
	e.step(10 * time.Second)
	e.step(10 * time.Second)
	if s, f := counter(t, e.reg, "Readiness", metricSuccessful), counter(t, e.reg, "Readiness", metricFailed); s != 1 || f != 2 {
		t.Errorf("successful %v failed %v, want 1 and 2", s, f)
	}
	if n := histogramCount(t, e.reg); n != 1 {
		t.Errorf("%d durations observed, want 1 (successes only)", n)
	}
	// A second Manager on the same registry shares the metrics.
	New(Options{Metrics: e.reg})

	e.m.RemovePod(pod.UID)
	if s := counter(t, e.reg, "Readiness", metricSuccessful); s != 0 {
		t.Errorf("series of a removed pod still there")
	}
}

// counter reads prober_probe_total for the test pod's container "app".
func counter(t *testing.T, reg *prometheus.Registry, probeType, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"probe_type": probeType, "result": result, "container": "app", "pod": "p", "namespace": "ns", "pod_uid": "uid"}
	for _, mf := range mfs {
		if mf.GetName() != "prober_probe_total" {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func histogramCount(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == "prober_probe_duration_seconds" {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// Run probes what Sync adds without waiting for a timer, and stops with
// its context, waiting for probes in flight.
func TestRun(t *testing.T) {
	changed := make(chan types.UID, 10)
	probing := make(chan struct{})
	release := make(chan struct{})
	fe := &blockingExec{started: probing, release: release}
	m := New(Options{Exec: fe, Clock: testingclock.NewFakeClock(t0), OnChange: func(uid types.UID) { changed <- uid }})
	m.jitter = func(time.Duration) time.Duration { return 0 }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()

	pod := testPod(v1.Container{Name: "app", ReadinessProbe: execProbe("ready")})
	m.Sync(pod, runningStatus(pod, "c1"))
	<-probing
	close(release)
	if uid := <-changed; uid != "uid" {
		t.Errorf("OnChange(%s)", uid)
	}
	check(t, "Readiness", m.Readiness, "c1", true, true)

	// A probe in flight at shutdown is cancelled and waited for.
	fe.setRelease(nil) // the next one blocks until cancelled
	m.Sync(pod, runningStatus(pod, "c2"))
	<-probing
	cancel()
	<-done
	check(t, "Readiness", m.Readiness, "c2", false, true)
}

// blockingExec signals each call on started, then succeeds once release is
// closed, or fails when the context ends.
type blockingExec struct {
	started chan struct{}
	mu      sync.Mutex
	release chan struct{}
}

func (b *blockingExec) setRelease(c chan struct{}) {
	b.mu.Lock()
	b.release = c
	b.mu.Unlock()
}

func (b *blockingExec) ExecSync(ctx context.Context, _ string, _ []string, _ time.Duration) ([]byte, []byte, int32, error) {
	b.mu.Lock()
	release := b.release
	b.mu.Unlock()
	b.started <- struct{}{}
	select {
	case <-release:
		return nil, nil, 0, nil
	case <-ctx.Done():
		return nil, nil, 0, ctx.Err()
	}
}
