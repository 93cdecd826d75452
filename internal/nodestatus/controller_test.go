package nodestatus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// events counts the controller's trace events; tests wait on the counts.
type events struct {
	mu      sync.Mutex
	counts  map[string]int
	changed chan struct{}
}

func newEvents() *events {
	return &events{counts: map[string]int{}, changed: make(chan struct{})}
}

func (e *events) record(ev string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[ev]++
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *events) count(ev string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[ev]
}

// waitFor waits until ev happened n times in all.
func (e *events) waitFor(t *testing.T, ev string, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		got, ch := e.counts[ev], e.changed
		e.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %q #%d (seen %d)", ev, n, got)
		}
	}
}

type fakeRuntime struct {
	mu     sync.Mutex
	images []v1.ContainerImage
	status *runtimeapi.StatusResponse
	err    error
	// podCIDRs records UpdatePodCIDR calls; cidrErr fails them.
	podCIDRs []string
	cidrErr  error
}

func (r *fakeRuntime) UpdatePodCIDR(_ context.Context, cidr string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.podCIDRs = append(r.podCIDRs, cidr)
	return r.cidrErr
}

func (r *fakeRuntime) cidrCalls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.podCIDRs)
}

// readyStatus is what containerd 1.6 answers when it and its CNI are ready.
func readyStatus() *runtimeapi.StatusResponse {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: true},
	}}}
}

func (r *fakeRuntime) Status(context.Context) (*runtimeapi.StatusResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.err
}

func (r *fakeRuntime) setStatus(s *runtimeapi.StatusResponse) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

func (r *fakeRuntime) Version(context.Context) (string, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "containerd", "1.6.20", r.err
}

func (r *fakeRuntime) ListImages(context.Context) ([]v1.ContainerImage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.images, r.err
}

// health is a settable Health function.
type health struct {
	mu  sync.Mutex
	err error
}

func (h *health) set(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

func (h *health) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

type env struct {
	t       *testing.T
	client  *fake.Clientset
	clock   *clocktesting.FakeClock
	events  *events
	health  *health
	runtime *fakeRuntime
	c       *Controller
	cancel  context.CancelFunc
	done    chan struct{}
}

// newEnv builds a controller for node-a on a fake API server holding
// objects; edit adjusts the options. The API server hands out UIDs as a
// real one does.
func newEnv(t *testing.T, edit func(o *Options), objects ...runtime.Object) *env {
	e := &env{
		t:       t,
		client:  fake.NewClientset(objects...),
		clock:   clocktesting.NewFakeClock(t0),
		events:  newEvents(),
		health:  &health{},
		runtime: &fakeRuntime{images: []v1.ContainerImage{{Names: []string{"busybox:1.36"}, SizeBytes: 4 << 20}}, status: readyStatus()},
	}
	uids := 0
	e.client.PrependReactor("create", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		uids++
		a.(k8stesting.CreateAction).GetObject().(*v1.Node).UID = types.UID(fmt.Sprintf("uid-%d", uids))
		return false, nil, nil
	})
	opts := Options{
		Client:               e.client,
		NodeName:             "node-a",
		NodeIP:               "192.0.2.10",
		NodeLabels:           map[string]string{"example.com/role": "edge"},
		RegisterWithTaints:   []v1.Taint{{Key: "example.com/new", Effect: v1.TaintEffectNoSchedule}},
		MaxPods:              110,
		EvictionHard:         map[string]string{"memory.available": "100Mi", "nodefs.available": "10%"},
		Port:                 10250,
		UpdateFrequency:      10 * time.Second,
		ReportFrequency:      time.Minute,
		LeaseDurationSeconds: 40,
		KubeletVersion:       "v1.37.2",
		Runtime:              e.runtime,
		Health:               e.health.check,
		Clock:                e.clock,
	}
	if edit != nil {
		edit(&opts)
	}
	e.c = New(opts)
	e.c.trace = e.events.record
	e.c.readMachine = func() (machine, []error) { return testMachine(), nil }
	e.c.detectIP = func() (string, error) { return "", errors.New("detectIP must not be called with NodeIP set") }
	return e
}

