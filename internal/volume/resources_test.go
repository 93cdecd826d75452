package volume

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func withMem(limit string) v1.Container {
	c := v1.Container{Name: "c" + limit}
	if limit != "" {
		c.Resources.Limits = v1.ResourceList{v1.ResourceMemory: resource.MustParse(limit)}
	}
	return c
}

func TestPodMemoryLimit(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	sidecar := withMem("10Mi")
	sidecar.RestartPolicy = &always
	cases := []struct {
		name   string
		spec   v1.PodSpec
		want   int64
		wantOK bool
	}{
		{"sum of containers", v1.PodSpec{Containers: []v1.Container{withMem("10Mi"), withMem("20Mi")}}, 30 << 20, true},
		{"one without limit", v1.PodSpec{Containers: []v1.Container{withMem("10Mi"), withMem("")}}, 0, false},
		{"init container larger", v1.PodSpec{InitContainers: []v1.Container{withMem("100Mi")}, Containers: []v1.Container{withMem("10Mi")}}, 100 << 20, true},
		{"sidecar adds", v1.PodSpec{InitContainers: []v1.Container{sidecar, withMem("5Mi")}, Containers: []v1.Container{withMem("10Mi")}}, 20 << 20, true},
		{"overhead", v1.PodSpec{Overhead: v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Mi")}, Containers: []v1.Container{withMem("10Mi")}}, 11 << 20, true},
		{"pod-level", v1.PodSpec{Resources: &v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("50Mi")}}, Containers: []v1.Container{withMem("")}}, 50 << 20, true},
	}
	for _, tc := range cases {
		got, ok := podMemoryLimit(&v1.Pod{Spec: tc.spec})
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: podMemoryLimit = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}
