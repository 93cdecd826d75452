package podworker

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/source"
)

func pod(uid string, mutate ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p-" + uid, Namespace: "default", UID: types.UID(uid)},
		Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyAlways, Containers: []v1.Container{{Name: "app", Image: "busybox:1"}}}}
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

func cpu(milli int64) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: *resource.NewMilliQuantity(milli, resource.DecimalSI)}
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name             string
		op               source.Op
		pod              *v1.Pod
		admitted, parked bool
		want             verdict
	}{
		{"new pod goes to admission", source.Add, pod("a"), false, false, admit},
		{"admitted pod updated", source.Update, pod("a"), true, false, update},
		{"removed pod", source.Remove, pod("a"), true, false, remove},
		{"removed parked pod", source.Remove, pod("a"), false, true, remove},
		{"deletion requested", source.Update, pod("a", deleting(7)), true, false, terminate},
		{"deleted while berth was down: terminated, not admitted", source.Add, pod("a", deleting(30)), false, false, terminate},
		{"terminal when first seen", source.Add, pod("a", phase(v1.PodSucceeded)), false, false, parkTerminal},
		{"admitted pod whose API phase turned terminal keeps its worker", source.Update, pod("a", phase(v1.PodFailed)), true, false, update},
		{"parked pod changed", source.Update, pod("a"), false, true, ignore},
		{"parked pod deleted", source.Update, pod("a", deleting(30)), false, true, deleteParked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.op, tt.pod, tt.admitted, tt.parked); got != tt.want {
				t.Fatalf("decide = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRemovalGrace(t *testing.T) {
	if g := removalGrace(pod("a", static)); g != nil {
		t.Errorf("static pod removed: grace %d, want its spec's (nil)", *g)
	}
	if g := removalGrace(pod("a")); g == nil || *g != 0 {
		t.Errorf("API pod gone without a graceful deletion: grace %v, want 0", g)
	}
	if g := removalGrace(pod("a", deleting(7))); g == nil || *g != 7 {
		t.Errorf("API pod gone after a graceful deletion: grace %v, want 7", g)
	}
}

// cpuAdmitter admits pods while the CPU they request, with the active
// pods', fits in capacity millicores; it records the active pods it saw.
type cpuAdmitter struct {
	capacity int64
	seen     [][]types.UID
}

func (a *cpuAdmitter) Admit(p *v1.Pod, active []*v1.Pod) admission.Result {
	var used int64
	var uids []types.UID
	for _, q := range append(active, p) {
		used += q.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()
		if q != p {
			uids = append(uids, q.UID)
		}
	}
	a.seen = append(a.seen, uids)
	if used > a.capacity {
		return admission.Result{Reason: "OutOfcpu", Message: "Node didn't have enough resource: cpu"}
	}
	return admission.Result{Admit: true}
}

// A pod in graceful termination holds its resources until its containers
// are gone: a pod that only fits without it is rejected (upstream's
// filterOutInactivePods keeps terminating pods), and /pods lists it.
func TestTerminatingPodHoldsResourcesAndIsListed(t *testing.T) {
	adm := &cpuAdmitter{capacity: 1000}
	rec := record.NewFakeRecorder(10)
	h := start(t, func(o *Options) { o.Admitter, o.Recorder = adm, rec })
	logger := klog.Background()

	h.w.setSource(logger, source.SourceAPI, []*v1.Pod{pod("old", cpu(800))})
	h.rt.waitFor(t, "SyncPod")
	// Hold the runtime: the kill cannot finish, the pod stays terminating.
	h.rt.mu.Lock()
	h.w.setSource(logger, source.SourceAPI, []*v1.Pod{pod("old", cpu(800), deleting(30))})
	h.w.setSource(logger, source.SourceAPI, []*v1.Pod{pod("old", cpu(800), deleting(30)), pod("new", cpu(500))})
	if reason, ok := h.w.pods.Terminating("old"); !ok || reason != reasonDeleted {
		t.Errorf("old pod: terminating=%v reason=%q, want terminating because deleted", ok, reason)
	}
	listed := h.w.pods.Pods()
	h.rt.mu.Unlock()

	st, ok := h.store.Get("new")
	if !ok || st.Phase != v1.PodFailed || st.Reason != "OutOfcpu" {
		t.Fatalf("new pod status %+v, want Failed/OutOfcpu while the old pod terminates", st)
	}
	if got := adm.seen[len(adm.seen)-1]; len(got) != 1 || got[0] != "old" {
		t.Errorf("admission saw active pods %v, want [old]", got)
	}
	if ev := <-rec.Events; ev != "Warning OutOfcpu Node didn't have enough resource: cpu" {
		t.Errorf("event %q", ev)
	}
	var names []types.UID
	for _, p := range listed {
		names = append(names, p.UID)
	}
	if len(names) != 2 || names[0] != "new" || names[1] != "old" {
		t.Errorf("/pods listed %v while old terminates, want [new old]", names)
	}

	// Once the old pod is gone its resources are free for the next pod.
	if uid := <-h.terminated; uid != "old" {
		t.Fatalf("terminated %q", uid)
	}
	if active := h.w.pods.ActivePods(); len(active) != 0 {
		t.Fatalf("active pods after termination: %d, want 0", len(active))
	}
	h.w.setSource(logger, source.SourceAPI, []*v1.Pod{pod("old", cpu(800), deleting(30)), pod("new", cpu(500)), pod("third", cpu(900))})
	h.rt.waitFor(t, "SyncPod")
	if !h.w.pods.Admitted("third") {
		t.Fatal("a pod that fits once the terminating pod is gone was not admitted")
	}
	// The rejected pod stays parked: it is not admitted when it fits later.
	h.w.setSource(logger, source.SourceAPI, []*v1.Pod{pod("new", cpu(500), func(p *v1.Pod) { p.Labels = map[string]string{"x": "y"} })})
	if h.w.pods.Admitted("new") {
		t.Fatal("a rejected pod was admitted on a later update")
	}
}

// A pod removed from its source while terminating (static manifest
// removed) is still listed and still holds its resources until it is gone.
func TestRemovedPodIsListedUntilGone(t *testing.T) {
	h := start(t)
	logger := klog.Background()
	h.w.setSource(logger, source.SourceFile, []*v1.Pod{pod("a", static)})
	h.rt.waitFor(t, "SyncPod")
	h.rt.mu.Lock()
	h.w.setSource(logger, source.SourceFile, nil)
	pods, active := h.w.pods.Pods(), h.w.pods.ActivePods()
	h.rt.mu.Unlock()
	if len(pods) != 1 || pods[0].UID != "a" || len(active) != 1 {
		t.Fatalf("while terminating: /pods %d pods, active %d; want the removed pod in both", len(pods), len(active))
	}
	<-h.terminated
	if pods := h.w.pods.Pods(); len(pods) != 0 {
		t.Fatalf("/pods lists %d pods after termination", len(pods))
	}
	if _, parked := h.w.pods.parked["a"]; parked {
		t.Fatal("a pod no source wants was parked")
	}
}

func TestParkedPods(t *testing.T) {
	logger := klog.Background()
	t.Run("terminal when first seen is not started", func(t *testing.T) {
		h := start(t)
		h.w.setSource(logger, source.SourceAPI, []*v1.Pod{pod("a", phase(v1.PodSucceeded))})
		h.w.setSource(logger, source.SourceAPI, []*v1.Pod{pod("a", phase(v1.PodSucceeded), static)})
		if h.w.pods.Admitted("a") || !h.w.pods.isParked("a") {
			t.Fatal("a pod finished before berth saw it got a worker")
		}
		if pods := h.w.pods.Pods(); len(pods) != 1 {
			t.Fatalf("/pods lists %d pods, want the parked one", len(pods))
		}
	})
	t.Run("rejected pod deleted leaves the API at once, removed forgets its status", func(t *testing.T) {
		var l recordingListener
		h := start(t, func(o *Options) { o.Admitter, o.Listener = &cpuAdmitter{capacity: 0}, &l })
		h.w.setSource(logger, source.SourceAPI, []*v1.Pod{pod("a", cpu(1))})
		h.w.setSource(logger, source.SourceAPI, []*v1.Pod{pod("a", cpu(1), deleting(30))})
		if len(l.terminated) != 1 || l.terminated[0] != "a" {
			t.Fatalf("terminated %v, want [a] (the parked pod can be deleted)", l.terminated)
		}
		if _, ok := h.store.Get("a"); !ok {
			t.Fatal("rejected pod has no status")
		}
		h.w.setSource(logger, source.SourceAPI, nil)
		if _, ok := h.store.Get("a"); ok {
			t.Fatal("status of a rejected pod kept after it left its source")
		}
		if h.w.pods.isParked("a") {
			t.Fatal("still parked after it left its source")
		}
	})
}

type recordingListener struct {
	terminations
	terminated []types.UID
}

func (l *recordingListener) PodTerminated(uid types.UID, _ *v1.Pod) {
	l.terminated = append(l.terminated, uid)
}

// A changed static manifest gives a new UID under the same name: the new
// pod waits until the old one has terminated, as upstream's pod workers
// run one static pod per name.
func TestStaticPodWaitsForItsName(t *testing.T) {
	h := start(t)
	logger := klog.Background()
	named := func(p *v1.Pod) { p.Name = "web-node" }
	h.w.setSource(logger, source.SourceFile, []*v1.Pod{pod("v1", static, named)})
	h.rt.waitFor(t, "SyncPod")

	h.rt.mu.Lock() // the old pod cannot finish terminating
	h.w.setSource(logger, source.SourceFile, []*v1.Pod{pod("v2", static, named)})
	waiting, admitted := h.w.pods.isParked("v2"), h.w.pods.Admitted("v2")
	h.rt.mu.Unlock()
	if !waiting || admitted {
		t.Fatalf("new static pod: parked=%v admitted=%v while the old one terminates; want it waiting", waiting, admitted)
	}
	if uid := <-h.terminated; uid != "v1" {
		t.Fatalf("terminated %q", uid)
	}
	h.rt.waitFor(t, "SyncPod")
	if !h.w.pods.Admitted("v2") || h.w.pods.isParked("v2") {
		t.Fatal("the new static pod did not start once the old one was gone")
	}
}
