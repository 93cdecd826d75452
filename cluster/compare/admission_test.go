package compare

import (
	"context"
	"runtime"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/lifecycle"
	"k8s.io/kubernetes/pkg/kubelet/preemption"
	schedulerframework "k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/internal/admission"
)

const admitNode = "node-a"

func admitTestNode(mod ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: admitNode, Labels: map[string]string{
			"kubernetes.io/hostname": admitNode, "kubernetes.io/os": runtime.GOOS, "zone": "a", "cores": "8",
		}},
		Status: v1.NodeStatus{Allocatable: list("cpu", "2", "memory", "4Gi", "ephemeral-storage", "10Gi", "pods", "110")},
	}
	for _, m := range mod {
		m(n)
	}
	return n
}

// admitPod is a pod from the API bound to the node, one container asking
// for reqs.
func admitPod(name string, reqs v1.ResourceList, mod ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name),
			Annotations: map[string]string{"kubernetes.io/config.source": "api"}},
		Spec: v1.PodSpec{NodeName: admitNode, Containers: []v1.Container{{Name: "c", Image: "busybox",
			Resources: v1.ResourceRequirements{Requests: reqs}}}},
	}
	for _, m := range mod {
		m(p)
	}
	return p
}

func staticPod(p *v1.Pod) { p.Annotations["kubernetes.io/config.source"] = "file" }

func nodeAffinity(terms ...v1.NodeSelectorTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms}}}
	}
}

func matchExpr(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorTerm {
	return v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func matchField(op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorTerm {
	return v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: op, Values: values}}}
}

func hostPorts(ports ...v1.ContainerPort) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Containers[0].Ports = ports }
}

func hostPort(port int32, proto v1.Protocol, ip string) v1.ContainerPort {
	return v1.ContainerPort{ContainerPort: 80, HostPort: port, Protocol: proto, HostIP: ip}
}

func noExecute(key, value string) func(*v1.Node) {
	return func(n *v1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: key, Value: value, Effect: v1.TaintEffectNoExecute})
	}
}

func tolerations(ts ...v1.Toleration) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Tolerations = ts }
}

func guaranteedPod(cpu, mem string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Limits = list("cpu", cpu, "memory", mem)
		p.Spec.Containers[0].Resources.Requests = list("cpu", cpu, "memory", mem)
	}
}

