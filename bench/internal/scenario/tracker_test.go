package scenario

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

func pod(uid string, phase v1.PodPhase, ready bool, terminated bool) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: types.UID(uid)}, Status: v1.PodStatus{Phase: phase}}
	if ready {
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}}
	}
	if terminated {
		p.Status.ContainerStatuses = []v1.ContainerStatus{{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{}}}}
	}
	return p
}

func TestTrackerRecordsFirstTimes(t *testing.T) {
	tr := NewTracker()
	t0 := time.Unix(100, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tr.observe(watch.Added, pod("u1", v1.PodPending, false, false), at(0))
	tr.observe(watch.Modified, pod("u1", v1.PodRunning, false, false), at(1))
	tr.observe(watch.Modified, pod("u1", v1.PodRunning, true, false), at(2))
	tr.observe(watch.Modified, pod("u1", v1.PodRunning, true, false), at(3)) // no new stage
	tr.observe(watch.Modified, pod("u1", v1.PodSucceeded, false, true), at(4))
	tr.observe(watch.Deleted, pod("u1", v1.PodSucceeded, false, true), at(5))
	got, ok := tr.Get("p")
	if !ok {
		t.Fatal("pod not tracked")
	}
	want := PodTimes{UID: "u1", Added: at(0), Running: at(1), Ready: at(2), Terminated: at(4), Deleted: at(5)}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// A new pod of the same name starts afresh.
	tr.observe(watch.Added, pod("u2", v1.PodPending, false, false), at(6))
	if got, _ := tr.Get("p"); got.UID != "u2" || got.Added != at(6) || !got.Running.IsZero() {
		t.Fatalf("recreated pod: %+v", got)
	}
}

func TestTrackerWait(t *testing.T) {
	tr := NewTracker()
	done := make(chan PodTimes)
	go func() {
		p, err := tr.Wait(context.Background(), "p", IsRunning)
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	tr.observe(watch.Added, pod("u1", v1.PodPending, false, false), time.Unix(1, 0))
	tr.observe(watch.Modified, pod("u1", v1.PodRunning, false, false), time.Unix(2, 0))
	if p := <-done; p.Running != time.Unix(2, 0) {
		t.Fatalf("Wait returned %+v", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Wait(ctx, "p", IsDeleted); err == nil {
		t.Fatal("Wait on a cancelled context returned no error")
	}
}