func (e *env) start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		e.c.Run(ctx)
	}()
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		e.t.Error("Run did not return after cancel")
	}
}

func (e *env) node() *v1.Node {
	e.t.Helper()
	n, err := e.client.CoreV1().Nodes().Get(context.Background(), "node-a", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) lease() *coordinationv1.Lease {
	e.t.Helper()
	l, err := e.client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), "node-a", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// statusUpdates counts UpdateStatus calls on nodes.
func (e *env) statusUpdates() int {
	n := 0
	for _, a := range e.client.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Resource == "nodes" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

// tick advances the clock by one update period and waits until the status
// loop has synced again.
func (e *env) tick() {
	e.t.Helper()
	n := e.events.count("wait:status")
	e.clock.Step(10 * time.Second)
	e.events.waitFor(e.t, "wait:status", n+1)
}

func readyCondition(n *v1.Node) v1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c
		}
	}
	return v1.NodeCondition{}
}

func TestRegisterCreatesNode(t *testing.T) {
	e := newEnv(t, nil)
	if _, ok := e.c.Node(); ok {
		t.Fatal("Node() before registration")
	}
	e.start()
	e.events.waitFor(t, "wait:status", 1)
	select {
	case <-e.c.Registered():
	default:
		t.Fatal("Registered() not closed")
	}

	n := e.node()
	if n.Labels["kubernetes.io/hostname"] != "node-a" || n.Labels["example.com/role"] != "edge" || n.Labels["beta.kubernetes.io/os"] == "" {
		t.Errorf("labels = %v", n.Labels)
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "example.com/new" {
		t.Errorf("taints = %v", n.Spec.Taints)
	}
	if r := readyCondition(n); r.Status != v1.ConditionTrue || r.Reason != "KubeletReady" {
		t.Errorf("Ready = %+v", r)
	}
	if n.Status.NodeInfo.ContainerRuntimeVersion != "containerd://1.6.20" || len(n.Status.Images) != 1 {
		t.Errorf("runtime %q images %v", n.Status.NodeInfo.ContainerRuntimeVersion, n.Status.Images)
	}
	// The created Node carries the status: nothing more to post yet.
	if got := e.statusUpdates(); got != 0 {
		t.Errorf("%d status updates right after creating the node, want 0", got)
	}
	got, ok := e.c.Node()
	if !ok || got.UID != "uid-1" {
		t.Errorf("Node() = %v, %v", got, ok)
	}
	alloc := got.Status.Allocatable[v1.ResourceMemory]
	if alloc.Value() != 4*gi-100*mi {
		t.Errorf("allocatable memory = %s", alloc.String())
	}
}

func TestRegisterReconcilesExistingNode(t *testing.T) {
	existing := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "node-a", UID: "old-uid",
			Labels: map[string]string{"kubernetes.io/hostname": "stale", "team": "a"},
		},
		Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "admin", Effect: v1.TaintEffectNoExecute}}},
		Status: v1.NodeStatus{Conditions: []v1.NodeCondition{
			cond(v1.NodeReady, v1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", t0.Add(-time.Hour), t0.Add(-time.Hour)),
		}},
	}
	e := newEnv(t, nil, existing)
	e.start()
	e.events.waitFor(t, "status-updated", 1) // status posted at once: never reported by this berth

	n := e.node()
	if n.UID != "old-uid" {
		t.Errorf("node was replaced: UID %q", n.UID)
	}
	want := map[string]string{"kubernetes.io/hostname": "node-a", "team": "a"}
	for k, v := range want {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	if _, ok := n.Labels["example.com/role"]; ok {
		t.Error("--node-labels applied to an existing node; upstream sets them only at creation")
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "admin" {
		t.Errorf("taints changed: %v", n.Spec.Taints)
	}
	if n.Annotations[controllerManagedAttachAnnotation] != "true" {
		t.Errorf("annotations = %v", n.Annotations)
	}
	r := readyCondition(n)
	if r.Status != v1.ConditionTrue || !r.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("Ready = %+v, want True since now", r)
	}
}