// TestAdmission: berth's admission.Admit against upstream's predicate admit
// handler with its critical pod preemption (pkg/kubelet/lifecycle and
// pkg/kubelet/preemption, as the kubelet wires them, without device
// plugins): the same verdict, reason and message, and the same pods
// preempted.
func TestAdmission(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	small := admitPod("small", list("cpu", "100m", "memory", "100Mi"))
	tests := []struct {
		name   string
		pod    *v1.Pod
		node   *v1.Node
		active []*v1.Pod
	}{
		{name: "fits", pod: admitPod("p", list("cpu", "1", "memory", "1Gi")), active: []*v1.Pod{small}},
		{name: "no requests", pod: admitPod("p", nil)},
		{name: "cpu", pod: admitPod("p", list("cpu", "5")), active: []*v1.Pod{small}},
		{name: "memory", pod: admitPod("p", list("memory", "4000Mi")), active: []*v1.Pod{small}},
		{name: "ephemeral storage", pod: admitPod("p", list("ephemeral-storage", "11Gi"))},
		{name: "pods", pod: admitPod("p", nil), active: []*v1.Pod{small},
			node: admitTestNode(func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("1") })},
		{name: "pods before cpu", pod: admitPod("p", list("cpu", "5")), active: []*v1.Pod{small},
			node: admitTestNode(func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("1") })},
		{name: "exactly full", pod: admitPod("p", list("cpu", "1900m")), active: []*v1.Pod{small}},
		{name: "hugepages", pod: admitPod("p", list("hugepages-2Mi", "4Mi")),
			node: admitTestNode(func(n *v1.Node) { n.Status.Allocatable["hugepages-2Mi"] = resource.MustParse("2Mi") })},
		{name: "extended resource not advertised", pod: admitPod("p", list("example.com/gpu", "1"))},
		{name: "extended resource advertised", pod: admitPod("p", list("example.com/gpu", "2")),
			node: admitTestNode(func(n *v1.Node) { n.Status.Allocatable["example.com/gpu"] = resource.MustParse("1") })},
		{name: "extended resource advertised as zero", pod: admitPod("p", list("example.com/gpu", "1")),
			node: admitTestNode(func(n *v1.Node) { n.Status.Allocatable["example.com/gpu"] = resource.MustParse("0") })},
		{name: "extended resource in the overhead", pod: admitPod("p", nil, func(p *v1.Pod) { p.Spec.Overhead = list("example.com/vm", "1") })},
		{name: "extended resource from a DRA claim", pod: admitPod("p", list("example.com/gpu", "1"), func(p *v1.Pod) {
			p.Status.ExtendedResourceClaimStatus = &v1.PodExtendedResourceClaimStatus{
				RequestMappings: []v1.ContainerExtendedResourceRequest{{ContainerName: "c", ResourceName: "example.com/gpu", RequestName: "r"}},
			}
		}), node: admitTestNode(func(n *v1.Node) { n.Status.Allocatable["example.com/gpu"] = resource.MustParse("0") })},
		{name: "device class resource", pod: admitPod("p", list("deviceclass.resource.kubernetes.io/gpu", "1"))},
		{name: "attachable volumes", pod: admitPod("p", list("attachable-volumes-csi-x", "1"))},
		{name: "init container larger than the app", active: []*v1.Pod{small}, pod: admitPod("p", list("cpu", "500m"), func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "i", Resources: v1.ResourceRequirements{Requests: list("cpu", "1950m")}}}
		})},
		{name: "sidecar with later init container", active: []*v1.Pod{small}, pod: admitPod("p", list("cpu", "1"), func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{
				{Name: "side", RestartPolicy: &always, Resources: v1.ResourceRequirements{Requests: list("cpu", "500m")}},
				{Name: "init", Resources: v1.ResourceRequirements{Requests: list("cpu", "1600m")}},
			}
		})},
		{name: "overhead", active: []*v1.Pod{small}, pod: admitPod("p", list("cpu", "1800m"), func(p *v1.Pod) { p.Spec.Overhead = list("cpu", "250m") })},
		{name: "overhead of admitted pods", pod: admitPod("p", list("cpu", "1700m")),
			active: []*v1.Pod{admitPod("o", list("cpu", "100m"), func(p *v1.Pod) { p.Spec.Overhead = list("cpu", "250m") })}},
		{name: "pod-level requests", pod: admitPod("p", list("cpu", "100m"), func(p *v1.Pod) {
			p.Spec.Resources = &v1.ResourceRequirements{Requests: list("cpu", "3")}
		})},
		{name: "pod-level requests of admitted pods", pod: admitPod("p", list("memory", "3Gi")),
			active: []*v1.Pod{admitPod("o", list("memory", "10Mi"), func(p *v1.Pod) {
				p.Spec.Resources = &v1.ResourceRequirements{Requests: list("memory", "2Gi")}
			})}},
		{name: "admitted pod resized", pod: admitPod("p", list("cpu", "1")),
			active: []*v1.Pod{admitPod("o", list("cpu", "500m"), func(p *v1.Pod) {
				p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "c", AllocatedResources: list("cpu", "1500m")}}
			})}},
		{name: "admitted pod with actuated resources", pod: admitPod("p", list("cpu", "1")),
			active: []*v1.Pod{admitPod("o", list("cpu", "500m"), func(p *v1.Pod) {
				p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "c", Resources: &v1.ResourceRequirements{Requests: list("cpu", "1200m")}}}
			})}},

		{name: "node selector", pod: admitPod("p", nil, func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "b"} })},
		{name: "node selector matches", pod: admitPod("p", nil, func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} })},
		{name: "affinity In", pod: admitPod("p", nil, nodeAffinity(matchExpr("zone", v1.NodeSelectorOpIn, "b", "a")))},
		{name: "affinity NotIn", pod: admitPod("p", nil, nodeAffinity(matchExpr("zone", v1.NodeSelectorOpNotIn, "a")))},
		{name: "affinity Exists on a missing label", pod: admitPod("p", nil, nodeAffinity(matchExpr("disk", v1.NodeSelectorOpExists)))},
		{name: "affinity DoesNotExist", pod: admitPod("p", nil, nodeAffinity(matchExpr("disk", v1.NodeSelectorOpDoesNotExist)))},
		{name: "affinity Gt", pod: admitPod("p", nil, nodeAffinity(matchExpr("cores", v1.NodeSelectorOpGt, "4")))},
		{name: "affinity Lt on a word", pod: admitPod("p", nil, nodeAffinity(matchExpr("zone", v1.NodeSelectorOpLt, "16")))},
		{name: "affinity In without values", pod: admitPod("p", nil, nodeAffinity(matchExpr("zone", v1.NodeSelectorOpIn)))},
		{name: "affinity empty term", pod: admitPod("p", nil, nodeAffinity(v1.NodeSelectorTerm{}))},
		{name: "affinity empty and matching term", pod: admitPod("p", nil, nodeAffinity(v1.NodeSelectorTerm{}, matchExpr("zone", v1.NodeSelectorOpIn, "a")))},
		{name: "affinity no terms", pod: admitPod("p", nil, nodeAffinity())},
		{name: "affinity field", pod: admitPod("p", nil, nodeAffinity(matchField(v1.NodeSelectorOpIn, admitNode)))},
		{name: "affinity field mismatch", pod: admitPod("p", nil, nodeAffinity(matchField(v1.NodeSelectorOpIn, "node-b")))},
		{name: "affinity field Exists", pod: admitPod("p", nil, nodeAffinity(matchField(v1.NodeSelectorOpExists)))},
		{name: "affinity field with two values", pod: admitPod("p", nil, nodeAffinity(matchField(v1.NodeSelectorOpIn, admitNode, "node-b")))},

		{name: "another node's pod", pod: admitPod("p", nil, func(p *v1.Pod) { p.Spec.NodeName = "node-b" })},

		{name: "host port taken", pod: admitPod("p", nil, hostPorts(hostPort(8080, "", ""))),
			active: []*v1.Pod{admitPod("o", nil, hostPorts(hostPort(8080, v1.ProtocolTCP, "")))}},
		{name: "host port other protocol", pod: admitPod("p", nil, hostPorts(hostPort(8080, v1.ProtocolUDP, ""))),
			active: []*v1.Pod{admitPod("o", nil, hostPorts(hostPort(8080, v1.ProtocolTCP, "")))}},
		{name: "host port other addresses", pod: admitPod("p", nil, hostPorts(hostPort(8080, v1.ProtocolTCP, "10.0.0.1"))),
			active: []*v1.Pod{admitPod("o", nil, hostPorts(hostPort(8080, v1.ProtocolTCP, "10.0.0.2")))}},
		{name: "host port all addresses", pod: admitPod("p", nil, hostPorts(hostPort(8080, v1.ProtocolTCP, "0.0.0.0"))),
			active: []*v1.Pod{admitPod("o", nil, hostPorts(hostPort(8080, v1.ProtocolTCP, "10.0.0.2")))}},
		{name: "host port of a sidecar", pod: admitPod("p", nil, hostPorts(hostPort(8080, "", ""))),
			active: []*v1.Pod{admitPod("o", nil, func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "s", RestartPolicy: &always, Ports: []v1.ContainerPort{hostPort(8080, "", "")}}}
			})}},
		{name: "host port of an init container", pod: admitPod("p", nil, hostPorts(hostPort(8080, "", ""))),
			active: []*v1.Pod{admitPod("o", nil, func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "i", Ports: []v1.ContainerPort{hostPort(8080, "", "")}}}
			})}},

		{name: "NoExecute taint", pod: admitPod("p", nil), node: admitTestNode(noExecute("dedicated", "db"))},
		{name: "NoSchedule taint", pod: admitPod("p", nil), node: admitTestNode(func(n *v1.Node) {
			n.Spec.Taints = []v1.Taint{{Key: "dedicated", Value: "db", Effect: v1.TaintEffectNoSchedule}}
		})},
		{name: "tolerated by Equal", node: admitTestNode(noExecute("dedicated", "db")),
			pod: admitPod("p", nil, tolerations(v1.Toleration{Key: "dedicated", Value: "db", Effect: v1.TaintEffectNoExecute}))},
		{name: "tolerated by Exists", node: admitTestNode(noExecute("dedicated", "db")),
			pod: admitPod("p", nil, tolerations(v1.Toleration{Operator: v1.TolerationOpExists}))},
		{name: "toleration for another value", node: admitTestNode(noExecute("dedicated", "db")),
			pod: admitPod("p", nil, tolerations(v1.Toleration{Key: "dedicated", Value: "web"}))},
		{name: "toleration for NoSchedule", node: admitTestNode(noExecute("dedicated", "db")),
			pod: admitPod("p", nil, tolerations(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}))},
		{name: "Gt toleration", node: admitTestNode(noExecute("level", "5")),
			pod: admitPod("p", nil, tolerations(v1.Toleration{Key: "level", Operator: v1.TolerationOpGt, Value: "1"}))},
		{name: "static pod and taint", pod: admitPod("p", nil, staticPod), node: admitTestNode(noExecute("dedicated", "db"))},

		{name: "os label", pod: admitPod("p", nil, func(p *v1.Pod) { p.Labels = map[string]string{"kubernetes.io/os": "windows"} })},
		{name: "os label on a node without one", pod: admitPod("p", nil, func(p *v1.Pod) { p.Labels = map[string]string{"kubernetes.io/os": runtime.GOOS} }),
			node: admitTestNode(func(n *v1.Node) { delete(n.Labels, "kubernetes.io/os") })},
		{name: "os field", pod: admitPod("p", list("cpu", "5"), func(p *v1.Pod) { p.Spec.OS = &v1.PodOS{Name: "windows"} })},
		{name: "strict supplemental groups", pod: admitPod("p", nil, func(p *v1.Pod) {
			p.Spec.SecurityContext = &v1.PodSecurityContext{SupplementalGroupsPolicy: ptr.To(v1.SupplementalGroupsPolicyStrict)}
		})},
		{name: "strict supplemental groups supported", pod: admitPod("p", nil, func(p *v1.Pod) {
			p.Spec.SecurityContext = &v1.PodSecurityContext{SupplementalGroupsPolicy: ptr.To(v1.SupplementalGroupsPolicyStrict)}
		}), node: admitTestNode(func(n *v1.Node) { n.Status.Features = &v1.NodeFeatures{SupplementalGroupsPolicy: ptr.To(true)} })},

		{name: "resources before affinity", pod: admitPod("p", list("cpu", "5"), func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "b"} })},
		{name: "affinity before ports", pod: admitPod("p", nil, hostPorts(hostPort(8080, "", "")), func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "b"} }),
			active: []*v1.Pod{admitPod("o", nil, hostPorts(hostPort(8080, "", "")))}},

		// Critical pods.
		{name: "critical pod, other failure", pod: admitPod("p", list("cpu", "5"), staticPod, hostPorts(hostPort(8080, "", ""))),
			active: []*v1.Pod{admitPod("o", nil, hostPorts(hostPort(8080, "", "")))}},
		{name: "critical pod, nothing to preempt", pod: admitPod("p", list("cpu", "5"), staticPod),
			active: []*v1.Pod{admitPod("o", list("cpu", "100m"), staticPod)}},
		{name: "critical pod preempts best effort first", pod: admitPod("p", nil, staticPod),
			node: admitTestNode(func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("3") }),
			active: []*v1.Pod{
				admitPod("guaranteed", nil, guaranteedPod("100m", "1Mi")),
				admitPod("burstable", list("cpu", "100m")),
				admitPod("besteffort", nil),
			}},
		{name: "critical pod spares critical and higher priority", pod: admitPod("p", list("cpu", "1"), staticPod),
			active: []*v1.Pod{
				admitPod("static", list("cpu", "400m"), staticPod),
				admitPod("system", list("cpu", "500m"), func(p *v1.Pod) { p.Spec.Priority = ptr.To[int32](2000001000) }),
				admitPod("plain", list("cpu", "500m")),
			}},
		{name: "critical pod takes burstable before guaranteed", pod: admitPod("p", list("cpu", "1"), staticPod),
			active: []*v1.Pod{admitPod("guaranteed", nil, guaranteedPod("700m", "1Gi")), admitPod("burstable", list("cpu", "700m"))}},
		{name: "critical pod, several resources", pod: admitPod("p", list("cpu", "1", "memory", "3Gi"), staticPod),
			active: []*v1.Pod{
				admitPod("cpu-hog", list("cpu", "1500m")),
				admitPod("mem-hog", list("memory", "2Gi")),
				admitPod("idle", list("cpu", "10m")),
			}},
		{name: "critical pod, closest pod", pod: admitPod("p", list("cpu", "1"), staticPod),
			active: []*v1.Pod{admitPod("a", list("cpu", "300m")), admitPod("b", list("cpu", "900m")), admitPod("c", list("cpu", "600m"))}},
		{name: "mirror pod is critical", pod: admitPod("p", list("cpu", "1"), func(p *v1.Pod) {
			p.Annotations["kubernetes.io/config.mirror"] = "hash"
		}), active: []*v1.Pod{admitPod("plain", list("cpu", "1500m"))}},
		{name: "system priority is critical", pod: admitPod("p", list("cpu", "1"), func(p *v1.Pod) { p.Spec.Priority = ptr.To[int32](2000000000) }),
			active: []*v1.Pod{admitPod("plain", list("cpu", "1500m"))}},
		{name: "critical pod and pod-level limits only", pod: admitPod("p", list("cpu", "1"), staticPod),
			active: []*v1.Pod{admitPod("o", list("cpu", "1500m"), func(p *v1.Pod) {
				p.Spec.Resources = &v1.ResourceRequirements{Limits: list("memory", "1Gi")}
			})}},
		{name: "critical pod and overhead of a victim", pod: admitPod("p", list("cpu", "1"), staticPod),
			active: []*v1.Pod{admitPod("o", list("cpu", "800m"), func(p *v1.Pod) { p.Spec.Overhead = list("cpu", "300m") }), admitPod("q", list("cpu", "150m"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := tt.node
			if node == nil {
				node = admitTestNode()
			}
			got := admission.Admit(tt.pod.DeepCopy(), node.DeepCopy(), tt.active)
			var gotVictims []string
			for _, p := range got.Preempt {
				gotVictims = append(gotVictims, p.Name)
			}
			slices.Sort(gotVictims)

			want, wantVictims := upstreamAdmit(tt.pod, node, tt.active)
			if got.Admit != want.Admit || got.Reason != want.Reason || got.Message != want.Message {
				t.Errorf("berth:    admit=%v %q %q\nupstream: admit=%v %q %q", got.Admit, got.Reason, got.Message, want.Admit, want.Reason, want.Message)
			}
			if !slices.Equal(gotVictims, wantVictims) {
				t.Errorf("berth preempts %v, upstream %v", gotVictims, wantVictims)
			}
		})
	}
}

