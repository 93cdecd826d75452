package objects

import (
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// objectStore is the reflector's store for one object: it holds the latest
// version (or nothing, when the object does not exist), records the first
// complete list, and calls onChange whenever what it holds changes.
//
// It matches objects by name itself rather than trusting the field
// selector, so a server (or a fake) that returns the whole namespace is
// harmless.
type objectStore struct {
	name string
	// onChange runs outside the lock, after the new version is visible.
	onChange func(obj runtime.Object)

	mu       sync.Mutex
	obj      runtime.Object
	synced   chan struct{} // closed by the first Replace
	isSynced bool
}

var _ cache.ReflectorStore = (*objectStore)(nil)

func newObjectStore(name string, onChange func(runtime.Object)) *objectStore {
	return &objectStore{name: name, onChange: onChange, synced: make(chan struct{})}
}

// get returns the object and whether the first list has completed.
func (s *objectStore) get() (runtime.Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.obj, s.isSynced
}

func (s *objectStore) matches(obj any) (runtime.Object, bool) {
	o, ok := obj.(runtime.Object)
	if !ok {
		return nil, false
	}
	m, err := meta.Accessor(o)
	if err != nil || m.GetName() != s.name {
		return nil, false
	}
	return o, true
}

// set stores obj (nil: gone) and reports a change when the object appeared,
// disappeared or got a new resourceVersion.
func (s *objectStore) set(obj runtime.Object, markSynced bool) {
	s.mu.Lock()
	changed := rv(s.obj) != rv(obj) || (s.obj == nil) != (obj == nil)
	s.obj = obj
	if markSynced && !s.isSynced {
		s.isSynced = true
		close(s.synced)
	}
	s.mu.Unlock()
	if changed && s.onChange != nil {
		s.onChange(obj)
	}
}

func rv(obj runtime.Object) string {
	if obj == nil {
		return ""
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

func (s *objectStore) Add(obj any) error {
	if o, ok := s.matches(obj); ok {
		s.set(o, false)
	}
	return nil
}

func (s *objectStore) Update(obj any) error { return s.Add(obj) }

func (s *objectStore) Delete(obj any) error {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if _, ok := s.matches(obj); ok {
		s.set(nil, false)
	}
	return nil
}

func (s *objectStore) Replace(list []any, _ string) error {
	var found runtime.Object
	for _, item := range list {
		if o, ok := s.matches(item); ok {
			found = o
		}
	}
	s.set(found, true)
	return nil
}

func (s *objectStore) Resync() error { return nil }
