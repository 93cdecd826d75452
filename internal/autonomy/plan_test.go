package autonomy

import (
	"crypto/sha256"
	"encoding/json"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/source"
)

func apiPod(uid, rv string, phase v1.PodPhase) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p-" + uid, UID: types.UID(uid), ResourceVersion: rv,
			Annotations: map[string]string{source.AnnotationConfigSeen: "t-" + rv}},
		Spec:   v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "img"}}},
		Status: v1.PodStatus{Phase: phase, PodIP: "10.0.0." + rv},
	}
}

func sumOf(t *testing.T, pod *v1.Pod, phase v1.PodPhase) digest {
	t.Helper()
	b, err := podBytes(checkpointPod(pod, phase))
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestPlanPods(t *testing.T) {
	a1 := apiPod("a", "1", v1.PodPending)
	a2 := apiPod("a", "2", v1.PodRunning) // status-only change: new RV, phase, IP, seen
	changed := apiPod("a", "3", v1.PodRunning)
	changed.Spec.Containers[0].Image = "img2"
	b := apiPod("b", "1", v1.PodRunning)

	for _, tc := range []struct {
		name        string
		snapshot    []*v1.Pod
		terminal    map[types.UID]v1.PodPhase
		written     map[types.UID]digest
		wantWrites  []types.UID
		wantRemoves []types.UID
	}{
		{name: "new pods are written", snapshot: []*v1.Pod{a1, b}, written: map[types.UID]digest{}, wantWrites: []types.UID{"a", "b"}},
		{name: "a status-only change writes nothing", snapshot: []*v1.Pod{a2}, written: map[types.UID]digest{"a": sumOf(t, a1, "")}},
		{name: "a spec change is written", snapshot: []*v1.Pod{changed}, written: map[types.UID]digest{"a": sumOf(t, a1, "")}, wantWrites: []types.UID{"a"}},
		{name: "a pod the API no longer lists is removed", snapshot: []*v1.Pod{b}, written: map[types.UID]digest{"a": sumOf(t, a1, ""), "b": sumOf(t, b, "")}, wantRemoves: []types.UID{"a"}},
		{name: "an empty list removes every pod", snapshot: []*v1.Pod{}, written: map[types.UID]digest{"a": {}, "b": {}}, wantRemoves: []types.UID{"a", "b"}},
		{name: "a terminal phase berth reached is written", snapshot: []*v1.Pod{a2}, terminal: map[types.UID]v1.PodPhase{"a": v1.PodSucceeded},
			written: map[types.UID]digest{"a": sumOf(t, a1, "")}, wantWrites: []types.UID{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writes, removes, err := planPods(tc.snapshot, tc.terminal, tc.written)
			if err != nil {
				t.Fatal(err)
			}
			var got []types.UID
			for _, w := range writes {
				got = append(got, w.uid)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantWrites) || !slices.Equal(removes, tc.wantRemoves) {
				t.Fatalf("writes %v removes %v; want %v, %v", got, removes, tc.wantWrites, tc.wantRemoves)
			}
		})
	}
}

func TestCheckpointPod(t *testing.T) {
	p := apiPod("a", "7", v1.PodRunning)
	got := checkpointPod(p, v1.PodFailed)
	if got.ResourceVersion != "" || got.Status.PodIP != "" || got.Annotations[source.AnnotationConfigSeen] != "" {
		t.Fatalf("checkpoint keeps what changes on its own: %+v", got)
	}
	if got.Status.Phase != v1.PodFailed || got.UID != "a" || got.Spec.Containers[0].Image != "img" {
		t.Fatalf("checkpoint = %+v; want UID, spec and phase Failed", got)
	}
	if p.Annotations[source.AnnotationConfigSeen] == "" || p.ResourceVersion != "7" {
		t.Fatal("the source's pod was modified")
	}
	// The API's own terminal phase wins; a non-terminal one is left out.
	if got := checkpointPod(apiPod("a", "1", v1.PodSucceeded), v1.PodFailed); got.Status.Phase != v1.PodSucceeded {
		t.Fatalf("phase %s; want the API's Succeeded", got.Status.Phase)
	}
	if got := checkpointPod(apiPod("a", "1", v1.PodRunning), ""); got.Status.Phase != "" {
		t.Fatalf("phase %s; want none", got.Status.Phase)
	}
	b, _ := json.Marshal(got)
	if len(b) == 0 {
		t.Fatal("empty checkpoint")
	}
}

func TestReferencedAndNamespaces(t *testing.T) {
	p := apiPod("a", "1", "")
	p.Spec.Volumes = []v1.Volume{
		{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}}}},
		{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec"}}},
	}
	refs := referencedObjects([]*v1.Pod{p})
	if len(refs) != 2 || !refs[objectKey{kindConfigMap, "ns", "cm"}] || !refs[objectKey{kindSecret, "ns", "sec"}] {
		t.Fatalf("referencedObjects = %v", refs)
	}
	if ns := serviceNamespaces([]*v1.Pod{p}); len(ns) != 2 || !ns["ns"] || !ns["default"] {
		t.Fatalf("serviceNamespaces = %v", ns)
	}
	a := []*v1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "x", ResourceVersion: "1"}}, {ObjectMeta: metav1.ObjectMeta{Name: "y", ResourceVersion: "2"}}}
	if servicesVersion(a) != servicesVersion([]*v1.Service{a[1], a[0]}) {
		t.Fatal("servicesVersion depends on the order")
	}
}