func TestRegisterRetriesWithBackOff(t *testing.T) {
	e := newEnv(t, nil)
	failures := 3
	e.client.PrependReactor("create", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failures > 0 {
			failures--
			return true, nil, apierrors.NewServiceUnavailable("apiserver starting")
		}
		return false, nil, nil
	})
	e.start()
	for i, step := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		e.events.waitFor(t, "wait:register", i+1)
		if e.events.count("registered") != 0 {
			t.Fatal("registered while the API server fails")
		}
		e.clock.Step(step)
	}
	e.events.waitFor(t, "registered", 1)
	if got := e.node(); got.Labels["example.com/role"] != "edge" {
		t.Errorf("labels = %v", got.Labels)
	}
}

func TestStatusPostedOnChangeOrReportFrequency(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.events.waitFor(t, "wait:status", 1) // registered at t0, status synced

	e.tick() // t0+10s: nothing changed, report not due
	if got := e.statusUpdates(); got != 0 {
		t.Fatalf("status updates = %d, want 0", got)
	}

	e.health.set(errors.New("container runtime is down"))
	e.tick() // t0+20s: Ready flips, posted at once
	if got := e.statusUpdates(); got != 1 {
		t.Fatalf("status updates = %d, want 1", got)
	}
	r := readyCondition(e.node())
	if r.Status != v1.ConditionFalse || r.Reason != "KubeletNotReady" || r.Message != "container runtime is down" || !r.LastTransitionTime.Time.Equal(t0.Add(20*time.Second)) {
		t.Errorf("Ready = %+v", r)
	}
	if n, _ := e.c.Node(); readyCondition(n).Status != v1.ConditionFalse {
		t.Error("Node() does not show the posted status")
	}

	for range 5 { // up to t0+70s: unchanged, the last report was at t0+20s
		e.tick()
	}
	if got := e.statusUpdates(); got != 1 {
		t.Fatalf("status updates = %d before the report frequency passed, want 1", got)
	}
	e.tick() // t0+80s: a minute since the last report
	if got := e.statusUpdates(); got != 2 {
		t.Fatalf("status updates = %d after the report frequency, want 2", got)
	}
	r = readyCondition(e.node())
	if !r.LastHeartbeatTime.Time.Equal(t0.Add(80*time.Second)) || !r.LastTransitionTime.Time.Equal(t0.Add(20*time.Second)) {
		t.Errorf("Ready = %+v, want heartbeat now and transition kept", r)
	}

	e.health.set(nil)
	e.tick()
	if r := readyCondition(e.node()); r.Status != v1.ConditionTrue || e.statusUpdates() != 3 {
		t.Errorf("after recovery Ready = %+v, updates %d", r, e.statusUpdates())
	}
}

func TestStatusSeesLabelsOthersSetAndRetriesConflicts(t *testing.T) {
	e := newEnv(t, nil)
	// Reactors must be in place before the controller runs: the fake
	// client does not lock its reactor chain.
	var mu sync.Mutex
	conflicts := 0
	e.client.PrependReactor("update", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if a.GetSubresource() == "status" && conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, "node-a", errors.New("modified"))
		}
		return false, nil, nil
	})
	e.start()
	e.events.waitFor(t, "wait:status", 1)

	// An administrator labels the node.
	n := e.node()
	n.Labels["team"] = "a"
	if _, err := e.client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	conflicts = 1
	mu.Unlock()
	e.runtime.mu.Lock()
	e.runtime.images = append(e.runtime.images, v1.ContainerImage{Names: []string{"pause:3.9"}, SizeBytes: 1 << 20})
	e.runtime.mu.Unlock()
	e.tick()

	if got := e.statusUpdates(); got != 2 {
		t.Errorf("status updates = %d, want 2 (a conflict, then success)", got)
	}
	got := e.node()
	if len(got.Status.Images) != 2 || got.Labels["team"] != "a" {
		t.Errorf("images %v labels %v", got.Status.Images, got.Labels)
	}
	if n, _ := e.c.Node(); n.Labels["team"] != "a" {
		t.Error("Node() does not show the label the administrator set")
	}
}

