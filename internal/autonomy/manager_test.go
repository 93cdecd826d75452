package autonomy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/source"
)

// guard bounds every wait so that a broken test fails instead of hanging.
const guard = 10 * time.Second

// fakeObjects is the objects manager: a map, or an error for everything.
type fakeObjects struct {
	cms  map[string]*v1.ConfigMap
	secs map[string]*v1.Secret
	err  error
}

func (f *fakeObjects) RegisterPod(*v1.Pod)   {}
func (f *fakeObjects) UnregisterPod(*v1.Pod) {}
func (f *fakeObjects) GetConfigMap(_ context.Context, ns, name string) (*v1.ConfigMap, error) {
	if f.err != nil {
		return nil, f.err
	}
	if c, ok := f.cms[ns+"/"+name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
}
func (f *fakeObjects) GetSecret(_ context.Context, ns, name string) (*v1.Secret, error) {
	if f.err != nil {
		return nil, f.err
	}
	if s, ok := f.secs[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
}

type fakeServices struct{ svcs map[string][]*v1.Service }

func (f *fakeServices) HasSynced() bool                       { return true }
func (f *fakeServices) List(ns string) ([]*v1.Service, error) { return f.svcs[ns], nil }

func podReading(uid, cm, secret string) *v1.Pod {
	p := apiPod(uid, "1", v1.PodRunning)
	p.Spec.Volumes = []v1.Volume{
		{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: cm}}}},
		{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: secret}}},
	}
	return p
}

