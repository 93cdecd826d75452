package apistatus

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

var pending = v1.PodStatus{Phase: v1.PodPending}

func TestPatchOnChange(t *testing.T) {
	pod := apiPod("web", "uid-1", pending)
	e := newEnv(t, []runtime.Object{pod})
	e.desired.set(pod)
	e.store.Set(pod.UID, running(t0))

	if err := e.sync(pod.UID); err != nil {
		t.Fatal(err)
	}
	w := e.writes()
	if len(w) != 1 {
		t.Fatalf("writes = %+v, want one patch", w)
	}
	c := w[0]
	if c.verb != "patch" || c.subresource != "status" || c.patchType != types.StrategicMergePatchType || c.patchUID != "uid-1" {
		t.Errorf("write = %s %s/%s type %s uid %q; want a strategic-merge patch of status with metadata.uid uid-1",
			c.verb, c.name, c.subresource, c.patchType, c.patchUID)
	}
	got, _ := e.serverPod("default", "web")
	if !apiequality.Semantic.DeepEqual(got.Status, running(t0)) {
		t.Errorf("API status = %+v, want the store's", got.Status)
	}

	// Nothing changed since: nothing is sent.
	if err := e.sync(pod.UID); err != nil {
		t.Fatal(err)
	}
	if n := len(e.writes()); n != 1 {
		t.Errorf("%d writes after a sync with nothing new, want 1", n)
	}
}

func TestNoPatchWhenEqual(t *testing.T) {
	// The API holds the same status with an extra condition another
	// component owns and older transition times: nothing to send.
	apiStatus := withConds(running(t0), v1.PodCondition{Type: "example.com/lb", Status: v1.ConditionTrue})
	pod := apiPod("web", "uid-1", apiStatus)
	e := newEnv(t, []runtime.Object{pod})
	e.desired.set(pod)
	ours := running(t0)
	for i := range ours.Conditions {
		ours.Conditions[i].LastTransitionTime = t1
	}
	e.store.Set(pod.UID, ours)

	if err := e.sync(pod.UID); err != nil {
		t.Fatal(err)
	}
	if w := e.writes(); len(w) != 0 {
		t.Errorf("writes = %+v, want none", w)
	}
}

func TestRecreatedPodIsNeverPatched(t *testing.T) {
	old := apiPod("web", "uid-old", pending)
	recreated := apiPod("web", "uid-new", pending)

	t.Run("cache shows the new pod", func(t *testing.T) {
		e := newEnv(t, []runtime.Object{recreated})
		e.desired.set(old)
		e.store.Set(old.UID, running(t0))
		if err := e.sync(old.UID); err != nil {
			t.Fatal(err)
		}
		if w := e.writes(); len(w) != 0 {
			t.Errorf("writes = %+v, want none", w)
		}
	})
	t.Run("cache still shows the old pod", func(t *testing.T) {
		e := newEnv(t, []runtime.Object{recreated})
		e.api.pin("default", "web", old)
		e.desired.set(old)
		e.store.Set(old.UID, running(t0))
		err := e.sync(old.UID)
		if !apierrors.IsConflict(err) {
			t.Fatalf("sync = %v, want a conflict (the UID precondition)", err)
		}
		if w := e.writes(); len(w) != 1 || w[0].patchUID != "uid-old" {
			t.Errorf("writes = %+v, want one patch with metadata.uid uid-old", w)
		}
		got, _ := e.serverPod("default", "web")
		if got.Status.Phase != v1.PodPending {
			t.Errorf("recreated pod's phase = %s, want it untouched", got.Status.Phase)
		}
	})
}

