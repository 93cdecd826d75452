package pluginmanager

import (
	"sort"
	"strings"
	"time"
)

// Upstream's back-off for a failing registration (exponentialbackoff in
// k8s.io/kubernetes/pkg/util/goroutinemap).
const (
	initialRetryDelay = 500 * time.Millisecond
	maxRetryDelay     = 2*time.Minute + 2*time.Second
)

// socketState is what the manager knows of one socket path.
type socketState struct {
	// present: the socket exists; gen tells its creations apart, since a
	// socket created again is a new plugin (the old one restarted).
	present bool
	gen     uint64
	// failures counts failed registrations of this gen; retryAt is when
	// the next may start.
	failures int
	retryAt  time.Time
	// busy: an operation on this path runs; no other starts meanwhile.
	busy bool
	// reg is the plugin registered from this path, nil if none.
	reg *registration
}

// registration is a plugin registered with its handler.
type registration struct {
	gen        uint64
	pluginType string
	name       string
	endpoint   string
	handler    Handler
}

type opKind int

const (
	opRegister opKind = iota
	opDeregister
)

// op is one operation to carry out on a socket path.
type op struct {
	kind opKind
	path string
	gen  uint64        // opRegister: the creation registered
	reg  *registration // opDeregister: the registration ended
}

// decide returns the operations due at now, in path order, and the
// earliest time a delayed registration falls due (zero if none). A path
// with an operation running gets none; a registered plugin whose socket is
// gone or was created again is deregistered before anything else happens
// on its path, as upstream's reconciler does.
func decide(states map[string]*socketState, now time.Time) (ops []op, next time.Time) {
	paths := make([]string, 0, len(states))
	for p := range states {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		s := states[p]
		switch {
		case s.busy:
		case s.reg != nil && (!s.present || s.reg.gen != s.gen):
			ops = append(ops, op{kind: opDeregister, path: p, reg: s.reg})
		case s.present && s.reg == nil:
			if s.retryAt.After(now) {
				if next.IsZero() || s.retryAt.Before(next) {
					next = s.retryAt
				}
				continue
			}
			ops = append(ops, op{kind: opRegister, path: p, gen: s.gen})
		}
	}
	return ops, next
}

// retryDelay is the wait before the next registration after failures
// failed ones.
func retryDelay(failures int) time.Duration {
	d := initialRetryDelay
	for i := 1; i < failures && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// world is the loop's state: every socket path it knows of.
type world struct {
	states  map[string]*socketState
	lastGen uint64
}

func newWorld() *world { return &world{states: map[string]*socketState{}} }

// created records a socket created at path (or found at start-up).
func (w *world) created(path string) {
	s := w.states[path]
	if s == nil {
		s = &socketState{}
		w.states[path] = s
	}
	w.lastGen++
	s.present, s.gen, s.failures, s.retryAt = true, w.lastGen, 0, time.Time{}
}

// removed records that path, and everything below it when it was a
// directory, is gone.
func (w *world) removed(path string) {
	prefix := path + "/"
	for p, s := range w.states {
		if p == path || strings.HasPrefix(p, prefix) {
			s.present = false
			w.forget(p)
		}
	}
}

// started marks the paths of ops busy.
func (w *world) started(ops []op) {
	for _, o := range ops {
		w.states[o.path].busy = true
	}
}

// registered records the outcome of registering creation gen of path.
func (w *world) registered(path string, gen uint64, reg *registration, failed bool, now time.Time) {
	s := w.states[path]
	s.busy = false
	switch {
	case reg != nil:
		// Registered, even if the socket went meanwhile: decide then
		// deregisters it.
		s.reg = reg
	case failed && s.gen == gen:
		s.failures++
		s.retryAt = now.Add(retryDelay(s.failures))
	}
	w.forget(path)
}

// deregistered records that the plugin registered from path is no more.
func (w *world) deregistered(path string) {
	s := w.states[path]
	s.busy, s.reg = false, nil
	w.forget(path)
}

// forget drops path once nothing is left to do about it.
func (w *world) forget(path string) {
	if s := w.states[path]; s != nil && !s.present && !s.busy && s.reg == nil {
		delete(w.states, path)
	}
}