// upstreamAdmit runs upstream's handler on copies; the victims are the pods
// its preemption kills, by name.
func upstreamAdmit(pod *v1.Pod, node *v1.Node, active []*v1.Pod) (lifecycle.PodAdmitResult, []string) {
	others := make([]*v1.Pod, 0, len(active))
	for _, p := range active {
		if p.UID != pod.UID {
			others = append(others, p.DeepCopy())
		}
	}
	var victims []string
	kill := func(p *v1.Pod, _ bool, _ *int64, _ func(*v1.PodStatus)) error {
		victims = append(victims, p.Name)
		return nil
	}
	handler := lifecycle.NewPredicateAdmitHandler(
		func(context.Context, bool) (*v1.Node, error) { return node.DeepCopy(), nil },
		preemption.NewCriticalPodAdmissionHandler(func() []*v1.Pod { return others }, kill, record.NewFakeRecorder(100)),
		func(*schedulerframework.NodeInfo, *lifecycle.PodAdmitAttributes) error { return nil })
	ctx := klog.NewContext(context.Background(), klog.Background())
	res := handler.Admit(ctx, &lifecycle.PodAdmitAttributes{Pod: pod.DeepCopy(), OtherPods: others, Operation: lifecycle.AddOperation})
	slices.Sort(victims)
	return res, victims
}