func TestStaticPodStatusGoesToMirror(t *testing.T) {
	static := staticPod("etcd-node-a", "hash-2")

	t.Run("no mirror yet: wait quietly", func(t *testing.T) {
		e := newEnv(t, nil)
		e.desired.set(static)
		e.store.Set(static.UID, running(t0))
		if err := e.sync(static.UID); !errors.Is(err, errWait) {
			t.Fatalf("sync = %v, want errWait", err)
		}
		if w := e.writes(); len(w) != 0 {
			t.Errorf("writes = %+v, want none", w)
		}
	})
	t.Run("mirror of an older manifest: wait", func(t *testing.T) {
		e := newEnv(t, []runtime.Object{mirrorPod("etcd-node-a", "mirror-uid", "hash-1")})
		e.desired.set(static)
		e.store.Set(static.UID, running(t0))
		if err := e.sync(static.UID); !errors.Is(err, errWait) {
			t.Fatalf("sync = %v, want errWait", err)
		}
		if w := e.writes(); len(w) != 0 {
			t.Errorf("writes = %+v, want none", w)
		}
	})
	t.Run("current mirror: patched with its UID", func(t *testing.T) {
		e := newEnv(t, []runtime.Object{mirrorPod("etcd-node-a", "mirror-uid", "hash-2")})
		e.desired.set(static)
		e.store.Set(static.UID, running(t0))
		if err := e.sync(static.UID); err != nil {
			t.Fatal(err)
		}
		w := e.writes()
		if len(w) != 1 || w[0].name != "etcd-node-a" || w[0].patchUID != "mirror-uid" {
			t.Fatalf("writes = %+v, want one patch of etcd-node-a with metadata.uid mirror-uid", w)
		}
		got, _ := e.serverPod("kube-system", "etcd-node-a")
		if got.Status.Phase != v1.PodRunning {
			t.Errorf("mirror phase = %s, want Running", got.Status.Phase)
		}
	})
	t.Run("finished static pods are never deleted", func(t *testing.T) {
		m := mirrorPod("etcd-node-a", "mirror-uid", "hash-2")
		m.DeletionTimestamp = &t0
		m.Status.Phase = v1.PodSucceeded
		e := newEnv(t, []runtime.Object{m})
		e.desired.set(static)
		e.syncer.PodTerminated(static)
		if err := e.sync(static.UID); !errors.Is(err, errWait) {
			t.Fatalf("sync = %v, want errWait (a mirror being deleted is being replaced)", err)
		}
		if w := e.writes(); len(w) != 0 {
			t.Errorf("writes = %+v, want none", w)
		}
	})
}

func TestTerminalPhaseIsNotOverwritten(t *testing.T) {
	done := v1.PodStatus{Phase: v1.PodSucceeded, StartTime: &t0}
	pod := apiPod("job", "uid-1", done)
	e := newEnv(t, []runtime.Object{pod})
	e.desired.set(pod)
	e.store.Set(pod.UID, running(t0))
	if err := e.sync(pod.UID); err != nil {
		t.Fatal(err)
	}
	if w := e.writes(); len(w) != 0 {
		t.Errorf("writes = %+v, want none", w)
	}
}

func TestNotFoundIsDropped(t *testing.T) {
	pod := apiPod("web", "uid-1", pending)
	e := newEnv(t, nil) // the API server has deleted it; the cache has not seen that yet
	e.api.pin("default", "web", pod)
	e.desired.set(pod)
	e.syncer.Enqueue(pod.UID)
	e.store.Set(pod.UID, running(t0))
	if err := e.sync(pod.UID); err != nil {
		t.Fatalf("sync = %v, want the pod dropped", err)
	}
	if w := e.writes(); len(w) != 1 {
		t.Errorf("writes = %+v, want the one patch that found nothing", w)
	}
	if _, known := e.syncer.known[pod.UID]; known {
		t.Errorf("pod still known after NotFound")
	}
}

