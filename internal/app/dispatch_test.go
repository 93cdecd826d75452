package app

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/source"
)

type fakeWorkers struct {
	known map[types.UID]bool
	calls []string
}

func (f *fakeWorkers) Update(pod *v1.Pod) {
	f.known[pod.UID] = true
	f.calls = append(f.calls, "update "+string(pod.UID))
}
func (f *fakeWorkers) Kill(uid types.UID, grace *int64) {
	g := "nil"
	if grace != nil {
		g = fmt.Sprint(*grace)
	}
	f.calls = append(f.calls, "kill "+string(uid)+" grace="+g)
}
func (f *fakeWorkers) Terminate(pod *v1.Pod, grace *int64) {
	g := "nil"
	if grace != nil {
		g = fmt.Sprint(*grace)
	}
	f.calls = append(f.calls, "terminate "+string(pod.UID)+" grace="+g)
}
func (f *fakeWorkers) Known(uid types.UID) bool { return f.known[uid] }
func (f *fakeWorkers) Pods() []*v1.Pod          { return nil }

type fakeStatuses map[types.UID]v1.PodStatus

func (f fakeStatuses) Set(uid types.UID, st v1.PodStatus) bool { f[uid] = st; return true }
func (f fakeStatuses) Delete(uid types.UID)                    { delete(f, uid) }

func pod(uid string, mutate ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p-" + uid, Namespace: "default", UID: types.UID(uid)}}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func deleting(grace int64) func(*v1.Pod) {
	return func(p *v1.Pod) {
		now := metav1.Now()
		p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, &grace
	}
}

func static(p *v1.Pod) {
	p.Annotations = map[string]string{source.AnnotationConfigSource: source.SourceFile}
}

func phase(ph v1.PodPhase) func(*v1.Pod) { return func(p *v1.Pod) { p.Status.Phase = ph } }

func TestDispatcher(t *testing.T) {
	rejectAll := func(*v1.Pod, []*v1.Pod) admission.Result {
		return admission.Result{Reason: "OutOfcpu", Message: "Node didn't have enough resource: cpu"}
	}
	tests := []struct {
		name        string
		known       []types.UID
		admit       func(*v1.Pod, []*v1.Pod) admission.Result
		changes     []source.Change
		wantCalls   []string
		wantDeleted []string
		wantStatus  map[types.UID]v1.PodPhase
	}{
		{name: "new pod starts",
			changes:   []source.Change{{Op: source.Add, Pod: pod("a")}},
			wantCalls: []string{"update a"}},
		{name: "known pod updated",
			known:     []types.UID{"a"},
			changes:   []source.Change{{Op: source.Update, Pod: pod("a")}},
			wantCalls: []string{"update a"}},
		{name: "removed static pod killed with its own grace",
			known:     []types.UID{"a"},
			changes:   []source.Change{{Op: source.Remove, Pod: pod("a", static)}},
			wantCalls: []string{"kill a grace=nil"}},
		{name: "pod gone from the API at once (grace 0 or forced) is killed at once",
			known:     []types.UID{"a"},
			changes:   []source.Change{{Op: source.Remove, Pod: pod("a")}},
			wantCalls: []string{"kill a grace=0"}},
		{name: "deletion timestamp terminates with the deletion grace",
			known:     []types.UID{"a"},
			changes:   []source.Change{{Op: source.Update, Pod: pod("a", deleting(7))}},
			wantCalls: []string{"terminate a grace=7"}},
		{name: "a pod deleted while berth was down is terminated before it leaves the API",
			changes:   []source.Change{{Op: source.Add, Pod: pod("a", deleting(30))}},
			wantCalls: []string{"terminate a grace=30"}},
		{name: "terminal pod seen first is not started",
			changes: []source.Change{{Op: source.Add, Pod: pod("a", phase(v1.PodSucceeded))}, {Op: source.Update, Pod: pod("a", phase(v1.PodSucceeded))}}},
		{name: "rejected pod fails and stays parked",
			admit:      rejectAll,
			changes:    []source.Change{{Op: source.Add, Pod: pod("a")}, {Op: source.Update, Pod: pod("a")}},
			wantStatus: map[types.UID]v1.PodPhase{"a": v1.PodFailed}},
		{name: "rejected pod deleted is removed from the API",
			admit:       rejectAll,
			changes:     []source.Change{{Op: source.Add, Pod: pod("a")}, {Op: source.Update, Pod: pod("a", deleting(30))}},
			wantDeleted: []string{"a"},
			wantStatus:  map[types.UID]v1.PodPhase{"a": v1.PodFailed}},
		{name: "rejected pod gone from the source forgets its status",
			admit:     rejectAll,
			changes:   []source.Change{{Op: source.Add, Pod: pod("a")}, {Op: source.Remove, Pod: pod("a")}},
			wantCalls: []string{"kill a grace=0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWorkers{known: map[types.UID]bool{}}
			for _, uid := range tt.known {
				w.known[uid] = true
			}
			statuses := fakeStatuses{}
			var deleted []string
			d := &dispatcher{
				workers: w, statuses: statuses, recorder: record.NewFakeRecorder(10), admit: tt.admit,
				deletedWithoutWorker: func(p *v1.Pod) { deleted = append(deleted, string(p.UID)) },
				now:                  time.Now,
			}
			d.apply(klog.Background(), tt.changes)
			if !reflect.DeepEqual(w.calls, tt.wantCalls) {
				t.Errorf("worker calls %v, want %v", w.calls, tt.wantCalls)
			}
			if !reflect.DeepEqual(deleted, tt.wantDeleted) {
				t.Errorf("deleted %v, want %v", deleted, tt.wantDeleted)
			}
			got := map[types.UID]v1.PodPhase{}
			for uid, st := range statuses {
				got[uid] = st.Phase
			}
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tt.wantStatus) {
				t.Errorf("statuses %v, want %v", got, tt.wantStatus)
			}
		})
	}
}
