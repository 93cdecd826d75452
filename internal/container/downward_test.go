package container

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFieldValue(t *testing.T) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", UID: "u",
			Labels:      map[string]string{"b": "2", "a": "1"},
			Annotations: map[string]string{"note": "say \"hi\"\n", "Example.com/Owner": "me"},
		},
		Spec: v1.PodSpec{NodeName: "node-a", ServiceAccountName: "sa"},
	}
	hostNet := pod.DeepCopy()
	hostNet.Spec.HostNetwork = true
	ips := PodIPs{Pod: []string{"10.1.0.5", "fd00::5"}, Host: []string{"192.168.1.10", "fd00::10"}}
	hostOnly := PodIPs{Host: ips.Host}
	cases := []struct {
		pod     *v1.Pod
		path    string
		ips     PodIPs
		want    string
		wantErr string
	}{
		{pod, "metadata.name", PodIPs{}, "p", ""},
		{pod, "metadata.namespace", PodIPs{}, "ns", ""},
		{pod, "metadata.uid", PodIPs{}, "u", ""},
		{pod, "metadata.labels", PodIPs{}, "a=\"1\"\nb=\"2\"", ""},
		{pod, "metadata.annotations", PodIPs{}, "Example.com/Owner=\"me\"\nnote=\"say \\\"hi\\\"\\n\"", ""},
		{pod, "metadata.labels['b']", PodIPs{}, "2", ""},
		{pod, "metadata.labels['missing']", PodIPs{}, "", ""},
		{pod, "metadata.annotations['note']", PodIPs{}, "say \"hi\"\n", ""},
		// Annotation keys are checked in lower case, labels as they are.
		{pod, "metadata.annotations['Example.com/Owner']", PodIPs{}, "me", ""},
		{pod, "metadata.labels['bad key']", PodIPs{}, "", "invalid key subscript in metadata.labels['bad key']: "},
		{pod, "metadata.name['x']", PodIPs{}, "", `fieldPath "metadata.name['x']" does not support subscript`},
		{pod, "spec.nodeName", PodIPs{}, "node-a", ""},
		{pod, "spec.serviceAccountName", PodIPs{}, "sa", ""},
		{pod, "spec.hostname", PodIPs{}, "", "unsupported fieldPath: spec.hostname"},
		{pod, "status.hostIP", ips, "192.168.1.10", ""},
		{pod, "status.hostIPs", ips, "192.168.1.10,fd00::10", ""},
		{pod, "status.podIP", ips, "10.1.0.5", ""},
		{pod, "status.podIPs", ips, "10.1.0.5,fd00::5", ""},
		// Before the runtime reports any, a pod on the pod network has no
		// IP; one on the host network has the node's.
		{pod, "status.podIP", hostOnly, "", ""},
		{hostNet, "status.podIP", hostOnly, "192.168.1.10", ""},
		{hostNet, "status.podIPs", hostOnly, "192.168.1.10,fd00::10", ""},
		{hostNet, "status.podIP", ips, "10.1.0.5", ""},
		{pod, "status.hostIP", PodIPs{}, "", ""},
	}
	for _, tc := range cases {
		got, err := FieldValue(tc.pod, tc.path, tc.ips)
		if got != tc.want || !errorHasPrefix(err, tc.wantErr) {
			t.Errorf("FieldValue(%s, hostNetwork %v) = %q, %v; want %q, error %q", tc.path, tc.pod.Spec.HostNetwork, got, err, tc.want, tc.wantErr)
		}
	}
}

func errorHasPrefix(err error, prefix string) bool {
	if prefix == "" || err == nil {
		return (prefix == "") == (err == nil)
	}
	return len(err.Error()) >= len(prefix) && err.Error()[:len(prefix)] == prefix
}

