package container

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestHashLeavesResourcesOut(t *testing.T) {
	base := v1.Container{Name: "app", Image: "busybox", Command: []string{"sleep", "1d"}}
	small := base
	small.Resources = v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m")}}
	big := base
	big.Resources = v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceCPU: resource.MustParse("200m")}}
	other := small
	other.Image = "nginx"

	if HashContainer(&small) != HashContainer(&big) || HashContainer(&small) != HashContainer(&base) {
		t.Errorf("resources changed the hash")
	}
	if HashContainer(&small) == HashContainer(&other) {
		t.Errorf("image did not change the hash")
	}
	// Without resources the hash is the one berth always stored.
	if HashContainer(&base) != legacyHash(&base) {
		t.Errorf("hash of a container without resources changed across versions")
	}

	tests := []struct {
		name string
		spec *v1.Container
		hash uint64
		want bool
	}{
		{"new hash, any resources", &big, HashContainer(&small), true},
		{"old hash, same resources", &small, legacyHash(&small), true},
		{"old hash, resized", &big, legacyHash(&small), false},
		{"other image", &other, HashContainer(&small), false},
		{"old hash, other image", &other, legacyHash(&small), false},
	}
	for _, tt := range tests {
		if got := HashMatches(tt.spec, tt.hash); got != tt.want {
			t.Errorf("%s: HashMatches = %v, want %v", tt.name, got, tt.want)
		}
	}
}
