package podworker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	testclock "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/status"
)

// fakeRuntime keeps pods in memory and does what the plan says at once.
type fakeRuntime struct {
	mu        sync.Mutex
	pods      map[types.UID]*container.PodStatus
	failReads int // the next n GetPodStatus calls fail
	// panics makes the next n SyncPod or KillPod calls for a pod panic.
	panics  map[types.UID]int
	calls   map[string]int
	changed chan string // receives the name of every call
	nextID  int
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{pods: map[types.UID]*container.PodStatus{}, calls: map[string]int{}, changed: make(chan string, 100),
		panics: map[types.UID]int{}}
}

func (f *fakeRuntime) note(call string) {
	f.calls[call]++
	f.changed <- call
}

func (f *fakeRuntime) GetPodStatus(_ context.Context, uid types.UID, name, ns string) (*container.PodStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failReads > 0 {
		f.failReads--
		f.note("GetPodStatusFailed")
		return nil, errors.New("runtime unreachable")
	}
	st, ok := f.pods[uid]
	if !ok {
		return &container.PodStatus{UID: uid, Name: name, Namespace: ns}, nil
	}
	cp := *st
	cp.Sandboxes = append([]*container.SandboxStatus(nil), st.Sandboxes...)
	cp.Containers = append([]*container.ContainerStatus(nil), st.Containers...)
	return &cp, nil
}

func (f *fakeRuntime) SyncPod(_ context.Context, pod *v1.Pod, st *container.PodStatus, a plan.PodActions) container.SyncResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maybePanic(pod.UID, "SyncPod")
	defer f.note("SyncPod")
	now := time.Unix(1000, 0).Add(time.Duration(f.nextID) * time.Second)
	p, ok := f.pods[pod.UID]
	if !ok {
		p = &container.PodStatus{UID: pod.UID, Name: pod.Name, Namespace: pod.Namespace}
		f.pods[pod.UID] = p
	}
	if a.CreateSandbox {
		f.nextID++
		p.Sandboxes = append([]*container.SandboxStatus{{ID: fmt.Sprint("sb", f.nextID), State: container.SandboxReady, CreatedAt: now, IPs: []string{"10.0.0.2"}}}, p.Sandboxes...)
	}
	starts := a.ContainersToStart
	specs := pod.Spec.Containers
	if a.NextInitContainer != plan.NoInit {
		starts, specs = []int{a.NextInitContainer}, pod.Spec.InitContainers
	}
	for _, i := range starts {
		f.nextID++
		c := &specs[i]
		p.Containers = append([]*container.ContainerStatus{{
			ID: fmt.Sprint("c", f.nextID), Name: c.Name, SandboxID: p.Sandboxes[0].ID, State: container.StateRunning,
			CreatedAt: now, StartedAt: now, Image: c.Image, Hash: container.HashContainer(c),
		}}, p.Containers...)
	}
	return container.SyncResult{}
}

// maybePanic panics, as a bug in the runtime code would, if the test asked
// for it. f.mu is held.
func (f *fakeRuntime) maybePanic(uid types.UID, call string) {
	if f.panics[uid] > 0 {
		f.panics[uid]--
		f.note(call + "Panicked")
		var nilPod *v1.Pod
		_ = nilPod.Name // a nil dereference
	}
}

func (f *fakeRuntime) KillPod(_ context.Context, _ *v1.Pod, st *container.PodStatus, _ *int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maybePanic(st.UID, "KillPod")
	defer f.note("KillPod")
	if p, ok := f.pods[st.UID]; ok {
		for _, c := range p.Containers {
			c.State = container.StateExited
		}
		for _, sb := range p.Sandboxes {
			sb.State = container.SandboxNotReady
		}
	}
	return nil
}

func (f *fakeRuntime) RemovePod(_ context.Context, st *container.PodStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.note("RemovePod")
	delete(f.pods, st.UID)
	return nil
}

