package source

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// testPod returns a pod with one container running image.
func testPod(ns, name, uid, image string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1ObjectMeta(ns, name, uid),
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: image}}},
	}
}

func podMap(pods ...*v1.Pod) map[types.UID]*v1.Pod {
	m := map[types.UID]*v1.Pod{}
	for _, p := range pods {
		m[p.UID] = p
	}
	return m
}

// describe renders changes as "Op ns/name uid" lines for comparison.
func describe(changes []Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, fmt.Sprintf("%s %s/%s %s", c.Op, c.Pod.Namespace, c.Pod.Name, c.Pod.UID))
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func with(p *v1.Pod, f func(*v1.Pod)) *v1.Pod {
	p = p.DeepCopy()
	f(p)
	return p
}

func TestDiff(t *testing.T) {
	a := testPod("default", "a", "uid-a", "nginx:1")
	b := testPod("default", "b", "uid-b", "nginx:1")
	c := testPod("kube-system", "c", "uid-c", "nginx:1")
	a2 := testPod("default", "a", "uid-a2", "nginx:2") // same name, new UID

	tests := []struct {
		name     string
		old, new map[types.UID]*v1.Pod
		want     []string
	}{{
		name: "empty",
	}, {
		name: "adds sorted by namespace and name",
		new:  podMap(c, b, a),
		want: []string{"Add default/a uid-a", "Add default/b uid-b", "Add kube-system/c uid-c"},
	}, {
		name: "remove",
		old:  podMap(a, b),
		new:  podMap(b),
		want: []string{"Remove default/a uid-a"},
	}, {
		name: "unchanged",
		old:  podMap(a, b),
		new:  podMap(a.DeepCopy(), b.DeepCopy()),
	}, {
		name: "replaced under the same name: remove before add",
		old:  podMap(a),
		new:  podMap(a2),
		want: []string{"Remove default/a uid-a", "Add default/a uid-a2"},
	}, {
		name: "spec change is an update",
		old:  podMap(a),
		new:  podMap(with(a, func(p *v1.Pod) { p.Spec.Containers[0].Image = "nginx:3" })),
		want: []string{"Update default/a uid-a"},
	}, {
		name: "label change is an update",
		old:  podMap(a),
		new:  podMap(with(a, func(p *v1.Pod) { p.Labels = map[string]string{"x": "y"} })),
		want: []string{"Update default/a uid-a"},
	}, {
		name: "annotation change is an update",
		old:  podMap(a),
		new:  podMap(with(a, func(p *v1.Pod) { p.Annotations = map[string]string{"x": "y"} })),
		want: []string{"Update default/a uid-a"},
	}, {
		name: "seen annotation alone is no change",
		old:  podMap(with(a, func(p *v1.Pod) { p.Annotations = map[string]string{AnnotationConfigSeen: "t1"} })),
		new:  podMap(with(a, func(p *v1.Pod) { p.Annotations = map[string]string{AnnotationConfigSeen: "t2"} })),
	}, {
		name: "seen annotation added is no change",
		old:  podMap(a),
		new:  podMap(with(a, func(p *v1.Pod) { p.Annotations = map[string]string{AnnotationConfigSeen: "t2"} })),
	}, {
		name: "status change is no change",
		old:  podMap(a),
		new:  podMap(with(a, func(p *v1.Pod) { p.Status.Phase = v1.PodRunning })),
	}, {
		name: "empty and nil labels are equal",
		old:  podMap(with(a, func(p *v1.Pod) { p.Labels = map[string]string{} })),
		new:  podMap(a),
	}, {
		name: "deletion request is an update",
		old:  podMap(a),
		new:  podMap(with(a, func(p *v1.Pod) { g := int64(5); p.DeletionGracePeriodSeconds = &g })),
		want: []string{"Update default/a uid-a"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describe(Diff(tt.old, tt.new))
			if !equalStrings(got, tt.want) {
				t.Errorf("Diff = %q, want %q", got, tt.want)
			}
		})
	}
}

// Additions come oldest first whatever their names (upstream admits in
// creation order), after the removals and updates: after a restart a pod
// that ran before is admitted before a newer one takes its place.
func TestDiffOrdersAdditionsByAge(t *testing.T) {
	at := func(p *v1.Pod, sec int64) *v1.Pod {
		p.CreationTimestamp = metav1.Unix(sec, 0)
		return p
	}
	old := podMap(testPod("ns", "gone", "u0", "a"), testPod("ns", "kept", "u1", "a"))
	changed := testPod("ns", "kept", "u1", "b")
	next := podMap(changed,
		at(testPod("ns", "churn-112", "u3", "a"), 300),
		at(testPod("ns", "churn-94", "u2", "a"), 100),
		at(testPod("other", "a", "u4", "a"), 200),
		at(testPod("ns", "churn-95", "u5", "a"), 100))
	want := []string{
		"Remove ns/gone u0",
		"Update ns/kept u1",
		"Add ns/churn-94 u2",
		"Add ns/churn-95 u5",
		"Add other/a u4",
		"Add ns/churn-112 u3",
	}
	if got := describe(Diff(old, next)); !equalStrings(got, want) {
		t.Errorf("Diff order:\n got %q\nwant %q", got, want)
	}
}
