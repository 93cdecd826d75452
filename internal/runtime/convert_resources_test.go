package runtime

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/cm"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/source"
)

func rl(cpu, mem string) v1.ResourceList {
	l := v1.ResourceList{}
	if cpu != "" {
		l[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return l
}

func podWith(resources ...v1.ResourceRequirements) *v1.Pod {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "12-34"}}
	for i, r := range resources {
		pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: string(rune('a' + i)), Resources: r})
	}
	return pod
}

func TestPodQOSAndCgroupParent(t *testing.T) {
	guaranteed := v1.ResourceRequirements{Requests: rl("1", "1Gi"), Limits: rl("1", "1Gi")}
	tests := []struct {
		name    string
		pod     *v1.Pod
		qos     v1.PodQOSClass
		cgfs    string
		systemd string
	}{
		{
			name: "best effort", pod: podWith(v1.ResourceRequirements{}), qos: v1.PodQOSBestEffort,
			cgfs:    "/kubepods/besteffort/pod12-34",
			systemd: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12_34.slice",
		},
		{
			name: "burstable", pod: podWith(v1.ResourceRequirements{Requests: rl("100m", "")}), qos: v1.PodQOSBurstable,
			cgfs:    "/kubepods/burstable/pod12-34",
			systemd: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12_34.slice",
		},
		{
			name: "guaranteed", pod: podWith(guaranteed, guaranteed), qos: v1.PodQOSGuaranteed,
			cgfs:    "/kubepods/pod12-34",
			systemd: "/kubepods.slice/kubepods-pod12_34.slice",
		},
		{name: "guaranteed and best effort mix", pod: podWith(guaranteed, v1.ResourceRequirements{}), qos: v1.PodQOSBurstable},
		{name: "only cpu guaranteed", pod: podWith(v1.ResourceRequirements{Requests: rl("1", ""), Limits: rl("1", "")}), qos: v1.PodQOSBurstable},
		// Sources default requests to limits, and PodQOS assumes they did.
		// Upstream's rule on an undefaulted pod, which no pod reaching berth is.
		{name: "limits only, undefaulted", pod: podWith(v1.ResourceRequirements{Limits: rl("1", "1Gi")}), qos: v1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := container.PodQOS(tt.pod); got != tt.qos {
				t.Errorf("podQOS = %s, want %s", got, tt.qos)
			}
			if tt.cgfs == "" {
				return
			}
			node := testNode()
			if got := node.cgroups.Pod(tt.pod.UID, container.PodQOS(tt.pod)); got != tt.cgfs {
				t.Errorf("cgroupfs parent = %s, want %s", got, tt.cgfs)
			}
			node.cgroups = cm.NewLayout("/", true, "systemd")
			if got := node.cgroups.Pod(tt.pod.UID, container.PodQOS(tt.pod)); got != tt.systemd {
				t.Errorf("systemd parent = %s, want %s", got, tt.systemd)
			}
		})
	}
	pod := podWith(v1.ResourceRequirements{})
	pod.Status.QOSClass = v1.PodQOSGuaranteed
	if got := container.PodQOS(pod); got != v1.PodQOSGuaranteed {
		t.Errorf("podQOS ignores status.qosClass: %s", got)
	}
}

