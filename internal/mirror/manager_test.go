package mirror

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

var podsGVR = v1.SchemeGroupVersion.WithResource("pods")

type env struct {
	t       *testing.T
	ctx     context.Context
	logger  klog.Logger
	client  *fake.Clientset
	m       *Manager
	node    *v1.Node
	actions []string
	// fail, if set, may fail a write before the fake server applies it.
	fail func(verb, name string) error
}

func newEnv(t *testing.T, objects ...runtime.Object) *env {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	e := &env{t: t, logger: logger, ctx: klog.NewContext(context.Background(), logger),
		client: fake.NewClientset(objects...), node: node()}
	e.client.PrependReactor("*", "pods", e.react)
	e.m = New(Options{Client: e.client, NodeName: "node-a", Node: func() (*v1.Node, bool) {
		return e.node, e.node != nil
	}})
	return e
}

// react records writes, checks delete options, and fails writes on demand.
func (e *env) react(action k8stesting.Action) (bool, runtime.Object, error) {
	var name string
	switch a := action.(type) {
	case k8stesting.CreateAction:
		p := a.GetObject().(*v1.Pod)
		name = p.Name
		if p.UID != "" {
			e.t.Errorf("mirror pod %s created with UID %q, want none", p.Name, p.UID)
		}
		// The API server assigns the UID.
		p = p.DeepCopy()
		p.UID = types.UID("mirror-" + p.Name + "-" + p.Annotations["kubernetes.io/config.mirror"])
		action = k8stesting.NewCreateAction(podsGVR, a.GetNamespace(), p)
	case k8stesting.DeleteAction:
		name = a.GetName()
		o := a.GetDeleteOptions()
		if o.GracePeriodSeconds == nil || *o.GracePeriodSeconds != 0 || o.Preconditions == nil || o.Preconditions.UID == nil {
			e.t.Errorf("delete of %s with options %+v, want grace 0 and a UID precondition", name, o)
		} else if obj, err := e.client.Tracker().Get(podsGVR, a.GetNamespace(), name); err == nil && obj.(*v1.Pod).UID != *o.Preconditions.UID {
			e.actions = append(e.actions, "delete "+name+" (conflict)")
			return true, nil, apierrors.NewConflict(podsGVR.GroupResource(), name, errors.New("UID precondition"))
		}
	default:
		return false, nil, nil
	}
	e.actions = append(e.actions, action.GetVerb()+" "+name)
	if e.fail != nil {
		if err := e.fail(action.GetVerb(), name); err != nil {
			return true, nil, err
		}
	}
	return k8stesting.ObjectReaction(e.client.Tracker())(action)
}

// apiMirrors lists the mirror pods the fake API server holds.
func (e *env) apiMirrors() []*v1.Pod {
	list, err := e.client.CoreV1().Pods("").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*v1.Pod
	for i := range list.Items {
		if IsMirror(&list.Items[i]) {
			out = append(out, &list.Items[i])
		}
	}
	return out
}

// sync runs one Sync with the API server's current mirrors.
func (e *env) sync(static ...*v1.Pod) error {
	e.t.Helper()
	e.actions = nil
	return e.m.Sync(e.ctx, static, e.apiMirrors())
}

func (e *env) log() string {
	return e.logger.GetSink().(ktesting.Underlier).GetBuffer().String()
}

func (e *env) wantActions(want ...string) {
	e.t.Helper()
	if strings.Join(e.actions, ", ") != strings.Join(want, ", ") {
		e.t.Errorf("actions = %v, want %v", e.actions, want)
	}
}

func TestSyncCreatesAndRecreates(t *testing.T) {
	e := newEnv(t)
	etcd := static("etcd", "h1")
	if err := e.sync(etcd); err != nil {
		t.Fatal(err)
	}
	e.wantActions("create etcd")
	got := e.apiMirrors()
	if len(got) != 1 || !IsMirrorOf(got[0], etcd) || got[0].Spec.NodeName != "node-a" ||
		len(got[0].OwnerReferences) != 1 || got[0].OwnerReferences[0].UID != "node-uid" {
		t.Fatalf("API mirrors = %+v, want the mirror of etcd owned by node-a", got)
	}

	// Nothing to do while it exists.
	if err := e.sync(etcd); err != nil {
		t.Fatal(err)
	}
	e.wantActions()

	// Someone deletes it: it comes back.
	if err := e.client.Tracker().Delete(podsGVR, "kube-system", "etcd"); err != nil {
		t.Fatal(err)
	}
	if err := e.sync(etcd); err != nil {
		t.Fatal(err)
	}
	e.wantActions("create etcd")
}

func TestSyncReplacesStaleAndRemovesOrphans(t *testing.T) {
	e := newEnv(t, mirrorOf("etcd", "h1", "m1"), mirrorOf("scheduler", "h3", "m3"))
	etcd := static("etcd", "h2") // the manifest changed; scheduler's was removed
	if err := e.sync(etcd); err != nil {
		t.Fatal(err)
	}
	e.wantActions("delete etcd", "delete scheduler", "create etcd")
	got := e.apiMirrors()
	if len(got) != 1 || !IsMirrorOf(got[0], etcd) {
		t.Errorf("API mirrors = %v, want only the new mirror of etcd", names(got))
	}
}

