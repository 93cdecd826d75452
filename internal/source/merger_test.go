package source

import (
	"bytes"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/textlogger"
)

func metav1ObjectMeta(ns, name, uid string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}
}

func newTestMerger() (*Merger, *bytes.Buffer) {
	var buf bytes.Buffer
	return NewMerger(textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&buf)))), &buf
}

func TestMergerSeen(t *testing.T) {
	m, _ := newTestMerger()
	if m.Seen(SourceFile) || m.SeenAllSources(SourceFile) {
		t.Fatal("file seen before any Set")
	}
	if !m.SeenAllSources() {
		t.Error("SeenAllSources() with no names = false, want true")
	}
	if changes := m.Set(SourceFile, nil); len(changes) != 0 {
		t.Errorf("empty first Set returned %v", describe(changes))
	}
	if !m.Seen(SourceFile) || !m.SeenAllSources(SourceFile) {
		t.Error("file not seen after an empty Set")
	}
	if m.SeenAllSources(SourceFile, SourceAPI) {
		t.Error("api seen without a Set")
	}
	m.Set(SourceAPI, []*v1.Pod{})
	if !m.SeenAllSources(SourceFile, SourceAPI) {
		t.Error("not all seen after both Set")
	}
}

// step is one Set call and the changes it must return.
type step struct {
	source string
	pods   []*v1.Pod
	want   []string
	logs   []string // substrings the log must gain in this step
}

func runSteps(t *testing.T, steps []step) *Merger {
	t.Helper()
	m, buf := newTestMerger()
	for i, s := range steps {
		before := buf.Len()
		got := describe(m.Set(s.source, s.pods))
		if !equalStrings(got, s.want) {
			t.Errorf("step %d: Set(%s) = %q, want %q", i, s.source, got, s.want)
		}
		logged := buf.String()[before:]
		for _, l := range s.logs {
			if !strings.Contains(logged, l) {
				t.Errorf("step %d: log %q does not contain %q", i, logged, l)
			}
		}
		if len(s.logs) == 0 && logged != "" {
			t.Errorf("step %d: unexpected log %q", i, logged)
		}
	}
	return m
}

func TestMergerSet(t *testing.T) {
	a := testPod("default", "a", "uid-a", "nginx:1")
	b := testPod("default", "b", "uid-b", "nginx:1")
	a2 := testPod("default", "a", "uid-a2", "nginx:2")
	apiA := testPod("default", "a", "uid-api-a", "nginx:1")

	tests := []struct {
		name  string
		steps []step
	}{{
		name: "add, keep, remove",
		steps: []step{
			{source: SourceFile, pods: []*v1.Pod{a, b}, want: []string{"Add default/a uid-a", "Add default/b uid-b"}},
			{source: SourceFile, pods: []*v1.Pod{a, b}},
			{source: SourceFile, pods: []*v1.Pod{b}, want: []string{"Remove default/a uid-a"}},
		},
	}, {
		name: "sources do not remove each other's pods",
		steps: []step{
			{source: SourceFile, pods: []*v1.Pod{a}, want: []string{"Add default/a uid-a"}},
			{source: SourceAPI, pods: []*v1.Pod{b}, want: []string{"Add default/b uid-b"}},
			{source: SourceAPI, pods: nil, want: []string{"Remove default/b uid-b"}},
		},
	}, {
		name: "duplicate name in one snapshot: first wins, logged once",
		steps: []step{
			{source: SourceFile, pods: []*v1.Pod{a, a2}, want: []string{"Add default/a uid-a"},
				logs: []string{"Ignoring pod", "uid-a2"}},
			{source: SourceFile, pods: []*v1.Pod{a, a2}},
			// The winner goes: the other takes its place.
			{source: SourceFile, pods: []*v1.Pod{a2}, want: []string{"Remove default/a uid-a", "Add default/a uid-a2"}},
		},
	}, {
		name: "duplicate UID in one snapshot",
		steps: []step{
			{source: SourceFile, pods: []*v1.Pod{a, testPod("default", "other", "uid-a", "x:1")},
				want: []string{"Add default/a uid-a"}, logs: []string{"same UID"}},
		},
	}, {
		name: "across sources the running pod keeps its name",
		steps: []step{
			{source: SourceFile, pods: []*v1.Pod{a}, want: []string{"Add default/a uid-a"}},
			{source: SourceAPI, pods: []*v1.Pod{apiA}, logs: []string{"uid-api-a"}},
			{source: SourceFile, pods: nil, want: []string{"Remove default/a uid-a", "Add default/a uid-api-a"}},
		},
	}, {
		name: "a newcomer earlier in the snapshot does not displace a running pod",
		steps: []step{
			{source: SourceFile, pods: []*v1.Pod{a}, want: []string{"Add default/a uid-a"}},
			{source: SourceFile, pods: []*v1.Pod{a2, a}, logs: []string{"uid-a2"}},
		},
	}, {
		name: "update keeps first seen time",
		steps: []step{
			{source: SourceFile, pods: []*v1.Pod{with(a, func(p *v1.Pod) { p.Annotations = map[string]string{AnnotationConfigSeen: "t1"} })},
				want: []string{"Add default/a uid-a"}},
			{source: SourceFile, pods: []*v1.Pod{with(a, func(p *v1.Pod) {
				p.Annotations = map[string]string{AnnotationConfigSeen: "t2"}
				p.Spec.Containers[0].Image = "nginx:9"
			})}, want: []string{"Update default/a uid-a"}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, tt.steps)
		})
	}
}

func TestMergerAnnotatesWithoutModifyingInput(t *testing.T) {
	m, _ := newTestMerger()
	in := testPod("default", "a", "uid-a", "nginx:1")
	in.Annotations = map[string]string{AnnotationConfigSeen: "t1"}
	changes := m.Set(SourceAPI, []*v1.Pod{in})
	if len(changes) != 1 {
		t.Fatalf("changes = %v", describe(changes))
	}
	if got := changes[0].Pod.Annotations[AnnotationConfigSource]; got != SourceAPI {
		t.Errorf("source annotation = %q, want %q", got, SourceAPI)
	}
	if _, ok := in.Annotations[AnnotationConfigSource]; ok {
		t.Error("Set modified the pod it was given")
	}
	if IsStatic(changes[0].Pod) {
		t.Error("api pod reported static")
	}

	changes = m.Set(SourceAPI, []*v1.Pod{with(in, func(p *v1.Pod) {
		p.Annotations[AnnotationConfigSeen] = "t2"
		p.Labels = map[string]string{"v": "2"}
	})})
	if len(changes) != 1 || changes[0].Op != Update {
		t.Fatalf("changes = %v", describe(changes))
	}
	if got := changes[0].Pod.Annotations[AnnotationConfigSeen]; got != "t1" {
		t.Errorf("seen = %q after update, want the first %q", got, "t1")
	}

	pods := m.Pods()
	if len(pods) != 1 || pods[0].Labels["v"] != "2" {
		t.Errorf("Pods() = %v", pods)
	}
}
