package source

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIsStaticAndCritical(t *testing.T) {
	pod := func(annotations map[string]string, priority *int32) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: annotations}, Spec: v1.PodSpec{Priority: priority}}
	}
	prio := func(p int32) *int32 { return &p }
	tests := []struct {
		name             string
		pod              *v1.Pod
		static, critical bool
	}{
		{"no source", pod(nil, nil), false, false},
		{"from the API", pod(map[string]string{AnnotationConfigSource: SourceAPI}, nil), false, false},
		{"from a file", pod(map[string]string{AnnotationConfigSource: SourceFile}, nil), true, true},
		{"from a URL", pod(map[string]string{AnnotationConfigSource: "http"}, nil), true, true},
		{"mirror", pod(map[string]string{AnnotationConfigSource: SourceAPI, AnnotationConfigMirror: "h"}, nil), false, true},
		{"system priority", pod(map[string]string{AnnotationConfigSource: SourceAPI}, prio(SystemCriticalPriority)), false, true},
		{"just below", pod(map[string]string{AnnotationConfigSource: SourceAPI}, prio(SystemCriticalPriority-1)), false, false},
	}
	for _, tt := range tests {
		if got := IsStatic(tt.pod); got != tt.static {
			t.Errorf("%s: IsStatic = %v, want %v", tt.name, got, tt.static)
		}
		if got := IsCritical(tt.pod); got != tt.critical {
			t.Errorf("%s: IsCritical = %v, want %v", tt.name, got, tt.critical)
		}
	}
}
