package objects

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// guard bounds every wait on a channel so a broken test fails instead of
// hanging; it is never slept.
const guard = 10 * time.Second

type change struct{ kind, namespace, name string }

type harness struct {
	t       *testing.T
	client  *fake.Clientset
	m       *Manager
	changes chan change
	watches chan string // resource of every watch the fake starts
	cancel  context.CancelFunc
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{t: t, client: fake.NewClientset(objs...), changes: make(chan change, 100), watches: make(chan string, 100)}
	// The fake starts a watch only when asked; report each so a test can
	// change objects after the watch is in place.
	h.client.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := h.client.Tracker().Watch(a.GetResource(), a.GetNamespace())
		h.watches <- a.GetResource().Resource
		return true, w, err
	})
	h.m = New(Options{Client: h.client})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	done := make(chan struct{})
	go func() { h.m.Run(ctx, h); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-h.m.running
	return h
}

func (h *harness) ObjectChanged(kind, ns, name string) { h.changes <- change{kind, ns, name} }

func (h *harness) waitWatches(n int) {
	h.t.Helper()
	for range n {
		select {
		case <-h.watches:
		case <-time.After(guard):
			h.t.Fatal("watch not started")
		}
	}
}

func (h *harness) waitChange(want change) {
	h.t.Helper()
	deadline := time.After(guard)
	for {
		select {
		case c := <-h.changes:
			if c == want {
				return
			}
		case <-deadline:
			h.t.Fatalf("no change reported for %v", want)
		}
	}
}

func cm(name, value string) *v1.ConfigMap {
	return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string]string{"k": value}}
}

func podWith(uid, cmName, secretName string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p-" + uid, UID: types.UID(uid)}}
	if cmName != "" {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: cmName}}}})
	}
	if secretName != "" {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "c", EnvFrom: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: secretName}}}}})
	}
	return p
}

