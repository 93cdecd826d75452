package allocation

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testclock "k8s.io/utils/clock/testing"
)

func pod(uid, cpu string, prio int32) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: uid, UID: types.UID(uid)}, Spec: v1.PodSpec{
		Priority:   &prio,
		Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}},
	}}
	return p
}

func TestAllocatedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	m, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetAllocated(pod("a", "100m", 0)); err != nil {
		t.Fatal(err)
	}
	if err := m.SetActuated("a", "c", pod("a", "100m", 0).Spec.Containers[0].Resources); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err = New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, differs := m.Allocated(pod("a", "300m", 0))
	if !differs || got.Spec.Containers[0].Resources.Requests.Cpu().MilliValue() != 100 {
		t.Errorf("allocation after restart = %v (differs %v), want 100m", got.Spec.Containers[0].Resources, differs)
	}
	if _, ok := m.Actuated("a", "c"); !ok {
		t.Errorf("actuated resources lost")
	}
	m.RemoveOrphans(func(types.UID) bool { return false })
	if m.HasAllocation("a") {
		t.Errorf("orphan kept")
	}

	// A corrupt checkpoint is refused, not taken for empty.
	if err := os.WriteFile(filepath.Join(dir, AllocatedFile), []byte(`{"data":"{}","checksum":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir, nil); err == nil {
		t.Errorf("corrupt checkpoint accepted")
	}
}

func TestResizeConditions(t *testing.T) {
	clk := testclock.NewFakeClock(time.Unix(1000, 0))
	m, _ := New("", clk)
	if !m.SetPending("a", "OutOfcpu", "no room", 2) {
		t.Fatal("new condition not reported as a change")
	}
	c := m.Conditions("a")
	if len(c) != 1 || c[0].Type != v1.PodResizePending || c[0].Reason != v1.PodReasonDeferred || c[0].ObservedGeneration != 2 {
		t.Fatalf("conditions %+v, want PodResizePending Deferred gen 2", c)
	}
	clk.Step(time.Minute)
	if m.SetPending("a", "OutOfmemory", "no room", 2) {
		t.Error("same reason and generation reported as a change")
	}
	if got := m.Conditions("a")[0].LastTransitionTime; !got.Equal(&metav1.Time{Time: time.Unix(1000, 0)}) {
		t.Errorf("transition time moved to %v", got)
	}
	if !m.SetPending("a", v1.PodReasonInfeasible, "never", 2) {
		t.Error("reason change not reported")
	}

	// InProgress keeps its generation until cleared.
	m.SetInProgress("a", "", "", 3)
	if gen, _ := m.SetInProgress("a", "", "", 4); gen != 3 {
		t.Errorf("generation %d, want 3 (kept)", gen)
	}
	if _, changed := m.SetInProgress("a", v1.PodReasonError, "boom", 4); !changed {
		t.Error("error not reported as a change")
	}
	if gen, ok := m.ClearInProgress("a"); !ok || gen != 3 {
		t.Errorf("cleared gen %d %v, want 3 true", gen, ok)
	}
	m.ClearPending("a")
	if c := m.Conditions("a"); len(c) != 0 {
		t.Errorf("conditions left: %+v", c)
	}
}

func TestSortPending(t *testing.T) {
	decrease := pod("decrease", "100m", 0)
	low := pod("low", "1", 0)
	high := pod("high", "1", 100)
	older := pod("older", "1", 0)
	pods := []*v1.Pod{low, high, older, decrease}
	since := map[types.UID]int64{"low": 20, "older": 10}
	SortPending(pods, func(p *v1.Pod) bool { return p != decrease }, func(p *v1.Pod) (int64, bool) {
		t, ok := since[p.UID]
		return t, ok
	})
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := []string{"decrease", "high", "older", "low"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestFromAllocation(t *testing.T) {
	p := pod("a", "200m", 0)
	info := ResourceInfoForPod(pod("a", "100m", 0))
	got, differs := FromAllocation(p, info)
	if !differs || got.Spec.Containers[0].Resources.Requests.Cpu().MilliValue() != 100 {
		t.Errorf("got %v differs %v", got.Spec.Containers[0].Resources, differs)
	}
	if p.Spec.Containers[0].Resources.Requests.Cpu().MilliValue() != 200 {
		t.Errorf("input modified")
	}
	if same, differs := FromAllocation(got, info); differs || same != got {
		t.Errorf("equal resources reported as different")
	}
}

// Records made on the pod path are written by Run, not by the caller: at
// the latest when Run's context ends.
func TestRunWritesInTheBackground(t *testing.T) {
	dir := t.TempDir()
	m, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	m.Allocate(pod("a", "100m", 0))
	if err := m.SetActuated("a", "c", pod("a", "100m", 0).Spec.Containers[0].Resources); err != nil {
		t.Fatal(err)
	}
	m.Allocate(pod("b", "200m", 0))
	m.RemovePod("b")
	cancel()
	<-done

	m, err = New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasAllocation("a") {
		t.Errorf("allocation of a not written")
	}
	if m.HasAllocation("b") {
		t.Errorf("removed pod b still checkpointed")
	}
	if _, ok := m.Actuated("a", "c"); !ok {
		t.Errorf("actuated resources of a not written")
	}
}