// A 404 that does not name the pod (an API server that is starting and
// has not installed its handlers yet) is not the pod's deletion: the
// status is retried, the pod kept and, once written, deleted.
func TestGeneric404IsRetried(t *testing.T) {
	pod := apiPod("web", "uid-1", running(t0))
	pod.DeletionTimestamp = &t0
	e := newEnv(t, []runtime.Object{pod})
	e.desired.set(pod)
	e.syncer.PodTerminated(pod)
	e.store.Set(pod.UID, v1.PodStatus{Phase: v1.PodSucceeded, StartTime: &t0})
	e.fail = func(call) error {
		return apierrors.NewGenericServerResponse(http.StatusNotFound, "patch", schema.GroupResource{}, "", "the server could not find the requested resource", 0, false)
	}
	if err := e.sync(pod.UID); err == nil {
		t.Fatal("sync after a generic 404 = nil, want it retried")
	}
	if _, known := e.syncer.known[pod.UID]; !known {
		t.Fatal("pod forgotten after a 404 that did not name it")
	}
	e.fail = nil
	if err := e.sync(pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.serverPod("default", "web"); ok {
		t.Errorf("pod left in the API server after its final status: %+v", e.writes())
	}
}

// A conflict is retried through the queue with back-off, and the retry
// sends the status that is newest then.
func TestConflictIsRetriedWithNewestStatus(t *testing.T) {
	pod := apiPod("web", "uid-1", pending)
	limiter := &instantRetry{count: make(map[types.UID]int)}
	e := newEnv(t, []runtime.Object{pod}, func(o *Options) { o.RateLimiter = limiter })
	e.desired.set(pod)
	e.store.Set(pod.UID, running(t0))

	newer := running(t0)
	newer.ContainerStatuses[0].RestartCount = 3
	first := true
	e.fail = func(c call) error {
		if first {
			first = false
			// A newer status arrives while the first patch is in flight.
			e.store.Set(pod.UID, newer)
			return apierrors.NewConflict(podsGVR.GroupResource(), c.name, errors.New("object was modified"))
		}
		return nil
	}

	e.syncer.Enqueue(pod.UID)
	e.syncer.processNext(e.ctx) // conflict: requeued
	if n := limiter.NumRequeues(pod.UID); n != 1 {
		t.Fatalf("retries = %d, want 1 (through the rate limiter)", n)
	}
	e.syncer.processNext(e.ctx) // retry
	if n := limiter.NumRequeues(pod.UID); n != 0 {
		t.Errorf("retries = %d after success, want forgotten", n)
	}
	got, _ := e.serverPod("default", "web")
	if got.Status.ContainerStatuses[0].RestartCount != 3 {
		t.Errorf("API status = %+v, want the newest (restartCount 3)", got.Status)
	}
}

// Retries wait out the back-off on the clock.
func TestRetryWaitsForBackoff(t *testing.T) {
	pod := apiPod("web", "uid-1", pending)
	e := newEnv(t, []runtime.Object{pod})
	e.desired.set(pod)
	e.store.Set(pod.UID, running(t0))
	fails := 1
	e.fail = func(c call) error {
		if fails > 0 {
			fails--
			return apierrors.NewServiceUnavailable("etcd is down")
		}
		return nil
	}
	e.syncer.Enqueue(pod.UID)
	e.syncer.processNext(e.ctx)
	if n := e.syncer.queue.Len(); n != 0 {
		t.Fatalf("queue length = %d right after a failure, want 0 (waiting out the back-off)", n)
	}
	e.clock.Step(200 * time.Millisecond)
	e.syncer.processNext(e.ctx) // blocks until the delayed retry is queued
	got, _ := e.serverPod("default", "web")
	if got.Status.Phase != v1.PodRunning {
		t.Errorf("phase = %s after the retry, want Running", got.Status.Phase)
	}
}

func TestOutageLoggedOnce(t *testing.T) {
	pod := apiPod("web", "uid-1", pending)
	limiter := &instantRetry{count: make(map[types.UID]int)}
	e := newEnv(t, []runtime.Object{pod}, func(o *Options) { o.RateLimiter = limiter })
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	e.ctx = klog.NewContext(context.Background(), logger)
	e.desired.set(pod)
	e.store.Set(pod.UID, running(t0))
	down := 3
	e.fail = func(c call) error {
		if down > 0 {
			down--
			return errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
		}
		return nil
	}
	e.syncer.Enqueue(pod.UID)
	for range 4 {
		e.syncer.processNext(e.ctx)
	}
	log := logger.GetSink().(ktesting.Underlier).GetBuffer().String()
	if n := strings.Count(log, "API server unreachable"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, log)
	}
	if n := strings.Count(log, "reachable again"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, log)
	}
	if got, _ := e.serverPod("default", "web"); got.Status.Phase != v1.PodRunning {
		t.Errorf("phase = %s after the outage, want Running", got.Status.Phase)
	}
}

