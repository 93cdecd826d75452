package runtime

import (
	"errors"
	"testing"

	critesting "k8s.io/cri-api/pkg/apis/testing"
)

// The runtime's name is asked for until the runtime has answered once
// (berth may start while it is down), then kept: no call per pod sync.
func TestRuntimeNameLearnedOnceTheRuntimeAnswers(t *testing.T) {
	e := newEnv(t)
	e.rs.InjectError("Version", errors.New("connection refused"))
	if name := e.m.RuntimeName(); name != "" {
		t.Fatalf("name %q while the runtime does not answer, want none", name)
	}
	if name := e.m.RuntimeName(); name != critesting.FakeRuntimeName {
		t.Fatalf("name %q once the runtime answers, want %q", name, critesting.FakeRuntimeName)
	}
	calls := func() (n int) {
		e.rs.Lock()
		defer e.rs.Unlock()
		for _, c := range e.rs.Called {
			if c == "Version" {
				n++
			}
		}
		return n
	}
	before := calls()
	for range 3 {
		e.m.RuntimeName()
	}
	if after := calls(); after != before {
		t.Fatalf("%d more Version calls after the name was known, want none", after-before)
	}
}
