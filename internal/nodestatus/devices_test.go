package nodestatus

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestDeviceResourcesInStatus(t *testing.T) {
	q := func(n int64) resource.Quantity { return *resource.NewQuantity(n, resource.DecimalSI) }
	f := testFacts()
	f.devices = deviceResources{
		capacity:    v1.ResourceList{"example.com/resource": q(2)},
		allocatable: v1.ResourceList{"example.com/resource": q(1)}, // one unhealthy
		removed:     []string{"example.com/gone"},
	}
	node := initialNode(testConfig(), f)
	c, a := node.Status.Capacity, node.Status.Allocatable
	if got := c["example.com/resource"]; got.Value() != 2 {
		t.Errorf("capacity = %v, want 2", got.String())
	}
	if got := a["example.com/resource"]; got.Value() != 1 {
		t.Errorf("allocatable = %v, want 1 (the healthy device)", got.String())
	}
	if got, ok := c["example.com/gone"]; !ok || got.Value() != 0 {
		t.Errorf("capacity of a removed resource = %v (present %v), want 0", got.String(), ok)
	}

	// The next round: the removed resource is no longer reported and
	// stays 0; the plugin's resource goes on as reported.
	f.devices = deviceResources{capacity: v1.ResourceList{"example.com/resource": q(2)}, allocatable: v1.ResourceList{"example.com/resource": q(2)}}
	next, changed := desiredNode(node, testConfig(), f)
	if !changed {
		t.Error("allocatable changed but the status did not")
	}
	if got := next.Status.Capacity["example.com/gone"]; got.Value() != 0 {
		t.Errorf("removed resource = %v, want kept at 0", got.String())
	}
	if got := next.Status.Allocatable["example.com/resource"]; got.Value() != 2 {
		t.Errorf("allocatable = %v, want 2", got.String())
	}
}
