package status

import (
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestStore(t *testing.T) {
	var changes []types.UID
	s := NewStore(func(uid types.UID) { changes = append(changes, uid) })

	if _, ok := s.Get("a"); ok {
		t.Fatal("empty store has a status")
	}
	running := v1.PodStatus{Phase: v1.PodRunning, PodIPs: []v1.PodIP{{IP: "10.0.0.1"}}}
	if !s.Set("a", running) {
		t.Error("first Set reported no change")
	}
	if s.Set("a", *running.DeepCopy()) {
		t.Error("equal Set reported a change")
	}
	got, ok := s.Get("a")
	if !ok || got.Phase != v1.PodRunning {
		t.Fatalf("Get = %+v, %v", got, ok)
	}

	// Copies in and out: neither the caller's value nor a read one aliases the store's.
	running.PodIPs[0].IP = "mutated"
	got.PodIPs[0].IP = "mutated too"
	if again, _ := s.Get("a"); again.PodIPs[0].IP != "10.0.0.1" {
		t.Errorf("store shares memory with callers: %v", again.PodIPs)
	}

	s.Set("b", v1.PodStatus{Phase: v1.PodPending})
	if l := s.List(); len(l) != 2 || l["b"].Phase != v1.PodPending {
		t.Errorf("List = %+v", l)
	}
	s.Delete("a")
	s.Delete("a") // unknown: no notification
	if _, ok := s.Get("a"); ok {
		t.Error("deleted status still there")
	}
	want := []types.UID{"a", "b", "a"}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes %v, want %v", changes, want)
		}
	}
}

// TestStoreConcurrent is for the race detector.
func TestStoreConcurrent(t *testing.T) {
	s := NewStore(nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uid := types.UID(rune('a' + i))
			for j := range 100 {
				s.Set(uid, v1.PodStatus{Message: string(rune(j))})
				s.Get(uid)
				s.List()
			}
			s.Delete(uid)
		}()
	}
	wg.Wait()
	if n := len(s.List()); n != 0 {
		t.Errorf("%d statuses left", n)
	}
}
