package stats

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
)

// benchCollector is a v1 node with n pods of one container each, sampled
// twice (so CPU rates exist).
func benchCollector(b *testing.B, n int) *Collector {
	b.Helper()
	e := newTestEnv(b)
	e.rt.pods = map[types.UID]*container.PodStatus{}
	e.rt.stats = nil
	write := func(cpu uint64) {
		writeV1(b, e.cgRoot, "/", cgVals{cpu: cpu, usage: 3e9})
		writeV1(b, e.cgRoot, "/kubepods", cgVals{cpu: cpu, usage: 1e9})
		for i := 0; i < n; i++ {
			uid := fmt.Sprintf("uid-%03d", i)
			pod := "/kubepods/besteffort/pod" + uid
			writeV1(b, e.cgRoot, pod, cgVals{cpu: cpu, usage: 2e6})
			writeV1(b, e.cgRoot, pod+"/sb-"+uid, cgVals{cpu: 1, usage: 1e5, procs: []int{pausePID}})
			writeV1(b, e.cgRoot, pod+"/c-"+uid, cgVals{cpu: cpu, usage: 2e6, procs: []int{1}})
		}
	}
	for i := 0; i < n; i++ {
		uid := fmt.Sprintf("uid-%03d", i)
		e.rt.pods[types.UID(uid)] = &container.PodStatus{
			UID: types.UID(uid), Name: "pod-" + uid, Namespace: "bench",
			Sandboxes:  []*container.SandboxStatus{{ID: "sb-" + uid, State: container.SandboxReady, CreatedAt: t0}},
			Containers: []*container.ContainerStatus{{ID: "c-" + uid, Name: "app", State: container.StateRunning, CreatedAt: t0, Image: "busybox"}},
		}
		e.rt.stats = append(e.rt.stats, &runtimeapi.ContainerStats{
			Attributes:    &runtimeapi.ContainerAttributes{Id: "c-" + uid},
			WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: t0.UnixNano(), UsedBytes: &runtimeapi.UInt64Value{Value: 4096}},
		})
	}
	write(1e9)
	cg, err := newCgroupV1(e.cgRoot)
	if err != nil {
		b.Fatal(err)
	}
	c := newCollector(e.options(), cg)
	c.housekeep(testCtx(b))
	e.clock.Step(10 * time.Second)
	write(2e9)
	c.housekeep(testCtx(b))
	if s, err := c.Summary(context.Background(), false); err != nil || len(s.Pods) != n || s.Pods[0].CPU.UsageNanoCores == nil {
		b.Fatalf("summary of the bench node: %v", err)
	}
	return c
}

// BenchmarkSummary is the cost of one /stats/summary request on a node
// with 100 pods: built from memory, no IO.
func BenchmarkSummary(b *testing.B) {
	c := benchCollector(b, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Summary(context.Background(), false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMetricsCadvisor is the cost of one /metrics/cadvisor gather on
// a node with 100 pods.
func BenchmarkMetricsCadvisor(b *testing.B) {
	c := benchCollector(b, 100)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.CadvisorCollector())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHousekeeping is one sampling round over 100 pods (the IO that
// requests never do).
func BenchmarkHousekeeping(b *testing.B) {
	c := benchCollector(b, 100)
	ctx := testCtx(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.housekeep(ctx)
	}
}
