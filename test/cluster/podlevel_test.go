package cluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestPodLevelResources: a pod's spec.resources (PodLevelResources, on by
// default in v1.37) limit its pod cgroup, a container that sets no limits
// of its own gets the pod's in its cgroup and in the downward API, the
// QoS class follows the pod-level values, and the status reports them
// (status.resources and status.allocatedResources) as upstream.
func TestPodLevelResources(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	p := shellPod("podlevel", idleScript, onNode(), withGrace(1), func(p *v1.Pod) {
		p.Spec.Resources = &v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("200m"), v1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("400m"), v1.ResourceMemory: resource.MustParse("128Mi")},
		}
		p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "MEM_LIMIT", ValueFrom: &v1.EnvVarSource{
			ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")},
		}}}
	})
	env.createPod(t, ns, p)
	pods, took := env.waitReady(t, ns, "podlevel", 1, 60*time.Second)
	t.Logf("pod with pod-level resources Ready in %s", took)
	got := &pods[0]
	if got.Status.QOSClass != v1.PodQOSBurstable {
		t.Errorf("QoS class %s, want Burstable", got.Status.QOSClass)
	}

	// The pod cgroup and the container's: 400m of cpu, 128Mi of memory.
	checkCgroups(t, env, got, 40000, 128<<20)
	shares, wantShares := podCgroupValue(t, got, "cpu", "cpu.shares", "cpu.weight"), "204" // 200m
	if cgroupV2() {
		wantShares = "8"
	}
	if shares != wantShares {
		t.Errorf("pod cgroup shares %s, want %s", shares, wantShares)
	}
	id := strings.TrimPrefix(containerStatus(got, "main").ContainerID, "containerd://")
	if out := strings.TrimSpace(env.execScript(t, id, `echo "$MEM_LIMIT"`)); out != "128" {
		t.Errorf("MEM_LIMIT = %q, want the pod's limit 128 (Mi)", out)
	}

	want := v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("200m"), v1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("400m"), v1.ResourceMemory: resource.MustParse("128Mi")},
	}
	env.eventually(t, 30*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, "podlevel")
		if err != nil || p == nil {
			return false, "get pod: " + errString(err)
		}
		ok := p.Status.Resources != nil && apiequality.Semantic.DeepEqual(*p.Status.Resources, want) &&
			apiequality.Semantic.DeepEqual(p.Status.AllocatedResources, want.Requests)
		return ok, "status resources " + p.Status.Resources.String() + ", allocated " + resourceListString(p.Status.AllocatedResources)
	})

	// Resized in place (InPlacePodLevelResourcesVerticalScaling, beta and
	// on in v1.37; the node declares it): the pod cgroup and the
	// container without limits of its own follow, nothing restarts.
	node, err := env.kube.CoreV1().Nodes().Get(t.Context(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(node.Status.DeclaredFeatures, "InPlacePodLevelResourcesVerticalScaling") {
		t.Errorf("node declares %v, want InPlacePodLevelResourcesVerticalScaling", node.Status.DeclaredFeatures)
	}
	before := *containerStatus(got, "main")
	ctx, cancel := apiContext()
	defer cancel()
	patch := `{"spec":{"resources":{"requests":{"cpu":"100m","memory":"64Mi"},"limits":{"cpu":"300m","memory":"160Mi"}}}}`
	if _, err := env.kube.CoreV1().Pods(ns).Patch(ctx, "podlevel", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "resize"); err != nil {
		t.Fatalf("pod-level resize: %v", err)
	}
	want = v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("300m"), v1.ResourceMemory: resource.MustParse("160Mi")},
	}
	took = env.eventually(t, 60*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, "podlevel")
		if err != nil || p == nil {
			return false, "get pod: " + errString(err)
		}
		got = p
		ok := p.Status.Resources != nil && apiequality.Semantic.DeepEqual(*p.Status.Resources, want) &&
			apiequality.Semantic.DeepEqual(p.Status.AllocatedResources, want.Requests) &&
			podCondition(p, v1.PodResizeInProgress) == nil && podCondition(p, v1.PodResizePending) == nil
		return ok, "status resources " + p.Status.Resources.String() + ", conditions " + fmt.Sprint(p.Status.Conditions)
	})
	t.Logf("pod-level resize reported in %s", took)
	if after := containerStatus(got, "main"); after.ContainerID != before.ContainerID || after.RestartCount != before.RestartCount {
		t.Errorf("container restarted: %s (restarts %d) -> %s (restarts %d)", before.ContainerID, before.RestartCount, after.ContainerID, after.RestartCount)
	}
	checkCgroups(t, env, got, 30000, 160<<20)
	env.eventually(t, 10*time.Second, env.eventReasons(ns, "podlevel", "ResizeStarted", "ResizeCompleted"))
}

func errString(err error) string {
	if err == nil {
		return "no such pod"
	}
	return err.Error()
}

func resourceListString(l v1.ResourceList) string {
	var b strings.Builder
	for k, v := range l {
		b.WriteString(string(k) + "=" + v.String() + " ")
	}
	return b.String()
}
