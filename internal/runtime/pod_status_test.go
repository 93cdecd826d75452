package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

func TestListPodsAndGetPodStatus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	web := fakePod()
	st := e.running(web)
	db := fakePod()
	db.Name, db.UID = "db", "uid-2"
	e.running(db)
	// Someone else's container, without kubelet labels: not berth's.
	e.rs.SetFakeContainers(append(e.fakeContainers(), &critesting.FakeContainer{
		ContainerStatus: runtimeapi.ContainerStatus{Id: "foreign", Metadata: &runtimeapi.ContainerMetadata{Name: "x"}, State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}))

	pods, err := e.m.ListPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 2 {
		t.Fatalf("ListPods has %d pods, want 2", len(pods))
	}
	got := pods[web.UID]
	if got.Name != "web" || got.Namespace != "default" || len(got.Sandboxes) != 1 || len(got.Containers) != 2 {
		t.Fatalf("web = %+v", got)
	}
	for _, c := range got.Containers {
		full := st.FindContainer(c.Name)
		// The list has no log path, start time, exit details or IPs; the
		// rest matches.
		full.LogPath, full.StartedAt = "", time.Time{}
		if !reflect.DeepEqual(c, full) {
			t.Errorf("listed %+v\n  full %+v", c, full)
		}
	}
	if sb := got.Sandboxes[0]; sb.ID != st.LatestSandbox().ID || sb.State != container.SandboxReady || sb.IPs != nil {
		t.Errorf("listed sandbox = %+v", sb)
	}

	// Name and namespace come from the runtime when not given.
	full, err := e.m.GetPodStatus(ctx, "uid-2", "", "")
	if err != nil || full.Name != "db" || full.Namespace != "default" || len(full.Containers) != 2 {
		t.Errorf("GetPodStatus(uid-2) = %+v, %v", full, err)
	}
	// An unknown pod is empty, not an error.
	if empty, err := e.m.GetPodStatus(ctx, "nope", "n", "ns"); err != nil || len(empty.Sandboxes)+len(empty.Containers) != 0 {
		t.Errorf("GetPodStatus(nope) = %+v, %v", empty, err)
	}

	// A container removed between list and status is skipped.
	e.rs.InjectError("ContainerStatus", status.Error(codes.NotFound, "gone"))
	if partial, err := e.m.GetPodStatus(ctx, web.UID, web.Name, web.Namespace); err != nil || len(partial.Containers) != 1 {
		t.Errorf("with a vanished container: %+v, %v", partial, err)
	}
	// Other errors are errors; an unavailable runtime says so.
	e.rs.InjectError("ListPodSandbox", status.Error(codes.Unavailable, "connection refused"))
	if _, err := e.m.ListPods(ctx); !errors.Is(err, ErrUnreachable) {
		t.Errorf("ListPods with the runtime gone = %v", err)
	}
}

func (e *env) fakeContainers() []*critesting.FakeContainer {
	e.rs.Lock()
	defer e.rs.Unlock()
	var out []*critesting.FakeContainer
	for _, c := range e.rs.Containers {
		out = append(out, c)
	}
	return out
}

