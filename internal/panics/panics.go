// Package panics turns a panic in one pod's work into an error, so that a
// bug reached by one pod's spec or runtime state fails that pod's step
// alone: its owner logs it with the pod, retries it with back-off, and
// every other pod and the agent keep running. Upstream's kubelet lets such
// a panic crash the process (runtime.HandleCrash re-panics); berth
// deliberately does not, and counts each one (kubelet_recovered_panics_total).
package panics

import (
	"fmt"
	"runtime/debug"
)

// Error is a recovered panic: the value passed to panic and the stack of
// the goroutine that panicked.
type Error struct {
	Value any
	Stack []byte
}

func (e *Error) Error() string { return fmt.Sprintf("recovered from panic: %v", e.Value) }

// Unwrap returns the panic's value when it is an error (a runtime error
// such as a nil dereference), so that errors.As finds it.
func (e *Error) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// Counter counts recovered panics; a prometheus.Counter is one.
type Counter interface{ Inc() }

// Do runs f and returns its error; a panic in f is returned as *Error and
// counted in c (which may be nil). f must leave no lock held when it
// panics (defer its unlocks): Do cannot release them.
func Do(c Counter, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Value: r, Stack: debug.Stack()}
			if c != nil {
				c.Inc()
			}
		}
	}()
	return f()
}
