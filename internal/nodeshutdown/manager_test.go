package nodeshutdown

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/internal/status"
)

// fakeLogind hands out pipes as locks and sends the test's signals.
type fakeLogind struct {
	mu       sync.Mutex
	delay    time.Duration
	override time.Duration
	locks    []*os.File // the manager's ends
	signals  chan bool
}

func (f *fakeLogind) InhibitDelay() (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.delay, nil
}

func (f *fakeLogind) OverrideInhibitDelay(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override, f.delay = d, d // as a reloaded logind would
	return nil
}

func (f *fakeLogind) Inhibit() (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	r.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.locks = append(f.locks, w)
	return w, nil
}

func (f *fakeLogind) Shutdowns() (<-chan bool, error) { return f.signals, nil }
func (f *fakeLogind) Close() error                    { return nil }

// held reports whether lock i is still open.
func (f *fakeLogind) held(i int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.locks) {
		return false
	}
	// A closed *os.File refuses Fd-level calls.
	_, err := f.locks[i].Stat()
	return err == nil
}

type kill struct {
	uid   types.UID
	grace int64
	ev    status.Eviction
}

type fakeKiller struct{ kills chan kill }

func (f fakeKiller) Evict(uid types.UID, grace *int64, ev status.Eviction) bool {
	f.kills <- kill{uid, *grace, ev}
	return true
}

type podList []*v1.Pod

func (p podList) ActivePods() []*v1.Pod { return p }

func TestShutdownByPriority(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	bus := &fakeLogind{delay: 5 * time.Second, signals: make(chan bool)}
	pod := func(uid string, priority int32) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: uid, UID: types.UID(uid)}, Spec: v1.PodSpec{Priority: ptr.To(priority), TerminationGracePeriodSeconds: ptr.To[int64](30)}}
	}
	recorder := record.NewFakeRecorder(10)
	m := New(Options{
		Periods:  []period{pp(0, 10), pp(1000, 20)},
		Connect:  func() (Logind, error) { return bus, nil },
		Pods:     podList{pod("low-1", 0), pod("high", 5000), pod("low-2", 10)},
		Recorder: recorder,
		NodeRef:  &v1.ObjectReference{Kind: "Node", Name: "n"},
		Clock:    clk,
	})
	killer := fakeKiller{kills: make(chan kill, 10)}
	synced := make(chan struct{}, 1)
	go m.Run(ctx, killer, func() { synced <- struct{}{} })

	bus.signals <- true
	<-synced
	if m.ShuttingDown() == nil {
		t.Error("not shutting down after PrepareForShutdown(true)")
	}
	if ok, reason, msg := m.Admit(); ok || reason != "NodeShutdown" || msg != MessageNotAdmitted {
		t.Errorf("Admit = %v %q %q, want refused", ok, reason, msg)
	}
	if bus.override != 30*time.Second {
		t.Errorf("inhibit delay override %v, want the whole budget 30s", bus.override)
	}
	// The low group first, with its budget as grace.
	got := map[types.UID]int64{}
	for range 2 {
		k := <-killer.kills
		got[k.uid] = k.grace
		if k.ev.Reason != ReasonTerminated || k.ev.Message != MessageTerminated || k.ev.Condition.Type != v1.DisruptionTarget || k.ev.Condition.Reason != "TerminationByKubelet" {
			t.Errorf("status %+v, want upstream's", k.ev)
		}
	}
	if got["low-1"] != 10 || got["low-2"] != 10 {
		t.Errorf("first group kills %v, want low-1 and low-2 with grace 10", got)
	}
	select {
	case k := <-killer.kills:
		t.Fatalf("%s killed before the low group ended", k.uid)
	default:
	}
	m.PodTerminated("low-1")
	m.PodTerminated("low-2")
	// Then the high group, which never ends: its budget does.
	if k := <-killer.kills; k.uid != "high" || k.grace != 20 {
		t.Errorf("second group kill %+v, want high with grace 20", k)
	}
	if !bus.held(0) {
		t.Error("lock released before the last group's budget was spent")
	}
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	clk.Step(20 * time.Second)
	for bus.held(0) {
		time.Sleep(time.Millisecond)
	}

	// A cancelled shutdown takes the lock again.
	bus.signals <- false
	for !bus.held(1) {
		time.Sleep(time.Millisecond)
	}
	if m.ShuttingDown() != nil {
		t.Error("still shutting down after the cancellation")
	}
	if e := <-recorder.Events; e != "Normal NodeShutdown Shutdown manager detected shutdown event" {
		t.Errorf("event %q", e)
	}
	if e := <-recorder.Events; e != "Normal NodeShutdown Shutdown manager detected shutdown cancellation" {
		t.Errorf("event %q", e)
	}
}

func TestNoLogind(t *testing.T) {
	m := New(Options{Periods: []period{pp(0, 10)}, Connect: func() (Logind, error) { return nil, errors.New("no bus") }, Pods: podList{}})
	done := make(chan struct{})
	go func() { m.Run(context.Background(), fakeKiller{}, nil); close(done) }()
	<-done // gives up at once, after saying so
	if m.ShuttingDown() != nil {
		t.Error("shutting down without logind")
	}
	if New(Options{}) != nil {
		t.Error("a manager without periods")
	}
	var none *Manager
	if ok, _, _ := none.Admit(); !ok || none.ShuttingDown() != nil {
		t.Error("a nil manager refuses pods")
	}
	none.PodTerminated("x")
}
