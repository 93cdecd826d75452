package pluginmanager

import (
	"reflect"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Unix(1000, 0)
	reg := func(gen uint64) *registration { return &registration{gen: gen, name: "p"} }
	tests := []struct {
		name   string
		states map[string]*socketState
		want   []op
		next   time.Time
	}{{
		name:   "new socket is registered",
		states: map[string]*socketState{"/r/a.sock": {present: true, gen: 1}},
		want:   []op{{kind: opRegister, path: "/r/a.sock", gen: 1}},
	}, {
		name:   "registered socket: nothing to do",
		states: map[string]*socketState{"/r/a.sock": {present: true, gen: 1, reg: reg(1)}},
	}, {
		name:   "removed socket is deregistered",
		states: map[string]*socketState{"/r/a.sock": {gen: 1, reg: reg(1)}},
		want:   []op{{kind: opDeregister, path: "/r/a.sock", reg: reg(1)}},
	}, {
		name:   "recreated socket: the old plugin is deregistered first",
		states: map[string]*socketState{"/r/a.sock": {present: true, gen: 2, reg: reg(1)}},
		want:   []op{{kind: opDeregister, path: "/r/a.sock", reg: reg(1)}},
	}, {
		name:   "busy path waits for its operation",
		states: map[string]*socketState{"/r/a.sock": {present: true, gen: 2, busy: true, reg: reg(1)}},
	}, {
		name:   "failed registration waits for its retry",
		states: map[string]*socketState{"/r/a.sock": {present: true, gen: 1, failures: 1, retryAt: now.Add(time.Second)}},
		next:   now.Add(time.Second),
	}, {
		name:   "retry due",
		states: map[string]*socketState{"/r/a.sock": {present: true, gen: 1, failures: 1, retryAt: now}},
		want:   []op{{kind: opRegister, path: "/r/a.sock", gen: 1}},
	}, {
		name: "several paths in order, earliest retry reported",
		states: map[string]*socketState{
			"/r/c.sock": {present: true, gen: 3},
			"/r/b.sock": {present: true, gen: 2, failures: 3, retryAt: now.Add(2 * time.Second)},
			"/r/d.sock": {present: true, gen: 4, failures: 1, retryAt: now.Add(time.Second)},
			"/r/a.sock": {gen: 1, reg: reg(1)},
		},
		want: []op{
			{kind: opDeregister, path: "/r/a.sock", reg: reg(1)},
			{kind: opRegister, path: "/r/c.sock", gen: 3},
		},
		next: now.Add(time.Second),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := decide(tt.states, now)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ops = %+v, want %+v", got, tt.want)
			}
			if !next.Equal(tt.next) {
				t.Errorf("next = %v, want %v", next, tt.next)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		1:  500 * time.Millisecond,
		2:  time.Second,
		3:  2 * time.Second,
		8:  64 * time.Second,
		9:  maxRetryDelay,
		50: maxRetryDelay,
	} {
		if got := retryDelay(failures); got != want {
			t.Errorf("retryDelay(%d) = %v, want %v", failures, got, want)
		}
	}
}

func TestWorld(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newWorld()
	w.created("/r/a.sock")
	w.created("/r/sub/b.sock")
	ops, _ := decide(w.states, now)
	w.started(ops)
	if len(ops) != 2 {
		t.Fatalf("ops = %+v, want two registrations", ops)
	}

	// a fails: retried after the back-off; b registers.
	w.registered("/r/a.sock", ops[0].gen, nil, true, now)
	w.registered("/r/sub/b.sock", ops[1].gen, &registration{gen: ops[1].gen}, false, now)
	if s := w.states["/r/a.sock"]; s.failures != 1 || !s.retryAt.Equal(now.Add(initialRetryDelay)) {
		t.Errorf("a after failure = %+v", s)
	}

	// The directory holding b goes: b is deregistered, then forgotten.
	w.removed("/r/sub")
	ops, _ = decide(w.states, now)
	if len(ops) != 1 || ops[0].kind != opDeregister || ops[0].path != "/r/sub/b.sock" {
		t.Fatalf("ops = %+v, want b deregistered", ops)
	}
	w.started(ops)
	w.deregistered("/r/sub/b.sock")
	if _, ok := w.states["/r/sub/b.sock"]; ok {
		t.Error("b still known after its deregistration")
	}

	// a created again while its registration runs: the old creation's
	// failure does not delay the new one.
	ops, _ = decide(w.states, now.Add(time.Second))
	w.started(ops)
	w.created("/r/a.sock")
	w.registered("/r/a.sock", ops[0].gen, nil, true, now)
	if ops, _ := decide(w.states, now.Add(time.Second)); len(ops) != 1 || ops[0].kind != opRegister {
		t.Errorf("ops = %+v, want a registered at once", ops)
	}

	// A socket removed before it ever registered is forgotten at once.
	w.created("/r/c.sock")
	w.removed("/r/c.sock")
	if _, ok := w.states["/r/c.sock"]; ok {
		t.Error("c still known after its removal")
	}
}