func (f *fakeRuntime) GarbageCollect(context.Context, *v1.Pod, *container.PodStatus) error {
	return nil
}

func (f *fakeRuntime) RuntimeName() string { return "fake" }

// waitFor reads calls until want is seen; the timeout only guards a hang.
func (f *fakeRuntime) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-f.changed:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for runtime call %s", want)
		}
	}
}

func testPod(uid types.UID, image string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-node1", Namespace: "default", UID: uid},
		Spec: v1.PodSpec{
			RestartPolicy: v1.RestartPolicyAlways,
			Containers:    []v1.Container{{Name: "app", Image: image}},
		},
	}
}

type harness struct {
	rt    *fakeRuntime
	store *status.Store
	// statusChanged is signalled (never blocking) on every status change,
	// so that tests wait for a status without polling.
	statusChanged chan struct{}
	clock         *testclock.FakeClock
	w             *Workers
	terminated    chan types.UID
	cancel        context.CancelFunc
	done          chan struct{}
}

func newHarness() *harness {
	h := &harness{rt: newFakeRuntime(), statusChanged: make(chan struct{}, 1),
		clock: testclock.NewFakeClock(time.Unix(1000, 0)), terminated: make(chan types.UID, 10)}
	h.store = status.NewStore(func(types.UID) {
		select {
		case h.statusChanged <- struct{}{}:
		default:
		}
	})
	return h
}