func TestWatchFollowsChanges(t *testing.T) {
	h := newHarness(t, cm("a", "1"))
	ctx := context.Background()
	h.m.RegisterPod(podWith("u1", "a", "s"))

	got, err := h.m.GetConfigMap(ctx, "ns", "a")
	if err != nil || got.Data["k"] != "1" {
		t.Fatalf("GetConfigMap = %v, %v; want data 1", got, err)
	}
	_, err = h.m.GetSecret(ctx, "ns", "s")
	if !apierrors.IsNotFound(err) || err.Error() != `secret "s" not found` {
		t.Fatalf("GetSecret of a missing secret = %v; want NotFound `secret \"s\" not found`", err)
	}
	h.waitWatches(2)

	// A missing secret appears.
	sec := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", ResourceVersion: "1"}, Data: map[string][]byte{"x": []byte("y")}}
	if _, err := h.client.CoreV1().Secrets("ns").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitChange(change{KindSecret, "ns", "s"})
	if s, err := h.m.GetSecret(ctx, "ns", "s"); err != nil || string(s.Data["x"]) != "y" {
		t.Fatalf("GetSecret after create = %v, %v", s, err)
	}

	// A ConfigMap changes: visible in Get by the time OnChange runs.
	upd := cm("a", "2")
	upd.ResourceVersion = "2"
	if _, err := h.client.CoreV1().ConfigMaps("ns").Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitChange(change{KindConfigMap, "ns", "a"})
	if got, _ := h.m.GetConfigMap(ctx, "ns", "a"); got.Data["k"] != "2" {
		t.Fatalf("GetConfigMap after update = %v; want 2", got.Data)
	}

	// An object of the same namespace that nobody references is ignored.
	if _, err := h.client.CoreV1().ConfigMaps("ns").Create(ctx, cm("other", "x"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Deletion is a change too, and Get then reports NotFound.
	if err := h.client.CoreV1().ConfigMaps("ns").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitChange(change{KindConfigMap, "ns", "a"})
	if _, err := h.m.GetConfigMap(ctx, "ns", "a"); !apierrors.IsNotFound(err) {
		t.Fatalf("GetConfigMap after delete = %v; want NotFound", err)
	}
	select {
	case c := <-h.changes:
		if c.name == "other" {
			t.Fatalf("change reported for an unreferenced object: %v", c)
		}
	default:
	}
}

func TestReferenceCounting(t *testing.T) {
	h := newHarness(t, cm("a", "1"), cm("b", "1"))
	p1, p2 := podWith("u1", "a", ""), podWith("u2", "a", "")
	h.m.RegisterPod(p1)
	h.m.RegisterPod(p2)
	h.m.RegisterPod(p1) // idempotent
	if n := h.watchCount(); n != 1 {
		t.Fatalf("watches = %d; want 1 shared watch", n)
	}
	h.m.UnregisterPod(p1)
	if n := h.watchCount(); n != 1 {
		t.Fatalf("watches after one of two pods left = %d; want 1", n)
	}
	// p2 now references b instead of a: a is dropped.
	h.m.RegisterPod(podWith("u2", "b", ""))
	h.m.mu.Lock()
	_, hasA := h.m.watches[key{KindConfigMap, "ns", "a"}]
	_, hasB := h.m.watches[key{KindConfigMap, "ns", "b"}]
	h.m.mu.Unlock()
	if hasA || !hasB {
		t.Fatalf("after re-registration: watching a=%v b=%v; want only b", hasA, hasB)
	}
	h.m.UnregisterPod(p2)
	if n := h.watchCount(); n != 0 {
		t.Fatalf("watches after all pods left = %d; want 0", n)
	}
	// Unregistered objects are still readable straight from the API.
	if got, err := h.m.GetConfigMap(context.Background(), "ns", "a"); err != nil || got.Data["k"] != "1" {
		t.Fatalf("GetConfigMap of an unregistered object = %v, %v", got, err)
	}
	if _, err := h.m.GetConfigMap(context.Background(), "ns", "missing"); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `configmap "missing" not found`) {
		t.Fatalf("GetConfigMap of a missing unregistered object = %v", err)
	}
}

func (h *harness) watchCount() int {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	return len(h.m.watches)
}

func TestImmutableStopsWatching(t *testing.T) {
	yes := true
	c := cm("a", "1")
	c.Immutable = &yes
	h := newHarness(t, c)
	h.m.RegisterPod(podWith("u1", "a", ""))
	if got, err := h.m.GetConfigMap(context.Background(), "ns", "a"); err != nil || got.Data["k"] != "1" {
		t.Fatalf("GetConfigMap = %v, %v", got, err)
	}
	h.m.mu.Lock()
	w := h.m.watches[key{KindConfigMap, "ns", "a"}]
	stopped := w.immutable && w.cancel == nil
	h.m.mu.Unlock()
	if !stopped {
		t.Fatal("watch of an immutable ConfigMap still running")
	}
	if got, err := h.m.GetConfigMap(context.Background(), "ns", "a"); err != nil || got.Data["k"] != "1" {
		t.Fatalf("GetConfigMap after stop = %v, %v", got, err)
	}
}

func TestStandalone(t *testing.T) {
	m := New(Options{})
	m.RegisterPod(podWith("u1", "a", "s"))
	_, err := m.GetConfigMap(context.Background(), "ns", "a")
	if err == nil || !strings.Contains(err.Error(), "standalone") {
		t.Fatalf("GetConfigMap in standalone mode = %v; want a standalone error", err)
	}
	if apierrors.IsNotFound(err) {
		t.Fatal("standalone error must not look like NotFound (optional references would pass)")
	}
}

func TestGetBeforeRunAsksTheAPI(t *testing.T) {
	m := New(Options{Client: fake.NewClientset(cm("a", "1"))})
	m.RegisterPod(podWith("u1", "a", ""))
	if got, err := m.GetConfigMap(context.Background(), "ns", "a"); err != nil || got.Data["k"] != "1" {
		t.Fatalf("GetConfigMap before Run = %v, %v", got, err)
	}
}

func TestReferences(t *testing.T) {
	opt := true
	pod := &v1.Pod{Spec: v1.PodSpec{
		ImagePullSecrets: []v1.LocalObjectReference{{Name: "pull"}},
		Volumes: []v1.Volume{
			{Name: "a", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cm-vol"}}}},
			{Name: "b", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec-vol", Optional: &opt}}},
			{Name: "c", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
				{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
				{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "sec-proj"}}},
				{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}},
			}}}},
			{Name: "d", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		},
		InitContainers: []v1.Container{{Name: "i", EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cm-init"}}}}}},
		Containers: []v1.Container{{Name: "c", Env: []v1.EnvVar{
			{Name: "A", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "sec-env"}, Key: "k"}}},
			{Name: "B", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cm-vol"}, Key: "k"}}},
			{Name: "C", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		}}},
		EphemeralContainers: []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "e", EnvFrom: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "sec-eph"}}}}}}},
	}}
	want := []ref{
		{KindSecret, "pull"}, {KindConfigMap, "cm-vol"}, {KindSecret, "sec-vol"}, {KindConfigMap, "kube-root-ca.crt"},
		{KindSecret, "sec-proj"}, {KindConfigMap, "cm-init"}, {KindSecret, "sec-env"}, {KindSecret, "sec-eph"},
	}
	got := references(pod)
	if len(got) != len(want) {
		t.Fatalf("references = %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("references = %v; want %v", got, want)
		}
	}
}
