package nodestatus

import (
	"errors"
	goruntime "runtime"
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testConfig() nodeConfig {
	return nodeConfig{
		name:           "node-a",
		labels:         map[string]string{"example.com/role": "edge"},
		taints:         []v1.Taint{{Key: "example.com/new", Effect: v1.TaintEffectNoSchedule}},
		maxPods:        110,
		reservation:    newReservation(nil, nil, map[string]string{"memory.available": "100Mi"}),
		port:           10250,
		kubeletVersion: "v1.37.2",
	}
}

func testFacts() facts {
	m := testMachine()
	m.machineID, m.systemUUID, m.bootID = "mid", "uuid", "boot"
	m.kernelVersion, m.osImage = "6.1.0", "Debian GNU/Linux 13 (trixie)"
	return facts{
		now:            t1,
		machine:        m,
		nodeIP:         "192.0.2.10",
		runtimeName:    "containerd",
		runtimeVersion: "1.6.20",
		images:         []v1.ContainerImage{{Names: []string{"busybox:1.36"}, SizeBytes: 1 << 20}},
	}
}

func TestInitialNode(t *testing.T) {
	node := initialNode(testConfig(), testFacts())
	wantLabels := map[string]string{
		"kubernetes.io/hostname":  "node-a",
		"kubernetes.io/os":        goruntime.GOOS,
		"kubernetes.io/arch":      goruntime.GOARCH,
		"beta.kubernetes.io/os":   goruntime.GOOS,
		"beta.kubernetes.io/arch": goruntime.GOARCH,
		"example.com/role":        "edge",
	}
	if !apiequality.Semantic.DeepEqual(node.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", node.Labels, wantLabels)
	}
	if node.Name != "node-a" || node.Annotations[controllerManagedAttachAnnotation] != "true" {
		t.Errorf("meta = %+v", node.ObjectMeta)
	}
	if len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Key != "example.com/new" {
		t.Errorf("taints = %v", node.Spec.Taints)
	}
	s := node.Status
	wantInfo := v1.NodeSystemInfo{
		MachineID: "mid", SystemUUID: "uuid", BootID: "boot", KernelVersion: "6.1.0",
		OSImage: "Debian GNU/Linux 13 (trixie)", ContainerRuntimeVersion: "containerd://1.6.20",
		KubeletVersion: "v1.37.2", OperatingSystem: goruntime.GOOS, Architecture: goruntime.GOARCH,
	}
	if s.NodeInfo != wantInfo {
		t.Errorf("nodeInfo:\n got %+v\nwant %+v", s.NodeInfo, wantInfo)
	}
	wantAddrs := []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "192.0.2.10"}, {Type: v1.NodeHostName, Address: "node-a"}}
	if !apiequality.Semantic.DeepEqual(s.Addresses, wantAddrs) {
		t.Errorf("addresses = %v", s.Addresses)
	}
	if s.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("daemonEndpoints = %+v", s.DaemonEndpoints)
	}
	if len(s.Images) != 1 || s.Images[0].Names[0] != "busybox:1.36" {
		t.Errorf("images = %v", s.Images)
	}
	checkResources(t, "allocatable", s.Allocatable, map[string]string{
		"cpu": "2", "memory": "3996Mi", "pods": "110", "ephemeral-storage": "100Gi", "hugepages-2Mi": "0", "hugepages-1Gi": "0",
	})
	if !apiequality.Semantic.DeepEqual(s.Conditions, healthy(t1, t1, t1)) {
		t.Errorf("conditions = %+v", s.Conditions)
	}
}

