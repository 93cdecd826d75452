package apiserver

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/berth-dev/berth/internal/source"
)

const (
	nodeName = "node-a"
	// waitTimeout bounds every wait.
	waitTimeout = 10 * time.Second
)

var (
	seenTime = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	podsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

func pod(name, node string, mod ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec:       v1.PodSpec{NodeName: node, Containers: []v1.Container{{Name: "c", Image: "busybox:1"}}},
	}
	for _, m := range mod {
		m(p)
	}
	return p
}

func mirror(p *v1.Pod) {
	p.Annotations = map[string]string{source.AnnotationConfigMirror: "hash", source.AnnotationConfigHash: "hash"}
}

type harness struct {
	t       *testing.T
	ctx     context.Context
	client  *fake.Clientset
	src     *Source
	out     chan []*v1.Pod
	mirrors chan struct{} // one value per OnMirrorChange call
}

// newHarness starts a Source on a fake API holding objs. setup, if given,
// may install reactors before the Source starts.
func newHarness(t *testing.T, setup func(*fake.Clientset), objs ...k8sruntime.Object) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		client:  fake.NewClientset(objs...),
		out:     make(chan []*v1.Pod),
		mirrors: make(chan struct{}, 1000),
	}
	if setup != nil {
		setup(h.client)
	}
	h.src = New(Options{
		Logger:         ktesting.NewLogger(t, ktesting.NewConfig()),
		Client:         h.client,
		NodeName:       nodeName,
		OnMirrorChange: func() { h.mirrors <- struct{}{} },
		Now:            func() time.Time { return seenTime },
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx = ctx
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.src.Run(ctx, h.out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

// next returns the next snapshot.
func (h *harness) next() []*v1.Pod {
	h.t.Helper()
	select {
	case pods := <-h.out:
		return pods
	case <-time.After(waitTimeout):
		h.t.Fatal("no snapshot")
		return nil
	}
}

// expect receives the next snapshot and checks the names in it.
func (h *harness) expect(names ...string) []*v1.Pod {
	h.t.Helper()
	pods := h.next()
	if got := podNames(pods); !slices.Equal(got, names) {
		h.t.Fatalf("snapshot = %v, want %v", got, names)
	}
	return pods
}

func (h *harness) waitMirrorCall() {
	h.t.Helper()
	select {
	case <-h.mirrors:
	case <-time.After(waitTimeout):
		h.t.Fatal("OnMirrorChange not called")
	}
}

// drainMirrorCalls forgets the calls so far.
func (h *harness) drainMirrorCalls() {
	for {
		select {
		case <-h.mirrors:
		default:
			return
		}
	}
}

// waitFor polls cond, which reads the informer's store: the one thing the
// store offers no event for.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.ctx, time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (h *harness) create(p *v1.Pod) {
	h.t.Helper()
	if _, err := h.client.CoreV1().Pods(p.Namespace).Create(h.ctx, p, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) update(p *v1.Pod) {
	h.t.Helper()
	if _, err := h.client.CoreV1().Pods(p.Namespace).Update(h.ctx, p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) delete(name string) {
	h.t.Helper()
	if err := h.client.CoreV1().Pods("default").Delete(h.ctx, name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func podNames(pods []*v1.Pod) []string {
	names := []string{}
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

func TestFirstSnapshotAfterSync(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil,
		pod("b", nodeName), pod("a", nodeName),
		pod("m", nodeName, mirror),
		pod("elsewhere", "node-b"),
		pod("unscheduled", ""),
	)
	// The whole initial list, sorted, without the mirror pod and the pods
	// of other nodes (which the fake API does not filter out).
	pods := h.expect("a", "b")
	for _, p := range pods {
		if got := p.Annotations[source.AnnotationConfigSeen]; got != seenTime.Format(source.SeenTimeLayout) {
			t.Errorf("pod %s seen = %q", p.Name, got)
		}
		if api, ok := h.src.Pod(p.Namespace, p.Name); !ok {
			t.Errorf("Pod(%s) not found", p.Name)
		} else if _, ok := api.Annotations[source.AnnotationConfigSeen]; ok {
			t.Errorf("the informer's copy of %s was stamped", p.Name)
		}
	}

	// The API was asked for this node's pods only.
	var selectors []string
	for _, a := range h.client.Actions() {
		if l, ok := a.(k8stesting.ListActionImpl); ok && a.GetResource() == podsGVR {
			selectors = append(selectors, l.GetListRestrictions().Fields.String())
		}
	}
	if !slices.Equal(selectors, []string{"spec.nodeName=" + nodeName}) {
		t.Errorf("pod lists with field selectors %q, want one with spec.nodeName=%s", selectors, nodeName)
	}

	if got := podNames(h.src.MirrorPods()); !slices.Equal(got, []string{"m"}) {
		t.Errorf("MirrorPods = %v, want [m]", got)
	}
	if _, ok := h.src.Pod("default", "m"); !ok {
		t.Error("Pod does not return the mirror pod")
	}
	if _, ok := h.src.Pod("default", "elsewhere"); ok {
		t.Error("Pod returns a pod of another node")
	}
}

func TestEmptyFirstSnapshot(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	if pods := h.next(); pods == nil || len(pods) != 0 {
		t.Errorf("first snapshot = %v, want an empty one", pods)
	}
}

func TestAddUpdateDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, pod("a", nodeName))
	first := h.expect("a")

	h.create(pod("b", nodeName))
	second := h.expect("a", "b")
	if second[0] != first[0] {
		t.Error("unchanged pod a is a new object")
	}

	changed := pod("a", nodeName, func(p *v1.Pod) { p.Labels = map[string]string{"v": "2"} })
	h.update(changed)
	pods := h.expect("a", "b")
	if pods[0].Labels["v"] != "2" {
		t.Errorf("pod a labels = %v, want the update", pods[0].Labels)
	}
	if got := pods[0].Annotations[source.AnnotationConfigSeen]; got != seenTime.Format(source.SeenTimeLayout) {
		t.Errorf("updated pod lost its first-seen time: %q", got)
	}

	// A status-only update sends nothing, but Pod shows it.
	status := changed.DeepCopy()
	status.Status.Phase = v1.PodRunning
	if _, err := h.client.CoreV1().Pods("default").UpdateStatus(h.ctx, status, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the status update", func() bool {
		p, ok := h.src.Pod("default", "a")
		return ok && p.Status.Phase == v1.PodRunning
	})

	// A pod being deleted is still sent, with its deletion timestamp.
	deleting := changed.DeepCopy()
	now := metav1.NewTime(seenTime)
	deleting.DeletionTimestamp = &now
	h.update(deleting)
	pods = h.expect("a", "b")
	if pods[0].DeletionTimestamp == nil {
		t.Error("deletion timestamp not sent")
	}

	h.delete("b")
	h.expect("a")
	h.delete("a")
	if pods := h.next(); len(pods) != 0 {
		t.Errorf("snapshot = %v, want empty", podNames(pods))
	}
}

func TestMirrorPods(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, pod("a", nodeName), pod("m1", nodeName, mirror))
	h.expect("a")
	h.waitMirrorCall() // m1 in the initial list
	h.drainMirrorCalls()

	h.create(pod("m2", nodeName, mirror))
	h.waitMirrorCall()
	if got := podNames(h.src.MirrorPods()); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Errorf("MirrorPods = %v, want [m1 m2]", got)
	}

	h.delete("m1")
	h.waitMirrorCall()
	if got := podNames(h.src.MirrorPods()); !slices.Equal(got, []string{"m2"}) {
		t.Errorf("MirrorPods = %v, want [m2]", got)
	}

	// A status update of a mirror pod is no change; a new label is.
	h.drainMirrorCalls()
	m2, err := h.client.CoreV1().Pods("default").Get(h.ctx, "m2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2.Status.Phase = v1.PodRunning
	if m2, err = h.client.CoreV1().Pods("default").UpdateStatus(h.ctx, m2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	m2.Labels = map[string]string{"new": "label"}
	h.update(m2)

	// Mirror pods sent no snapshot: the next one is for this change. The
	// informer calls handlers in event order, so once it is here every
	// earlier event has been handled.
	h.create(pod("b", nodeName))
	h.expect("a", "b")
	if calls := len(h.mirrors); calls != 1 {
		t.Errorf("OnMirrorChange called %d times for a status update and a label change, want 1", calls)
	}
}

func TestBurstIsBatched(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.expect()

	// The tracker is used directly: the fake client's create is slow
	// (milliseconds, for field management), an API server's stream of
	// events is not.
	start := time.Now()
	if err := h.client.Tracker().Add(pod("single", nodeName)); err != nil {
		t.Fatal(err)
	}
	h.expect("single")
	latency := time.Since(start)
	t.Logf("one pod sent %v after its creation", latency)
	if latency > time.Second {
		t.Errorf("one pod took %v", latency)
	}

	// Receive while the pods come, so that batching is the debounce's
	// doing and not a slow receiver's.
	const n = 100
	sizes := make(chan []int, 1)
	go func() {
		var got []int
		for {
			pods := h.next()
			got = append(got, len(pods))
			if len(pods) == n+1 {
				sizes <- got
				return
			}
		}
	}()
	for i := range n {
		name := fmt.Sprintf("p%03d", i)
		if err := h.client.Tracker().Add(pod(name, nodeName)); err != nil {
			t.Fatal(err)
		}
		// One event at a time, as a watch stream delivers them: the
		// informer has stored each pod before the next comes.
		deadline := time.Now().Add(waitTimeout)
		for _, ok := h.src.Pod("default", name); !ok; _, ok = h.src.Pod("default", name) {
			if time.Now().After(deadline) {
				t.Fatalf("pod %s never reached the informer", name)
			}
			runtime.Gosched()
		}
	}
	got := <-sizes
	t.Logf("%d pods created at once came in snapshots of %v pods", n, got)
	// A few snapshots at most, not one per pod (the bound leaves room for
	// a slow machine).
	if len(got) > n/10 {
		t.Errorf("%d pods came in %d snapshots", n, len(got))
	}
}

// A snapshot that waits for a slow receiver is replaced by a newer one.
func TestSlowReceiverGetsLatest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.expect()
	h.create(pod("a", nodeName))
	h.create(pod("b", nodeName))
	// Handlers run in event order: once the mirror pod is announced, the
	// source knows of b, whatever snapshot it was holding for us.
	h.create(pod("m", nodeName, mirror))
	h.waitMirrorCall()
	h.expect("a", "b")
}

// An API outage sends no snapshot; pods deleted meanwhile go when the API
// answers again.
func TestOutageKeepsPods(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	failedLists := make(chan struct{}, 100)
	watches := make(chan *watch.RaceFreeFakeWatcher, 100)
	h := newHarness(t, func(c *fake.Clientset) {
		c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
			if down.Load() {
				failedLists <- struct{}{}
				return true, nil, errors.New("connection reset by peer")
			}
			return false, nil, nil
		})
		c.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
			if down.Load() {
				return true, nil, errors.New("connection reset by peer")
			}
			w, err := c.Tracker().Watch(podsGVR, a.GetNamespace(), a.(k8stesting.WatchActionImpl).ListOptions)
			if err != nil {
				return true, nil, err
			}
			rw := w.(*watch.RaceFreeFakeWatcher)
			watches <- rw
			return true, rw, nil
		})
	}, pod("a", nodeName), pod("b", nodeName))
	h.expect("a", "b")

	// The server goes away; the watch ends as expired, so the informer
	// must list again, and cannot.
	down.Store(true)
	var w *watch.RaceFreeFakeWatcher
	select {
	case w = <-watches:
	case <-time.After(waitTimeout):
		t.Fatal("no watch")
	}
	w.Error(&apierrors.NewResourceExpired("too old resource version").ErrStatus)
	select {
	case <-failedLists:
	case <-time.After(waitTimeout):
		t.Fatal("the informer did not list again")
	}
	select {
	case pods := <-h.out:
		t.Fatalf("snapshot %v sent during the outage", podNames(pods))
	default:
	}
	if _, ok := h.src.Pod("default", "a"); !ok {
		t.Error("pod a forgotten during the outage")
	}

	// Meanwhile a is deleted; the relist after the outage says so.
	if err := h.client.Tracker().Delete(podsGVR, "default", "a"); err != nil {
		t.Fatal(err)
	}
	down.Store(false)
	h.expect("b")
}
