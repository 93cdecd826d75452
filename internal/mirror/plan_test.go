package mirror

import (
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/internal/source"
)

// static is a static pod as berth's file source makes it.
func static(name, hash string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "kube-system", Name: name, UID: types.UID(hash),
			Labels: map[string]string{"component": name},
			Annotations: map[string]string{
				source.AnnotationConfigSource: source.SourceFile,
				source.AnnotationConfigHash:   hash,
				source.AnnotationConfigSeen:   "2030-01-01T00:00:00.000000000Z",
			},
		},
		Spec: v1.PodSpec{NodeName: "node-a", Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
	}
}

// mirrorOf is the API server's mirror pod with the given hash.
func mirrorOf(name, hash string, uid types.UID) *v1.Pod {
	p := NewMirrorPod(static(name, hash), node())
	p.UID = uid
	return p
}

func node() *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "node-uid"}}
}

func names(pods []*v1.Pod) []string {
	var out []string
	for _, p := range pods {
		s := p.Name
		if p.UID != "" {
			s += "@" + string(p.UID)
		}
		out = append(out, s)
	}
	return out
}

func TestPlan(t *testing.T) {
	deleting := func(p *v1.Pod) *v1.Pod {
		p.DeletionTimestamp = &metav1.Time{Time: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		return p
	}
	notMirror := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "stray", UID: "stray-uid"}}
	tests := []struct {
		name       string
		static     []*v1.Pod
		mirrors    []*v1.Pod
		wantCreate []string
		wantDelete []string
	}{{
		name: "nothing",
	}, {
		name:       "static pod without a mirror: create",
		static:     []*v1.Pod{static("etcd", "h1"), static("apiserver", "h2")},
		mirrors:    []*v1.Pod{mirrorOf("apiserver", "h2", "m2")},
		wantCreate: []string{"etcd@h1"},
	}, {
		name:    "current mirror: nothing to do",
		static:  []*v1.Pod{static("etcd", "h1")},
		mirrors: []*v1.Pod{mirrorOf("etcd", "h1", "m1")},
	}, {
		name:       "manifest changed: delete the stale mirror, create a new one",
		static:     []*v1.Pod{static("etcd", "h2")},
		mirrors:    []*v1.Pod{mirrorOf("etcd", "h1", "m1")},
		wantCreate: []string{"etcd@h2"},
		wantDelete: []string{"etcd@m1"},
	}, {
		name:       "static pod gone: delete its mirror",
		static:     []*v1.Pod{static("etcd", "h1")},
		mirrors:    []*v1.Pod{mirrorOf("etcd", "h1", "m1"), mirrorOf("scheduler", "h3", "m3")},
		wantDelete: []string{"scheduler@m3"},
	}, {
		name:       "mirror deleted by someone: finish the deletion, recreate",
		static:     []*v1.Pod{static("etcd", "h1")},
		mirrors:    []*v1.Pod{deleting(mirrorOf("etcd", "h1", "m1"))},
		wantCreate: []string{"etcd@h1"},
		wantDelete: []string{"etcd@m1"},
	}, {
		name:       "same name in another namespace is another pod",
		static:     []*v1.Pod{static("etcd", "h1")},
		mirrors:    []*v1.Pod{func() *v1.Pod { p := mirrorOf("etcd", "h1", "m1"); p.Namespace = "default"; return p }()},
		wantCreate: []string{"etcd@h1"},
		wantDelete: []string{"etcd@m1"},
	}, {
		name:       "pods without the mirror annotation are not ours",
		mirrors:    []*v1.Pod{notMirror},
		wantCreate: nil,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			create, del := Plan(tc.static, tc.mirrors)
			if got := names(create); !slices.Equal(got, tc.wantCreate) {
				t.Errorf("create = %v, want %v", got, tc.wantCreate)
			}
			if got := names(del); !slices.Equal(got, tc.wantDelete) {
				t.Errorf("delete = %v, want %v", got, tc.wantDelete)
			}
		})
	}
}

func TestNewMirrorPod(t *testing.T) {
	s := static("etcd", "h1")
	s.Spec.NodeName = ""
	s.Status.Phase = v1.PodRunning
	before := s.DeepCopy()

	got := NewMirrorPod(s, node())
	want := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "kube-system", Name: "etcd",
			Labels: map[string]string{"component": "etcd"},
			Annotations: map[string]string{
				source.AnnotationConfigSource: source.SourceFile,
				source.AnnotationConfigHash:   "h1",
				source.AnnotationConfigSeen:   "2030-01-01T00:00:00.000000000Z",
				source.AnnotationConfigMirror: "h1",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: "node-a", UID: "node-uid", Controller: ptr.To(true),
			}},
		},
		Spec: v1.PodSpec{NodeName: "node-a", Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
	}
	if !apiequality.Semantic.DeepEqual(got, want) {
		t.Errorf("mirror pod differs (-want +got):\n%s", diff.Diff(want, got))
	}
	if !apiequality.Semantic.DeepEqual(s, before) {
		t.Errorf("NewMirrorPod modified the static pod")
	}
	// No memory is shared with the static pod.
	got.Labels["x"] = "y"
	got.Spec.Containers[0].Image = "other"
	if !apiequality.Semantic.DeepEqual(s, before) {
		t.Errorf("the mirror pod shares memory with the static pod")
	}
	if !IsMirror(got) || !IsMirrorOf(got, s) || IsMirrorOf(got, static("etcd", "h2")) {
		t.Errorf("IsMirror/IsMirrorOf disagree with NewMirrorPod")
	}
}

func TestNewMirrorPodNoAnnotations(t *testing.T) {
	s := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1"}}
	got := NewMirrorPod(s, nil)
	if got.Annotations[source.AnnotationConfigMirror] != "u1" || len(got.OwnerReferences) != 0 {
		t.Errorf("mirror of a pod without a hash = %+v; want the UID as hash and no owner", got.ObjectMeta)
	}
}