func TestContainerResources(t *testing.T) {
	const gi = int64(1) << 30
	tests := []struct {
		name   string
		pod    *v1.Pod
		minAdj int64
		want   *runtimeapi.LinuxContainerResources
	}{
		{
			name: "best effort", pod: podWith(v1.ResourceRequirements{}), minAdj: -1000,
			want: &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 1000},
		},
		{
			name: "guaranteed", pod: podWith(v1.ResourceRequirements{Requests: rl("500m", "1Gi"), Limits: rl("500m", "1Gi")}), minAdj: -1000,
			want: &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: gi, OomScoreAdj: -997},
		},
		{
			name: "guaranteed clamped to berth's own oom_score_adj", pod: podWith(v1.ResourceRequirements{Requests: rl("500m", "1Gi"), Limits: rl("500m", "1Gi")}), minAdj: 0,
			want: &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: gi, OomScoreAdj: 0},
		},
		{
			name: "burstable: a quarter of node memory", pod: podWith(v1.ResourceRequirements{Requests: rl("1m", "2Gi"), Limits: rl("2", "")}), minAdj: -1000,
			want: &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, CpuQuota: 200000, OomScoreAdj: 750},
		},
		{
			name: "burstable without memory request stays below best effort", pod: podWith(v1.ResourceRequirements{Requests: rl("100m", "")}), minAdj: -1000,
			want: &runtimeapi.LinuxContainerResources{CpuShares: 102, CpuPeriod: 100000, OomScoreAdj: 999},
		},
		{
			name: "burstable asking for all memory", pod: podWith(v1.ResourceRequirements{Requests: rl("", "8Gi")}), minAdj: -1000,
			want: &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 3},
		},
		{
			name: "cpu limit only: shares from the limit, tiny quota raised to 1ms", pod: podWith(v1.ResourceRequirements{Limits: rl("5m", "")}), minAdj: -1000,
			want: &runtimeapi.LinuxContainerResources{CpuShares: 5, CpuPeriod: 100000, CpuQuota: 1000, OomScoreAdj: 999},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := testNode()
			node.minOOMScoreAdj = tt.minAdj
			got := containerResources(tt.pod, &tt.pod.Spec.Containers[0], node)
			checkProto(t, "containerResources", tt.want, got)
		})
	}

	// cpuCFSQuota false: no quota, no period; a period of its own.
	guaranteed := podWith(v1.ResourceRequirements{Requests: rl("500m", "1Gi"), Limits: rl("500m", "1Gi")})
	node := testNode()
	node.disableCPUQuota = true
	checkProto(t, "without cpuCFSQuota", &runtimeapi.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: gi, OomScoreAdj: -997},
		containerResources(guaranteed, &guaranteed.Spec.Containers[0], node))
	node = testNode()
	node.cfsPeriod = 50000
	checkProto(t, "cpuCFSQuotaPeriod 50ms", &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuPeriod: 50000, CpuQuota: 25000, MemoryLimitInBytes: gi, OomScoreAdj: -997},
		containerResources(guaranteed, &guaranteed.Spec.Containers[0], node))

	node = testNode()
	node.cgroupV2 = true
	pod := podWith(v1.ResourceRequirements{})
	got := containerResources(pod, &pod.Spec.Containers[0], node)
	want := map[string]string{"memory.oom.group": "1", "memory.high": "max"}
	if !reflect.DeepEqual(got.Unified, want) {
		t.Errorf("cgroup v2 unified = %v, want %v", got.Unified, want)
	}
}

// TestContainerResourcesPodLevel: in a pod with pod-level resources a
// container without limits of its own gets the pod's (shares from the cpu
// limit when it requests no cpu), and the pod's memory request beyond the
// containers' is shared out among them for oom_score_adj, as upstream.
func TestContainerResourcesPodLevel(t *testing.T) {
	const mi = int64(1) << 20
	pod := podWith(
		v1.ResourceRequirements{Requests: rl("", "512Mi")},
		v1.ResourceRequirements{Requests: rl("500m", "1Gi"), Limits: rl("500m", "1Gi")},
	)
	pod.Spec.Resources = &v1.ResourceRequirements{Requests: rl("1", "2Gi"), Limits: rl("2", "4Gi")}
	node := testNode()
	// 256Mi of the pod's request is shared by each: 1000 - 1000*(512Mi+256Mi)/8Gi.
	checkProto(t, "container without limits", &runtimeapi.LinuxContainerResources{
		CpuShares: 2048, CpuPeriod: 100000, CpuQuota: 200000, MemoryLimitInBytes: 4096 * mi, OomScoreAdj: 907,
	}, containerResources(pod, &pod.Spec.Containers[0], node))
	checkProto(t, "container with its own limits", &runtimeapi.LinuxContainerResources{
		CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: 1024 * mi, OomScoreAdj: 844,
	}, containerResources(pod, &pod.Spec.Containers[1], node))
}

func TestOOMScoreAdjNodeCritical(t *testing.T) {
	pod := podWith(v1.ResourceRequirements{})
	pod.Spec.PriorityClassName = "system-node-critical"
	if got := oomScoreAdj(pod, &pod.Spec.Containers[0], 1<<30); got != besteffortOOMScoreAdj {
		t.Errorf("non-static node-critical pod = %d, want best effort's", got)
	}
	pod.Annotations = map[string]string{source.AnnotationConfigSource: source.SourceFile}
	if got := oomScoreAdj(pod, &pod.Spec.Containers[0], 1<<30); got != guaranteedOOMScoreAdj {
		t.Errorf("static node-critical pod = %d, want %d", got, guaranteedOOMScoreAdj)
	}
	api := podWith(v1.ResourceRequirements{})
	api.Spec.PriorityClassName = "system-node-critical"
	api.Spec.Priority = ptrTo[int32](source.SystemCriticalPriority + 1000)
	if got := oomScoreAdj(api, &api.Spec.Containers[0], 1<<30); got != guaranteedOOMScoreAdj {
		t.Errorf("node-critical pod of system priority = %d, want %d", got, guaranteedOOMScoreAdj)
	}
}

