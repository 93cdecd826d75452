package cluster

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The pods and assertions of upstream node conformance specs
// (test/e2e/common/node in k8s.io/kubernetes v1.37.2), each named after
// its spec, with berth-side checks added.

// finishedPod waits until the pod ns/name has succeeded or failed.
func (env *environment) finishedPod(t *testing.T, ns, name string) *v1.Pod {
	t.Helper()
	p, _ := env.waitPod(t, ns, name, 60*time.Second, func(p *v1.Pod) (bool, string) {
		return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed, "want Succeeded or Failed"
	})
	return p
}

// podOutput runs p to completion and returns its log.
func (env *environment) podOutput(t *testing.T, ns string, p *v1.Pod) string {
	t.Helper()
	p.Spec.RestartPolicy = v1.RestartPolicyNever
	env.createPod(t, ns, p)
	got := env.finishedPod(t, ns, p.Name)
	out, err := env.podLogs(ns, p.Name, &v1.PodLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1.PodSucceeded {
		t.Fatalf("pod %s: %s; log:\n%s", p.Name, describePod(got), out)
	}
	return out
}

// envOf parses the output of `env`.
func envOf(out string) map[string]string {
	m := map[string]string{}
	for _, l := range lines(out) {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// [sig-node] Pods should contain environment variables for services
// [Conformance], plus enableServiceLinks: false, $(VAR) references to
// service variables and the pod's own variables winning over them.
func TestServiceEnvironmentVariables(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	ctx, cancel := apiContext()
	defer cancel()
	kubernetes, err := env.kube.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the kubernetes Service: %v", err)
	}
	svc, err := env.kube.CoreV1().Services(ns).Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "fooservice"},
		Spec: v1.ServiceSpec{
			Ports:    []v1.ServicePort{{Port: 8765, TargetPort: intstr.FromInt32(8080)}},
			Selector: map[string]string{"name": "server"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	// A headless Service gives no variables.
	if _, err := env.kube.CoreV1().Services(ns).Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "headless"},
		Spec:       v1.ServiceSpec{ClusterIP: v1.ClusterIPNone, Ports: []v1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create headless service: %v", err)
	}
	fooIP := svc.Spec.ClusterIP
	kubeIP, kubePort := kubernetes.Spec.ClusterIP, strconv.Itoa(int(kubernetes.Spec.Ports[0].Port))

	p := shellPod("client-envvars", "env", withMain(func(c *v1.Container) {
		c.Env = []v1.EnvVar{
			{Name: "FOO_URL", Value: "http://$(FOOSERVICE_SERVICE_HOST):$(FOOSERVICE_SERVICE_PORT)/"},
			{Name: "FOOSERVICE_PORT", Value: "mine"},
		}
	}))
	var got map[string]string
	// The service may reach berth's informer after the pod reaches berth
	// (upstream's spec retries too).
	env.eventually(t, 30*time.Second, func() (bool, string) {
		p.Name = fmt.Sprintf("client-envvars-%d", time.Now().UnixNano()%100000)
		got = envOf(env.podOutput(t, ns, p.DeepCopy()))
		_, ok := got["FOOSERVICE_SERVICE_HOST"]
		return ok, fmt.Sprintf("no FOOSERVICE_SERVICE_HOST in %v", got)
	})
	want := map[string]string{
		"KUBERNETES_SERVICE_HOST":        kubeIP,
		"KUBERNETES_SERVICE_PORT":        kubePort,
		"KUBERNETES_SERVICE_PORT_HTTPS":  kubePort,
		"KUBERNETES_PORT":                "tcp://" + net.JoinHostPort(kubeIP, kubePort),
		"FOOSERVICE_SERVICE_HOST":        fooIP,
		"FOOSERVICE_SERVICE_PORT":        "8765",
		"FOOSERVICE_PORT_8765_TCP":       "tcp://" + net.JoinHostPort(fooIP, "8765"),
		"FOOSERVICE_PORT_8765_TCP_PROTO": "tcp",
		"FOOSERVICE_PORT_8765_TCP_PORT":  "8765",
		"FOOSERVICE_PORT_8765_TCP_ADDR":  fooIP,
		// The pod's own variable wins over the service's; its references
		// to service variables are expanded.
		"FOOSERVICE_PORT": "mine",
		"FOO_URL":         "http://" + fooIP + ":8765/",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "HEADLESS_") {
			t.Errorf("headless service gave %s", k)
		}
	}

	// enableServiceLinks: false keeps the namespace's services out, never
	// the API server's.
	off := false
	p = shellPod("no-links", "env", func(p *v1.Pod) { p.Spec.EnableServiceLinks = &off })
	got = envOf(env.podOutput(t, ns, p))
	if got["KUBERNETES_SERVICE_HOST"] != kubeIP || got["KUBERNETES_SERVICE_PORT"] != kubePort {
		t.Errorf("enableServiceLinks false: KUBERNETES_SERVICE_HOST=%q PORT=%q, want %s %s", got["KUBERNETES_SERVICE_HOST"], got["KUBERNETES_SERVICE_PORT"], kubeIP, kubePort)
	}
	for k := range got {
		if strings.HasPrefix(k, "FOOSERVICE_") {
			t.Errorf("enableServiceLinks false, yet %s=%s", k, got[k])
		}
	}
}

// [sig-node] Container Runtime blackbox test on terminated container should
// report termination message from log output if TerminationMessagePolicy
// FallbackToLogsOnError is set [Conformance], and its sibling for a
// container that succeeds.
func TestTerminationMessageFallbackToLogs(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	for _, tc := range []struct {
		name, script, phase, want string
	}{
		{"fails", "/bin/echo -n DONE; /bin/false", string(v1.PodFailed), "DONE"},
		{"succeeds", "/bin/echo -n DONE; /bin/true", string(v1.PodSucceeded), ""},
		{"file-wins", "/bin/echo -n OK > /dev/termination-log; /bin/echo DONE; /bin/false", string(v1.PodFailed), "OK"},
	} {
		p := shellPod("termination-"+tc.name, tc.script, withRestartPolicy(v1.RestartPolicyNever), withMain(func(c *v1.Container) {
			c.Command = []string{"/bin/sh", "-c"}
			c.Args = []string{tc.script}
			c.TerminationMessagePath = "/dev/termination-log"
			c.TerminationMessagePolicy = v1.TerminationMessageFallbackToLogsOnError
		}))
		env.createPod(t, ns, p)
		got := env.finishedPod(t, ns, p.Name)
		if string(got.Status.Phase) != tc.phase {
			t.Errorf("%s: phase %s, want %s", tc.name, got.Status.Phase, tc.phase)
		}
		cs := containerStatus(got, "main")
		if cs == nil || cs.State.Terminated == nil {
			t.Errorf("%s: container not terminated: %s", tc.name, describePod(got))
			continue
		}
		if cs.State.Terminated.Message != tc.want {
			t.Errorf("%s: termination message %q, want %q", tc.name, cs.State.Terminated.Message, tc.want)
		}
	}
}

// [sig-node] Downward API should provide host IP and pod IP as an env var
// if pod uses host network [LinuxOnly].
func TestDownwardAPIHostNetwork(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	field := func(path string) *v1.EnvVarSource {
		return &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
	}
	p := shellPod("downward-api-hostnet",
		`[[ "${HOST_IP:?}" == "${POD_IP:?}" ]] && echo 'OK' || echo "HOST_IP: '${HOST_IP}' != POD_IP: '${POD_IP}'"`,
		func(p *v1.Pod) { p.Spec.HostNetwork = true },
		withMain(func(c *v1.Container) {
			c.Env = []v1.EnvVar{{Name: "HOST_IP", ValueFrom: field("status.hostIP")}, {Name: "POD_IP", ValueFrom: field("status.podIP")}}
		}))
	if out := env.podOutput(t, ns, p); strings.TrimSpace(out) != "OK" {
		t.Errorf("output %q, want OK", out)
	}
	got, err := env.getPod(ns, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.PodIP == "" || got.Status.PodIP != got.Status.HostIP {
		t.Errorf("host-network pod: podIP %q, hostIP %q; want both the node's", got.Status.PodIP, got.Status.HostIP)
	}
}

// [sig-node] Kubelet with pods in a privileged namespace when scheduling an
// agnhost Pod with hostAliases and hostNetwork should write entries to
// /etc/hosts when hostNetwork is enabled.
func TestHostAliasesHostNetwork(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	p := shellPod("host-aliases", "cat /etc/hosts", func(p *v1.Pod) {
		p.Spec.HostNetwork = true
		p.Spec.HostAliases = []v1.HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo", "bar"}}}
	})
	out := env.podOutput(t, ns, p)
	if !strings.Contains(out, "123.45.67.89\tfoo\tbar") {
		t.Errorf("/etc/hosts lacks the hostAliases entry:\n%s", out)
	}
	if !strings.HasPrefix(out, "# Kubernetes-managed hosts file (host network).\n") {
		t.Errorf("/etc/hosts is not the managed host-network file:\n%s", out)
	}
}

// [sig-node] Sysctls should not launch unsafe, but not explicitly enabled
// sysctls on the node; a safe one is applied; a static pod is checked too.
func TestSysctls(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	unsafe := func(p *v1.Pod) {
		p.Spec.SecurityContext = &v1.PodSecurityContext{Sysctls: []v1.Sysctl{{Name: "kernel.msgmax", Value: "10000000000"}}}
	}
	p := env.createPod(t, ns, sleeper("unsafe-sysctl", unsafe))
	rejected := func(p *v1.Pod) (bool, string) {
		return p.Status.Phase == v1.PodFailed && p.Status.Reason == "SysctlForbidden", "want Failed, SysctlForbidden"
	}
	got, _ := env.waitPod(t, ns, p.Name, 30*time.Second, rejected)
	if want := `Pod was rejected: forbidden sysctl: "kernel.msgmax" not allowlisted`; got.Status.Message != want {
		t.Errorf("message %q, want %q", got.Status.Message, want)
	}
	if cs, err := env.podContainers(got.UID); err != nil || len(cs) > 0 {
		t.Errorf("rejected pod has containers: %s %v", describeContainers(cs), err)
	}

	safe := shellPod("safe-sysctl", "cat /proc/sys/kernel/shm_rmid_forced", func(p *v1.Pod) {
		p.Spec.SecurityContext = &v1.PodSecurityContext{Sysctls: []v1.Sysctl{{Name: "kernel/shm_rmid_forced", Value: "1"}}}
	})
	if out := env.podOutput(t, ns, safe); strings.TrimSpace(out) != "1" {
		t.Errorf("kernel.shm_rmid_forced in the pod: %q, want 1", out)
	}

	static := sleeper("static-sysctl", unsafe)
	static.Namespace = ns
	env.writeManifest(t, static)
	env.waitPod(t, ns, "static-sysctl-"+nodeName, 30*time.Second, rejected)
}

// [sig-node] Downward API should provide default limits.cpu/memory from
// node allocatable [Conformance], checked against the Node's exact values.
func TestDownwardAPIDefaultLimitsFromAllocatable(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	node, err := env.getNode()
	if err != nil {
		t.Fatal(err)
	}
	limit := func(res string) *v1.EnvVarSource {
		return &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: res}}
	}
	p := shellPod("dapi-allocatable", "env", withMain(func(c *v1.Container) {
		c.Env = []v1.EnvVar{{Name: "CPU_LIMIT", ValueFrom: limit("limits.cpu")}, {Name: "MEMORY_LIMIT", ValueFrom: limit("limits.memory")}}
	}))
	got := envOf(env.podOutput(t, ns, p))
	cpu := node.Status.Allocatable.Cpu()
	wantCPU := strconv.FormatInt((cpu.MilliValue()+999)/1000, 10)
	wantMem := strconv.FormatInt(node.Status.Allocatable.Memory().Value(), 10)
	if got["CPU_LIMIT"] != wantCPU || got["MEMORY_LIMIT"] != wantMem {
		t.Errorf("CPU_LIMIT=%s MEMORY_LIMIT=%s, want the Node's allocatable %s and %s", got["CPU_LIMIT"], got["MEMORY_LIMIT"], wantCPU, wantMem)
	}
}
