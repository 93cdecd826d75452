package compare

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubecm "k8s.io/kubernetes/pkg/kubelet/cm"

	"github.com/berth-dev/berth/internal/cm"
)

// TestPodCgroupConfig runs upstream's ResourceConfigForPod and berth's
// cm.ForPod on the same pods, with and without cpuCFSQuota and with
// another period (memory QoS off: cgroup v1, and v2's default policy).
func TestPodCgroupConfig(t *testing.T) {
	r := func(cpu, mem string) v1.ResourceList { return list("cpu", cpu, "memory", mem) }
	sidecar := v1.ContainerRestartPolicyAlways
	pods := []struct {
		name string
		pod  *v1.Pod
	}{
		{"best effort", pod(ctr("a", nil, nil))},
		{"guaranteed", pod(ctr("a", r("250m", "64Mi"), r("250m", "64Mi")))},
		{"two guaranteed", pod(ctr("a", r("1", "1Gi"), r("1", "1Gi")), ctr("b", r("2", "2Gi"), r("2", "2Gi")))},
		{"burstable, requests only", pod(ctr("a", r("100m", "32Mi"), nil))},
		{"burstable, memory limit only", pod(ctr("a", r("100m", "32Mi"), list("memory", "100Mi")))},
		{"burstable, one container unlimited", pod(ctr("a", r("100m", "32Mi"), r("200m", "64Mi")), ctr("b", list("cpu", "10m"), nil))},
		{"burstable, tiny cpu limit", pod(ctr("a", list("cpu", "1m"), list("cpu", "5m")))},
		{"init container larger", withInit(pod(ctr("a", r("100m", "32Mi"), r("200m", "64Mi"))), ctr("i", r("1", "1Gi"), r("2", "2Gi")))},
		{"sidecar", withInit(pod(ctr("a", r("100m", "32Mi"), r("200m", "64Mi"))),
			func() v1.Container {
				c := ctr("s", r("50m", "10Mi"), r("50m", "10Mi"))
				c.RestartPolicy = &sidecar
				return c
			}())},
		{"huge pages", pod(ctr("a", list("cpu", "1", "memory", "1Gi", "hugepages-2Mi", "4Mi"), list("cpu", "1", "memory", "1Gi", "hugepages-2Mi", "4Mi")))},
		{"overhead", func() *v1.Pod {
			p := pod(ctr("a", r("1", "1Gi"), r("1", "1Gi")))
			p.Spec.Overhead = r("100m", "50Mi")
			return p
		}()},
		{"pod-level guaranteed", withPodLevel(pod(ctr("a", nil, nil)), r("1", "1Gi"), r("1", "1Gi"))},
		{"pod-level burstable", withPodLevel(pod(ctr("a", r("100m", "32Mi"), nil)), r("1", "1Gi"), r("2", "2Gi"))},
		{"pod-level requests only", withPodLevel(pod(ctr("a", nil, nil)), r("1", "1Gi"), nil)},
		{"status says guaranteed", func() *v1.Pod {
			p := pod(ctr("a", r("1", "1Gi"), nil))
			p.Status.QOSClass = v1.PodQOSGuaranteed
			return p
		}()},
	}
	settings := []struct {
		quota  bool
		period uint64
	}{{true, 100000}, {false, 100000}, {true, 50000}}
	for _, tt := range pods {
		for _, s := range settings {
			t.Run(fmt.Sprintf("%s/quota=%v,period=%d", tt.name, s.quota, s.period), func(t *testing.T) {
				want := kubecm.ResourceConfigForPod(tt.pod, s.quota, s.period, false, kubeletconfig.NoneMemoryReservationPolicy)
				got := cm.ForPod(tt.pod, cm.PodSettings{EnforceCPULimits: s.quota, CPUPeriod: s.period})
				if g, w := showCgroup(got.CPUShares, got.CPUQuota, got.CPUPeriod, got.Memory, got.HugePageLimit),
					showCgroup(want.CPUShares, want.CPUQuota, want.CPUPeriod, want.Memory, want.HugePageLimit); g != w {
					t.Errorf("berth %s\n upstream %s", g, w)
				}
			})
		}
	}
}

func TestCPUConversions(t *testing.T) {
	for _, m := range []int64{0, 1, 2, 5, 9, 10, 11, 99, 100, 250, 999, 1000, 1001, 3333, 256000, 300000} {
		if got, want := cm.MilliCPUToShares(m), kubecm.MilliCPUToShares(m); got != want {
			t.Errorf("MilliCPUToShares(%d): berth %d, upstream %d", m, got, want)
		}
		for _, period := range []int64{100000, 50000, 1000} {
			if got, want := cm.MilliCPUToQuota(m, period), kubecm.MilliCPUToQuota(m, period); got != want {
				t.Errorf("MilliCPUToQuota(%d, %d): berth %d, upstream %d", m, period, got, want)
			}
		}
	}
}

func showCgroup(shares *uint64, quota *int64, period *uint64, memory *int64, huge map[int64]int64) string {
	s := ""
	if shares != nil {
		s += fmt.Sprintf("shares=%d ", *shares)
	}
	if quota != nil {
		s += fmt.Sprintf("quota=%d ", *quota)
	}
	if period != nil {
		s += fmt.Sprintf("period=%d ", *period)
	}
	if memory != nil {
		s += fmt.Sprintf("memory=%d ", *memory)
	}
	if len(huge) > 0 {
		s += fmt.Sprintf("hugepages=%v", huge)
	}
	return s
}
