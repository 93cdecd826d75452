package container

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestFieldPath(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{
		InitContainers:      []v1.Container{{Name: "init"}},
		Containers:          []v1.Container{{Name: "app"}},
		EphemeralContainers: []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug"}}},
	}}
	for name, want := range map[string]string{
		"init":  "spec.initContainers{init}",
		"app":   "spec.containers{app}",
		"debug": "spec.ephemeralContainers{debug}",
		"gone":  "spec.containers{gone}",
	} {
		if got := FieldPath(pod, name); got != want {
			t.Errorf("FieldPath(%s) = %q, want %q", name, got, want)
		}
	}
	if got := FieldPath(nil, "x"); got != "spec.containers{x}" {
		t.Errorf("FieldPath of an orphan = %q", got)
	}
}
