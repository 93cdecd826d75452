package admission

import (
	"github.com/berth-dev/berth/internal/container"

	"runtime"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/source"
)

const nodeName = "node-a"

func ptr[T any](v T) *T { return &v }

// list builds a resource list from name/quantity pairs.
func list(kv ...string) v1.ResourceList {
	l := v1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

// testNode has 2 CPUs, 4Gi of memory, 10Gi of ephemeral storage and room
// for 110 pods.
func testNode(mod ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{
			"kubernetes.io/hostname": nodeName, "zone": "a", "cores": "8",
		}},
		Status: v1.NodeStatus{Allocatable: list("cpu", "2", "memory", "4Gi", "ephemeral-storage", "10Gi", "pods", "110")},
	}
	for _, m := range mod {
		m(n)
	}
	return n
}

// testPod is a pod bound to the node with one container requesting reqs.
func testPod(name string, reqs v1.ResourceList, mod ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name),
			Annotations: map[string]string{source.AnnotationConfigSource: source.SourceAPI}},
		Spec: v1.PodSpec{NodeName: nodeName, Containers: []v1.Container{{Name: "c", Image: "busybox",
			Resources: v1.ResourceRequirements{Requests: reqs}}}},
	}
	for _, m := range mod {
		m(p)
	}
	return p
}

func static(p *v1.Pod) { p.Annotations[source.AnnotationConfigSource] = source.SourceFile }

func withAffinity(terms ...v1.NodeSelectorTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms}}}
	}
}

func expr(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorTerm {
	return v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func field(op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorTerm {
	return v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: op, Values: values}}}
}

func withPorts(ports ...v1.ContainerPort) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Containers[0].Ports = ports }
}

func hp(port int32, proto v1.Protocol, ip string) v1.ContainerPort {
	return v1.ContainerPort{ContainerPort: 80, HostPort: port, Protocol: proto, HostIP: ip}
}

func taint(key, value string, effect v1.TaintEffect) func(*v1.Node) {
	return func(n *v1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: key, Value: value, Effect: effect})
	}
}

const (
	affinityMsg = "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
	portsMsg    = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
	taintMsg    = "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate"
)

func otherOS() string {
	if runtime.GOOS == "windows" {
		return "linux"
	}
	return "windows"
}

