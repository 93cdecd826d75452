package nodestatus

import (
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file is the pure core: the desired Node from the configuration and
// the facts observed at one moment. No IO, no clock.

// nodeConfig is the part of the desired Node that comes from the options.
type nodeConfig struct {
	name   string
	labels map[string]string // --node-labels
	taints []v1.Taint
	// externalCloudProvider (--cloud-provider=external) adds the
	// uninitialized taint at registration and leaves the addresses to the
	// provider once the Node has some.
	externalCloudProvider bool
	providerID            string // spec.providerID at registration
	maxPods               int
	reservation           reservation
	port                  int32
	kubeletVersion        string
	declaredFeatures      []string // status.declaredFeatures
}

// facts are what berth observed about the node at one moment.
type facts struct {
	now     time.Time
	machine machine
	// nodeIP is the InternalIP to report, or a dual-stack pair
	// (comma-separated, primary first); empty when it is unknown, which
	// keeps the addresses the Node has.
	nodeIP string
	// runtimeName and runtimeVersion are empty until the runtime answered
	// once.
	runtimeName, runtimeVersion string
	images                      []v1.ContainerImage
	// health is nil when berth is healthy, else why the node is not ready.
	health error
	// shutdown is nil unless the node is shutting down.
	shutdown error
	// pressure are the pressure conditions that are True.
	pressure []v1.NodeConditionType
	// runtime is what the runtime's CRI Status said last.
	runtime runtimeState
	// devices are the device plugins' resources.
	devices deviceResources
}

// deviceResources are what the device manager reports.
type deviceResources struct {
	capacity, allocatable v1.ResourceList
	removed               []string
}

// controllerManagedAttachAnnotation tells the attach/detach controller to
// attach volumes for this node, as upstream's kubelet sets it by default
// (enableControllerAttachDetach).
const controllerManagedAttachAnnotation = "volumes.kubernetes.io/controller-managed-attach-detach"

// initialNode is the Node berth registers: the default labels with the
// node labels over them, the registration taints and the full status.
func initialNode(cfg nodeConfig, f facts) *v1.Node {
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        cfg.name,
			Labels:      initialLabels(cfg.name, cfg.labels),
			Annotations: map[string]string{controllerManagedAttachAnnotation: "true"},
		},
		Spec: v1.NodeSpec{Taints: slices.Clone(cfg.taints), ProviderID: cfg.providerID},
	}
	if cfg.externalCloudProvider {
		// As upstream: the provider's controller removes the taint once it
		// has initialised the Node.
		node.Spec.Taints = append(node.Spec.Taints, v1.Taint{Key: taintExternalCloudProvider, Value: "true", Effect: v1.TaintEffectNoSchedule})
		if f.nodeIP != "" {
			node.Annotations[annotationProvidedNodeIP] = f.nodeIP
		}
	}
	if len(node.Spec.Taints) == 0 {
		node.Spec.Taints = nil
	}
	setStatus(node, cfg, f)
	return node
}

// The taint and annotation of upstream's external cloud provider
// (k8s.io/cloud-provider/api).
const (
	taintExternalCloudProvider = "node.cloudprovider.kubernetes.io/uninitialized"
	annotationProvidedNodeIP   = "alpha.kubernetes.io/provided-node-ip"
)

// nodeAddresses are the addresses berth reports: an InternalIP per node
// IP, primary first, then the host name, as upstream.
func nodeAddresses(nodeIP, hostname string) []v1.NodeAddress {
	var addrs []v1.NodeAddress
	for _, ip := range strings.Split(nodeIP, ",") {
		addrs = append(addrs, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
	}
	return append(addrs, v1.NodeAddress{Type: v1.NodeHostName, Address: hostname})
}

// setStatus overwrites node.Status with the status berth reports,
// starting from what the Node has so that condition transition times,
// addresses it cannot determine and foreign capacities carry over.
func setStatus(node *v1.Node, cfg nodeConfig, f facts) {
	s := &node.Status
	switch {
	case cfg.externalCloudProvider && len(s.Addresses) > 0:
		// The provider's addresses win, as upstream.
	case f.nodeIP != "":
		s.Addresses = nodeAddresses(f.nodeIP, cfg.name)
	case len(s.Addresses) == 0:
		s.Addresses = []v1.NodeAddress{{Type: v1.NodeHostName, Address: cfg.name}}
	}

	s.Capacity = withDevices(capacity(s.Capacity, f.machine, cfg.maxPods), f.devices)
	s.Allocatable = allocatable(s.Capacity, cfg.reservation)
	for name, q := range f.devices.allocatable {
		s.Allocatable[name] = q.DeepCopy()
	}

	info := &s.NodeInfo
	info.MachineID = f.machine.machineID
	info.SystemUUID = f.machine.systemUUID
	info.BootID = f.machine.bootID
	info.KernelVersion = f.machine.kernelVersion
	info.OSImage = f.machine.osImage
	if f.runtimeName != "" {
		info.ContainerRuntimeVersion = f.runtimeName + "://" + f.runtimeVersion
	}
	info.KubeletVersion = cfg.kubeletVersion
	info.KubeProxyVersion = "" // deprecated; upstream clears it
	info.OperatingSystem = goruntime.GOOS
	info.Architecture = goruntime.GOARCH

	s.DaemonEndpoints = v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: cfg.port}}
	s.Images = slices.Clone(f.images)
	s.RuntimeHandlers = slices.Clone(f.runtime.handlers)
	s.DeclaredFeatures = slices.Clone(cfg.declaredFeatures)
	if f.runtime.features != nil {
		s.Features = f.runtime.features.DeepCopy()
	}
	s.Conditions = conditions(pressureConditions(s.Conditions, f.now, f.pressure), f.now, readiness(s.Capacity, f.health, f.runtime.runtimeErr, f.runtime.networkErr, f.shutdown))
}

// desiredNode returns a copy of node with berth's status and required
// labels applied, and whether that differs from node other than in
// heartbeat times (upstream's updateNode).
func desiredNode(node *v1.Node, cfg nodeConfig, f facts) (*v1.Node, bool) {
	want := node.DeepCopy()
	labelsChanged := ensureOSLabels(want)
	setStatus(want, cfg, f)
	return want, labelsChanged || statusChanged(&node.Status, &want.Status)
}

// statusChanged reports whether two statuses differ other than in the
// conditions' heartbeat times, as upstream's nodeStatusHasChanged.
func statusChanged(old, cur *v1.NodeStatus) bool {
	if len(old.Conditions) != len(cur.Conditions) {
		return true
	}
	byType := func(a, b v1.NodeCondition) int {
		switch {
		case a.Type < b.Type:
			return -1
		case a.Type > b.Type:
			return 1
		}
		return 0
	}
	oc := slices.Clone(old.Conditions)
	cc := slices.Clone(cur.Conditions)
	slices.SortStableFunc(oc, byType)
	slices.SortStableFunc(cc, byType)
	for i := range oc {
		oc[i].LastHeartbeatTime = metav1.Time{}
		cc[i].LastHeartbeatTime = metav1.Time{}
	}
	if !apiequality.Semantic.DeepEqual(oc, cc) {
		return true
	}
	a, b := old.DeepCopy(), cur.DeepCopy()
	a.Conditions, b.Conditions = nil, nil
	return !apiequality.Semantic.DeepEqual(a, b)
}
