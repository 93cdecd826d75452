package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testHandler is the second runtime handler hack/containerd.sh configures:
// runc with a state root of its own (runc-test-handler/).
const testHandler = "test-handler"

// createRuntimeClass creates a cluster-wide RuntimeClass, removed when t
// ends.
func (env *environment) createRuntimeClass(t *testing.T, name, handler string, overhead v1.ResourceList) {
	t.Helper()
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler}
	if overhead != nil {
		rc.Overhead = &nodev1.Overhead{PodFixed: overhead}
	}
	ctx, cancel := apiContext()
	defer cancel()
	if _, err := env.kube.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create RuntimeClass %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := apiContext()
		defer cancel()
		if err := env.kube.NodeV1().RuntimeClasses().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete RuntimeClass %s: %v", name, err)
		}
	})
}

func withRuntimeClass(name string) podOption {
	return func(p *v1.Pod) { p.Spec.RuntimeClassName = &name }
}

// podSandbox is the pod's one sandbox as the runtime reports it.
func (env *environment) podSandbox(t *testing.T, p *v1.Pod) *runtimeapi.PodSandboxStatus {
	t.Helper()
	ctx, cancel := criContext()
	defer cancel()
	sbs, err := env.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodUID: string(p.UID)}})
	if err != nil || len(sbs) != 1 {
		t.Fatalf("sandboxes of pod %s: %d, %v; want one", p.Name, len(sbs), err)
	}
	st, err := env.rt.PodSandboxStatus(ctx, sbs[0].Id, false)
	if err != nil {
		t.Fatalf("sandbox status: %v", err)
	}
	return st.GetStatus()
}

// TestRuntimeClass: a pod's RuntimeClass chooses the runtime handler its
// sandbox runs with, and the class's overhead (set on the pod by the API
// server's RuntimeClass admission) is part of the pod cgroup's limits; a
// handler the runtime lacks, and a class that does not exist (a static pod,
// which no admission checks), fail the sandbox with upstream's event and
// leave the pod Pending.
func TestRuntimeClass(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)

	rc := ns + "-test-handler"
	env.createRuntimeClass(t, rc, testHandler, v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("32Mi")})
	created := env.createPod(t, ns, shellPod("handled", idleScript, onNode(), withGrace(1), withRuntimeClass(rc), cpuMemory("100m", "64Mi", "200m", "128Mi")))
	if got := created.Spec.Overhead; got.Cpu().String() != "250m" || got.Memory().String() != "32Mi" {
		t.Fatalf("the API server set overhead %v, want the class's", got)
	}
	unconfigured := ns + "-unconfigured"
	env.createRuntimeClass(t, unconfigured, "no-such-handler", nil)
	env.createPod(t, ns, shellPod("unhandled", idleScript, onNode(), withGrace(1), withRuntimeClass(unconfigured)))
	static := inNamespace(ns, shellPod("classless", idleScript, withGrace(1), withRuntimeClass(ns+"-missing")))
	env.writeManifest(t, static)

	pods, took := env.waitReady(t, ns, "handled", 1, 60*time.Second)
	p := &pods[0]
	t.Logf("pod on RuntimeClass %s Ready in %s", rc, took)
	sb := env.podSandbox(t, p)
	if sb.GetRuntimeHandler() != testHandler {
		t.Errorf("sandbox runtime handler %q, want %q", sb.GetRuntimeHandler(), testHandler)
	}
	// The handler's own runc root holds the sandbox and the container: the
	// runtime really ran them with that handler, not only recorded it.
	for _, id := range []string{sb.GetId(), strings.TrimPrefix(containerStatus(p, "main").ContainerID, "containerd://")} {
		if _, err := os.Stat(filepath.Join(env.ctrdDir, "runc-test-handler", "k8s.io", id)); err != nil {
			t.Errorf("%s not in the test handler's runc root: %v", shortID(id), err)
		}
		if _, err := os.Stat(filepath.Join(env.ctrdDir, "runc", "k8s.io", id)); err == nil {
			t.Errorf("%s in the default handler's runc root", shortID(id))
		}
	}
	// Pod cgroup: the containers' values plus the overhead. Burstable:
	// shares from cpu requests (100m + 250m), quota and memory limit from
	// the limits (200m + 250m, 128Mi + 32Mi).
	checks := []struct{ controller, v1File, v2File, want, wantV2 string }{
		{"memory", "memory.limit_in_bytes", "memory.max", fmt.Sprint(160 << 20), fmt.Sprint(160 << 20)},
		{"cpu", "cpu.cfs_quota_us", "cpu.max", "45000", "45000 100000"},
		{"cpu", "cpu.shares", "cpu.weight", "358", "14"},
	}
	for _, c := range checks {
		got, want := podCgroupValue(t, p, c.controller, c.v1File, c.v2File), c.want
		if cgroupV2() {
			want = c.wantV2
		}
		if got != want {
			t.Errorf("pod cgroup %s/%s = %s, want %s", c.v1File, c.v2File, got, want)
		}
	}

	env.eventually(t, 30*time.Second, env.eventMessage(ns, "unhandled", "FailedCreatePodSandBox", `no runtime for "no-such-handler" is configured`))
	env.eventually(t, 30*time.Second, env.eventMessage(ns, static.Name+"-"+nodeName, "FailedCreatePodSandBox",
		fmt.Sprintf(`Failed to create pod sandbox: runtimeclass.node.k8s.io %q not found`, ns+"-missing")))
	if up, err := env.getPod(ns, "unhandled"); err != nil || up.Status.Phase != v1.PodPending {
		t.Errorf("pod with an unconfigured handler: %v, %v; want Pending", describePod(up), err)
	}
	if cs, err := env.containersIn(ns); err != nil || len(cs) != 1 {
		t.Errorf("containers in %s: %s, %v; want only the handled pod's", ns, describeContainers(cs), err)
	}
}

// eventMessage is a condition: an event about ns/name has the reason and
// a message containing want.
func (env *environment) eventMessage(ns, name, reason, want string) func() (bool, string) {
	return func() (bool, string) {
		events, err := env.events(ns, name)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range events {
			if e.Reason == reason && strings.Contains(e.Message, want) {
				return true, ""
			}
			seen = append(seen, describeEvent(e))
		}
		return false, fmt.Sprintf("no %s event about %s/%s with %q; have [%s]", reason, ns, name, want, strings.Join(seen, "; "))
	}
}