func TestAdmit(t *testing.T) {
	small := testPod("small", list("cpu", "100m", "memory", "100Mi"))
	tests := []struct {
		name    string
		pod     *v1.Pod
		node    *v1.Node
		active  []*v1.Pod
		reason  string // "" means admitted
		message string
	}{
		{name: "fits", pod: testPod("p", list("cpu", "1", "memory", "1Gi")), active: []*v1.Pod{small}},
		{name: "no requests fit anywhere there is room for a pod", pod: testPod("p", nil)},

		// Resources.
		{name: "cpu", pod: testPod("p", list("cpu", "5")), active: []*v1.Pod{small},
			reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: 5000, used: 100, capacity: 2000"},
		{name: "memory", pod: testPod("p", list("memory", "4000Mi")), active: []*v1.Pod{small},
			reason:  "OutOfmemory",
			message: "Node didn't have enough resource: memory, requested: 4194304000, used: 104857600, capacity: 4294967296"},
		{name: "ephemeral storage", pod: testPod("p", list("ephemeral-storage", "11Gi")),
			reason:  "OutOfephemeral-storage",
			message: "Node didn't have enough resource: ephemeral-storage, requested: 11811160064, used: 0, capacity: 10737418240"},
		{name: "pods", pod: testPod("p", nil), node: testNode(func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("1") }),
			active: []*v1.Pod{small},
			reason: "OutOfpods", message: "Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1"},
		{name: "pods is checked first", pod: testPod("p", list("cpu", "5")),
			node:   testNode(func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("1") }),
			active: []*v1.Pod{small},
			reason: "OutOfpods", message: "Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1"},
		{name: "exactly full fits", pod: testPod("p", list("cpu", "1900m")), active: []*v1.Pod{small}},
		{name: "hugepages", pod: testPod("p", list("hugepages-2Mi", "4Mi")),
			node:   testNode(func(n *v1.Node) { n.Status.Allocatable["hugepages-2Mi"] = resource.MustParse("2Mi") }),
			reason: "OutOfhugepages-2Mi", message: "Node didn't have enough resource: hugepages-2Mi, requested: 4194304, used: 0, capacity: 2097152"},
		{name: "extended resource the node does not advertise is not judged", pod: testPod("p", list("example.com/gpu", "1"))},
		{name: "extended resource the node advertises", pod: testPod("p", list("example.com/gpu", "2")),
			node:   testNode(func(n *v1.Node) { n.Status.Allocatable["example.com/gpu"] = resource.MustParse("1") }),
			reason: "OutOfexample.com/gpu", message: "Node didn't have enough resource: example.com/gpu, requested: 2, used: 0, capacity: 1"},
		{name: "init container larger than app containers", active: []*v1.Pod{small},
			pod: testPod("p", list("cpu", "500m"), func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "i", Resources: v1.ResourceRequirements{Requests: list("cpu", "1950m")}}}
			}),
			reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: 1950, used: 100, capacity: 2000"},
		{name: "sidecar adds to app containers and to later init containers", active: []*v1.Pod{small},
			pod: testPod("p", list("cpu", "1"), func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{
					{Name: "side", RestartPolicy: ptr(v1.ContainerRestartPolicyAlways), Resources: v1.ResourceRequirements{Requests: list("cpu", "500m")}},
					{Name: "init", Resources: v1.ResourceRequirements{Requests: list("cpu", "1600m")}},
				}
			}),
			// max(1000+500, 1600+500)
			reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: 2100, used: 100, capacity: 2000"},
		{name: "overhead counts", active: []*v1.Pod{small},
			pod:    testPod("p", list("cpu", "1800m"), func(p *v1.Pod) { p.Spec.Overhead = list("cpu", "250m") }),
			reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: 2050, used: 100, capacity: 2000"},
		{name: "overhead of admitted pods counts",
			active: []*v1.Pod{testPod("o", list("cpu", "100m"), func(p *v1.Pod) { p.Spec.Overhead = list("cpu", "250m") })},
			pod:    testPod("p", list("cpu", "1700m")),
			reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: 1700, used: 350, capacity: 2000"},
		{name: "pod-level requests replace the containers' sum",
			pod: testPod("p", list("cpu", "100m"), func(p *v1.Pod) {
				p.Spec.Resources = &v1.ResourceRequirements{Requests: list("cpu", "3")}
			}),
			reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000"},
		{name: "the pod itself among the active pods is not counted",
			pod: testPod("p", list("cpu", "1500m")), active: []*v1.Pod{testPod("p", list("cpu", "1500m"))}},
		{name: "pod-level requests of an admitted pod count", pod: testPod("p", list("memory", "3Gi")),
			active: []*v1.Pod{testPod("o", list("memory", "10Mi"), func(p *v1.Pod) {
				p.Spec.Resources = &v1.ResourceRequirements{Requests: list("memory", "2Gi")}
			})},
			reason: "OutOfmemory", message: "Node didn't have enough resource: memory, requested: 3221225472, used: 2147483648, capacity: 4294967296"},
		{name: "an admitted pod holds what its resize allocated", pod: testPod("p", list("cpu", "1")),
			active: []*v1.Pod{testPod("o", list("cpu", "500m"), func(p *v1.Pod) {
				p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "c", AllocatedResources: list("cpu", "1500m")}}
			})},
			reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: 1000, used: 1500, capacity: 2000"},
		{name: "the pod's own status is not counted", pod: testPod("p", list("cpu", "1"), func(p *v1.Pod) {
			p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "c", AllocatedResources: list("cpu", "5")}}
		})},
		{name: "an extended resource in the overhead is judged", pod: testPod("p", nil, func(p *v1.Pod) {
			p.Spec.Overhead = list("example.com/vm", "1")
		}),
			reason: "OutOfexample.com/vm", message: "Node didn't have enough resource: example.com/vm, requested: 1, used: 0, capacity: 0"},
		{name: "an extended resource a DRA claim provides is not judged", pod: testPod("p", list("example.com/gpu", "1"), func(p *v1.Pod) {
			p.Status.ExtendedResourceClaimStatus = &v1.PodExtendedResourceClaimStatus{
				RequestMappings: []v1.ContainerExtendedResourceRequest{{ContainerName: "c", ResourceName: "example.com/gpu", RequestName: "r"}},
			}
		}),
			node: testNode(func(n *v1.Node) { n.Status.Allocatable["example.com/gpu"] = resource.MustParse("0") })},
		{name: "a device class resource without a claim is judged", pod: testPod("p", list("deviceclass.resource.kubernetes.io/gpu", "1")),
			reason:  "OutOfdeviceclass.resource.kubernetes.io/gpu",
			message: "Node didn't have enough resource: deviceclass.resource.kubernetes.io/gpu, requested: 1, used: 0, capacity: 0"},
		{name: "an extended resource the node advertises as zero is judged", pod: testPod("p", list("example.com/gpu", "1")),
			node:   testNode(func(n *v1.Node) { n.Status.Allocatable["example.com/gpu"] = resource.MustParse("0") }),
			reason: "OutOfexample.com/gpu", message: "Node didn't have enough resource: example.com/gpu, requested: 1, used: 0, capacity: 0"},

		// Node selector and affinity.
		{name: "node selector matches", pod: testPod("p", nil, func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} })},
		{name: "node selector", pod: testPod("p", nil, func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "b"} }),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "node selector on a missing label", pod: testPod("p", nil, func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity In", pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpIn, "b", "a")))},
		{name: "affinity In fails", pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpIn, "b", "c"))),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity NotIn", pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpNotIn, "b")))},
		{name: "affinity NotIn fails", pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpNotIn, "a"))),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity NotIn on a missing label", pod: testPod("p", nil, withAffinity(expr("disk", v1.NodeSelectorOpNotIn, "ssd")))},
		{name: "affinity Exists", pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpExists)))},
		{name: "affinity Exists fails", pod: testPod("p", nil, withAffinity(expr("disk", v1.NodeSelectorOpExists))),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity DoesNotExist", pod: testPod("p", nil, withAffinity(expr("disk", v1.NodeSelectorOpDoesNotExist)))},
		{name: "affinity DoesNotExist fails", pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpDoesNotExist))),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity Gt", pod: testPod("p", nil, withAffinity(expr("cores", v1.NodeSelectorOpGt, "4")))},
		{name: "affinity Gt fails", pod: testPod("p", nil, withAffinity(expr("cores", v1.NodeSelectorOpGt, "8"))),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity Lt", pod: testPod("p", nil, withAffinity(expr("cores", v1.NodeSelectorOpLt, "16")))},
		{name: "affinity Lt on a non-integer label fails", pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpLt, "16"))),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity malformed In without values fails", pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpIn))),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity terms are ORed",
			pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpIn, "b"), expr("zone", v1.NodeSelectorOpIn, "a")))},
		{name: "affinity expressions in a term are ANDed",
			pod: testPod("p", nil, withAffinity(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
				{Key: "zone", Operator: v1.NodeSelectorOpIn, Values: []string{"a"}},
				{Key: "disk", Operator: v1.NodeSelectorOpExists},
			}})),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity with only empty terms matches nothing", pod: testPod("p", nil, withAffinity(v1.NodeSelectorTerm{})),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity matchFields metadata.name", pod: testPod("p", nil, withAffinity(field(v1.NodeSelectorOpIn, nodeName)))},
		{name: "affinity matchFields metadata.name fails", pod: testPod("p", nil, withAffinity(field(v1.NodeSelectorOpIn, "node-b"))),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "affinity matchFields NotIn", pod: testPod("p", nil, withAffinity(field(v1.NodeSelectorOpNotIn, "node-b")))},
		{name: "affinity matchFields Exists is malformed", pod: testPod("p", nil, withAffinity(field(v1.NodeSelectorOpExists))),
			reason: "NodeAffinity", message: affinityMsg},
		{name: "selector and affinity must both match",
			pod: testPod("p", nil, withAffinity(expr("zone", v1.NodeSelectorOpIn, "a")), func(p *v1.Pod) {
				p.Spec.NodeSelector = map[string]string{"zone": "b"}
			}),
			reason: "NodeAffinity", message: affinityMsg},

		// Node name.
		{name: "bound to another node", pod: testPod("p", nil, func(p *v1.Pod) { p.Spec.NodeName = "node-b" }),
			reason: "NodeName", message: "Predicate NodeName failed: node(s) didn't match the requested node name"},

		// Host ports.
		{name: "host port taken", pod: testPod("p", nil, withPorts(hp(8080, "", ""))),
			active: []*v1.Pod{testPod("o", nil, withPorts(hp(8080, v1.ProtocolTCP, "")))},
			reason: "NodePorts", message: portsMsg},
		{name: "host port on another protocol", pod: testPod("p", nil, withPorts(hp(8080, v1.ProtocolUDP, ""))),
			active: []*v1.Pod{testPod("o", nil, withPorts(hp(8080, v1.ProtocolTCP, "")))}},
		{name: "host port on other addresses", pod: testPod("p", nil, withPorts(hp(8080, v1.ProtocolTCP, "10.0.0.1"))),
			active: []*v1.Pod{testPod("o", nil, withPorts(hp(8080, v1.ProtocolTCP, "10.0.0.2")))}},
		{name: "host port on the same address", pod: testPod("p", nil, withPorts(hp(8080, v1.ProtocolTCP, "10.0.0.1"))),
			active: []*v1.Pod{testPod("o", nil, withPorts(hp(8080, v1.ProtocolTCP, "10.0.0.1")))},
			reason: "NodePorts", message: portsMsg},
		{name: "host port on all addresses wanted", pod: testPod("p", nil, withPorts(hp(8080, v1.ProtocolTCP, "0.0.0.0"))),
			active: []*v1.Pod{testPod("o", nil, withPorts(hp(8080, v1.ProtocolTCP, "10.0.0.2")))},
			reason: "NodePorts", message: portsMsg},
		{name: "host port on all addresses held", pod: testPod("p", nil, withPorts(hp(8080, v1.ProtocolTCP, "10.0.0.1"))),
			active: []*v1.Pod{testPod("o", nil, withPorts(hp(8080, v1.ProtocolTCP, "")))},
			reason: "NodePorts", message: portsMsg},
		{name: "host port of a sidecar is held", pod: testPod("p", nil, withPorts(hp(8080, "", ""))),
			active: []*v1.Pod{testPod("o", nil, func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "s", RestartPolicy: ptr(v1.ContainerRestartPolicyAlways), Ports: []v1.ContainerPort{hp(8080, "", "")}}}
			})},
			reason: "NodePorts", message: portsMsg},
		{name: "host port of a plain init container is not held", pod: testPod("p", nil, withPorts(hp(8080, "", ""))),
			active: []*v1.Pod{testPod("o", nil, func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "i", Ports: []v1.ContainerPort{hp(8080, "", "")}}}
			})}},
		{name: "container ports without host port", pod: testPod("p", nil, withPorts(v1.ContainerPort{ContainerPort: 80})),
			active: []*v1.Pod{testPod("o", nil, withPorts(v1.ContainerPort{ContainerPort: 80}))}},

		// Taints.
		{name: "NoExecute taint", pod: testPod("p", nil), node: testNode(taint("dedicated", "db", v1.TaintEffectNoExecute)),
			reason: "TaintToleration", message: taintMsg},
		{name: "NoSchedule taint is the scheduler's business", pod: testPod("p", nil), node: testNode(taint("dedicated", "db", v1.TaintEffectNoSchedule))},
		{name: "NoExecute taint tolerated by Equal",
			pod: testPod("p", nil, func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Value: "db", Effect: v1.TaintEffectNoExecute}}
			}),
			node: testNode(taint("dedicated", "db", v1.TaintEffectNoExecute))},
		{name: "NoExecute taint tolerated by Exists without key",
			pod:  testPod("p", nil, func(p *v1.Pod) { p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}} }),
			node: testNode(taint("dedicated", "db", v1.TaintEffectNoExecute))},
		{name: "NoExecute taint with a toleration for another value",
			pod:    testPod("p", nil, func(p *v1.Pod) { p.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Value: "web"}} }),
			node:   testNode(taint("dedicated", "db", v1.TaintEffectNoExecute)),
			reason: "TaintToleration", message: taintMsg},
		{name: "NoExecute taint with a NoSchedule toleration",
			pod: testPod("p", nil, func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
			}),
			node:   testNode(taint("dedicated", "db", v1.TaintEffectNoExecute)),
			reason: "TaintToleration", message: taintMsg},
		{name: "NoExecute taint with a Gt toleration (alpha upstream)",
			pod: testPod("p", nil, func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Key: "level", Operator: v1.TolerationOpGt, Value: "1"}}
			}),
			node:   testNode(taint("level", "5", v1.TaintEffectNoExecute)),
			reason: "TaintToleration", message: taintMsg},
		{name: "static pods ignore taints", pod: testPod("p", nil, static), node: testNode(taint("dedicated", "db", v1.TaintEffectNoExecute))},

		// OS and node features.
		{name: "os label", pod: testPod("p", nil, func(p *v1.Pod) { p.Labels = map[string]string{"kubernetes.io/os": otherOS()} }),
			reason: "PodOSSelectorNodeLabelDoesNotMatch", message: "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"},
		{name: "os label matching", pod: testPod("p", nil, func(p *v1.Pod) { p.Labels = map[string]string{"kubernetes.io/os": runtime.GOOS} })},
		{name: "os field", pod: testPod("p", nil, func(p *v1.Pod) { p.Spec.OS = &v1.PodOS{Name: v1.OSName(otherOS())} }),
			reason: "PodOSNotSupported", message: "Failed to admit pod as the OS field doesn't match node OS"},
		{name: "os checked before resources", pod: testPod("p", list("cpu", "5"), func(p *v1.Pod) { p.Spec.OS = &v1.PodOS{Name: v1.OSName(otherOS())} }),
			reason: "PodOSNotSupported", message: "Failed to admit pod as the OS field doesn't match node OS"},
		{name: "strict supplemental groups unsupported",
			pod: testPod("p", nil, func(p *v1.Pod) {
				p.Spec.SecurityContext = &v1.PodSecurityContext{SupplementalGroupsPolicy: ptr(v1.SupplementalGroupsPolicyStrict)}
			}),
			reason: "SupplementalGroupsPolicyNotSupported", message: "SupplementalGroupsPolicy=Strict is not supported in this node"},
		{name: "strict supplemental groups supported",
			pod: testPod("p", nil, func(p *v1.Pod) {
				p.Spec.SecurityContext = &v1.PodSecurityContext{SupplementalGroupsPolicy: ptr(v1.SupplementalGroupsPolicyStrict)}
			}),
			node: testNode(func(n *v1.Node) { n.Status.Features = &v1.NodeFeatures{SupplementalGroupsPolicy: ptr(true)} })},
		{name: "merge supplemental groups needs nothing",
			pod: testPod("p", nil, func(p *v1.Pod) {
				p.Spec.SecurityContext = &v1.PodSecurityContext{SupplementalGroupsPolicy: ptr(v1.SupplementalGroupsPolicyMerge)}
			})},

		// Order and critical pods.
		{name: "resources are reported before affinity", pod: testPod("p", list("cpu", "5"), func(p *v1.Pod) {
			p.Spec.NodeSelector = map[string]string{"zone": "b"}
		}),
			reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: 5000, used: 0, capacity: 2000"},
		{name: "critical pod short of resources reports its other failure", pod: testPod("p", list("cpu", "5"), static, withPorts(hp(8080, "", ""))),
			active: []*v1.Pod{testPod("o", nil, withPorts(hp(8080, "", "")))},
			reason: "NodePorts", message: portsMsg},
		{name: "critical pod with nothing to preempt", pod: testPod("p", list("cpu", "5"), static),
			active: []*v1.Pod{testPod("o", list("cpu", "100m"), static)},
			reason: "UnexpectedAdmissionError",
			message: "Unexpected error while attempting to recover from admission failure: preemption: error finding a set of pods to preempt: " +
				"no set of running pods found to reclaim resources: [(res: cpu, q: 3100), ]"},
		// Upstream's preemption counts only pod-level requests for a pod that
		// sets pod-level resources (here limits only: nothing to free).
		{name: "critical pod cannot take from a pod with pod-level limits only", pod: testPod("p", list("cpu", "1"), static),
			active: []*v1.Pod{testPod("o", list("cpu", "1500m"), func(p *v1.Pod) {
				p.Spec.Resources = &v1.ResourceRequirements{Limits: list("memory", "1Gi")}
			})},
			reason: "UnexpectedAdmissionError",
			message: "Unexpected error while attempting to recover from admission failure: preemption: error finding a set of pods to preempt: " +
				"no set of running pods found to reclaim resources: [(res: cpu, q: 500), ]"},
		{name: "no node", pod: testPod("p", nil), node: (*v1.Node)(nil),
			reason: "InvalidNodeInfo", message: "Kubelet cannot get node info."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := tt.node
			if node == nil && tt.reason != "InvalidNodeInfo" {
				node = testNode()
			}
			before := tt.pod.DeepCopy()
			got := Admit(tt.pod, node, tt.active)
			want := Result{Admit: tt.reason == "", Reason: tt.reason, Message: tt.message}
			if got.Admit != want.Admit || got.Reason != want.Reason || got.Message != want.Message || len(got.Preempt) != 0 {
				t.Errorf("Admit = %+v\nwant    %+v", got, want)
			}
			if tt.pod.String() != before.String() {
				t.Error("Admit modified the pod")
			}
		})
	}
}