func start(t *testing.T, configure ...func(*Options)) *harness {
	h := newHarness()
	opts := Options{Pods: NewPodSet(klog.Background(), h.store), Runtime: h.rt, Status: h.store, Clock: h.clock,
		Listener: terminations(h.terminated)}
	for _, c := range configure {
		c(&opts)
	}
	h.w = New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { h.w.Run(ctx); close(h.done) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

func TestUpdateStartsPodAndReportsStatus(t *testing.T) {
	h := start(t)
	h.w.update(testPod("u1", "busybox:1"))
	h.rt.waitFor(t, "SyncPod")
	waitStatus(t, h, "u1", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })
	pods := h.w.pods.Pods()
	if len(pods) != 1 || pods[0].Status.Phase != v1.PodRunning || len(pods[0].Status.ContainerStatuses) != 1 {
		t.Fatalf("Pods() = %+v", pods)
	}
	if got := pods[0].Status.ContainerStatuses[0].ContainerID; got == "" || got[:7] != "fake://" {
		t.Fatalf("container ID %q not prefixed with the runtime name", got)
	}
}

// A step that makes the next one possible is followed at once: the PLEG
// does not wake a worker for a state it has read itself.
func TestSidecarThenAppWithoutAWake(t *testing.T) {
	h := start(t)
	always := v1.ContainerRestartPolicyAlways
	pod := testPod("u1", "busybox:1")
	pod.Spec.InitContainers = []v1.Container{{Name: "sidecar", Image: "busybox:1", RestartPolicy: &always}}
	h.w.update(pod)
	h.rt.waitFor(t, "SyncPod") // sandbox and sidecar
	h.rt.waitFor(t, "SyncPod") // app
	waitStatus(t, h, "u1", func(s v1.PodStatus) bool {
		return len(s.ContainerStatuses) == 1 && s.ContainerStatuses[0].State.Running != nil
	})
}

func TestKillTerminatesRemovesAndForgets(t *testing.T) {
	h := start(t)
	h.w.update(testPod("u1", "busybox:1"))
	h.rt.waitFor(t, "SyncPod")
	h.w.kill("u1", nil, reasonRemoved)
	h.rt.waitFor(t, "KillPod")
	h.rt.waitFor(t, "RemovePod")
	if uid := <-h.terminated; uid != "u1" {
		t.Fatalf("terminated %q", uid)
	}
	if h.w.pods.Admitted("u1") {
		t.Fatal("worker still known after termination")
	}
	if _, ok := h.store.Get("u1"); ok {
		t.Fatal("status kept after termination")
	}
}

func TestSpecChangeReplacesContainer(t *testing.T) {
	h := start(t)
	h.w.update(testPod("u1", "busybox:1"))
	h.rt.waitFor(t, "SyncPod")
	h.w.update(testPod("u1", "busybox:2"))
	// The planner kills the old container (hash differs) and starts one.
	waitStatus(t, h, "u1", func(s v1.PodStatus) bool {
		return len(s.ContainerStatuses) == 1 && s.ContainerStatuses[0].Image == "busybox:2"
	})
}

func TestRuntimeErrorIsRetriedWithBackoff(t *testing.T) {
	h := start(t)
	h.rt.mu.Lock()
	h.rt.failReads = 1
	h.rt.mu.Unlock()
	h.w.update(testPod("u1", "busybox:1"))
	h.rt.waitFor(t, "GetPodStatusFailed")
	// The retry comes from the worker's timer, driven by the fake clock.
	stepUntil(t, h, "SyncPod", time.Second)
}

func TestOrphanIsKilledWithoutSpec(t *testing.T) {
	h := start(t)
	h.rt.pods["orphan"] = &container.PodStatus{UID: "orphan", Name: "old", Namespace: "default",
		Sandboxes: []*container.SandboxStatus{{ID: "sb", State: container.SandboxReady}}}
	h.w.killOrphan(h.rt.pods["orphan"])
	h.rt.waitFor(t, "KillPod")
	h.rt.waitFor(t, "RemovePod")
	<-h.terminated
	if len(h.w.pods.Pods()) != 0 {
		t.Fatal("an orphan must never be listed as a desired pod")
	}
}

func TestUpdateDuringTerminationRevivesPod(t *testing.T) {
	h := start(t)
	h.w.update(testPod("u1", "busybox:1"))
	h.rt.waitFor(t, "SyncPod")
	h.rt.mu.Lock() // hold the runtime so the update lands mid-termination
	h.w.kill("u1", nil, reasonRemoved)
	h.w.update(testPod("u1", "busybox:1"))
	h.rt.mu.Unlock()
	h.rt.waitFor(t, "RemovePod")
	h.rt.waitFor(t, "SyncPod")
	if !h.w.pods.Admitted("u1") {
		t.Fatal("revived pod has no worker")
	}
}

// terminations is a Listener that reports terminated pods on a channel.
type terminations chan types.UID

func (terminations) PodSeen(*v1.Pod)                          {}
func (terminations) StatusChanged(*v1.Pod, *v1.PodStatus)     {}
func (c terminations) PodTerminated(uid types.UID, _ *v1.Pod) { c <- uid }
func (terminations) StaticPodsChanged()                       {}

// waitStatus waits until uid's status satisfies ok, checking at each
// status change.
func waitStatus(t *testing.T, h *harness, uid types.UID, ok func(v1.PodStatus) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if st, found := h.store.Get(uid); found && ok(st) {
			return
		}
		select {
		case <-h.statusChanged:
		case <-timeout:
			st, _ := h.store.Get(uid)
			t.Fatalf("status of %s never matched; last %+v", uid, st)
		}
	}
}

type flakyVolumes struct {
	mu        sync.Mutex
	failsLeft int
	setUps    int
	tornDown  []types.UID
}

func (v *flakyVolumes) SetUp(context.Context, *v1.Pod) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.setUps++
	if v.failsLeft > 0 {
		v.failsLeft--
		return errors.New(`configmap "cfg" not found`)
	}
	return nil
}

func (v *flakyVolumes) TearDown(_ context.Context, uid types.UID) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tornDown = append(v.tornDown, uid)
	return nil
}