func TestPlanGC(t *testing.T) {
	c := func(id, name, sandbox string, state container.State) *container.ContainerStatus {
		return &container.ContainerStatus{ID: id, Name: name, SandboxID: sandbox, State: state, CreatedAt: time.Unix(1990, 0)}
	}
	sb := func(id string, state container.SandboxState) *container.SandboxStatus {
		return &container.SandboxStatus{ID: id, State: state}
	}
	tests := []struct {
		name           string
		st             *container.PodStatus
		policy         *GCPolicy // nil: upstream's default
		wantContainers []string
		wantSandboxes  []string
	}{
		{
			name:   "maximum-dead-containers-per-container 2 keeps two exited",
			policy: &GCPolicy{MaxPerPodContainer: 2},
			st: &container.PodStatus{Containers: []*container.ContainerStatus{
				c("a4", "a", "s1", container.StateRunning), c("a3", "a", "s1", container.StateExited),
				c("a2", "a", "s1", container.StateExited), c("a1", "a", "s1", container.StateExited),
			}},
			wantContainers: []string{"a1"},
		},
		{
			name:   "maximum-dead-containers-per-container 0 keeps only the newest instance",
			policy: &GCPolicy{MaxPerPodContainer: 0},
			st: &container.PodStatus{Containers: []*container.ContainerStatus{
				c("a3", "a", "s1", container.StateExited), c("a2", "a", "s1", container.StateExited), c("a1", "a", "s1", container.StateExited),
			}},
			wantContainers: []string{"a2", "a1"},
		},
		{
			name:   "negative keeps every exited one",
			policy: &GCPolicy{MaxPerPodContainer: -1},
			st: &container.PodStatus{Containers: []*container.ContainerStatus{
				c("a3", "a", "s1", container.StateRunning), c("a2", "a", "s1", container.StateExited), c("a1", "a", "s1", container.StateExited),
			}},
		},
		{
			name:   "minimum-container-ttl-duration keeps young dead containers",
			policy: &GCPolicy{MaxPerPodContainer: 1, MinAge: time.Hour},
			st: &container.PodStatus{Containers: []*container.ContainerStatus{
				c("a3", "a", "s1", container.StateRunning), c("a2", "a", "s1", container.StateExited), c("a1", "a", "s1", container.StateExited),
			}},
		},
		{
			name: "running with two exited before it",
			st: &container.PodStatus{Containers: []*container.ContainerStatus{
				c("a3", "a", "s1", container.StateRunning), c("a2", "a", "s1", container.StateExited), c("a1", "a", "s1", container.StateExited),
			}},
			wantContainers: []string{"a1"},
		},
		{
			name: "exited newest keeps only itself",
			st: &container.PodStatus{Containers: []*container.ContainerStatus{
				c("a3", "a", "s1", container.StateExited), c("a2", "a", "s1", container.StateExited), c("a1", "a", "s1", container.StateExited),
			}},
			wantContainers: []string{"a2", "a1"},
		},
		{
			name: "created newest keeps the newest exited too; stale created and unknown go",
			st: &container.PodStatus{Containers: []*container.ContainerStatus{
				c("a4", "a", "s1", container.StateCreated), c("a3", "a", "s1", container.StateCreated),
				c("a2", "a", "s1", container.StateExited), c("a1", "a", "s1", container.StateUnknown),
			}},
			wantContainers: []string{"a3", "a1"},
		},
		{
			name: "names are separate",
			st: &container.PodStatus{Containers: []*container.ContainerStatus{
				c("b2", "b", "s1", container.StateExited), c("a2", "a", "s1", container.StateExited),
				c("b1", "b", "s1", container.StateExited), c("a1", "a", "s1", container.StateExited),
			}},
			wantContainers: []string{"b1", "a1"},
		},
		{
			name: "old sandboxes go unless they hold a kept container",
			st: &container.PodStatus{
				Sandboxes: []*container.SandboxStatus{sb("s3", container.SandboxReady), sb("s2", container.SandboxNotReady), sb("s1", container.SandboxNotReady)},
				Containers: []*container.ContainerStatus{
					c("a3", "a", "s3", container.StateRunning), c("a2", "a", "s2", container.StateExited), c("a1", "a", "s1", container.StateExited),
				},
			},
			wantContainers: []string{"a1"},
			wantSandboxes:  []string{"s1"},
		},
		{
			name: "the newest sandbox stays even when not ready",
			st: &container.PodStatus{
				Sandboxes: []*container.SandboxStatus{sb("s2", container.SandboxNotReady), sb("s1", container.SandboxNotReady)},
			},
			wantSandboxes: []string{"s1"},
		},
		{
			name: "two ready sandboxes: neither removed",
			st: &container.PodStatus{
				Sandboxes: []*container.SandboxStatus{sb("s2", container.SandboxReady), sb("s1", container.SandboxReady)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy := DefaultGCPolicy()
			if tt.policy != nil {
				policy = *tt.policy
			}
			p := planGC(tt.st, policy, time.Unix(2000, 0))
			var gotC, gotS []string
			for _, c := range p.containers {
				gotC = append(gotC, c.ID)
			}
			for _, s := range p.sandboxes {
				gotS = append(gotS, s.ID)
			}
			if !reflect.DeepEqual(gotC, tt.wantContainers) || !reflect.DeepEqual(gotS, tt.wantSandboxes) {
				t.Errorf("planGC removes containers %v sandboxes %v; want %v %v", gotC, gotS, tt.wantContainers, tt.wantSandboxes)
			}
		})
	}
}

func TestGarbageCollectAndRemovePod(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pod := fakePod()
	st := e.running(pod)
	sbID := st.LatestSandbox().ID
	// Three instances of app: the oldest two exited, with logs.
	for range 2 {
		id := st.FindContainer("app").ID
		e.exit(id, 1)
		e.clock.Step(time.Hour) // past any back-off
		if res := e.m.SyncPod(ctx, pod, e.status(pod), plan.PodActions{SandboxID: sbID, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}}); res.Err != nil || len(res.Waiting) > 0 {
			t.Fatal(res)
		}
		e.settle()
		st = e.status(pod)
	}
	logDir := filepath.Join(e.m.opts.PodLogsDir, "default_web_uid-1", "app")
	for _, f := range []string{"0.log", "1.log", "1.log.20300101-000000", "2.log"} {
		_ = os.WriteFile(filepath.Join(logDir, f), []byte("x"), 0o644)
	}

	if err := e.m.GarbageCollect(ctx, pod, st); err != nil {
		t.Fatal(err)
	}
	after := e.status(pod)
	apps := after.ContainersNamed("app")
	if len(apps) != 2 || apps[0].RestartCount != 2 || apps[1].RestartCount != 1 {
		t.Errorf("after GC app instances = %+v", apps)
	}
	files, _ := os.ReadDir(logDir)
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
	}
	if !reflect.DeepEqual(names, []string{"1.log", "1.log.20300101-000000", "2.log"}) {
		t.Errorf("logs after GC = %v; only the removed instance's log goes", names)
	}

	// Removing the pod leaves nothing behind, even what st does not know.
	if err := e.m.KillPod(ctx, pod, after, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.m.RemovePod(ctx, &container.PodStatus{UID: pod.UID}); err != nil {
		t.Fatal(err)
	}
	pods, _ := e.m.ListPods(ctx)
	if len(pods) != 0 {
		t.Errorf("pods left: %v", pods)
	}
	for _, p := range []string{e.podDir(pod), filepath.Dir(logDir)} {
		if e.exists(p) {
			t.Errorf("%s left behind", p)
		}
	}
	// With nothing left in the runtime to name a pod, its logs are found by UID.
	orphanLogs := filepath.Join(e.m.opts.PodLogsDir, "ns_gone_uid-9", "c")
	_ = os.MkdirAll(orphanLogs, 0o755)
	if err := e.m.RemovePod(ctx, &container.PodStatus{UID: "uid-9"}); err != nil || e.exists(filepath.Dir(orphanLogs)) {
		t.Errorf("RemovePod(uid-9) = %v; logs left: %v", err, e.exists(filepath.Dir(orphanLogs)))
	}

	// Volumes live in the pod directory: it is never removed blindly, and
	// the volume manager's part left there is no error.
	volume := filepath.Join(e.podDir(pod), "volumes", "x")
	_ = os.MkdirAll(volume, 0o755)
	_ = os.WriteFile(filepath.Join(e.podDir(pod), "etc-hosts"), nil, 0o644)
	if err := e.m.RemovePod(ctx, &container.PodStatus{UID: pod.UID, Name: "web", Namespace: "default"}); err != nil {
		t.Errorf("RemovePod with a volume left = %v", err)
	}
	if !e.exists(volume) || e.exists(filepath.Join(e.podDir(pod), "etc-hosts")) {
		t.Error("RemovePod must remove its own files, and only those")
	}
}

func TestWatchContainerEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	e.rs.events = func(context.Context, chan *runtimeapi.ContainerEventResponse) error {
		return status.Error(codes.Unimplemented, "method GetContainerEvents not implemented")
	}
	if err := e.m.WatchContainerEvents(ctx, func(types.UID) { t.Error("event") }); !errors.Is(err, ErrEventsUnsupported) {
		t.Errorf("err = %v, want ErrEventsUnsupported", err)
	}

	e.rs.events = func(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse) error {
		ch <- &runtimeapi.ContainerEventResponse{PodSandboxStatus: &runtimeapi.PodSandboxStatus{Metadata: &runtimeapi.PodSandboxMetadata{Uid: "uid-1"}}}
		ch <- &runtimeapi.ContainerEventResponse{ContainersStatuses: []*runtimeapi.ContainerStatus{{Labels: map[string]string{container.LabelPodUID: "uid-2"}}}}
		ch <- &runtimeapi.ContainerEventResponse{} // about nothing berth knows
		return status.Error(codes.Unavailable, "runtime restarted")
	}
	var got []types.UID
	err := e.m.WatchContainerEvents(ctx, func(uid types.UID) { got = append(got, uid) })
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrEventsUnsupported) {
		t.Errorf("err = %v, want one wrapping ErrUnreachable", err)
	}
	if !reflect.DeepEqual(got, []types.UID{"uid-1", "uid-2"}) {
		t.Errorf("events for %v", got)
	}

	// Cancelling ends the watch.
	ctx, cancel := context.WithCancel(ctx)
	e.rs.events = func(ctx context.Context, _ chan *runtimeapi.ContainerEventResponse) error {
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	cancel()
	if err := e.m.WatchContainerEvents(ctx, func(types.UID) {}); err == nil || errors.Is(err, ErrEventsUnsupported) {
		t.Errorf("after cancel: %v", err)
	}
}

