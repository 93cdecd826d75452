package compare

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/apis/core/v1/helper/qos"

	"github.com/berth-dev/berth/internal/container"
)

func TestQOSClass(t *testing.T) {
	r := func(cpu, mem string) v1.ResourceList { return list("cpu", cpu, "memory", mem) }
	sidecar := v1.ContainerRestartPolicyAlways
	tests := []struct {
		name string
		pod  *v1.Pod
	}{
		{"no containers", &v1.Pod{}},
		{"no resources", pod(ctr("a", nil, nil))},
		{"requests only", pod(ctr("a", r("1", "1Gi"), nil))},
		{"cpu request only", pod(ctr("a", list("cpu", "100m"), nil))},
		{"requests equal limits", pod(ctr("a", r("1", "1Gi"), r("1", "1Gi")))},
		{"equal in another notation", pod(ctr("a", r("1000m", "1024Mi"), r("1", "1Gi")))},
		{"requests below limits", pod(ctr("a", r("500m", "1Gi"), r("1", "1Gi")))},
		{"limits only (not defaulted)", pod(ctr("a", nil, r("1", "1Gi")))},
		{"cpu limit only", pod(ctr("a", nil, list("cpu", "1")))},
		{"memory guaranteed, cpu missing", pod(ctr("a", list("memory", "1Gi"), list("memory", "1Gi")))},
		{"zero requests and limits", pod(ctr("a", r("0", "0"), r("0", "0")))},
		{"only ephemeral storage", pod(ctr("a", list("ephemeral-storage", "1Gi"), list("ephemeral-storage", "1Gi")))},
		{"only an extended resource", pod(ctr("a", list("example.com/gpu", "1"), list("example.com/gpu", "1")))},
		{"guaranteed plus an extended resource", pod(ctr("a", list("cpu", "1", "memory", "1Gi", "example.com/gpu", "1"), r("1", "1Gi")))},
		{"two guaranteed", pod(ctr("a", r("1", "1Gi"), r("1", "1Gi")), ctr("b", r("2", "2Gi"), r("2", "2Gi")))},
		{"guaranteed and best effort", pod(ctr("a", r("1", "1Gi"), r("1", "1Gi")), ctr("b", nil, nil))},
		{"best effort init, guaranteed app", withInit(pod(ctr("a", r("1", "1Gi"), r("1", "1Gi"))), ctr("i", nil, nil))},
		{"guaranteed init and app", withInit(pod(ctr("a", r("1", "1Gi"), r("1", "1Gi"))), ctr("i", r("1", "1Gi"), r("1", "1Gi")))},
		{"burstable sidecar", withInit(pod(ctr("a", r("1", "1Gi"), r("1", "1Gi"))),
			func() v1.Container { c := ctr("s", list("cpu", "1"), nil); c.RestartPolicy = &sidecar; return c }())},
		{"pod-level guaranteed", withPodLevel(pod(ctr("a", nil, nil)), r("1", "1Gi"), r("1", "1Gi"))},
		{"pod-level burstable over guaranteed containers", withPodLevel(pod(ctr("a", r("1", "1Gi"), r("1", "1Gi"))), r("1", "1Gi"), r("2", "2Gi"))},
		{"pod-level requests only", withPodLevel(pod(ctr("a", nil, nil)), r("1", "1Gi"), nil)},
		{"pod-level limits only", withPodLevel(pod(ctr("a", nil, nil)), nil, r("1", "1Gi"))},
		{"pod-level hugepages only", withPodLevel(pod(ctr("a", r("1", "1Gi"), r("1", "1Gi"))), list("hugepages-2Mi", "2Mi"), list("hugepages-2Mi", "2Mi"))},
		{"pod-level ephemeral storage only", withPodLevel(pod(ctr("a", r("1", "1Gi"), r("1", "1Gi"))), list("ephemeral-storage", "1Gi"), nil)},
		{"pod-level empty", withPodLevel(pod(ctr("a", r("1", "1Gi"), r("1", "1Gi"))), nil, nil)},
		{"status wins", func() *v1.Pod { p := pod(ctr("a", nil, nil)); p.Status.QOSClass = v1.PodQOSGuaranteed; return p }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := qos.GetPodQOS(tt.pod)
			if got := container.PodQOS(tt.pod); got != want {
				t.Errorf("berth %s, upstream %s", got, want)
			}
		})
	}
}
