package multinode

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const busybox = "berth.local/busybox:1.0"

func nodeName(i int) string { return fmt.Sprintf("%s-%d", nodePrefix, i) }

// onNode pins a pod to node i through the scheduler.
func onNode(i int) map[string]string { return map[string]string{"kubernetes.io/hostname": nodeName(i)} }

// TestMultiNodeSmoke: a pod on node 2 reaches a pod on node 1 by its IP
// and through a Service by its DNS name; kube-proxy runs on every node,
// CoreDNS on one of them; `kubectl top` lists every node and the pods.
func TestMultiNodeSmoke(t *testing.T) {
	env := requireSuite(t)
	t.Logf("hack/multinode.sh up %d took %s", nodeCount, env.upTime.Round(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pods := env.kube.CoreV1().Pods("default")

	// Each Node's pod CIDR, allocated by the controller-manager.
	cidrs := map[string]*net.IPNet{}
	for i := 1; i <= nodeCount; i++ {
		n, err := env.kube.CoreV1().Nodes().Get(ctx, nodeName(i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
		if err != nil {
			t.Fatalf("node %s: pod CIDR %q: %v", n.Name, n.Spec.PodCIDR, err)
		}
		cidrs[n.Name] = cidr
	}

	web := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: v1.PodSpec{
			NodeSelector: onNode(1),
			Containers: []v1.Container{{
				Name:    "httpd",
				Image:   busybox,
				Command: []string{"sh", "-c", `mkdir -p /www && echo "hello from $(hostname)" >/www/index.html && exec httpd -f -p 8080 -h /www`},
				Ports:   []v1.ContainerPort{{ContainerPort: 8080}},
				ReadinessProbe: &v1.Probe{
					ProbeHandler:  v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 1,
				},
			}},
			TerminationGracePeriodSeconds: ptr.To[int64](1),
		},
	}
	if _, err := pods.Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: v1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []v1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := env.kube.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	web = waitPod(ctx, t, env, "web", func(p *v1.Pod) bool { return podReady(p) })
	if ip := net.ParseIP(web.Status.PodIP); !cidrs[nodeName(1)].Contains(ip) {
		t.Errorf("pod web on %s has IP %s, outside the node's pod CIDR %s", web.Spec.NodeName, ip, cidrs[nodeName(1)])
	}

	// Clients on node 2: by IP across nodes, and by the Service's name
	// (CoreDNS through the clusterDNS Service, then kube-proxy's rules).
	want := "hello from web"
	for _, c := range []struct{ name, url string }{
		{"client-ip", fmt.Sprintf("http://%s/", net.JoinHostPort(web.Status.PodIP, "8080"))},
		{"client-dns", "http://web.default.svc.cluster.local/"},
	} {
		client := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: c.name},
			Spec: v1.PodSpec{
				NodeSelector:  onNode(2),
				RestartPolicy: v1.RestartPolicyNever,
				Containers: []v1.Container{{
					Name:  "wget",
					Image: busybox,
					// A few tries: the Service's rules and DNS records
					// follow the pod's readiness by a moment. (Debian's
					// busybox wget crashes with -T: timeout bounds it.)
					Command: []string{"sh", "-c", `for i in $(seq 1 20); do timeout 5 wget -q -O - "$1" && exit 0; sleep 1; done; exit 1`, "sh", c.url},
				}},
				TerminationGracePeriodSeconds: ptr.To[int64](1),
			},
		}
		if _, err := pods.Create(ctx, client, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"client-ip", "client-dns"} {
		p := waitPod(ctx, t, env, name, func(p *v1.Pod) bool {
			return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
		})
		logs, err := pods.GetLogs(name, &v1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			t.Errorf("%s logs: %v", name, err)
		}
		if p.Status.Phase != v1.PodSucceeded || !strings.Contains(string(logs), want) {
			t.Errorf("%s on %s: phase %s, output %q; want %q", name, p.Spec.NodeName, p.Status.Phase, logs, want)
		}
		if ip := net.ParseIP(p.Status.PodIP); p.Status.PodIP != "" && !cidrs[nodeName(2)].Contains(ip) {
			t.Errorf("%s has IP %s, outside %s's pod CIDR %s", name, ip, nodeName(2), cidrs[nodeName(2)])
		}
	}

	// The add-ons run on the berth nodes.
	sys, err := env.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	proxyOn := map[string]bool{}
	dns := 0
	for _, p := range sys.Items {
		switch {
		case p.Labels["k8s-app"] == "kube-proxy" && podReady(&p):
			proxyOn[p.Spec.NodeName] = true
		case p.Labels["k8s-app"] == "kube-dns" && podReady(&p) && strings.HasPrefix(p.Spec.NodeName, nodePrefix+"-"):
			dns++
		}
	}
	for i := 1; i <= nodeCount; i++ {
		if !proxyOn[nodeName(i)] {
			t.Errorf("no ready kube-proxy on %s", nodeName(i))
		}
	}
	if dns == 0 {
		t.Error("no ready CoreDNS pod on a berth node")
	}

	// kubectl top: metrics-server scrapes every node's /metrics/resource,
	// verifying its serving certificate; a node appears once it has two
	// samples.
	var top string
	deadline := time.Now().Add(90 * time.Second)
	for {
		top, err = env.kubectlRun(ctx, "top", "nodes", "--no-headers")
		missing := 0
		for i := 1; i <= nodeCount; i++ {
			if !strings.Contains(top, nodeName(i)+" ") {
				missing++
			}
		}
		if err == nil && missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl top nodes does not list every node after 90s: %v\n%s", err, top)
		}
		time.Sleep(3 * time.Second)
	}
	t.Logf("kubectl top nodes:\n%s", top)
	deadline = time.Now().Add(60 * time.Second)
	for {
		top, err = env.kubectlRun(ctx, "top", "pods", "--no-headers")
		if err == nil && strings.Contains(top, "web ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl top pods does not list pod web after 60s: %v\n%s", err, top)
		}
		time.Sleep(3 * time.Second)
	}
	t.Logf("kubectl top pods:\n%s", top)
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// waitPod polls pod name until done says so, failing t when ctx ends.
func waitPod(ctx context.Context, t *testing.T, env *environment, name string, done func(*v1.Pod) bool) *v1.Pod {
	t.Helper()
	for {
		p, err := env.kube.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && done(p) {
			return p
		}
		select {
		case <-ctx.Done():
			if p != nil {
				t.Fatalf("pod %s: %v; phase %s, conditions %+v, containers %+v", name, ctx.Err(), p.Status.Phase, p.Status.Conditions, p.Status.ContainerStatuses)
			}
			t.Fatalf("pod %s: %v (%v)", name, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
