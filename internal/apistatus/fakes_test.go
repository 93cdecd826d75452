package apistatus

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/status"
)

var podsGVR = v1.SchemeGroupVersion.WithResource("pods")

// desiredPods is a fake PodGetter.
type desiredPods struct {
	mu   sync.Mutex
	pods map[types.UID]*v1.Pod
}

func (d *desiredPods) Desired(uid types.UID) (*v1.Pod, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.pods[uid]
	return p, ok
}

func (d *desiredPods) set(p *v1.Pod) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pods[p.UID] = p
}

// apiCache is a fake APIPods: the fake API server's objects, unless a test
// pins a stale view of one.
type apiCache struct {
	client *fake.Clientset
	mu     sync.Mutex
	pinned map[string]*v1.Pod
}

func (c *apiCache) Pod(namespace, name string) (*v1.Pod, bool) {
	c.mu.Lock()
	p, ok := c.pinned[namespace+"/"+name]
	c.mu.Unlock()
	if ok {
		return p, p != nil
	}
	obj, err := c.client.Tracker().Get(podsGVR, namespace, name)
	if err != nil {
		return nil, false
	}
	return obj.(*v1.Pod), true
}

func (c *apiCache) pin(namespace, name string, p *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinned[namespace+"/"+name] = p
}

// call is one write the fake API server received.
type call struct {
	verb, name, subresource string
	patchType               types.PatchType
	patch                   []byte
	patchUID                types.UID // metadata.uid in the patch
	delete                  metav1.DeleteOptions
}

// env is a Syncer wired to fakes. The fake API server enforces UID
// preconditions (in a patch's metadata.uid and in delete options) as the
// real one does, and records every write.
type env struct {
	t       *testing.T
	ctx     context.Context
	client  *fake.Clientset
	store   *status.Store
	desired *desiredPods
	api     *apiCache
	clock   *clocktesting.FakeClock
	syncer  *Syncer

	mu    sync.Mutex
	calls []call
	// fail, if set, may fail a write before the fake server applies it.
	fail func(c call) error
	// written receives every write the server applied or failed.
	written chan call
}

type envOption func(*Options)

func newEnv(t *testing.T, objects []runtime.Object, opts ...envOption) *env {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	e := &env{
		t:       t,
		ctx:     ctx,
		client:  fake.NewClientset(objects...),
		desired: &desiredPods{pods: make(map[types.UID]*v1.Pod)},
		clock:   clocktesting.NewFakeClock(now.Time),
		written: make(chan call, 100),
	}
	e.api = &apiCache{client: e.client, pinned: make(map[string]*v1.Pod)}
	e.store = status.NewStore(nil)
	e.client.PrependReactor("*", "pods", e.react)
	o := Options{Client: e.client, Statuses: e.store, Desired: e.desired, API: e.api, Clock: e.clock}
	for _, f := range opts {
		f(&o)
	}
	e.syncer = New(o)
	return e
}

// react checks preconditions, applies and records writes.
func (e *env) react(action k8stesting.Action) (bool, runtime.Object, error) {
	c := call{verb: action.GetVerb(), subresource: action.GetSubresource()}
	switch a := action.(type) {
	case k8stesting.PatchAction:
		c.name, c.patchType, c.patch = a.GetName(), a.GetPatchType(), a.GetPatch()
		var meta struct {
			Metadata struct {
				UID types.UID `json:"uid"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(a.GetPatch(), &meta); err != nil {
			e.t.Errorf("patch is not JSON: %s", a.GetPatch())
		}
		c.patchUID = meta.Metadata.UID
	case k8stesting.DeleteAction:
		c.name, c.delete = a.GetName(), a.GetDeleteOptions()
	default:
		return false, nil, nil
	}
	e.mu.Lock()
	e.calls = append(e.calls, c)
	fail := e.fail
	e.mu.Unlock()
	defer func() { e.written <- c }()

	if fail != nil {
		if err := fail(c); err != nil {
			return true, nil, err
		}
	}
	obj, err := e.client.Tracker().Get(podsGVR, action.GetNamespace(), c.name)
	if err != nil {
		return true, nil, err
	}
	uid := obj.(*v1.Pod).UID
	conflict := apierrors.NewConflict(podsGVR.GroupResource(), c.name, errPrecondition)
	if c.verb == "patch" && c.patchUID != "" && c.patchUID != uid {
		return true, nil, conflict
	}
	if c.verb == "delete" && c.delete.Preconditions != nil && c.delete.Preconditions.UID != nil && *c.delete.Preconditions.UID != uid {
		return true, nil, conflict
	}
	return k8stesting.ObjectReaction(e.client.Tracker())(action)
}

var errPrecondition = apierrors.NewBadRequest("precondition failed: UID mismatch")

func (e *env) writes() []call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]call(nil), e.calls...)
}

// serverPod returns the fake API server's pod.
func (e *env) serverPod(namespace, name string) (*v1.Pod, bool) {
	obj, err := e.client.Tracker().Get(podsGVR, namespace, name)
	if err != nil {
		return nil, false
	}
	return obj.(*v1.Pod), true
}

// sync runs one sync of uid, as a worker would.
func (e *env) sync(uid types.UID) error {
	e.t.Helper()
	return e.syncer.sync(e.ctx, uid)
}

// next waits for the fake server's next write.
func (e *env) next() call {
	e.t.Helper()
	select {
	case c := <-e.written:
		return c
	case <-time.After(10 * time.Second):
		e.t.Fatalf("no write reached the API server")
		return call{}
	}
}

// instantRetry is a rate limiter with no delay that counts retries.
type instantRetry struct {
	mu    sync.Mutex
	count map[types.UID]int
}

var _ workqueue.TypedRateLimiter[types.UID] = (*instantRetry)(nil)

func (r *instantRetry) When(uid types.UID) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count[uid]++
	return 0
}
func (r *instantRetry) NumRequeues(uid types.UID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[uid]
}
func (r *instantRetry) Forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.count, uid)
}

// apiPod is a pod as the API server holds it, bound to this node.
func apiPod(name string, uid types.UID, st v1.PodStatus) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: uid,
			Annotations: map[string]string{source.AnnotationConfigSource: source.SourceAPI}},
		Spec:   v1.PodSpec{NodeName: "node-a", Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
		Status: st,
	}
}

// staticPod is a pod berth runs from a manifest, with its config hash.
func staticPod(name string, uid types.UID) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, UID: uid,
			Annotations: map[string]string{
				source.AnnotationConfigSource: source.SourceFile,
				source.AnnotationConfigHash:   string(uid),
			}},
		Spec: v1.PodSpec{NodeName: "node-a", Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
	}
}

// mirrorPod is the mirror in the API server of a static pod with config hash.
func mirrorPod(name string, uid types.UID, hash string) *v1.Pod {
	p := staticPod(name, uid)
	p.Annotations[source.AnnotationConfigMirror] = hash
	p.Annotations[source.AnnotationConfigHash] = hash
	return p
}