func names(pods []*v1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func guaranteed(cpu, mem string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Limits = list("cpu", cpu, "memory", mem)
		p.Spec.Containers[0].Resources.Requests = list("cpu", cpu, "memory", mem)
	}
}

func TestAdmitCriticalPreempts(t *testing.T) {
	tests := []struct {
		name    string
		pod     *v1.Pod
		node    *v1.Node
		active  []*v1.Pod
		preempt []string
	}{{
		name: "best-effort pods go first",
		pod:  testPod("p", nil, static),
		node: testNode(func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("3") }),
		active: []*v1.Pod{
			testPod("guaranteed", nil, guaranteed("100m", "1Mi")),
			testPod("burstable", list("cpu", "100m")),
			testPod("besteffort", nil),
		},
		preempt: []string{"besteffort"},
	}, {
		name: "a static pod fits without preempting",
		pod:  testPod("p", list("cpu", "1"), static),
	}, {
		name: "a best-effort pod that frees no cpu is spared",
		pod:  testPod("p", list("cpu", "1"), static),
		active: []*v1.Pod{
			testPod("burstable", list("cpu", "1500m")),
			testPod("besteffort", nil, func(p *v1.Pod) { p.Spec.Containers[0].Resources.Requests = nil }),
		},
		// Stopping the best-effort pod frees no cpu, so the burstable one goes.
		preempt: []string{"burstable"},
	}, {
		name: "burstable before guaranteed",
		pod:  testPod("p", list("cpu", "1"), static),
		active: []*v1.Pod{
			testPod("guaranteed", nil, guaranteed("700m", "1Gi")),
			testPod("burstable", list("cpu", "700m")),
		},
		preempt: []string{"burstable"},
	}, {
		name: "the pod closest to what is missing",
		pod:  testPod("p", list("cpu", "1"), static),
		active: []*v1.Pod{
			testPod("a", list("cpu", "300m")),
			testPod("b", list("cpu", "600m")),
			testPod("c", list("cpu", "900m")),
		},
		// 1000 wanted, 200 free: 800 missing; c covers it alone.
		preempt: []string{"c"},
	}, {
		name: "critical and higher-priority pods are spared",
		pod:  testPod("p", list("cpu", "1"), static),
		active: []*v1.Pod{
			testPod("static", list("cpu", "400m"), static),
			testPod("system", list("cpu", "500m"), func(p *v1.Pod) { p.Spec.Priority = ptr[int32](2000001000) }),
			testPod("plain", list("cpu", "500m")),
		},
		// 1000m wanted, 600m free: only "plain" may give the 400m missing.
		preempt: []string{"plain"},
	}, {
		name: "a pod of system priority preempts too",
		pod:  testPod("p", list("cpu", "1"), func(p *v1.Pod) { p.Spec.Priority = ptr[int32](2000000000) }),
		active: []*v1.Pod{
			testPod("plain", list("cpu", "1500m")),
		},
		preempt: []string{"plain"},
	}, {
		name: "a mirror pod counts as critical",
		pod: testPod("p", list("cpu", "1"), func(p *v1.Pod) {
			p.Annotations[source.AnnotationConfigMirror] = "hash"
		}),
		active:  []*v1.Pod{testPod("plain", list("cpu", "1500m"))},
		preempt: []string{"plain"},
	}, {
		name: "several pods for several resources",
		pod:  testPod("p", list("cpu", "1", "memory", "3Gi"), static),
		active: []*v1.Pod{
			testPod("cpu-hog", list("cpu", "1500m")),
			testPod("mem-hog", list("memory", "2Gi")),
			testPod("idle", list("cpu", "10m")),
		},
		preempt: []string{"cpu-hog", "mem-hog"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := tt.node
			if node == nil {
				node = testNode()
			}
			got := Admit(tt.pod, node, tt.active)
			if !got.Admit || got.Reason != "" || got.Message != "" {
				t.Fatalf("Admit = %+v, want admitted", got)
			}
			if g := names(got.Preempt); !slices.Equal(g, tt.preempt) {
				t.Errorf("Preempt = %v, want %v", g, tt.preempt)
			}
		})
	}
}

