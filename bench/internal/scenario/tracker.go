package scenario

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// PodTimes is when the watch first showed each stage of one pod.
type PodTimes struct {
	UID        string
	Added      time.Time // the pod appeared
	Running    time.Time // phase Running
	Ready      time.Time // condition Ready True
	Terminated time.Time // some container terminated
	Deleted    time.Time // the object is gone
}

// Tracker watches the benchmark's namespace and records, per pod name,
// when each stage first appeared: what "as seen by a watch" means in the
// figures. Pod names are never reused within a run.
type Tracker struct {
	mu      sync.Mutex
	pods    map[string]*PodTimes
	changed chan struct{} // closed and replaced on every change
}

// NewTracker returns an empty tracker; Run feeds it.
func NewTracker() *Tracker {
	return &Tracker{pods: map[string]*PodTimes{}, changed: make(chan struct{})}
}

// Run watches pods in ns until ctx ends. It returns once the watch has
// started; events are handled in the background.
func (t *Tracker) Run(ctx context.Context, client kubernetes.Interface, ns string) error {
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		return client.CoreV1().Pods(ns).Watch(ctx, o)
	}}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, lw)
	if err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if pod, ok := ev.Object.(*v1.Pod); ok {
					t.observe(ev.Type, pod, time.Now())
				}
			}
		}
	}()
	return nil
}

func (t *Tracker) observe(typ watch.EventType, pod *v1.Pod, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pods[pod.Name]
	if p == nil || (p.UID != "" && p.UID != string(pod.UID)) {
		p = &PodTimes{UID: string(pod.UID), Added: now}
		t.pods[pod.Name] = p
	}
	set := func(at *time.Time, cond bool) {
		if cond && at.IsZero() {
			*at = now
		}
	}
	set(&p.Running, pod.Status.Phase == v1.PodRunning)
	for _, c := range pod.Status.Conditions {
		set(&p.Ready, c.Type == v1.PodReady && c.Status == v1.ConditionTrue)
	}
	for _, cs := range pod.Status.ContainerStatuses {
		set(&p.Terminated, cs.State.Terminated != nil)
	}
	set(&p.Deleted, typ == watch.Deleted)
	close(t.changed)
	t.changed = make(chan struct{})
}

// Get returns what is known of the pod called name.
func (t *Tracker) Get(name string) (PodTimes, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pods[name]
	if !ok {
		return PodTimes{}, false
	}
	return *p, true
}

// All returns what is known of every pod, by name.
func (t *Tracker) All() map[string]PodTimes {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]PodTimes, len(t.pods))
	for n, p := range t.pods {
		out[n] = *p
	}
	return out
}

// Wait blocks until cond holds for the pod called name, or ctx ends.
func (t *Tracker) Wait(ctx context.Context, name string, cond func(PodTimes) bool) (PodTimes, error) {
	for {
		t.mu.Lock()
		p, ok := t.pods[name]
		var cur PodTimes
		if ok {
			cur = *p
		}
		changed := t.changed
		t.mu.Unlock()
		if ok && cond(cur) {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return cur, fmt.Errorf("pod %s: %w (seen %+v)", name, context.Cause(ctx), cur)
		case <-changed:
		}
	}
}

// WaitAll waits until cond holds for every named pod.
func (t *Tracker) WaitAll(ctx context.Context, names []string, cond func(PodTimes) bool) (map[string]PodTimes, error) {
	out := make(map[string]PodTimes, len(names))
	for _, n := range names {
		p, err := t.Wait(ctx, n, cond)
		if err != nil {
			return out, err
		}
		out[n] = p
	}
	return out, nil
}

// Stage predicates for Wait.
func IsRunning(p PodTimes) bool    { return !p.Running.IsZero() }
func IsReady(p PodTimes) bool      { return !p.Ready.IsZero() }
func IsTerminated(p PodTimes) bool { return !p.Terminated.IsZero() }
func IsDeleted(p PodTimes) bool    { return !p.Deleted.IsZero() }