func TestDeleteAfterTermination(t *testing.T) {
	failed := v1.PodStatus{Phase: v1.PodFailed, StartTime: &t0}
	deleting := func(p *v1.Pod) *v1.Pod { p.DeletionTimestamp = &t1; return p }

	tests := []struct {
		name       string
		pod        *v1.Pod
		status     *v1.PodStatus // berth's, if any
		terminated bool
		wantVerbs  []string
	}{{
		name:       "terminated but not asked to delete: kept",
		pod:        apiPod("job", "uid-1", failed),
		status:     &failed,
		terminated: true,
	}, {
		name:      "asked to delete but not terminated: kept",
		pod:       deleting(apiPod("job", "uid-1", failed)),
		status:    &failed,
		wantVerbs: nil,
	}, {
		name:       "terminated, asked to delete, terminal in the API: deleted",
		pod:        deleting(apiPod("job", "uid-1", failed)),
		status:     &failed,
		terminated: true,
		wantVerbs:  []string{"delete"},
	}, {
		name:       "terminal status first, then the delete",
		pod:        deleting(apiPod("job", "uid-1", running(t0))),
		status:     &failed,
		terminated: true,
		wantVerbs:  []string{"patch", "delete"},
	}, {
		name:       "no status known: deleted",
		pod:        deleting(apiPod("job", "uid-1", pending)),
		terminated: true,
		wantVerbs:  []string{"delete"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, []runtime.Object{tc.pod})
			e.desired.set(tc.pod)
			if tc.status != nil {
				e.store.Set(tc.pod.UID, *tc.status)
			}
			if tc.terminated {
				e.syncer.PodTerminated(tc.pod)
			}
			if err := e.sync(tc.pod.UID); err != nil {
				t.Fatal(err)
			}
			var verbs []string
			for _, c := range e.writes() {
				verbs = append(verbs, c.verb)
				if c.verb != "delete" {
					continue
				}
				d := c.delete
				if d.GracePeriodSeconds == nil || *d.GracePeriodSeconds != 0 ||
					d.Preconditions == nil || d.Preconditions.UID == nil || *d.Preconditions.UID != tc.pod.UID {
					t.Errorf("delete options = %+v, want grace 0 and UID precondition %s", d, tc.pod.UID)
				}
			}
			if strings.Join(verbs, ",") != strings.Join(tc.wantVerbs, ",") {
				t.Errorf("writes = %v, want %v", verbs, tc.wantVerbs)
			}
			_, exists := e.serverPod("default", "job")
			if wantGone := len(tc.wantVerbs) > 0 && tc.wantVerbs[len(tc.wantVerbs)-1] == "delete"; exists == wantGone {
				t.Errorf("pod exists = %v, want %v", exists, !wantGone)
			}
		})
	}
}