func TestVolumesGateContainersAndAreTornDown(t *testing.T) {
	h := newHarness()
	vols := &flakyVolumes{failsLeft: 1}
	h.w = New(Options{Pods: NewPodSet(klog.Background(), h.store), Runtime: h.rt, Status: h.store, Clock: h.clock, Volumes: vols,
		Listener: terminations(h.terminated)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	h.w.update(testPod("u1", "busybox:1"))
	// First attempt: volumes fail, so the pod is reported without starting;
	// the retry sets them up and starts it.
	waitedThenSynced(t, h, "u1", "volumes failed")
	h.w.kill("u1", nil, reasonRemoved)
	<-h.terminated
	vols.mu.Lock()
	defer vols.mu.Unlock()
	if len(vols.tornDown) != 1 || vols.tornDown[0] != "u1" {
		t.Fatalf("volumes torn down for %v, want [u1]", vols.tornDown)
	}
}

func TestTerminateWithoutWorkerStopsContainersFirst(t *testing.T) {
	h := start(t)
	pod := testPod("u1", "busybox:1")
	// Containers left from before a restart; berth never had a worker.
	h.rt.pods["u1"] = &container.PodStatus{UID: "u1", Name: pod.Name, Namespace: pod.Namespace,
		Sandboxes:  []*container.SandboxStatus{{ID: "sb", State: container.SandboxReady}},
		Containers: []*container.ContainerStatus{{ID: "c", Name: "app", State: container.StateRunning}}}
	grace := int64(5)
	h.w.terminate(pod, &grace, reasonDeleted)
	h.rt.waitFor(t, "KillPod")
	h.rt.waitFor(t, "RemovePod")
	if uid := <-h.terminated; uid != "u1" {
		t.Fatalf("terminated %q", uid)
	}
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	if h.rt.calls["SyncPod"] != 0 {
		t.Fatal("a pod being deleted was synced (started) instead of only killed")
	}
}

func withDeadline(p *v1.Pod, seconds int64) *v1.Pod {
	p = p.DeepCopy()
	p.Spec.ActiveDeadlineSeconds = &seconds
	return p
}

// The worker wakes at the deadline itself (the resync is a minute away):
// the pod is failed with upstream's reason and message, an event is
// recorded, and its containers are killed.
func TestActiveDeadlineWakesTheWorkerAndFailsThePod(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	h := start(t, func(o *Options) { o.Recorder = rec; o.ResyncPeriod = time.Minute })
	h.w.setSource(klog.Background(), source.SourceAPI, []*v1.Pod{withDeadline(testPod("u1", "busybox:1"), 30)})
	waitStatus(t, h, "u1", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })
	started := h.clock.Now()

	killed := make(chan struct{})
	go func() { h.rt.waitFor(t, "KillPod"); close(killed) }()
	for stepped := time.Duration(0); ; stepped += time.Second {
		select {
		case <-killed:
			if elapsed := h.clock.Since(started); elapsed < 30*time.Second || elapsed > 40*time.Second {
				t.Fatalf("killed %s after the start, want at the 30 s deadline", elapsed)
			}
			<-h.terminated // the pod is still desired: its final status stays
			st, _ := h.store.Get("u1")
			if st.Phase != v1.PodFailed || st.Reason != ReasonDeadlineExceeded || st.Message != MessageDeadlineExceeded {
				t.Fatalf("status %s/%s/%q, want Failed/DeadlineExceeded", st.Phase, st.Reason, st.Message)
			}
			if ev := <-rec.Events; ev != "Normal DeadlineExceeded "+MessageDeadlineExceeded {
				t.Fatalf("event %q", ev)
			}
			return
		case <-time.After(10 * time.Millisecond):
			if stepped > 50*time.Second {
				t.Fatal("not killed at the deadline")
			}
			h.clock.Step(time.Second)
		}
	}
}

// activeDeadlineSeconds set on a running pod (an API update) counts from
// the pod's start: a deadline already past kills the pod at once, and the
// pod stays down (parked) while its source still lists it.
func TestActiveDeadlineUpdatedOnARunningPod(t *testing.T) {
	h := start(t)
	logger := klog.Background()
	h.w.setSource(logger, source.SourceAPI, []*v1.Pod{testPod("u1", "busybox:1")})
	waitStatus(t, h, "u1", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })
	h.clock.Step(10 * time.Second)
	h.w.setSource(logger, source.SourceAPI, []*v1.Pod{withDeadline(testPod("u1", "busybox:1"), 5)})
	h.rt.waitFor(t, "KillPod")
	if uid := <-h.terminated; uid != "u1" {
		t.Fatalf("terminated %q", uid)
	}
	if !h.w.pods.isParked("u1") || h.w.pods.Admitted("u1") {
		t.Fatal("a pod past its deadline must stay down while its source lists it")
	}
	h.w.setSource(logger, source.SourceAPI, []*v1.Pod{withDeadline(testPod("u1", "busybox:2"), 5)})
	if h.w.pods.Admitted("u1") {
		t.Fatal("a pod past its deadline was started again by a spec update")
	}
}

