package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cpuMemory sets the first container's requests and limits of cpu and
// memory.
func cpuMemory(cpuReq, memReq, cpuLim, memLim string) podOption {
	return withResources(
		v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpuReq), v1.ResourceMemory: resource.MustParse(memReq)},
		v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpuLim), v1.ResourceMemory: resource.MustParse(memLim)})
}

// resize patches the pod's container "main" through the resize
// subresource, as `kubectl patch --subresource resize` does.
func (env *environment) resize(ns, name, cpuReq, memReq, cpuLim, memLim string) (*v1.Pod, error) {
	ctx, cancel := apiContext()
	defer cancel()
	patch := fmt.Sprintf(`{"spec":{"containers":[{"name":"main","resources":{"requests":{"cpu":%q,"memory":%q},"limits":{"cpu":%q,"memory":%q}}}]}}`,
		cpuReq, memReq, cpuLim, memLim)
	return env.kube.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "resize")
}

// resized waits until the pod reports the resources of its container main
// as wanted (status resources and allocatedResources) with no resize
// condition left, and returns it.
func (env *environment) resized(t *testing.T, ns, name, cpuReq, memReq, cpuLim, memLim string) *v1.Pod {
	t.Helper()
	var p *v1.Pod
	took := env.eventually(t, 60*time.Second, func() (bool, string) {
		got, err := env.getPod(ns, name)
		if err != nil || got == nil {
			return false, fmt.Sprintf("get pod: %v", err)
		}
		p = got
		cs := containerStatus(p, "main")
		if cs == nil || cs.Resources == nil {
			return false, "no resources in the container status: " + describePod(p)
		}
		r := cs.Resources
		ok := r.Requests.Cpu().Equal(resource.MustParse(cpuReq)) && r.Limits.Cpu().Equal(resource.MustParse(cpuLim)) &&
			r.Requests.Memory().Equal(resource.MustParse(memReq)) && r.Limits.Memory().Equal(resource.MustParse(memLim)) &&
			cs.AllocatedResources.Cpu().Equal(resource.MustParse(cpuReq)) && cs.AllocatedResources.Memory().Equal(resource.MustParse(memReq)) &&
			podCondition(p, v1.PodResizeInProgress) == nil && podCondition(p, v1.PodResizePending) == nil
		return ok, fmt.Sprintf("want resources cpu %s/%s memory %s/%s; status resources %v, allocated %v, conditions %v",
			cpuReq, cpuLim, memReq, memLim, r, cs.AllocatedResources, p.Status.Conditions)
	})
	t.Logf("status reports cpu %s/%s memory %s/%s after %s", cpuReq, cpuLim, memReq, memLim, took)
	return p
}

// containerCgroup reads a value of the pod's container main from inside
// it (runc mounts the container's own cgroup at /sys/fs/cgroup);
// podCgroupValue reads the pod cgroup's from the host.
func (env *environment) containerCgroup(t *testing.T, p *v1.Pod, v1File, v2File string) string {
	t.Helper()
	id := strings.TrimPrefix(containerStatus(p, "main").ContainerID, "containerd://")
	path := "/sys/fs/cgroup/" + v1File
	if cgroupV2() {
		path = "/sys/fs/cgroup/" + v2File
	}
	out, err := env.exec(id, "cat", path)
	if err != nil {
		t.Fatalf("read %s in the container: %v", path, err)
	}
	return strings.TrimSpace(out)
}