func TestOOMScoreAdjSidecar(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	mem := func(q string) v1.ResourceRequirements {
		return v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse(q)}}
	}
	// 1 GiB of node memory: 1000 - 1000*request/capacity.
	pod := &v1.Pod{Spec: v1.PodSpec{
		InitContainers: []v1.Container{
			{Name: "sidecar", RestartPolicy: &always, Resources: mem("64Mi")},
			{Name: "init", Resources: mem("64Mi")},
		},
		Containers: []v1.Container{
			{Name: "app", Resources: mem("512Mi")},
			{Name: "small", Resources: mem("256Mi")},
		},
	}}
	tests := []struct {
		c    *v1.Container
		want int64
	}{
		// A sidecar is killed no sooner than the app container with the
		// smallest request: min(1000-62, 1000-250).
		{&pod.Spec.InitContainers[0], 750},
		{&pod.Spec.InitContainers[1], 938},
		{&pod.Spec.Containers[0], 500},
		{&pod.Spec.Containers[1], 750},
	}
	for _, tt := range tests {
		if got := oomScoreAdj(pod, tt.c, 1<<30); got != tt.want {
			t.Errorf("oomScoreAdj(%s) = %d, want %d", tt.c.Name, got, tt.want)
		}
	}
}

func TestSandboxResources(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	pod := podWith(
		v1.ResourceRequirements{Requests: rl("100m", "100Mi"), Limits: rl("200m", "200Mi")},
		v1.ResourceRequirements{Requests: rl("100m", "100Mi"), Limits: rl("200m", "200Mi")},
	)
	pod.Spec.InitContainers = []v1.Container{
		{Name: "init", Resources: v1.ResourceRequirements{Requests: rl("1", "64Mi"), Limits: rl("1", "1Gi")}},
		{Name: "side", RestartPolicy: &always, Resources: v1.ResourceRequirements{Requests: rl("50m", "10Mi"), Limits: rl("50m", "10Mi")}},
	}
	got := sandboxResources(pod, testNode())
	// The init container's 1 CPU beats 250m; its 1Gi limit beats 410Mi.
	want := &runtimeapi.LinuxContainerResources{CpuShares: 1024, CpuPeriod: 100000, CpuQuota: 100000, MemoryLimitInBytes: 1 << 30}
	checkProto(t, "sandboxResources", want, got)

	// Upstream sums the limits that are set, even beside an unlimited
	// container: 200m+50m and 200Mi+10Mi, still beaten by the init container.
	pod.Spec.Containers[1].Resources.Limits = nil
	got = sandboxResources(pod, testNode())
	checkProto(t, "sandboxResources with an unlimited container", want, got)

	// Pod-level resources replace the containers' (cpu and memory).
	pod.Spec.Resources = &v1.ResourceRequirements{Requests: rl("2", "2Gi"), Limits: rl("3", "3Gi")}
	got = sandboxResources(pod, testNode())
	want = &runtimeapi.LinuxContainerResources{CpuShares: 2048, CpuPeriod: 100000, CpuQuota: 300000, MemoryLimitInBytes: 3 << 30}
	checkProto(t, "sandboxResources with pod-level resources", want, got)
	pod.Spec.Resources = nil

	// No cpu request anywhere: the shares follow the limit.
	noReq := podWith(v1.ResourceRequirements{Limits: rl("500m", "100Mi")})
	noReq.Spec.Containers[0].Resources.Requests = nil
	want = &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: 100 << 20}
	checkProto(t, "sandboxResources without requests", want, sandboxResources(noReq, testNode()))

	pod.Spec.Overhead = rl("100m", "50Mi")
	checkProto(t, "overheadResources", &runtimeapi.LinuxContainerResources{CpuShares: 102, CpuPeriod: 100000, CpuQuota: 10000, MemoryLimitInBytes: 50 << 20}, overheadResources(pod, testNode()))
}