func TestQOSClass(t *testing.T) {
	tests := []struct {
		name string
		pod  *v1.Pod
		want v1.PodQOSClass
	}{
		{"no requests", testPod("p", nil), v1.PodQOSBestEffort},
		{"requests only", testPod("p", list("cpu", "1")), v1.PodQOSBurstable},
		{"requests equal limits", testPod("p", nil, guaranteed("1", "1Gi")), v1.PodQOSGuaranteed},
		{"status wins", testPod("p", nil, func(p *v1.Pod) { p.Status.QOSClass = v1.PodQOSGuaranteed }), v1.PodQOSGuaranteed},
		{"guaranteed and best-effort containers", testPod("p", nil, guaranteed("1", "1Gi"), func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "i"}}
		}), v1.PodQOSBurstable},
		{"pod-level", testPod("p", nil, func(p *v1.Pod) {
			p.Spec.Resources = &v1.ResourceRequirements{Requests: list("cpu", "1", "memory", "1Gi"), Limits: list("cpu", "1", "memory", "1Gi")}
		}), v1.PodQOSGuaranteed},
	}
	for _, tt := range tests {
		if got := container.PodQOS(tt.pod); got != tt.want {
			t.Errorf("%s: qosClass = %s, want %s", tt.name, got, tt.want)
		}
	}
}
