package nodestatus

import (
	"context"
	"errors"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestWantedPodCIDR(t *testing.T) {
	for _, tc := range []struct {
		name string
		node *v1.Node
		want string
	}{
		{"no node", nil, ""},
		{"none allocated", &v1.Node{}, ""},
		{"one", &v1.Node{Spec: v1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}}}, "10.244.1.0/24"},
		{"dual-stack, primary first", &v1.Node{Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24", "fd00:10:244:1::/64"}}}, "10.244.1.0/24,fd00:10:244:1::/64"},
	} {
		if got := wantedPodCIDR(tc.node); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// allocate sets the Node's pod CIDR as the node IPAM controller does.
func (e *env) allocate(cidr string) {
	e.t.Helper()
	n := e.node()
	n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	if _, err := e.client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func TestPodCIDRHandedToRuntimeOnce(t *testing.T) {
	e := newEnv(t, nil)
	// containerd with a CNI template: no network until it has the CIDR.
	e.runtime.setStatus(&runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: false, Reason: "NetworkPluginNotReady", Message: "cni config uninitialized"},
	}}})
	e.start()
	e.events.waitFor(t, "wait:status", 1)
	if got := e.runtime.cidrCalls(); len(got) != 0 {
		t.Fatalf("UpdatePodCIDR before any CIDR was allocated: %v", got)
	}
	if c := readyCondition(e.node()); c.Status != v1.ConditionFalse {
		t.Fatalf("Ready = %s before the network is, want False", c.Status)
	}

	e.allocate("10.244.1.0/24")
	// The runtime writes its CNI configuration when told.
	e.runtime.setStatus(readyStatus())
	e.tick()
	if got, want := e.runtime.cidrCalls(), []string{"10.244.1.0/24"}; !slices.Equal(got, want) {
		t.Fatalf("UpdatePodCIDR calls = %v, want %v", got, want)
	}
	if c := readyCondition(e.node()); c.Status != v1.ConditionTrue {
		t.Errorf("Ready = %s (%s) in the update that handed over the CIDR, want True", c.Status, c.Message)
	}
	e.tick()
	if got := e.runtime.cidrCalls(); len(got) != 1 {
		t.Errorf("an unchanged CIDR was handed over again: %v", got)
	}
}

func TestPodCIDRRetriedAfterRuntimeError(t *testing.T) {
	e := newEnv(t, nil)
	e.runtime.cidrErr = errors.New("runtime busy")
	e.start()
	e.events.waitFor(t, "wait:status", 1)
	e.allocate("10.244.2.0/24")
	e.tick()
	e.runtime.mu.Lock()
	e.runtime.cidrErr = nil
	e.runtime.mu.Unlock()
	e.tick()
	e.tick()
	if got, want := e.runtime.cidrCalls(), []string{"10.244.2.0/24", "10.244.2.0/24"}; !slices.Equal(got, want) {
		t.Errorf("UpdatePodCIDR calls = %v, want one failure then one success", got)
	}
}
