package eviction

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	testclock "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/status"
)

// fakeStats serves a Summary; Refresh publishes next (what a round after
// a reclaim would show).
type fakeStats struct {
	mu        sync.Mutex
	summary   *statsapi.Summary
	next      *statsapi.Summary
	sampled   chan struct{}
	refreshed int
}

func (f *fakeStats) Summary(context.Context, bool) (*statsapi.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.summary, nil
}
func (f *fakeStats) Sampled() <-chan struct{}        { return f.sampled }
func (f *fakeStats) DedicatedImageFs() (bool, error) { return false, nil }
func (f *fakeStats) Refresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshed++
	if f.next != nil {
		f.summary = f.next
	}
	f.sampled <- struct{}{}
}

type fakePods struct{ pods []*v1.Pod }

func (f *fakePods) ActivePods() []*v1.Pod                           { return f.pods }
func (f *fakePods) Terminating(types.UID) (string, bool)            { return "", false }
func (f *fakePods) Admitted(types.UID) bool                         { return false }
func (f *fakePods) DeleteAllUnusedContainers(context.Context) error { return nil }

type fakeEvicter struct{ evicted map[types.UID]status.Eviction }

func (f *fakeEvicter) Evict(uid types.UID, _ *int64, ev status.Eviction) bool {
	f.evicted[uid] = ev
	return true
}

func (f *fakeEvicter) SourcesReady() bool { return true }

type fakeImageGC struct{ calls int }

func (f *fakeImageGC) DeleteUnusedImages(context.Context) error { f.calls++; return nil }

func summary(memAvail, diskAvail uint64, pods map[string]usage, at time.Time) *statsapi.Summary {
	t := metav1.NewTime(at)
	return &statsapi.Summary{
		Node: statsapi.NodeStats{
			Memory: &statsapi.MemoryStats{Time: t, AvailableBytes: u64(memAvail), WorkingSetBytes: u64(1000<<20 - memAvail)},
			Fs:     &statsapi.FsStats{Time: t, AvailableBytes: u64(diskAvail), CapacityBytes: u64(1000 << 20), InodesFree: u64(1000), Inodes: u64(2000)},
		},
		Pods: statsOf(pods),
	}
}

func newTestManager(t *testing.T, cfg Config, s *statsapi.Summary, pods ...*v1.Pod) (*Manager, *fakeStats, *fakeEvicter, *fakeImageGC, *record.FakeRecorder) {
	t.Helper()
	fs := &fakeStats{summary: s, sampled: make(chan struct{}, 1)}
	gc := &fakeImageGC{}
	rec := record.NewFakeRecorder(20)
	fp := &fakePods{pods: pods}
	m := New(Options{Config: cfg, Stats: fs, Pods: fp, ImageGC: gc, ContainerGC: fp, Recorder: rec,
		NodeRef: &v1.ObjectReference{Kind: "Node", Name: "node-a", UID: "node-a"},
		Clock:   testclock.NewFakeClock(time.Unix(1000, 0))})
	return m, fs, &fakeEvicter{evicted: map[types.UID]status.Eviction{}}, gc, rec
}

func TestManagerEvictsBestEffortUnderMemoryPressure(t *testing.T) {
	const mi = 1 << 20
	cfg := Config{Thresholds: []Threshold{{Signal: SignalMemoryAvailable, Value: Value{Quantity: qty("500Mi")}}}, PressureTransitionPeriod: time.Minute}
	guaranteed := mkPod("guaranteed", requests(v1.ResourceMemory, "100Mi"), limits(v1.ResourceMemory, "100Mi"))
	static := mkPod("static", func(p *v1.Pod) { p.Annotations = map[string]string{source.AnnotationConfigSource: source.SourceFile} })
	be := mkPod("besteffort")
	s := summary(100*mi, 500*mi, map[string]usage{"guaranteed": {mem: 50 * mi}, "static": {mem: 900 * mi}, "besteffort": {mem: 10 * mi}}, time.Unix(1000, 0))
	m, _, ev, gc, rec := newTestManager(t, cfg, s, guaranteed, static, be)
	evicted := m.synchronize(context.Background(), ev, nil)
	if len(evicted) != 1 || evicted[0].Name != "besteffort" {
		t.Fatalf("evicted %v, want besteffort", names(evicted))
	}
	got := ev.evicted["besteffort"]
	if got.Reason != "Evicted" || !strings.HasPrefix(got.Message, "The node was low on resource: memory. Threshold quantity: 500Mi, available: 100Mi. Container c was using 10Mi, request is 0") {
		t.Fatalf("eviction %+v", got)
	}
	if got.Condition == nil || got.Condition.Type != v1.DisruptionTarget {
		t.Fatalf("condition %+v", got.Condition)
	}
	if c := m.Conditions(); len(c) != 1 || c[0] != v1.NodeMemoryPressure {
		t.Fatalf("conditions %v", c)
	}
	if gc.calls != 0 {
		t.Fatal("image GC ran for memory pressure")
	}
	events := strings.Join([]string{<-rec.Events, <-rec.Events, <-rec.Events}, "\n")
	if !strings.Contains(events, "Normal NodeHasInsufficientMemory Node node-a status is now: NodeHasInsufficientMemory") ||
		!strings.Contains(events, "Warning EvictionThresholdMet Attempting to reclaim memory") || !strings.Contains(events, "Warning Evicted The node was low on resource: memory.") {
		t.Fatalf("events %q", events)
	}
}

