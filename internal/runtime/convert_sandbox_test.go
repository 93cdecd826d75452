package runtime

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSandboxConfig(t *testing.T) {
	yes := true
	user, group, fsGroup := int64(1000), int64(2000), int64(3000)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "prod", UID: "1234-abcd",
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{"note": "hi"},
		},
		Spec: v1.PodSpec{
			Hostname:              "www",
			Subdomain:             "front",
			SetHostnameAsFQDN:     &yes,
			ShareProcessNamespace: &yes,
			SecurityContext: &v1.PodSecurityContext{
				RunAsUser:          &user,
				RunAsGroup:         &group,
				FSGroup:            &fsGroup,
				SupplementalGroups: []int64{4000, 5000},
				Sysctls:            []v1.Sysctl{{Name: "net/ipv4/ip_unprivileged_port_start", Value: "0"}, {Name: "kernel.shm_rmid_forced", Value: "1"}},
				SELinuxOptions:     &v1.SELinuxOptions{Level: "s0:c1"},
			},
			Containers: []v1.Container{{
				Name: "app",
				Ports: []v1.ContainerPort{
					{Name: "http", ContainerPort: 80, HostPort: 8080, Protocol: v1.ProtocolTCP, HostIP: "127.0.0.1"},
					{Name: "http", ContainerPort: 81, Protocol: v1.ProtocolTCP}, // duplicate name: dropped
					{ContainerPort: 53, Protocol: v1.ProtocolUDP},
				},
				Resources: v1.ResourceRequirements{
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m")},
				},
			}, {
				Name:  "sidecar",
				Ports: []v1.ContainerPort{{ContainerPort: 9000, Protocol: v1.ProtocolSCTP}},
			}},
		},
	}
	got, notes, err := sandboxConfig(pod, 2, testNode(), &runtimeapi.DNSConfig{}, nil)
	if err != nil || len(notes) != 0 {
		t.Fatalf("sandboxConfig: %v %v", err, notes)
	}
	want := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "prod", Uid: "1234-abcd", Attempt: 2},
		Hostname: "www.front.prod.svc.cluster.local",
		Labels: map[string]string{
			"app":                         "web",
			"io.kubernetes.pod.name":      "web",
			"io.kubernetes.pod.namespace": "prod",
			"io.kubernetes.pod.uid":       "1234-abcd",
		},
		Annotations:  map[string]string{"note": "hi"},
		LogDirectory: "/var/log/pods/prod_web_1234-abcd",
		DnsConfig: &runtimeapi.DNSConfig{
			Servers:  []string{"10.96.0.10"},
			Searches: []string{"prod.svc.cluster.local", "svc.cluster.local", "cluster.local"},
			Options:  []string{"ndots:5"},
		},
		PortMappings: []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080, HostIp: "127.0.0.1"},
			{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53},
			{Protocol: runtimeapi.Protocol_SCTP, ContainerPort: 9000},
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/burstable/pod1234-abcd",
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_POD,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
				SelinuxOptions:     &runtimeapi.SELinuxOption{Level: "s0:c1"},
				RunAsUser:          &runtimeapi.Int64Value{Value: 1000},
				RunAsGroup:         &runtimeapi.Int64Value{Value: 2000},
				SupplementalGroups: []int64{3000, 4000, 5000},
				Seccomp:            &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
			Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"},
			// Requests sum to 100m; no limits, so no quota.
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 102, CpuPeriod: 100000},
			Overhead:  &runtimeapi.LinuxContainerResources{},
		},
	}
	checkProto(t, "sandboxConfig", want, got)
}

func TestSandboxConfigHostNetwork(t *testing.T) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "net", Namespace: "kube-system", UID: "u"},
		Spec: v1.PodSpec{
			HostNetwork: true, HostPID: true, HostIPC: true,
			Containers: []v1.Container{{Name: "c", SecurityContext: &v1.SecurityContext{Privileged: new(bool)}}},
			InitContainers: []v1.Container{{
				Name: "i", SecurityContext: &v1.SecurityContext{Privileged: func() *bool { b := true; return &b }()},
			}},
		},
	}
	got, _, err := sandboxConfig(pod, 0, testNode(), &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hostname != "" {
		t.Errorf("hostname = %q, want empty (the node's)", got.Hostname)
	}
	ns := got.Linux.SecurityContext.NamespaceOptions
	if ns.Network != runtimeapi.NamespaceMode_NODE || ns.Pid != runtimeapi.NamespaceMode_NODE || ns.Ipc != runtimeapi.NamespaceMode_NODE {
		t.Errorf("namespaces = %v, want all NODE", ns)
	}
	if !got.Linux.SecurityContext.Privileged {
		t.Error("sandbox not privileged although an init container is")
	}
	if s := got.DnsConfig.Servers; len(s) != 1 || s[0] != "1.1.1.1" {
		t.Errorf("DNS servers = %v, want the host's (ClusterFirst on the host network)", s)
	}
	if got.Linux.CgroupParent != "/kubepods/besteffort/podu" {
		t.Errorf("cgroup parent = %q", got.Linux.CgroupParent)
	}
}

func TestPodHostname(t *testing.T) {
	yes := true
	long := strings.Repeat("a", 62) + "-b"
	tests := []struct {
		name     string
		podName  string
		hostname string
		sub      string
		fqdn     *bool
		override string
		want     string
		wantErr  string
	}{
		{name: "pod name", podName: "web", want: "web"},
		{name: "spec hostname", podName: "web", hostname: "www", want: "www"},
		{name: "long name is cut without trailing dash", podName: long, want: strings.Repeat("a", 62)},
		{name: "subdomain alone keeps the short name", podName: "web", sub: "s", want: "web"},
		{name: "FQDN", podName: "web", sub: "s", fqdn: &yes, want: "web.s.ns.svc.cluster.local"},
		{name: "FQDN needs a subdomain", podName: "web", fqdn: &yes, want: "web"},
		{name: "FQDN too long", podName: strings.Repeat("a", 45), sub: "s", fqdn: &yes,
			wantErr: "failed to construct FQDN from pod hostname and cluster domain, FQDN " + strings.Repeat("a", 45) + ".s.ns.svc.cluster.local is too long (64 characters is the max, 68 characters requested)"},
		{name: "invalid hostname", podName: "web", hostname: "Not_Valid", wantErr: `pod Hostname "Not_Valid" is not a valid DNS label`},
		{name: "invalid subdomain", podName: "web", sub: "a.b", wantErr: `pod Subdomain "a.b" is not a valid DNS label`},
		{name: "override", podName: "web", hostname: "www", sub: "s", override: "custom.name", want: "custom.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: tt.podName, Namespace: "ns", UID: "u"},
				Spec:       v1.PodSpec{Hostname: tt.hostname, Subdomain: tt.sub, SetHostnameAsFQDN: tt.fqdn},
			}
			if tt.override != "" {
				pod.Spec.HostnameOverride = &tt.override
			}
			got, _, err := sandboxConfig(pod, 0, testNode(), &runtimeapi.DNSConfig{}, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Hostname != tt.want {
				t.Errorf("hostname = %q, %v; want %q", got.GetHostname(), err, tt.want)
			}
		})
	}
}
