package volume

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
)

// guard bounds waits on channels so a broken test fails instead of
// hanging; nothing sleeps for it.
const guard = 10 * time.Second

// fakeObjects serves ConfigMaps and Secrets from maps.
type fakeObjects struct {
	mu         sync.Mutex
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
	registered map[types.UID]bool
}

func newFakeObjects() *fakeObjects {
	return &fakeObjects{configMaps: map[string]*v1.ConfigMap{}, secrets: map[string]*v1.Secret{}, registered: map[types.UID]bool{}}
}

func (f *fakeObjects) RegisterPod(pod *v1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registered[pod.UID] = true
}

func (f *fakeObjects) UnregisterPod(pod *v1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.registered, pod.UID)
}

func (f *fakeObjects) GetConfigMap(_ context.Context, ns, name string) (*v1.ConfigMap, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cm, ok := f.configMaps[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
}

func (f *fakeObjects) GetSecret(_ context.Context, ns, name string) (*v1.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
}

func (f *fakeObjects) setConfigMap(name string, data map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configMaps["ns/"+name] = &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: data}
}

func (f *fakeObjects) setSecret(name string, data map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets["ns/"+name] = &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: data}
}

type harness struct {
	t       *testing.T
	root    string
	m       *Manager
	client  *fake.Clientset
	objects *fakeObjects
	events  *record.FakeRecorder
	clock   *testingclock.FakeClock
	changes chan types.UID
	timers  chan struct{} // a timer was created on clock

	mu       sync.Mutex
	requests []*authenticationv1.TokenRequest
	saNames  []string
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	root := t.TempDir()
	// Runs before TempDir's removal: nothing may stay mounted in it.
	t.Cleanup(func() {
		if err := unmountAll(root); err != nil {
			t.Errorf("unmount test mounts: %v", err)
		}
	})
	h := &harness{
		t:       t,
		root:    root,
		client:  fake.NewClientset(objs...),
		objects: newFakeObjects(),
		events:  record.NewFakeRecorder(100),
		clock:   testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		changes: make(chan types.UID, 100),
		timers:  make(chan struct{}, 100),
	}
	h.client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.requests = append(h.requests, tr.DeepCopy())
		h.saNames = append(h.saNames, a.(k8stesting.CreateActionImpl).Name)
		out := tr.DeepCopy()
		out.Status.Token = fmt.Sprintf("token-%d", len(h.requests))
		out.Status.ExpirationTimestamp = metav1.NewTime(h.clock.Now().Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second))
		return true, out, nil
	})
	h.m = New(Options{
		Client:   h.client,
		Objects:  h.objects,
		RootDir:  root,
		NodeName: "node-1",
		NodeAllocatable: func() v1.ResourceList {
			return v1.ResourceList{v1.ResourceMemory: mustQ("1Gi"), v1.ResourceCPU: mustQ("4")}
		},
		Recorder: h.events,
		Clock:    notifyingClock{h.clock, h.timers},
		OnChange: func(uid types.UID) { h.changes <- uid },
	})
	return h
}

// notifyingClock reports every timer created, so a test knows when Run
// sleeps.
type notifyingClock struct {
	*testingclock.FakeClock
	timers chan struct{}
}

func (c notifyingClock) NewTimer(d time.Duration) clock.Timer {
	t := c.FakeClock.NewTimer(d)
	select {
	case c.timers <- struct{}{}:
	default:
	}
	return t
}

func (h *harness) tokenRequests() []*authenticationv1.TokenRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*authenticationv1.TokenRequest(nil), h.requests...)
}

// run starts the manager's loop for the rest of the test.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.m.Run(ctx); close(done) }()
	h.t.Cleanup(func() { cancel(); <-done })
}

func (h *harness) waitChange(uid types.UID) {
	h.t.Helper()
	select {
	case got := <-h.changes:
		if got != uid {
			h.t.Fatalf("OnChange(%s); want %s", got, uid)
		}
	case <-time.After(guard):
		h.t.Fatalf("no OnChange for pod %s", uid)
	}
}

// event returns the next recorded event, "" if none.
func (h *harness) event() string {
	select {
	case e := <-h.events.Events:
		return e
	default:
		return ""
	}
}

func (h *harness) mustSetUp(pod *v1.Pod) {
	h.t.Helper()
	if err := h.m.SetUp(context.Background(), pod); err != nil {
		h.t.Fatalf("SetUp: %v", err)
	}
}

func (h *harness) path(pod *v1.Pod, volume string) string {
	h.t.Helper()
	p, ok := h.m.HostPath(pod.UID, volume)
	if !ok {
		h.t.Fatalf("volume %s not set up", volume)
	}
	return p
}

func (h *harness) read(pod *v1.Pod, volume, file string) string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.path(pod, volume), file))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }

// newPod returns a pod whose one container mounts every volume.
func newPod(uid string, vols ...v1.Volume) *v1.Pod {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pod-" + uid, UID: types.UID(uid)},
		Spec:       v1.PodSpec{Volumes: vols, Containers: []v1.Container{{Name: "c"}}},
	}
	for _, v := range vols {
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, v1.VolumeMount{Name: v.Name, MountPath: "/" + v.Name})
	}
	return pod
}

func ptr[T any](v T) *T { return &v }

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode()
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