// A finished pod asked to be deleted later is deleted then: the Syncer
// remembers PodTerminated.
func TestDeleteRequestedAfterTermination(t *testing.T) {
	failed := v1.PodStatus{Phase: v1.PodFailed, StartTime: &t0}
	pod := apiPod("job", "uid-1", failed)
	e := newEnv(t, []runtime.Object{pod})
	e.desired.set(pod)
	e.store.Set(pod.UID, failed)
	e.syncer.PodTerminated(pod)
	e.syncer.processNext(e.ctx)
	if w := e.writes(); len(w) != 0 {
		t.Fatalf("writes = %+v before the deletion request, want none", w)
	}

	// Someone deletes the pod; the API update brings the pod back to the queue.
	deleting := pod.DeepCopy()
	deleting.DeletionTimestamp = &t1
	if err := e.client.Tracker().Update(podsGVR, deleting, "default"); err != nil {
		t.Fatal(err)
	}
	e.desired.set(deleting)
	e.syncer.Enqueue(pod.UID)
	e.syncer.processNext(e.ctx)
	if _, exists := e.serverPod("default", "job"); exists {
		t.Errorf("pod still in the API server after its deletion was requested")
	}
}

// The periodic resync compares known pods again and repairs a status someone
// else overwrote.
func TestResyncRepairsOverwrittenStatus(t *testing.T) {
	pod := apiPod("web", "uid-1", pending)
	e := newEnv(t, []runtime.Object{pod})
	e.desired.set(pod)
	e.store.Set(pod.UID, running(t0))
	e.syncer.Enqueue(pod.UID)
	e.syncer.processNext(e.ctx)

	overwritten, _ := e.serverPod("default", "web")
	overwritten = overwritten.DeepCopy()
	overwritten.Status.Phase = v1.PodPending
	if err := e.client.Tracker().Update(podsGVR, overwritten, "default"); err != nil {
		t.Fatal(err)
	}
	e.syncer.resyncAll()
	e.syncer.processNext(e.ctx)
	if got, _ := e.serverPod("default", "web"); got.Status.Phase != v1.PodRunning {
		t.Errorf("phase = %s after resync, want Running", got.Status.Phase)
	}
}

// A patch is diffed against berth's own last write while the cache lags
// behind it, so a quick second change removes what the first added.
func TestStaleCacheUsesOwnWrite(t *testing.T) {
	pod := apiPod("web", "uid-1", pending)
	pod.ResourceVersion = "7"
	e := newEnv(t, []runtime.Object{pod})
	e.api.pin("default", "web", pod) // the cache never moves in this test
	e.desired.set(pod)

	first := running(t0)
	first.PodIPs = []v1.PodIP{{IP: "10.1.0.5"}}
	e.store.Set(pod.UID, first)
	if err := e.sync(pod.UID); err != nil {
		t.Fatal(err)
	}
	second := running(t0)
	second.PodIPs = []v1.PodIP{{IP: "10.1.0.6"}}
	e.store.Set(pod.UID, second)
	if err := e.sync(pod.UID); err != nil {
		t.Fatal(err)
	}
	got, _ := e.serverPod("default", "web")
	if len(got.Status.PodIPs) != 1 || got.Status.PodIPs[0].IP != "10.1.0.6" {
		t.Errorf("pod IPs = %+v, want only 10.1.0.6", got.Status.PodIPs)
	}
}

// Run drains the queue with workers and stops when the context ends.
func TestRun(t *testing.T) {
	pod := apiPod("web", "uid-1", pending)
	e := newEnv(t, []runtime.Object{pod})
	e.desired.set(pod)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { e.syncer.Run(ctx); close(done) }()

	e.store.Set(pod.UID, running(t0))
	e.syncer.Enqueue(pod.UID)
	if c := e.next(); c.verb != "patch" {
		t.Errorf("write = %s, want patch", c.verb)
	}
	cancel()
	<-done
}

// A pod berth no longer runs is forgotten.
func TestUnknownPodIsForgotten(t *testing.T) {
	e := newEnv(t, nil)
	e.syncer.Enqueue("uid-gone")
	if err := e.sync("uid-gone"); err != nil {
		t.Fatal(err)
	}
	if len(e.syncer.known) != 0 || len(e.writes()) != 0 {
		t.Errorf("known = %v, writes = %v; want nothing", e.syncer.known, e.writes())
	}
}
