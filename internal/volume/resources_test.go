package volume

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

func TestFieldValue(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "p", Namespace: "ns", UID: "u",
		Labels:      map[string]string{"b": "2", "a": "1"},
		Annotations: map[string]string{"note": "say \"hi\"\n"},
	}}
	cases := []struct {
		path, want string
		wantErr    bool
	}{
		{"metadata.name", "p", false},
		{"metadata.namespace", "ns", false},
		{"metadata.uid", "u", false},
		{"metadata.labels", "a=\"1\"\nb=\"2\"", false},
		{"metadata.annotations", `note="say \"hi\"\n"`, false},
		{"metadata.labels['b']", "2", false},
		{"metadata.labels['missing']", "", false},
		{"metadata.annotations['note']", "say \"hi\"\n", false},
		{"spec.nodeName", "", true},
		{"metadata.name['x']", "", true},
	}
	for _, tc := range cases {
		got, err := fieldValue(pod, tc.path)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("fieldValue(%s) = %q, %v; want %q, error %v", tc.path, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestResourceValue(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("1500m")},
		Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("100Mi"), "hugepages-2Mi": resource.MustParse("4Mi")},
	}}}}}
	alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("2Gi")}
	cases := []struct {
		resource, divisor, want string
		wantErr                 bool
	}{
		{"limits.cpu", "", "2", false}, // 1.5 rounds up
		{"limits.cpu", "1m", "1500", false},
		{"limits.memory", "1Mi", "2048", false}, // unset: node allocatable
		{"requests.memory", "1Mi", "100", false},
		{"requests.cpu", "", "0", false},
		{"requests.hugepages-2Mi", "1Mi", "4", false},
		{"limits.foo", "", "", true},
	}
	for _, tc := range cases {
		sel := &v1.ResourceFieldSelector{ContainerName: "c", Resource: tc.resource}
		if tc.divisor != "" {
			sel.Divisor = resource.MustParse(tc.divisor)
		}
		got, err := resourceValue(pod, sel, alloc)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("resourceValue(%s/%s) = %q, %v; want %q, error %v", tc.resource, tc.divisor, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := resourceValue(pod, &v1.ResourceFieldSelector{ContainerName: "nope", Resource: "limits.cpu"}, alloc); err == nil {
		t.Error("unknown container accepted")
	}
}
