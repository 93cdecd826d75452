package image

import (
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestImageGCOrderAndPick(t *testing.T) {
	t0 := time.Unix(1000, 0)
	images := []*runtimeapi.Image{
		{Id: "sha256:used", RepoTags: []string{"app:1"}, Size: 100},
		{Id: "sha256:pause", RepoTags: []string{"registry.k8s.io/pause:3.10"}, Size: 1},
		{Id: "sha256:pinned", Pinned: true, Size: 100},
		{Id: "sha256:old", Size: 30},
		{Id: "sha256:older", Size: 20},
		{Id: "sha256:new", Size: 50},
	}
	// Detected at t0; "older" was used at t0, "old" later, then nothing.
	records := detect(nil, images, map[string]bool{"sha256:older": true}, t0)
	records = detect(records, images, map[string]bool{"sha256:old": true}, t0.Add(time.Minute))
	// "new" appears later.
	delete(records, "sha256:new")
	now := t0.Add(10 * time.Minute)
	inUse := map[string]bool{"app:1": true, "registry.k8s.io/pause:3.10": true}
	records = detect(records, images, inUse, now.Add(-time.Minute))
	order := evictionOrder(records, images, inUse)
	var ids []string
	for _, c := range order {
		ids = append(ids, c.id)
	}
	// Never in use, pinned or the sandbox image; least recently used first
	// (never used counts as oldest), ties by first detection.
	if want := []string{"sha256:new", "sha256:older", "sha256:old"}; !slices.Equal(ids, want) {
		t.Fatalf("eviction order %v, want %v", ids, want)
	}
	// minAge keeps "new" (first seen a minute ago).
	picked, freed := pickToFree(order, 40, now, 2*time.Minute)
	if len(picked) != 2 || picked[0].id != "sha256:older" || picked[1].id != "sha256:old" || freed != 50 {
		t.Fatalf("picked %v freeing %d", picked, freed)
	}
	picked, freed = pickToFree(order, 10, now, 0)
	if len(picked) != 1 || picked[0].id != "sha256:new" || freed != 50 {
		t.Fatalf("picked %v freeing %d", picked, freed)
	}
	keep, old := splitOld(order, now, 5*time.Minute)
	if len(old) != 3 || len(keep) != 0 {
		t.Fatalf("old %v keep %v", old, keep)
	}
}

func TestAmountToFree(t *testing.T) {
	p := GCPolicy{HighThresholdPercent: 85, LowThresholdPercent: 80}
	tests := []struct {
		capacity, available, want int64
		usage                     int
	}{
		{1000, 200, 0, 80},  // under the high threshold
		{1000, 150, 50, 85}, // at it: down to 80%
		{1000, 10, 190, 99},
		{1000, 2000, 0, 0}, // available capped at capacity
	}
	for _, tt := range tests {
		got, usage, err := amountToFree(tt.capacity, tt.available, p)
		if err != nil || got != tt.want || usage != tt.usage {
			t.Errorf("amountToFree(%d, %d) = %d, %d, %v; want %d, %d", tt.capacity, tt.available, got, usage, err, tt.want, tt.usage)
		}
	}
	if _, _, err := amountToFree(0, 0, p); err == nil {
		t.Error("capacity 0 accepted")
	}
}
