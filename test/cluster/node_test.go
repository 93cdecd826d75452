package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (env *environment) getNode() (*v1.Node, error) {
	ctx, cancel := apiContext()
	defer cancel()
	return env.kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
}

func nodeCondition(n *v1.Node, typ v1.NodeConditionType) *v1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == typ {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// nodeReady is a condition: berth's Node exists and is Ready.
func (env *environment) nodeReady() (bool, string) {
	n, err := env.getNode()
	if err != nil {
		return false, err.Error()
	}
	c := nodeCondition(n, v1.NodeReady)
	if c == nil {
		return false, "node has no Ready condition"
	}
	return c.Status == v1.ConditionTrue, fmt.Sprintf("node Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
}

func (env *environment) getLease() (*coordinationv1.Lease, error) {
	ctx, cancel := apiContext()
	defer cancel()
	return env.kube.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
}

// leaseRenewedAfter is a condition: the node's Lease was renewed after t.
func (env *environment) leaseRenewedAfter(t time.Time) func() (bool, string) {
	return func() (bool, string) {
		l, err := env.getLease()
		if err != nil {
			return false, err.Error()
		}
		if l.Spec.RenewTime == nil {
			return false, "lease has no renewTime"
		}
		return l.Spec.RenewTime.Time.After(t), fmt.Sprintf("lease renewTime %s, want after %s",
			l.Spec.RenewTime.Format(time.RFC3339Nano), t.Format(time.RFC3339Nano))
	}
}

func TestNodeObject(t *testing.T) {
	env := requireSuite(t)
	n, err := env.getNode()
	if err != nil {
		t.Fatal(err)
	}

	for k, want := range map[string]string{
		v1.LabelHostname:   nodeName,
		v1.LabelOSStable:   goruntime.GOOS,
		v1.LabelArchStable: goruntime.GOARCH,
	} {
		if got, ok := n.Labels[k]; !ok || got != want {
			t.Errorf("label %s = %q (set %v), want %q", k, got, ok, want)
		}
	}

	for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourcePods, v1.ResourceEphemeralStorage} {
		c, okC := n.Status.Capacity[r]
		a, okA := n.Status.Allocatable[r]
		switch {
		case !okC || !okA:
			t.Errorf("%s: capacity %v (set %v), allocatable %v (set %v): want both", r, c.String(), okC, a.String(), okA)
		case c.Sign() <= 0:
			t.Errorf("%s: capacity %s, want > 0", r, c.String())
		case a.Cmp(c) > 0:
			t.Errorf("%s: allocatable %s > capacity %s", r, a.String(), c.String())
		}
	}
	t.Logf("capacity %v; allocatable %v", resourceList(n.Status.Capacity), resourceList(n.Status.Allocatable))

	info := n.Status.NodeInfo
	t.Logf("nodeInfo %+v", info)
	for field, v := range map[string]string{
		"kubeletVersion":          info.KubeletVersion,
		"containerRuntimeVersion": info.ContainerRuntimeVersion,
		"kernelVersion":           info.KernelVersion,
		"osImage":                 info.OSImage,
		"machineID":               info.MachineID,
		"bootID":                  info.BootID,
	} {
		if v == "" {
			t.Errorf("nodeInfo.%s is empty", field)
		}
	}
	if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://") {
		t.Errorf("nodeInfo.containerRuntimeVersion %q, want containerd://<version>", info.ContainerRuntimeVersion)
	}
	if info.OperatingSystem != goruntime.GOOS || info.Architecture != goruntime.GOARCH {
		t.Errorf("nodeInfo operatingSystem/architecture %q/%q, want %q/%q", info.OperatingSystem, info.Architecture, goruntime.GOOS, goruntime.GOARCH)
	}

	want := map[v1.NodeConditionType]v1.ConditionStatus{
		v1.NodeReady:          v1.ConditionTrue,
		v1.NodeMemoryPressure: v1.ConditionFalse,
		v1.NodeDiskPressure:   v1.ConditionFalse,
		v1.NodePIDPressure:    v1.ConditionFalse,
	}
	for typ, status := range want {
		c := nodeCondition(n, typ)
		switch {
		case c == nil:
			t.Errorf("no %s condition", typ)
		case c.Status != status:
			t.Errorf("condition %s = %s (%s: %s), want %s", typ, c.Status, c.Reason, c.Message, status)
		case typ == v1.NodeReady && c.Reason != "KubeletReady":
			t.Errorf("condition Ready reason %q, want KubeletReady", c.Reason)
		}
	}

	addrs := map[v1.NodeAddressType][]string{}
	for _, a := range n.Status.Addresses {
		addrs[a.Type] = append(addrs[a.Type], a.Address)
	}
	if !slices.Contains(addrs[v1.NodeInternalIP], "127.0.0.1") {
		t.Errorf("addresses %v: want InternalIP 127.0.0.1", n.Status.Addresses)
	}
	if !slices.Contains(addrs[v1.NodeHostName], nodeName) {
		t.Errorf("addresses %v: want Hostname %s", n.Status.Addresses, nodeName)
	}

	var images []string
	for _, img := range n.Status.Images {
		images = append(images, img.Names...)
	}
	if !slices.Contains(images, busybox) {
		t.Errorf("node images %v do not include %s", images, busybox)
	}
}