func TestTimeLeft(t *testing.T) {
	start := time.Unix(1000, 0)
	p := withDeadline(testPod("u1", "busybox:1"), 5)
	if _, ok := timeLeft(testPod("u1", "busybox:1"), start, start); ok {
		t.Error("a pod without a deadline has one")
	}
	if _, ok := timeLeft(p, time.Time{}, start); ok {
		t.Error("a pod that has not started has a deadline running")
	}
	if left, _ := timeLeft(p, start, start.Add(2*time.Second)); left != 3*time.Second {
		t.Errorf("left %s, want 3s", left)
	}
	if left, _ := timeLeft(p, start, start.Add(5*time.Second)); left > 0 {
		t.Errorf("left %s at the deadline, want <= 0 (upstream: duration >= allowed is past)", left)
	}
}

// The PLEG's relists reach the workers through Wakeups: a runtime pod that
// no source wants is killed, but only once every source has delivered a
// snapshot (before, it may belong to one that has not).
func TestRelistedOrphansWaitForEverySource(t *testing.T) {
	files := make(chan []*v1.Pod)
	h := start(t, func(o *Options) {
		o.Sources = []Source{{Name: source.SourceFile, Run: func(ctx context.Context, out chan<- []*v1.Pod) {
			for {
				select {
				case <-ctx.Done():
					return
				case pods := <-files:
					out <- pods
				}
			}
		}}}
	})
	orphan := &container.PodStatus{UID: "orphan", Name: "old", Namespace: "default",
		Sandboxes: []*container.SandboxStatus{{ID: "sb", State: container.SandboxReady}}}
	h.rt.mu.Lock()
	h.rt.pods["orphan"] = orphan
	h.rt.mu.Unlock()

	h.w.opts.Wakeups.Relisted(map[types.UID]*container.PodStatus{"orphan": orphan})
	// Nothing may happen before the file source has spoken. Wake-ups are
	// drained by one goroutine, relist last: once a later wake-up has been
	// taken, the relist has been handled.
	waitDrained(t, h.w.opts.Wakeups)
	h.w.opts.Wakeups.Wake("nobody")
	waitDrained(t, h.w.opts.Wakeups)
	if h.w.pods.Admitted("orphan") {
		t.Fatal("an orphan was killed before every source had delivered a snapshot")
	}

	files <- nil
	for !h.w.sourcesReady.Load() {
		time.Sleep(time.Millisecond)
	}
	h.w.opts.Wakeups.Relisted(map[types.UID]*container.PodStatus{"orphan": orphan})
	h.rt.waitFor(t, "RemovePod")
	if uid := <-h.terminated; uid != "orphan" {
		t.Fatalf("terminated %q", uid)
	}
}