func TestResourceValue(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	pod := &v1.Pod{Spec: v1.PodSpec{
		InitContainers: []v1.Container{{Name: "init", RestartPolicy: &always, Resources: v1.ResourceRequirements{
			Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
		}}},
		Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{
			Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("1500m"), v1.ResourceMemory: resource.MustParse("0")},
			Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("100Mi"), "hugepages-2Mi": resource.MustParse("4Mi")},
		}}, {Name: "other"}},
		EphemeralContainers: []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug"}}},
	}}
	alloc := v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("2Gi"),
		v1.ResourceEphemeralStorage: resource.MustParse("10Gi"), "hugepages-2Mi": resource.MustParse("1Gi"),
	}
	cases := []struct {
		self                         string // the container whose env var it is ("" for a volume)
		container, resource, divisor string
		want                         string
		wantErr                      string
	}{
		{"", "c", "limits.cpu", "", "2", ""}, // 1.5 rounds up
		{"", "c", "limits.cpu", "1m", "1500", ""},
		{"", "c", "limits.memory", "1Mi", "2048", ""}, // a zero limit: node allocatable
		{"", "c", "requests.memory", "1Mi", "100", ""},
		{"", "c", "requests.cpu", "", "0", ""},
		{"", "c", "requests.hugepages-2Mi", "1Mi", "4", ""},
		{"", "c", "limits.hugepages-2Mi", "1Mi", "0", ""}, // never defaulted
		{"", "c", "limits.ephemeral-storage", "1Gi", "10", ""},
		{"", "c", "requests.ephemeral-storage", "", "0", ""},
		{"", "init", "limits.memory", "1Mi", "64", ""},
		{"", "debug", "limits.cpu", "", "4", ""},
		{"", "c", "limits.foo", "", "", "unsupported container resource : limits.foo"},
		{"", "c", "bogus", "", "", "unsupported container resource : bogus"},
		{"", "nope", "limits.cpu", "", "", "container nope not found"},
		{"", "", "limits.cpu", "", "", "no container for resource limits.cpu"},
		// An env var names no container: its own.
		{"c", "", "limits.cpu", "1m", "1500", ""},
		{"other", "", "limits.cpu", "", "4", ""},
		{"other", "c", "limits.cpu", "1m", "1500", ""},
	}
	for _, tc := range cases {
		sel := &v1.ResourceFieldSelector{ContainerName: tc.container, Resource: tc.resource}
		if tc.divisor != "" {
			sel.Divisor = resource.MustParse(tc.divisor)
		}
		got, err := ResourceValue(pod, FindContainer(pod, tc.self), sel, alloc)
		if got != tc.want || !errorHasPrefix(err, tc.wantErr) {
			t.Errorf("ResourceValue(%s: %s/%s %s) = %q, %v; want %q, error %q", tc.self, tc.container, tc.resource, tc.divisor, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestResourceValuePodLevel: with pod-level limits, a limit a container
// does not set reads as the pod's (cpu, memory), not the node's.
func TestResourceValuePodLevel(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{
		Containers: []v1.Container{{Name: "c"}, {Name: "own", Resources: v1.ResourceRequirements{
			Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")},
		}}},
		Resources: &v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("512Mi")}},
	}}
	alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("2Gi")}
	for _, tc := range []struct{ container, resource, want string }{
		{"c", "limits.memory", "512"},
		{"c", "limits.cpu", "4"}, // no pod-level cpu limit: the node's
		{"own", "limits.memory", "128"},
	} {
		sel := &v1.ResourceFieldSelector{ContainerName: tc.container, Resource: tc.resource, Divisor: resource.MustParse("1Mi")}
		if tc.resource == "limits.cpu" {
			sel.Divisor = resource.MustParse("1")
		}
		if got, err := ResourceValue(pod, nil, sel, alloc); got != tc.want || err != nil {
			t.Errorf("ResourceValue(%s %s) = %q, %v; want %q", tc.container, tc.resource, got, err, tc.want)
		}
	}
}

func TestFindContainer(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{
		InitContainers:      []v1.Container{{Name: "init", Image: "i"}},
		Containers:          []v1.Container{{Name: "app", Image: "a"}},
		EphemeralContainers: []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug", Image: "d"}}},
	}}
	for name, image := range map[string]string{"init": "i", "app": "a", "debug": "d", "nope": ""} {
		c := FindContainer(pod, name)
		if got := ""; c != nil {
			got = c.Image
			if got != image {
				t.Errorf("FindContainer(%s) has image %q, want %q", name, got, image)
			}
		} else if image != "" {
			t.Errorf("FindContainer(%s) = nil", name)
		}
	}
	if FindContainer(pod, "app") != &pod.Spec.Containers[0] {
		t.Error("FindContainer returns a copy of a regular container")
	}
	if FindContainer(nil, "app") != nil {
		t.Error("FindContainer(nil) is not nil")
	}
}
