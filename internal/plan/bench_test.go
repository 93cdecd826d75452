package plan

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

// BenchmarkComputePodActions plans a typical initialized pod in steady state:
// two init containers done, two app containers running, one restarted once.
func BenchmarkComputePodActions(b *testing.B) {
	p := testPod(v1.RestartPolicyAlways, withInits("i0", "i1"))
	p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}
	p.Spec.Containers[0].Command = []string{"sh", "-c", "sleep 3600"}
	st := rt(ready("s1"),
		ctr(p, "a", "c5", "s1", running, 0), ctr(p, "a", "c4", "s1", exited, 1),
		ctr(p, "b", "c3", "s1", running, 0),
		ctr(p, "i1", "c2", "s1", exited, 0), ctr(p, "i0", "c1", "s1", exited, 0))
	b.ReportAllocs()
	for b.Loop() {
		if a := ComputePodActions(p, st, nil); a.Changes() {
			b.Fatalf("unexpected changes: %+v", a)
		}
	}
}