func TestUnreachableRuntime(t *testing.T) {
	dir := t.TempDir()
	ep := "unix://" + filepath.Join(dir, "none.sock")
	m, err := New(context.Background(), Options{RuntimeEndpoint: ep, Clock: clocktesting.NewFakeClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = m.Version(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "container runtime unreachable at "+ep+": ") {
		t.Errorf("Version = %v", err)
	}
	// Further calls reuse the failure until it is a second old.
	m.conn.mu.Lock()
	first := m.conn.lastTry
	m.conn.mu.Unlock()
	res := m.SyncPod(context.Background(), fakePod(), nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
	if !errors.Is(res.Err, ErrUnreachable) {
		t.Errorf("SyncPod = %+v", res)
	}
	m.conn.mu.Lock()
	again := m.conn.lastTry
	m.conn.mu.Unlock()
	if !again.Equal(first) {
		t.Error("reconnected within a second")
	}

	if _, err := New(context.Background(), Options{}); err == nil {
		t.Error("New without an endpoint succeeded")
	}
	if _, err := New(context.Background(), Options{RuntimeEndpoint: ep, CgroupDriver: "nope"}); err == nil {
		t.Error("New with an unknown cgroup driver succeeded")
	}
}

// fakeOOM is an OOMWatcher that knows of the kills it is told.
type fakeOOM struct {
	watched []string
	killed  map[string]bool
}

func (f *fakeOOM) Watch(podCgroup, id string) error {
	f.watched = append(f.watched, podCgroup+"/"+id)
	return nil
}
func (f *fakeOOM) OOMKilled(id string) bool { return f.killed[id] }

func TestOOMKilledFromCgroupEvents(t *testing.T) {
	e := newEnv(t)
	oom := &fakeOOM{killed: map[string]bool{}}
	e.m.opts.OOM = oom
	pod := fakePod()
	st := e.running(pod)
	if len(oom.watched) != 2 || !strings.HasPrefix(oom.watched[0], "/kubepods/besteffort/pod"+string(pod.UID)+"/") {
		t.Errorf("watched %q, want every started container under the pod's cgroup", oom.watched)
	}
	exit := func(id, reason string) {
		e.rs.Lock()
		c := e.rs.Containers[id]
		c.State, c.ExitCode, c.Reason, c.FinishedAt = runtimeapi.ContainerState_CONTAINER_EXITED, 137, reason, e.clock.Now().UnixNano()
		e.rs.Unlock()
	}
	a, b := st.Containers[0].ID, st.Containers[1].ID
	exit(a, "Error")
	exit(b, "Error")
	oom.killed[a] = true
	got := e.status(pod)
	for _, c := range got.Containers {
		want := "Error"
		if c.ID == a {
			want = "OOMKilled"
		}
		if c.Reason != want {
			t.Errorf("container %s reason %q, want %q", c.Name, c.Reason, want)
		}
	}
}