func TestManagerReclaimsImagesBeforeEvictingForDisk(t *testing.T) {
	const mi = 1 << 20
	cfg := Config{Thresholds: []Threshold{{Signal: SignalNodeFsAvailable, Value: Value{Quantity: qty("200Mi")}}}, PressureTransitionPeriod: time.Minute}
	pod := mkPod("writer")
	before := summary(900*mi, 100*mi, map[string]usage{"writer": {rootfs: 50 * mi}}, time.Unix(1000, 0))
	m, fs, ev, gc, _ := newTestManager(t, cfg, before, pod)
	fs.next = summary(900*mi, 400*mi, map[string]usage{"writer": {rootfs: 50 * mi}}, time.Unix(1001, 0))
	if evicted := m.synchronize(context.Background(), ev, nil); len(evicted) != 0 {
		t.Fatalf("evicted %v although image GC freed enough", names(evicted))
	}
	if gc.calls != 1 || fs.refreshed != 1 {
		t.Fatalf("image GC calls %d, refreshes %d", gc.calls, fs.refreshed)
	}
	if c := m.Conditions(); len(c) != 1 || c[0] != v1.NodeDiskPressure {
		t.Fatalf("conditions %v", c)
	}
	// Not enough freed: the pod goes.
	fs.summary = summary(900*mi, 100*mi, map[string]usage{"writer": {rootfs: 50 * mi}}, time.Unix(1002, 0))
	fs.next = summary(900*mi, 110*mi, map[string]usage{"writer": {rootfs: 50 * mi}}, time.Unix(1003, 0))
	if evicted := m.synchronize(context.Background(), ev, nil); len(evicted) != 1 {
		t.Fatalf("evicted %v, want the writer", names(evicted))
	}
	if msg := ev.evicted["writer"].Message; !strings.HasPrefix(msg, "The node was low on resource: ephemeral-storage. Threshold quantity: 200Mi, available: 100Mi. ") {
		t.Fatalf("message %q", msg)
	}
}

func TestManagerEnforcesEmptyDirSizeLimit(t *testing.T) {
	const mi = 1 << 20
	limit := resource.MustParse("1Mi")
	pod := mkPod("filler", func(p *v1.Pod) {
		p.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: &limit}}}}
	})
	s := summary(900*mi, 900*mi, map[string]usage{"filler": {volumes: map[string]uint64{"scratch": 2 * mi}}}, time.Unix(1000, 0))
	m, _, ev, _, _ := newTestManager(t, Config{LocalStorageCapacityIsolation: true}, s, pod)
	var signals []string
	m.opts.OnEvicted = func(s string) { signals = append(signals, s) }
	if evicted := m.synchronize(context.Background(), ev, nil); len(evicted) != 1 {
		t.Fatalf("evicted %v", names(evicted))
	}
	if got := ev.evicted["filler"]; got.Message != `Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ` || got.Condition != nil {
		t.Fatalf("eviction %+v", got)
	}
	if len(signals) != 1 || signals[0] != "emptydirfs.limit" {
		t.Fatalf("counted signals %v", signals)
	}
}

// BenchmarkIdleRound is one round with 100 pods and the default hard
// thresholds, none met: what the manager adds to each housekeeping round
// besides building the Summary.
func BenchmarkIdleRound(b *testing.B) {
	const mi = 1 << 20
	cfg, err := ParseConfig(&kubeletconfig.KubeletConfiguration{EvictionHard: map[string]string{
		"memory.available": "100Mi", "nodefs.available": "10%", "nodefs.inodesFree": "5%", "imagefs.available": "15%", "imagefs.inodesFree": "5%",
	}, EnforceNodeAllocatable: []string{"pods"}, LocalStorageCapacityIsolation: ptrTo(true)})
	if err != nil {
		b.Fatal(err)
	}
	var pods []*v1.Pod
	use := map[string]usage{}
	for i := range 100 {
		name := fmt.Sprintf("pod-%d", i)
		pods = append(pods, mkPod(name, requests(v1.ResourceMemory, "10Mi")))
		use[name] = usage{mem: 5 * mi, rootfs: mi, logs: mi, volumes: map[string]uint64{"kube-api-access": 4096}}
	}
	s := summary(900*mi, 900*mi, use, time.Unix(1000, 0))
	fs := &fakeStats{summary: s, sampled: make(chan struct{}, 1)}
	fp := &fakePods{pods: pods}
	m := New(Options{Config: cfg, Stats: fs, Pods: fp, Clock: testclock.NewFakeClock(time.Unix(1000, 0))})
	ev := &fakeEvicter{evicted: map[types.UID]status.Eviction{}}
	b.ReportAllocs()
	for b.Loop() {
		if evicted := m.synchronize(context.Background(), ev, nil); len(evicted) != 0 {
			b.Fatalf("evicted %v", names(evicted))
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