func TestSetStatusKeepsWhatItCannotTell(t *testing.T) {
	tests := []struct {
		name      string
		old       v1.NodeStatus
		facts     func(f *facts)
		wantAddrs []v1.NodeAddress
		wantCRI   string
	}{
		{
			name:      "no IP and no addresses yet: host name only",
			facts:     func(f *facts) { f.nodeIP = "" },
			wantAddrs: []v1.NodeAddress{{Type: v1.NodeHostName, Address: "node-a"}},
			wantCRI:   "containerd://1.6.20",
		},
		{
			name: "no IP: addresses kept",
			old: v1.NodeStatus{Addresses: []v1.NodeAddress{
				{Type: v1.NodeInternalIP, Address: "10.0.0.1"}, {Type: v1.NodeHostName, Address: "node-a"}}},
			facts:     func(f *facts) { f.nodeIP = "" },
			wantAddrs: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.0.1"}, {Type: v1.NodeHostName, Address: "node-a"}},
			wantCRI:   "containerd://1.6.20",
		},
		{
			name: "runtime never answered: runtime version kept",
			old: v1.NodeStatus{
				Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.0.1"}},
				NodeInfo:  v1.NodeSystemInfo{ContainerRuntimeVersion: "containerd://1.6.19", KubeProxyVersion: "v1.30.0"},
			},
			facts:     func(f *facts) { f.runtimeName, f.runtimeVersion = "", "" },
			wantAddrs: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "192.0.2.10"}, {Type: v1.NodeHostName, Address: "node-a"}},
			wantCRI:   "containerd://1.6.19",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFacts()
			tt.facts(&f)
			node := &v1.Node{Status: tt.old}
			setStatus(node, testConfig(), f)
			if !apiequality.Semantic.DeepEqual(node.Status.Addresses, tt.wantAddrs) {
				t.Errorf("addresses = %v, want %v", node.Status.Addresses, tt.wantAddrs)
			}
			if got := node.Status.NodeInfo.ContainerRuntimeVersion; got != tt.wantCRI {
				t.Errorf("containerRuntimeVersion = %q, want %q", got, tt.wantCRI)
			}
			if node.Status.NodeInfo.KubeProxyVersion != "" {
				t.Errorf("kubeProxyVersion = %q, want it cleared", node.Status.NodeInfo.KubeProxyVersion)
			}
		})
	}
}

func TestDesiredNodeChanged(t *testing.T) {
	cfg := testConfig()
	registered := initialNode(cfg, testFacts()) // as posted at t1
	tests := []struct {
		name  string
		node  func(n *v1.Node)
		facts func(f *facts)
		want  bool
	}{
		{name: "only time passed", want: false},
		{name: "health turned bad", facts: func(f *facts) { f.health = errors.New("container runtime is down") }, want: true},
		{name: "new image", facts: func(f *facts) {
			f.images = append(f.images, v1.ContainerImage{Names: []string{"pause:3.9"}, SizeBytes: 1})
		}, want: true},
		{name: "address changed", facts: func(f *facts) { f.nodeIP = "192.0.2.11" }, want: true},
		{name: "os label removed", node: func(n *v1.Node) { delete(n.Labels, v1.LabelOSStable) }, want: true},
		{name: "foreign label: not ours to change", node: func(n *v1.Node) { n.Labels["team"] = "a" }, want: false},
		{
			// The API server returns conditions in its own order and omits
			// empty lists; neither is a change.
			name: "conditions reordered, empty images as nil",
			node: func(n *v1.Node) {
				c := n.Status.Conditions
				c[0], c[3] = c[3], c[0]
				n.Status.Images = nil
			},
			facts: func(f *facts) { f.images = []v1.ContainerImage{} },
			want:  false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := registered.DeepCopy()
			if tt.node != nil {
				tt.node(node)
			}
			f := testFacts()
			f.now = t1.Add(10 * 60e9)
			if tt.facts != nil {
				tt.facts(&f)
			}
			before := node.DeepCopy()
			want, changed := desiredNode(node, cfg, f)
			if changed != tt.want {
				t.Errorf("changed = %v, want %v", changed, tt.want)
			}
			if !apiequality.Semantic.DeepEqual(node, before) {
				t.Error("desiredNode changed its input")
			}
			for _, c := range want.Status.Conditions {
				if !c.LastHeartbeatTime.Time.Equal(f.now) {
					t.Errorf("%s heartbeat = %v, want %v", c.Type, c.LastHeartbeatTime, f.now)
				}
			}
			if want.Labels[v1.LabelOSStable] != goruntime.GOOS {
				t.Errorf("os label = %q", want.Labels[v1.LabelOSStable])
			}
		})
	}
}

func TestStatusChangedIgnoresHeartbeats(t *testing.T) {
	a := v1.NodeStatus{Conditions: healthy(t0, t0, t0)}
	b := v1.NodeStatus{Conditions: healthy(t1, t0, t0)}
	if statusChanged(&a, &b) {
		t.Error("heartbeat alone counted as a change")
	}
	b.Conditions[3].LastTransitionTime = metav1.NewTime(t1)
	if !statusChanged(&a, &b) {
		t.Error("transition time change not seen")
	}
	c := v1.NodeStatus{Conditions: healthy(t0, t0, t0)[:3]}
	if !statusChanged(&a, &c) {
		t.Error("a missing condition not seen")
	}
}