// waitFor polls cond without sleeping long; the writer runs on its own
// goroutine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func TestWriterFollowsTheAPI(t *testing.T) {
	root := t.TempDir()
	store, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	objs := &fakeObjects{
		cms:  map[string]*v1.ConfigMap{"ns/cm": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}, Data: map[string]string{"k": "v1"}}},
		secs: map[string]*v1.Secret{"ns/sec": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sec"}, Data: map[string][]byte{"k": []byte("s1")}}},
	}
	svcs := &fakeServices{svcs: map[string][]*v1.Service{"default": {{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes", ResourceVersion: "1"}}}}}
	m := New(Options{Store: store, Objects: objs, Services: svcs})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	dir := filepath.Join(root, DirName)
	a, b := podReading("a", "cm", "sec"), podReading("b", "cm", "other")
	// The API lists two pods; their objects are reported as the
	// watches list them.
	m.update(func(p *pending) { p.snapshot = []*v1.Pod{a, b} })
	m.ObjectChanged(kindConfigMap, "ns", "cm")
	m.ObjectChanged(kindSecret, "ns", "sec")
	m.TokenIssued("a", "tok", 0, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: "t"}})
	waitFor(t, "pods, objects, services and token written", func() bool {
		return exists(filepath.Join(dir, podsDir, "a", podFile)) && exists(filepath.Join(dir, podsDir, "b", podFile)) &&
			exists(filepath.Join(dir, cmDir, "ns", "cm.json")) && exists(filepath.Join(dir, secDir, "ns", "sec")) &&
			exists(filepath.Join(dir, svcDir, "default.json")) && exists(filepath.Join(dir, svcDir, "ns.json")) &&
			exists(filepath.Join(dir, podsDir, "a", "token-tok-0"))
	})
	if svcs, err := store.Services("default"); err != nil || len(svcs) != 1 {
		t.Fatalf("Services(default) = %v, %v", svcs, err)
	}

	// Pod a is deleted from the API: its checkpoint and token go, and so
	// does the Secret only it read; the ConfigMap b reads stays.
	m.update(func(p *pending) { p.snapshot = []*v1.Pod{b} })
	waitFor(t, "pod a's checkpoint removed", func() bool {
		return !exists(filepath.Join(dir, podsDir, "a")) && !exists(filepath.Join(dir, secDir, "ns", "sec"))
	})
	if !exists(filepath.Join(dir, cmDir, "ns", "cm.json")) || !exists(filepath.Join(dir, podsDir, "b", podFile)) {
		t.Fatal("pod b's checkpoint or its ConfigMap was removed")
	}

	// The ConfigMap is deleted from the API: its checkpoint goes.
	delete(objs.cms, "ns/cm")
	m.ObjectChanged(kindConfigMap, "ns", "cm")
	waitFor(t, "the deleted ConfigMap's checkpoint removed", func() bool { return !exists(filepath.Join(dir, cmDir, "ns", "cm.json")) })

	// Pod b completes: its checkpoint records it, so that it does not run
	// again after a restart.
	st := &v1.PodStatus{Phase: v1.PodSucceeded}
	m.StatusChanged(b, st)
	waitFor(t, "the terminal phase checkpointed", func() bool {
		pods, _ := store.Pods()
		return len(pods) == 1 && pods[0].Status.Phase == v1.PodSucceeded
	})
}

func TestRunPodsOffline(t *testing.T) {
	root := t.TempDir()
	store, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	// What an earlier berth checkpointed.
	a, b := podReading("a", "cm", "sec"), podReading("b", "cm", "sec")
	for _, p := range []*v1.Pod{a, b} {
		data, _ := podBytes(checkpointPod(p, ""))
		if err := store.writePod(p.UID, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.writeSecret(&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sec"}, Data: map[string][]byte{"k": []byte("saved")}}); err != nil {
		t.Fatal(err)
	}
	if err := store.writeToken("a", "tok", 0, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: "old"}}); err != nil {
		t.Fatal(err)
	}

	clk := clocktesting.NewFakeClock(time.Now())
	unreachable := &fakeObjects{err: errors.New("connection refused")}
	m := New(Options{Store: store, Objects: unreachable, Wait: 10 * time.Second, Clock: clk})
	api := make(chan []*v1.Pod)
	apiPods := func(ctx context.Context, out chan<- []*v1.Pod) {
		for {
			select {
			case <-ctx.Done():
				return
			case pods := <-api:
				out <- pods
			}
		}
	}
	var listed atomic.Int32
	run := m.RunPods(apiPods, func() { listed.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan []*v1.Pod)
	done := make(chan struct{})
	go func() { defer close(done); run(ctx, out) }()
	defer func() { cancel(); <-done }()

	if _, ok := m.RestoredToken("a", "tok", 0); ok || m.Offline() || m.Complete() {
		t.Fatal("offline before the wait is over")
	}
	waitFor(t, "the wait's timer", clk.HasWaiters)
	clk.Step(10 * time.Second)
	var got []*v1.Pod
	select {
	case got = <-out:
	case <-time.After(guard):
		t.Fatal("no checkpointed pods sent after the wait")
	}
	if len(got) != 2 || !m.Offline() || m.Complete() {
		t.Fatalf("offline snapshot: %d pods, offline %v, complete %v; want 2, true, false", len(got), m.Offline(), m.Complete())
	}
	for _, p := range got {
		if p.Annotations[source.AnnotationConfigSeen] == "" || (p.UID != "a" && p.UID != "b") {
			t.Fatalf("checkpointed pod %s/%s (%s) without its UID or first-seen time", p.Namespace, p.Name, p.UID)
		}
	}
	// Offline, objects and tokens come from the checkpoint.
	objs := m.Objects(unreachable)
	if s, err := objs.GetSecret(context.Background(), "ns", "sec"); err != nil || string(s.Data["k"]) != "saved" {
		t.Fatalf("GetSecret offline = %v, %v", s, err)
	}
	if _, err := objs.GetConfigMap(context.Background(), "ns", "cm"); !apierrors.IsNotFound(err) {
		t.Fatalf("GetConfigMap offline of an object never checkpointed = %v; want NotFound", err)
	}
	if tr, ok := m.RestoredToken("a", "tok", 0); !ok || tr.Status.Token != "old" {
		t.Fatalf("RestoredToken offline = %v, %v", tr, ok)
	}
	// A watch that lists while offline (the API is back, its pod list
	// not yet) is newer than the checkpoint.
	unreachable.err = nil
	unreachable.secs = map[string]*v1.Secret{"ns/sec": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sec"}, Data: map[string][]byte{"k": []byte("new")}}}
	m.ObjectChanged(kindSecret, "ns", "sec")
	if s, err := objs.GetSecret(context.Background(), "ns", "sec"); err != nil || string(s.Data["k"]) != "new" {
		t.Fatalf("GetSecret offline after its watch listed = %v, %v; want the watch's", s, err)
	}
	unreachable.err, unreachable.secs = errors.New("connection refused"), nil
	if !m.Services(nil).HasSynced() {
		t.Fatal("Services not synced offline: containers would wait for them")
	}

	// The API answers: one pod was deleted meanwhile.
	api <- []*v1.Pod{b}
	select {
	case got = <-out:
	case <-time.After(guard):
		t.Fatal("the API's list was not passed on")
	}
	if len(got) != 1 || got[0].UID != "b" || m.Offline() || !m.Complete() || listed.Load() != 1 {
		t.Fatalf("after the API listed: %d pods, offline %v, complete %v, onListed %d", len(got), m.Offline(), m.Complete(), listed.Load())
	}
	// Online, a failing watch still falls back to the checkpoint.
	if s, err := objs.GetSecret(context.Background(), "ns", "sec"); err != nil || string(s.Data["k"]) != "saved" {
		t.Fatalf("GetSecret online with the watch failing = %v, %v", s, err)
	}
	if _, ok := m.RestoredToken("a", "tok", 0); ok {
		t.Fatal("a checkpointed token served online: a new one must be requested")
	}
	if !m.Services(nil).HasSynced() {
		t.Fatal("Services not synced after an offline start, before the informer listed")
	}
}

func TestRunPodsOnline(t *testing.T) {
	store, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := podBytes(checkpointPod(podReading("old", "c", "s"), ""))
	if err := store.writePod("old", data); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	m := New(Options{Store: store, Objects: &fakeObjects{}, Clock: clk})
	var listed atomic.Int32
	run := m.RunPods(func(ctx context.Context, out chan<- []*v1.Pod) {
		select {
		case out <- []*v1.Pod{apiPod("new", "1", "")}:
		case <-ctx.Done():
		}
		<-ctx.Done()
	}, func() { listed.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan []*v1.Pod)
	done := make(chan struct{})
	go func() { defer close(done); run(ctx, out) }()
	defer func() { cancel(); <-done }()
	got := <-out
	if len(got) != 1 || got[0].UID != types.UID("new") || !m.Complete() || m.Offline() {
		t.Fatalf("API listed first: %d pods, complete %v, offline %v", len(got), m.Complete(), m.Offline())
	}
	// The wait passing later changes nothing.
	clk.Step(time.Hour)
	select {
	case p := <-out:
		t.Fatalf("checkpointed pods sent after the API listed: %v", p)
	case <-time.After(50 * time.Millisecond):
	}
	if listed.Load() != 0 {
		t.Fatal("onListed called without an offline start")
	}
}
