package volume

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

type panicCounter struct{ n chan struct{} }

func (c panicCounter) Inc() { c.n <- struct{}{} }

// panickingObjects panics, as a bug would, when the ConfigMap named boom is
// read while armed.
type panickingObjects struct {
	*fakeObjects
	armed chan struct{} // holds one token per panic to come
}

func (p *panickingObjects) GetConfigMap(ctx context.Context, ns, name string) (*v1.ConfigMap, error) {
	if name == "boom" {
		select {
		case <-p.armed:
			var cm *v1.ConfigMap
			_ = cm.Data // a nil dereference
		default:
		}
	}
	return p.fakeObjects.GetConfigMap(ctx, ns, name)
}

// A panic while refreshing one pod's volumes is counted; the other pods'
// volumes are refreshed, and the pod is refreshed again later.
func TestPanicInRefreshIsRecovered(t *testing.T) {
	h := newHarness(t)
	objs := &panickingObjects{fakeObjects: h.objects, armed: make(chan struct{}, 1)}
	counted := panicCounter{n: make(chan struct{}, 10)}
	h.m.objects, h.m.panics = objs, counted
	h.objects.setConfigMap("boom", map[string]string{"k": "1"})
	h.objects.setConfigMap("app", map[string]string{"k": "1"})
	bad := newPod("bad", configMapVolume("config", "boom"))
	good := newPod("good", configMapVolume("config", "app"))
	h.mustSetUp(bad)
	h.mustSetUp(good)
	h.run()

	objs.armed <- struct{}{}
	h.objects.setConfigMap("boom", map[string]string{"k": "2"})
	h.m.ObjectChanged("ConfigMap", "ns", "boom")
	select {
	case <-counted.n:
	case <-time.After(guard):
		t.Fatal("the panic was not counted")
	}
	h.objects.setConfigMap("app", map[string]string{"k": "2"})
	h.m.ObjectChanged("ConfigMap", "ns", "app")
	h.waitChange(good.UID)
	if got := h.read(good, "config", "k"); got != "2" {
		t.Fatalf("other pod's volume k = %q, want 2", got)
	}
	if got := h.read(bad, "config", "k"); got != "1" {
		t.Fatalf("panicking pod's volume k = %q before its retry, want 1", got)
	}
	// The retry, tokenRetry later, writes what the panicked refresh missed.
	deadline := time.After(guard)
	for {
		h.clock.Step(tokenRetry)
		select {
		case uid := <-h.changes:
			if uid != bad.UID {
				t.Fatalf("OnChange(%s), want %s", uid, bad.UID)
			}
			if got := h.read(bad, "config", "k"); got != "2" {
				t.Fatalf("k after the retry = %q, want 2", got)
			}
			return
		case <-deadline:
			t.Fatal("the pod's volumes were never refreshed again")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