func podCgroupValue(t *testing.T, p *v1.Pod, controller, v1File, v2File string) string {
	t.Helper()
	path := filepath.Join("/sys/fs/cgroup", controller, podCgroup(p), v1File)
	if cgroupV2() {
		path = filepath.Join("/sys/fs/cgroup", podCgroup(p), v2File)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the pod cgroup: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// TestInPlaceResize: a running pod's cpu and memory change through the
// resize subresource without a restart: the container's cgroup and the
// pod's follow, and the status reports the new resources. A resize the
// node has no room for waits (PodResizePending, Deferred) and is applied
// once a pod leaves; one beyond the node's allocatable is refused by the
// API server (v1.37's PodResizeValidator), which needs berth to report
// container resources in the first place.
func TestInPlaceResize(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createPod(t, ns, shellPod("resizable", idleScript, onNode(), withGrace(1), cpuMemory("100m", "64Mi", "200m", "128Mi")))
	pods, _ := env.waitReady(t, ns, "resizable", 1, 60*time.Second)
	p := &pods[0]
	before := *containerStatus(p, "main")
	if before.Resources == nil || before.AllocatedResources == nil {
		t.Fatalf("running container reports no resources: %+v", before)
	}

	// Up: cpu and memory, requests and limits.
	if _, err := env.resize(ns, "resizable", "150m", "80Mi", "300m", "160Mi"); err != nil {
		t.Fatalf("resize: %v", err)
	}
	p = env.resized(t, ns, "resizable", "150m", "80Mi", "300m", "160Mi")
	after := containerStatus(p, "main")
	if after.ContainerID != before.ContainerID || after.RestartCount != before.RestartCount {
		t.Errorf("container restarted: %s (restarts %d) -> %s (restarts %d)", before.ContainerID, before.RestartCount, after.ContainerID, after.RestartCount)
	}
	checkCgroups(t, env, p, 30000, 160<<20)

	// Down, memory limit and cpu limit.
	if _, err := env.resize(ns, "resizable", "100m", "64Mi", "150m", "100Mi"); err != nil {
		t.Fatalf("resize: %v", err)
	}
	p = env.resized(t, ns, "resizable", "100m", "64Mi", "150m", "100Mi")
	if got := containerStatus(p, "main"); got.ContainerID != before.ContainerID || got.RestartCount != before.RestartCount {
		t.Errorf("container restarted by the second resize")
	}
	checkCgroups(t, env, p, 15000, 100<<20)
	env.eventually(t, 10*time.Second, env.eventReasons(ns, "resizable", "ResizeStarted", "ResizeCompleted"))

	// The allocation is checkpointed in upstream's file: a berth killed
	// and started again keeps the container and its resources.
	if _, err := os.Stat(filepath.Join(env.nodeDir, "root", "allocated_pods_state")); err != nil {
		t.Errorf("no allocation checkpoint: %v", err)
	}
	if err := env.berth.kill(); err != nil {
		t.Fatal(err)
	}
	if err := env.berth.start(); err != nil {
		t.Fatal(err)
	}
	p = env.resized(t, ns, "resizable", "100m", "64Mi", "150m", "100Mi")
	if got := containerStatus(p, "main"); got.ContainerID != before.ContainerID || got.RestartCount != before.RestartCount {
		t.Errorf("container restarted with berth")
	}
	checkCgroups(t, env, p, 15000, 100<<20)

	// Deferred: another pod takes the cpu left but 50m.
	node, err := env.kube.CoreV1().Nodes().Get(t.Context(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	used := int64(0)
	all, err := env.kube.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + nodeName})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range all.Items {
		if o.Status.Phase == v1.PodSucceeded || o.Status.Phase == v1.PodFailed {
			continue
		}
		for _, c := range o.Spec.Containers {
			used += c.Resources.Requests.Cpu().MilliValue()
		}
	}
	free := node.Status.Allocatable.Cpu().MilliValue() - used
	if free < 200 {
		t.Skipf("only %dm cpu free on the node", free)
	}
	env.createPod(t, ns, sleeper("blocker", onNode(), withGrace(0), withCPURequest(fmt.Sprintf("%dm", free-50))))
	env.waitReady(t, ns, "blocker", 1, 60*time.Second)
	if _, err := env.resize(ns, "resizable", "200m", "64Mi", "200m", "100Mi"); err != nil {
		t.Fatalf("resize: %v", err)
	}
	env.eventually(t, 30*time.Second, func() (bool, string) {
		got, err := env.getPod(ns, "resizable")
		if err != nil {
			return false, err.Error()
		}
		c := podCondition(got, v1.PodResizePending)
		return c != nil && c.Reason == v1.PodReasonDeferred && strings.Contains(c.Message, "Node didn't have enough resource: cpu"),
			fmt.Sprintf("want PodResizePending Deferred; conditions %v", got.Status.Conditions)
	})
	env.eventually(t, 10*time.Second, env.eventReasons(ns, "resizable", "ResizeDeferred"))
	ctx, cancel := apiContext()
	err = env.kube.CoreV1().Pods(ns).Delete(ctx, "blocker", metav1.DeleteOptions{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	p = env.resized(t, ns, "resizable", "200m", "64Mi", "200m", "100Mi")
	checkCgroups(t, env, p, 20000, 100<<20)
	if got := containerStatus(p, "main"); got.ContainerID != before.ContainerID {
		t.Errorf("container restarted by the deferred resize")
	}

	// Beyond the node: refused before it reaches berth.
	beyond := fmt.Sprintf("%dm", node.Status.Allocatable.Cpu().MilliValue()*2)
	_, err = env.resize(ns, "resizable", beyond, "64Mi", beyond, "100Mi")
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Reason != metav1.StatusReasonForbidden || !strings.Contains(err.Error(), "node didn't have enough allocatable resources") {
		t.Errorf("resize beyond allocatable: got %v, want Forbidden: node didn't have enough allocatable resources", err)
	}
}

// checkCgroups compares the container's and the pod's cgroup cpu quota
// (period 100 ms) and memory limit with the wanted values.
func checkCgroups(t *testing.T, env *environment, p *v1.Pod, quota, memory int64) {
	t.Helper()
	wantQuota, wantMem := fmt.Sprint(quota), fmt.Sprint(memory)
	if cgroupV2() {
		wantQuota = fmt.Sprintf("%d 100000", quota)
	}
	if got := env.containerCgroup(t, p, "cpu/cpu.cfs_quota_us", "cpu.max"); got != wantQuota {
		t.Errorf("container cpu quota = %s, want %s", got, wantQuota)
	}
	if got := env.containerCgroup(t, p, "memory/memory.limit_in_bytes", "memory.max"); got != wantMem {
		t.Errorf("container memory limit = %s, want %s", got, wantMem)
	}
	if got := podCgroupValue(t, p, "cpu", "cpu.cfs_quota_us", "cpu.max"); got != wantQuota {
		t.Errorf("pod cgroup cpu quota = %s, want %s", got, wantQuota)
	}
	if got := podCgroupValue(t, p, "memory", "memory.limit_in_bytes", "memory.max"); got != wantMem {
		t.Errorf("pod cgroup memory limit = %s, want %s", got, wantMem)
	}
	t.Logf("container and pod cgroups: cpu quota %s, memory limit %s", wantQuota, wantMem)
}

// TestResizeInfeasible: with the API server's check off (older control
// planes, or allocatable that shrank), a resize the node can never hold
// is Infeasible and is not applied.
func TestResizeInfeasible(t *testing.T) {
	env := requireSuite(t)
	env.restartControlPlaneWith(t, "--disable-admission-plugins=PodResizeValidator", "")
	ns := env.namespace(t)
	env.createPod(t, ns, shellPod("toobig", idleScript, onNode(), withGrace(1), cpuMemory("100m", "64Mi", "100m", "64Mi")))
	pods, _ := env.waitReady(t, ns, "toobig", 1, 60*time.Second)
	before := *containerStatus(&pods[0], "main")
	if _, err := env.resize(ns, "toobig", "64", "64Mi", "64", "64Mi"); err != nil {
		t.Fatalf("resize: %v", err)
	}
	var p *v1.Pod
	env.eventually(t, 30*time.Second, func() (bool, string) {
		got, err := env.getPod(ns, "toobig")
		if err != nil {
			return false, err.Error()
		}
		p = got
		c := podCondition(got, v1.PodResizePending)
		return c != nil && c.Reason == v1.PodReasonInfeasible && strings.HasPrefix(c.Message, "Node didn't have enough capacity: cpu, requested: 64000"),
			fmt.Sprintf("want PodResizePending Infeasible; conditions %v", got.Status.Conditions)
	})
	env.eventually(t, 10*time.Second, env.eventReasons(ns, "toobig", "ResizeInfeasible"))
	cs := containerStatus(p, "main")
	if cs.ContainerID != before.ContainerID || !cs.AllocatedResources.Cpu().Equal(resource.MustParse("100m")) {
		t.Errorf("infeasible resize changed the container: %+v", cs)
	}
}