func TestLeaseRenewed(t *testing.T) {
	env := requireSuite(t)
	l, err := env.getLease()
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != nodeName {
		t.Errorf("lease holderIdentity %v, want %s", l.Spec.HolderIdentity, nodeName)
	}
	if l.Spec.RenewTime == nil {
		t.Fatal("lease has no renewTime")
	}
	first := l.Spec.RenewTime.Time
	took := env.eventually(t, 15*time.Second, env.leaseRenewedAfter(first))
	l, err = env.getLease()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lease renewed %s after we looked (renewTime %s -> %s)", took.Round(time.Millisecond),
		first.Format(time.TimeOnly), l.Spec.RenewTime.Format(time.TimeOnly))
}

func resourceList(rl v1.ResourceList) string {
	var parts []string
	for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourcePods, v1.ResourceEphemeralStorage} {
		q := rl[r]
		parts = append(parts, fmt.Sprintf("%s=%s", r, q.String()))
	}
	return strings.Join(parts, " ")
}

// TestNodeNotReadyWithoutPodNetwork: the node is Ready only while the
// runtime reports NetworkReady, as upstream's. With its CNI configuration
// gone, containerd reports NetworkReady=false (reason
// NetworkPluginNotReady) and berth's Node turns NotReady with upstream's
// message, so nothing is scheduled onto a node without a pod network; once
// the configuration is written again (as a CNI installer writes it) it
// turns Ready again. containerd 1.6 reloads its CNI configuration on write,
// rename and remove events in the directory (not on create alone), so no
// restart is needed on either side.
func TestNodeNotReadyWithoutPodNetwork(t *testing.T) {
	env := requireSuite(t)
	env.eventually(t, time.Minute, env.nodeReady)
	conf := filepath.Join(env.ctrdDir, "cni", "net.d", "10-berth.conflist")
	content, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(conf); err != nil {
		t.Fatalf("remove the CNI configuration: %v", err)
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		if err := os.WriteFile(conf, content, 0o644); err != nil {
			t.Errorf("write the CNI configuration again: %v", err)
		}
	}
	t.Cleanup(func() {
		restore()
		env.eventually(t, time.Minute, env.nodeReady)
	})

	took := env.eventually(t, time.Minute, func() (bool, string) {
		n, err := env.getNode()
		if err != nil {
			return false, err.Error()
		}
		c := nodeCondition(n, v1.NodeReady)
		if c == nil {
			return false, "no Ready condition"
		}
		msg := fmt.Sprintf("Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
		return c.Status == v1.ConditionFalse && c.Reason == "KubeletNotReady" &&
			strings.Contains(c.Message, "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:"), msg
	})
	t.Logf("NotReady %s after the CNI configuration went", took.Round(time.Second))

	restore()
	took = env.eventually(t, time.Minute, env.nodeReady)
	t.Logf("Ready again %s after the CNI configuration came back", took.Round(time.Second))
}
