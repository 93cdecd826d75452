package nodestatus

import (
	"slices"
	"testing"
)

func TestDeclaredFeatures(t *testing.T) {
	on := func(off ...string) func(string) bool {
		return func(g string) bool { return !slices.Contains(off, g) }
	}
	rows := []struct {
		name    string
		enabled func(string) bool
		want    []string
	}{
		{"defaults", on(), []string{"InPlacePodLevelResourcesVerticalScaling"}},
		{"pod-level resize off", on("InPlacePodLevelResourcesVerticalScaling"), nil},
		{"declared features off", on("NodeDeclaredFeatures"), nil},
	}
	for _, r := range rows {
		if got := DeclaredFeatures(r.enabled); !slices.Equal(got, r.want) {
			t.Errorf("%s: %v, want %v", r.name, got, r.want)
		}
	}
}
