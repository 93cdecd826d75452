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
)

func TestDueExits(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name      string
		pending   map[string]pendingExit
		now       time.Time
		limit     int
		wantCheck []string
		wantDrop  []string
	}{
		{"none", nil, at(0), 8, []string{}, nil},
		{"oldest first", map[string]pendingExit{
			"b": {since: at(20)}, "a": {since: at(10)}, "c": {since: at(10)},
		}, at(30), 8, []string{"a", "c", "b"}, nil},
		{"at most limit", map[string]pendingExit{
			"a": {since: at(1)}, "b": {since: at(2)}, "c": {since: at(3)},
		}, at(30), 2, []string{"a", "b"}, nil},
		{"given up after the deadline", map[string]pendingExit{
			"old": {since: at(0)}, "new": {since: at(400)},
		}, at(501), 8, []string{"new"}, []string{"old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check, drop := dueExits(tt.pending, tt.now, tt.limit, 500*time.Millisecond)
			if !reflect.DeepEqual(check, tt.wantCheck) || !reflect.DeepEqual(drop, tt.wantDrop) {
				t.Fatalf("dueExits = %v, %v; want %v, %v", check, drop, tt.wantCheck, tt.wantDrop)
			}
		})
	}
}

// fakeExits answers ContainerExited from a map and counts the calls.
type fakeExits struct {
	mu     sync.Mutex
	exited map[string]bool
	err    error
	calls  int
}

func (f *fakeExits) ContainerExited(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.exited[id], f.err
}

func (f *fakeExits) set(id string) {
	f.mu.Lock()
	f.exited[id] = true
	f.mu.Unlock()
}

func TestExitConfirmerWakesOnlyOnceTheRuntimeKnows(t *testing.T) {
	rt := &fakeExits{exited: map[string]bool{}}
	var woken []types.UID
	clk := testclock.NewFakeClock(time.Unix(0, 0))
	c := newExitConfirmer(rt.ContainerExited, func(uid types.UID) { woken = append(woken, uid) }, clk)
	ctx := context.Background()

	c.add("c1", "pod-a")
	if !c.tick(ctx) || len(woken) != 0 {
		t.Fatalf("woke %v before the runtime recorded the exit", woken)
	}
	rt.set("c1")
	clk.Step(30 * time.Millisecond)
	if c.tick(ctx) {
		t.Fatal("exit still pending after the runtime recorded it")
	}
	if !reflect.DeepEqual(woken, []types.UID{"pod-a"}) {
		t.Fatalf("woken = %v, want [pod-a]", woken)
	}
}

func TestExitConfirmerGivesUp(t *testing.T) {
	rt := &fakeExits{exited: map[string]bool{}, err: errors.New("runtime down")}
	woken := 0
	clk := testclock.NewFakeClock(time.Unix(0, 0))
	c := newExitConfirmer(rt.ContainerExited, func(types.UID) { woken++ }, clk)
	c.add("c1", "pod-a")
	if !c.tick(context.Background()) {
		t.Fatal("exit dropped at the first error")
	}
	clk.Step(exitConfirmGiveUp + time.Millisecond)
	calls := rt.calls
	if c.tick(context.Background()) {
		t.Fatal("exit still pending after the give-up deadline")
	}
	if rt.calls != calls || woken != 0 {
		t.Fatalf("after giving up: %d more calls, %d wake-ups; want none", rt.calls-calls, woken)
	}
}

func TestExitConfirmerBoundsCallsPerTick(t *testing.T) {
	rt := &fakeExits{exited: map[string]bool{}}
	c := newExitConfirmer(rt.ContainerExited, func(types.UID) {}, testclock.NewFakeClock(time.Unix(0, 0)))
	for i := range 3 * maxExitConfirmsPerTick {
		c.add(string(rune('a'+i)), "pod")
	}
	c.tick(context.Background())
	if rt.calls != maxExitConfirmsPerTick {
		t.Fatalf("one tick made %d runtime calls, want %d", rt.calls, maxExitConfirmsPerTick)
	}
}
