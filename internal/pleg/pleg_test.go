package pleg

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	testclock "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/container"
)

func pod(containers ...*container.ContainerStatus) *container.PodStatus {
	return &container.PodStatus{
		Sandboxes:  []*container.SandboxStatus{{ID: "sb", State: container.SandboxReady}},
		Containers: containers,
	}
}

func TestChanged(t *testing.T) {
	running := pod(&container.ContainerStatus{ID: "c1", State: container.StateRunning})
	exited := pod(&container.ContainerStatus{ID: "c1", State: container.StateExited})
	restarted := pod(&container.ContainerStatus{ID: "c2", State: container.StateRunning},
		&container.ContainerStatus{ID: "c1", State: container.StateExited})
	tests := []struct {
		name       string
		prev, next map[types.UID]*container.PodStatus
		want       []types.UID
	}{
		{"nothing", nil, nil, nil},
		{"new pod", nil, map[types.UID]*container.PodStatus{"a": running}, []types.UID{"a"}},
		{"unchanged", map[types.UID]*container.PodStatus{"a": running}, map[types.UID]*container.PodStatus{"a": running}, nil},
		{"container exited", map[types.UID]*container.PodStatus{"a": running, "b": running},
			map[types.UID]*container.PodStatus{"a": exited, "b": running}, []types.UID{"a"}},
		{"container replaced", map[types.UID]*container.PodStatus{"a": exited}, map[types.UID]*container.PodStatus{"a": restarted}, []types.UID{"a"}},
		{"pod gone", map[types.UID]*container.PodStatus{"a": running, "b": running}, map[types.UID]*container.PodStatus{"b": running}, []types.UID{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := func(m map[types.UID]*container.PodStatus) map[types.UID]string {
				out := map[types.UID]string{}
				for k, v := range m {
					out[k] = Fingerprint(v)
				}
				return out
			}
			got := Changed(fp(tt.prev), fp(tt.next))
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Changed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFingerprintIgnoresOrder(t *testing.T) {
	a := pod(&container.ContainerStatus{ID: "c1", State: container.StateRunning}, &container.ContainerStatus{ID: "c2", State: container.StateExited})
	b := pod(&container.ContainerStatus{ID: "c2", State: container.StateExited}, &container.ContainerStatus{ID: "c1", State: container.StateRunning})
	if Fingerprint(a) != Fingerprint(b) {
		t.Fatalf("fingerprint depends on order: %q vs %q", Fingerprint(a), Fingerprint(b))
	}
}

type scriptedLister struct {
	mu    sync.Mutex
	steps []func() (map[types.UID]*container.PodStatus, error)
	calls int
}

func (l *scriptedLister) ListPods(context.Context) (map[types.UID]*container.PodStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := l.calls
	if i >= len(l.steps) {
		i = len(l.steps) - 1
	}
	l.calls++
	return l.steps[i]()
}

// relist is driven by hand so the test needs no clock or sleeps.
func TestRelistWakesChangedPodsAndAllAfterOutage(t *testing.T) {
	running := pod(&container.ContainerStatus{ID: "c1", State: container.StateRunning})
	exited := pod(&container.ContainerStatus{ID: "c1", State: container.StateExited})
	ok := func(m map[types.UID]*container.PodStatus) func() (map[types.UID]*container.PodStatus, error) {
		return func() (map[types.UID]*container.PodStatus, error) { return m, nil }
	}
	lister := &scriptedLister{steps: []func() (map[types.UID]*container.PodStatus, error){
		ok(map[types.UID]*container.PodStatus{"a": running, "b": running}),
		ok(map[types.UID]*container.PodStatus{"a": exited, "b": running}),
		func() (map[types.UID]*container.PodStatus, error) { return nil, errors.New("connection refused") },
		ok(map[types.UID]*container.PodStatus{"a": exited, "b": running}),
	}}
	c := &consumer{}
	p := New(Options{Lister: lister, Consumer: c, Clock: testclock.NewFakeClock(time.Unix(100, 0))})
	ctx := context.Background()

	p.relist(ctx)
	if want := []types.UID{"a", "b"}; !reflect.DeepEqual(c.take(), want) {
		t.Fatalf("first relist woke %v, want %v", c.woken, want)
	}
	p.relist(ctx)
	if want := []types.UID{"a"}; !reflect.DeepEqual(c.take(), want) {
		t.Fatalf("second relist woke %v, want %v", c.woken, want)
	}
	p.relist(ctx)
	if woken := c.take(); len(woken) != 0 {
		t.Fatalf("failed relist woke %v", woken)
	}
	if healthy, err := p.Healthy(time.Now().Add(time.Hour), time.Minute); healthy || err == nil {
		t.Fatalf("Healthy after failure = %v, %v; want false with the runtime error", healthy, err)
	}
	p.relist(ctx)
	if c.all != 1 {
		t.Fatalf("relist after outage woke every pod %d times, want 1", c.all)
	}
	if c.relists != 3 {
		t.Fatalf("%d snapshots handed over, want one per successful relist (3)", c.relists)
	}
	if healthy, err := p.Healthy(time.Unix(100, 0), time.Minute); !healthy {
		t.Fatalf("Healthy after recovery = false: %v", err)
	}
}

func TestKeepObserved(t *testing.T) {
	listedAt := time.Unix(100, 0)
	before, after := listedAt.Add(-time.Millisecond), listedAt.Add(time.Millisecond)
	tests := []struct {
		name       string
		prev, next map[types.UID]string
		observedAt map[types.UID]time.Time
		wantNext   map[types.UID]string
		wantKept   []types.UID
	}{
		{"worker saw the new container after the list: its view stays",
			map[types.UID]string{"a": "c/1/running;"}, map[types.UID]string{},
			map[types.UID]time.Time{"a": after},
			map[types.UID]string{"a": "c/1/running;"}, []types.UID{"a"}},
		{"worker saw the pod gone after the list",
			map[types.UID]string{}, map[types.UID]string{"a": "c/1/exited;"},
			map[types.UID]time.Time{"a": after},
			map[types.UID]string{}, []types.UID{"a"}},
		{"the list is newer than the worker's view",
			map[types.UID]string{"a": "c/1/running;"}, map[types.UID]string{"a": "c/1/exited;"},
			map[types.UID]time.Time{"a": before},
			map[types.UID]string{"a": "c/1/exited;"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keepObserved(tt.prev, tt.next, tt.observedAt, listedAt)
			if !reflect.DeepEqual(tt.next, tt.wantNext) {
				t.Errorf("next = %v, want %v", tt.next, tt.wantNext)
			}
			var kept []types.UID
			for uid := range tt.observedAt {
				kept = append(kept, uid)
			}
			if !reflect.DeepEqual(kept, tt.wantKept) {
				t.Errorf("observations kept = %v, want %v", kept, tt.wantKept)
			}
		})
	}
}

func TestObservedStateDoesNotWakeAgain(t *testing.T) {
	running := pod(&container.ContainerStatus{ID: "c1", State: container.StateRunning})
	exited := pod(&container.ContainerStatus{ID: "c1", State: container.StateExited})
	ok := func(m map[types.UID]*container.PodStatus) func() (map[types.UID]*container.PodStatus, error) {
		return func() (map[types.UID]*container.PodStatus, error) { return m, nil }
	}
	lister := &scriptedLister{steps: []func() (map[types.UID]*container.PodStatus, error){
		ok(map[types.UID]*container.PodStatus{}),
		ok(map[types.UID]*container.PodStatus{"a": running}),
		ok(map[types.UID]*container.PodStatus{"a": exited}),
	}}
	c := &consumer{}
	clk := testclock.NewFakeClock(time.Unix(100, 0))
	p := New(Options{Lister: lister, Consumer: c, Clock: clk})
	ctx := context.Background()
	p.relist(ctx) // nothing yet

	// The worker starts the container and reads it back before the relist.
	clk.Step(time.Millisecond)
	p.Observed("a", running)
	clk.Step(time.Second)
	p.relist(ctx)
	if woken := c.take(); len(woken) != 0 {
		t.Fatalf("relist woke %v for a state the worker had seen", woken)
	}
	clk.Step(time.Second)
	p.relist(ctx)
	if woken := c.take(); !reflect.DeepEqual(woken, []types.UID{"a"}) {
		t.Fatalf("woken = %v after the container exited, want [a]", woken)
	}
}

// A worker reads its pod while a relist is listing: the relist started
// earlier, so the worker's view stands for that pod (timing.go) and the
// relist wakes nobody for it — neither now nor when the next relist
// shows what the worker saw.
func TestObservationDuringAListIsNewerThanTheList(t *testing.T) {
	running := pod(&container.ContainerStatus{ID: "c1", State: container.StateRunning})
	c := &consumer{}
	clk := testclock.NewFakeClock(time.Unix(100, 0))
	var p *PLEG
	lister := &scriptedLister{steps: []func() (map[types.UID]*container.PodStatus, error){
		func() (map[types.UID]*container.PodStatus, error) { return map[types.UID]*container.PodStatus{}, nil },
		func() (map[types.UID]*container.PodStatus, error) {
			// Listing takes a while; meanwhile the worker starts the
			// container and reads it. The list read the pod before.
			clk.Step(10 * time.Millisecond)
			p.Observed("a", running)
			return map[types.UID]*container.PodStatus{}, nil
		},
		func() (map[types.UID]*container.PodStatus, error) {
			return map[types.UID]*container.PodStatus{"a": running}, nil
		},
	}}
	p = New(Options{Lister: lister, Consumer: c, Clock: clk})
	ctx := context.Background()
	p.relist(ctx)
	clk.Step(time.Second)
	p.relist(ctx)
	if woken := c.take(); len(woken) != 0 {
		t.Fatalf("a relist older than the worker's view woke %v", woken)
	}
	clk.Step(time.Second)
	p.relist(ctx)
	if woken := c.take(); len(woken) != 0 {
		t.Fatalf("the relist that caught up with the worker's view woke %v", woken)
	}
}

// consumer records what the PLEG tells; tests call relist by hand, so
// no locking is needed.
type consumer struct {
	woken   []types.UID
	all     int
	relists int
}

func (c *consumer) Wake(uid types.UID)                          { c.woken = append(c.woken, uid) }
func (c *consumer) WakeAll()                                    { c.all++ }
func (c *consumer) Relisted(map[types.UID]*container.PodStatus) { c.relists++ }

func (c *consumer) take() []types.UID {
	w := c.woken
	c.woken = nil
	return w
}