func TestRuntimeBlipKeepsLastAnswer(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.events.waitFor(t, "wait:status", 1)
	e.runtime.mu.Lock()
	e.runtime.err = errors.New("unavailable")
	e.runtime.mu.Unlock()
	e.tick()
	if got := e.statusUpdates(); got != 0 {
		t.Errorf("status updates = %d, want 0: a runtime blip is no status change", got)
	}
	if n := e.node(); len(n.Status.Images) != 1 || n.Status.NodeInfo.ContainerRuntimeVersion != "containerd://1.6.20" {
		t.Errorf("images %v runtime %q", n.Status.Images, n.Status.NodeInfo.ContainerRuntimeVersion)
	}
}

func TestDeletedNodeIsRegisteredAgain(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.events.waitFor(t, "wait:status", 1)
	if err := e.client.CoreV1().Nodes().Delete(context.Background(), "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.clock.Step(10 * time.Second)
	e.events.waitFor(t, "registered", 2)
	if n := e.node(); n.UID != "uid-2" || n.Labels["example.com/role"] != "edge" {
		t.Errorf("re-registered node: UID %q labels %v", n.UID, n.Labels)
	}
}

func TestLeaseCreatedAndRenewed(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.events.waitFor(t, "lease", 1)

	l := e.lease()
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "node-a" ||
		l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 40 ||
		l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Equal(t0) {
		t.Errorf("lease spec = %+v", l.Spec)
	}
	wantOwner := metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: "node-a", UID: "uid-1"}
	if len(l.OwnerReferences) != 1 || l.OwnerReferences[0] != wantOwner {
		t.Errorf("owner references = %+v", l.OwnerReferences)
	}

	// Renewed every quarter of the duration.
	e.events.waitFor(t, "wait:lease", 1)
	e.clock.Step(10 * time.Second)
	e.events.waitFor(t, "lease", 2)
	if l := e.lease(); !l.Spec.RenewTime.Time.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("renewTime = %v, want t0+10s", l.Spec.RenewTime)
	}

	// Someone deletes it: it is created again.
	if err := e.client.CoordinationV1().Leases("kube-node-lease").Delete(context.Background(), "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.events.waitFor(t, "wait:lease", 2)
	e.clock.Step(10 * time.Second)
	e.events.waitFor(t, "lease", 3)
	if l := e.lease(); !l.Spec.RenewTime.Time.Equal(t0.Add(20 * time.Second)) {
		t.Errorf("recreated lease renewTime = %v", l.Spec.RenewTime)
	}
}

func TestLeaseRetriesWhileAPIServerIsDown(t *testing.T) {
	e := newEnv(t, nil)
	down := true
	var mu sync.Mutex
	e.client.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return true, nil, apierrors.NewServiceUnavailable("down")
		}
		return false, nil, nil
	})
	e.start()
	// Back-off 200ms, 400ms, ... while it fails.
	for i, step := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		e.events.waitFor(t, "wait:lease", i+1)
		e.clock.Step(step)
	}
	e.events.waitFor(t, "wait:lease", 4)
	if e.events.count("lease") != 0 {
		t.Fatal("lease renewed while the API server is down")
	}
	mu.Lock()
	down = false
	mu.Unlock()
	e.clock.Step(1600 * time.Millisecond)
	e.events.waitFor(t, "lease", 1)
	if l := e.lease(); l.Spec.RenewTime == nil {
		t.Error("no renewTime")
	}
}