// A mirror recreated between the caller's view and the delete is not
// deleted (UID precondition), and no error comes of it.
func TestSyncDeleteHonoursUID(t *testing.T) {
	e := newEnv(t, mirrorOf("scheduler", "h3", "m3-new"))
	e.actions = nil
	if err := e.m.Sync(e.ctx, nil, []*v1.Pod{mirrorOf("scheduler", "h3", "m3-old")}); err != nil {
		t.Fatal(err)
	}
	e.wantActions("delete scheduler (conflict)")
	if n := len(e.apiMirrors()); n != 1 {
		t.Errorf("%d mirrors left, want the recreated one", n)
	}
}

func TestSyncIgnoresOtherNodes(t *testing.T) {
	other := mirrorOf("etcd", "h1", "m1")
	other.Spec.NodeName = "node-b"
	e := newEnv(t, other)
	e.actions = nil
	if err := e.m.Sync(e.ctx, nil, []*v1.Pod{other}); err != nil {
		t.Fatal(err)
	}
	e.wantActions()
}

func TestSyncWaitsForNode(t *testing.T) {
	e := newEnv(t)
	e.node = nil
	etcd := static("etcd", "h1")
	for range 2 {
		if err := e.sync(etcd); err == nil {
			t.Fatal("Sync succeeded without a node")
		}
	}
	e.wantActions()
	if n := strings.Count(e.log(), "Mirror pods wait for the node"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, e.log())
	}

	e.node = node()
	e.node.DeletionTimestamp = &metav1.Time{}
	if err := e.sync(etcd); err == nil {
		t.Fatal("Sync created a mirror owned by a node being deleted")
	}
	e.wantActions()

	e.node = node()
	if err := e.sync(etcd); err != nil {
		t.Fatal(err)
	}
	e.wantActions("create etcd")
}

func TestSyncRefusedCreateReportedOnce(t *testing.T) {
	e := newEnv(t)
	e.fail = func(verb, name string) error {
		if verb == "create" && name == "etcd" {
			return apierrors.NewForbidden(podsGVR.GroupResource(), name,
				errors.New(`node "node-a" can not create pods that reference secrets`))
		}
		return nil
	}
	etcd, sched := static("etcd", "h1"), static("scheduler", "h3")
	for range 3 {
		err := e.sync(etcd, sched)
		if !apierrors.IsForbidden(err) {
			t.Fatalf("Sync = %v, want the Forbidden error", err)
		}
	}
	log := e.log()
	if n := strings.Count(log, "Failed to create mirror pod"); n != 1 {
		t.Errorf("refusal logged %d times, want once:\n%s", n, log)
	}
	if !strings.Contains(log, "NodeRestriction") || !strings.Contains(log, "reference secrets") {
		t.Errorf("log does not explain the refusal:\n%s", log)
	}
	// The other static pod got its mirror regardless.
	if got := e.apiMirrors(); len(got) != 1 || got[0].Name != "scheduler" {
		t.Errorf("API mirrors = %v, want scheduler's", names(got))
	}
}

func TestSyncOutageReportedOnce(t *testing.T) {
	e := newEnv(t)
	down := true
	e.fail = func(verb, name string) error {
		if down {
			return errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
		}
		return nil
	}
	pods := []*v1.Pod{static("etcd", "h1"), static("scheduler", "h3")}
	for range 2 {
		if err := e.sync(pods...); err == nil {
			t.Fatal("Sync succeeded with the API server down")
		}
	}
	down = false
	if err := e.sync(pods...); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(e.log(), "API server unreachable"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, e.log())
	}
	if n := len(e.apiMirrors()); n != 2 {
		t.Errorf("%d mirrors after the outage, want 2", n)
	}
}

// A stale mirror that cannot be deleted keeps its name: no create is tried.
func TestSyncFailedDeleteBlocksCreate(t *testing.T) {
	e := newEnv(t, mirrorOf("etcd", "h1", "m1"))
	e.fail = func(verb, name string) error {
		if verb == "delete" {
			return apierrors.NewForbidden(podsGVR.GroupResource(), name, errors.New("no"))
		}
		return nil
	}
	if err := e.sync(static("etcd", "h2")); err == nil {
		t.Fatal("Sync succeeded though the delete failed")
	}
	e.wantActions("delete etcd")
}

// A create that finds the name taken is no failure: the mirror shows up in
// the caller's next view.
func TestSyncAlreadyExists(t *testing.T) {
	etcd := static("etcd", "h1")
	e := newEnv(t, mirrorOf("etcd", "h1", "m1"))
	e.actions = nil
	if err := e.m.Sync(e.ctx, []*v1.Pod{etcd}, nil); err != nil {
		t.Fatalf("Sync = %v, want no error", err)
	}
	e.wantActions("create etcd")
}
