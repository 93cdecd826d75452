package nodestatus

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

// --cloud-provider=external, --provider-id and a dual-stack --node-ip, as
// upstream's initialNode and NodeAddress setter handle them.
func TestInitialNodeCloudProviderAndDualStack(t *testing.T) {
	cfg := testConfig()
	cfg.externalCloudProvider = true
	cfg.providerID = "aws:///eu-west-1a/i-0123"
	f := testFacts()
	f.nodeIP = "192.0.2.10,2001:db8::10"
	node := initialNode(cfg, f)

	wantTaints := []v1.Taint{
		{Key: "example.com/new", Effect: v1.TaintEffectNoSchedule},
		{Key: "node.cloudprovider.kubernetes.io/uninitialized", Value: "true", Effect: v1.TaintEffectNoSchedule},
	}
	if !apiequality.Semantic.DeepEqual(node.Spec.Taints, wantTaints) {
		t.Errorf("taints = %v, want %v", node.Spec.Taints, wantTaints)
	}
	if node.Spec.ProviderID != cfg.providerID {
		t.Errorf("providerID = %q", node.Spec.ProviderID)
	}
	if got := node.Annotations["alpha.kubernetes.io/provided-node-ip"]; got != f.nodeIP {
		t.Errorf("provided-node-ip annotation = %q, want %q", got, f.nodeIP)
	}
	wantAddrs := []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: "192.0.2.10"},
		{Type: v1.NodeInternalIP, Address: "2001:db8::10"},
		{Type: v1.NodeHostName, Address: "node-a"},
	}
	if !apiequality.Semantic.DeepEqual(node.Status.Addresses, wantAddrs) {
		t.Errorf("addresses = %v, want %v", node.Status.Addresses, wantAddrs)
	}

	// Once the provider has set the addresses, berth keeps them.
	node.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeExternalIP, Address: "203.0.113.5"}}
	setStatus(node, cfg, f)
	if len(node.Status.Addresses) != 1 || node.Status.Addresses[0].Address != "203.0.113.5" {
		t.Errorf("provider's addresses replaced: %v", node.Status.Addresses)
	}

	// Without a cloud provider: no taint, no annotation, berth's addresses.
	plain := initialNode(testConfig(), f)
	if len(plain.Spec.Taints) != 1 || plain.Spec.ProviderID != "" || plain.Annotations["alpha.kubernetes.io/provided-node-ip"] != "" {
		t.Errorf("plain node: taints %v providerID %q annotations %v", plain.Spec.Taints, plain.Spec.ProviderID, plain.Annotations)
	}
}
