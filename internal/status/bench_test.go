package status

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/internal/container"
)

// BenchmarkCompute computes the status of a typical running pod (two init
// containers done, two app containers, one restarted) from its previous
// status, as every sync does.
func BenchmarkCompute(b *testing.B) {
	in := Input{
		Pod: testPod(v1.RestartPolicyAlways, withInits("i0", "i1")),
		Runtime: rt(readySB("10.0.0.2"),
			restarts(c("a", "c5", running, 0), 1), c("a", "c4", exited, 1),
			c("b", "c3", running, 0),
			c("i1", "c2", exited, 0), c("i0", "c1", exited, 0)),
		Waiting: map[string]container.Waiting{},
		NodeIPs: []string{"192.168.0.1"},
		Now:     now,
	}
	in.Old = Compute(in)
	in.Now = metav1.NewTime(now.Add(time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		if s := Compute(in); s.Phase != v1.PodRunning {
			b.Fatalf("phase %s", s.Phase)
		}
	}
}