// A wake-up from the PLEG, prober or volumes reaches the pod's worker.
func TestWakeupsReachTheWorker(t *testing.T) {
	h := start(t)
	h.w.update(testPod("u1", "busybox:1"))
	h.rt.waitFor(t, "SyncPod")
	waitStatus(t, h, "u1", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })
	// The container exits behind the worker's back; only a wake-up tells.
	h.rt.mu.Lock()
	h.rt.pods["u1"].Containers[0].State = container.StateExited
	h.rt.mu.Unlock()
	h.w.opts.Wakeups.Wake("u1")
	h.rt.waitFor(t, "SyncPod") // restarted (restartPolicy Always)
}

func waitDrained(t *testing.T, q *Wakeups) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		q.mu.Lock()
		n := len(q.uids)
		q.mu.Unlock()
		if n == 0 && q.relist.Load() == nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("wake-ups not drained")
}

// A source whose first snapshot is provisional (node autonomy's
// checkpointed pods while the API server is unreachable) gets its pods run,
// but does not count as having spoken: runtime pods it does not list are
// not killed as orphans until its snapshots are complete.
func TestProvisionalSnapshotKillsNoOrphan(t *testing.T) {
	api := make(chan []*v1.Pod)
	var complete atomic.Bool
	h := start(t, func(o *Options) {
		o.Sources = []Source{{Name: source.SourceAPI, Complete: complete.Load, Run: func(ctx context.Context, out chan<- []*v1.Pod) {
			for {
				select {
				case <-ctx.Done():
					return
				case pods := <-api:
					out <- pods
				}
			}
		}}}
	})
	orphan := &container.PodStatus{UID: "orphan", Name: "old", Namespace: "default",
		Sandboxes: []*container.SandboxStatus{{ID: "sb", State: container.SandboxReady}}}
	h.rt.mu.Lock()
	h.rt.pods["orphan"] = orphan
	h.rt.mu.Unlock()

	// The checkpoint's pods run.
	api <- []*v1.Pod{testPod("saved", "busybox:1")}
	h.rt.waitFor(t, "SyncPod")
	h.w.opts.Wakeups.Relisted(map[types.UID]*container.PodStatus{"orphan": orphan})
	waitDrained(t, h.w.opts.Wakeups)
	h.w.opts.Wakeups.Wake("nobody")
	waitDrained(t, h.w.opts.Wakeups)
	if h.w.sourcesReady.Load() || h.w.pods.Admitted("orphan") {
		t.Fatal("a provisional snapshot made berth remove pods it does not list")
	}

	// The API lists: the orphan goes now.
	complete.Store(true)
	api <- []*v1.Pod{testPod("saved", "busybox:1")}
	for !h.w.sourcesReady.Load() {
		time.Sleep(time.Millisecond)
	}
	h.w.opts.Wakeups.Relisted(map[types.UID]*container.PodStatus{"orphan": orphan})
	h.rt.waitFor(t, "RemovePod")
	if uid := <-h.terminated; uid != "orphan" {
		t.Fatalf("terminated %q", uid)
	}
}

// waitedThenSynced checks that the pod is reported Pending without any
// runtime sync (a step before its sandbox failed: why), then steps the
// fake clock through the worker's retries until the runtime syncs it.
func waitedThenSynced(t *testing.T, h *harness, uid types.UID, why string) {
	t.Helper()
	waitStatus(t, h, uid, func(s v1.PodStatus) bool { return s.Phase == v1.PodPending })
	h.rt.mu.Lock()
	syncs := h.rt.calls["SyncPod"]
	h.rt.mu.Unlock()
	if syncs != 0 {
		t.Fatalf("containers were started although %s (%d SyncPod calls)", why, syncs)
	}
	synced := make(chan struct{})
	go func() { h.rt.waitFor(t, "SyncPod"); close(synced) }()
	for stepping := true; stepping; {
		select {
		case <-synced:
			stepping = false
		case <-time.After(10 * time.Millisecond):
			h.clock.Step(time.Second)
		}
	}
}
