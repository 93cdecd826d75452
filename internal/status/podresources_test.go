package status

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/berth-dev/berth/internal/cm"
)

func resList(cpu, mem string) v1.ResourceList {
	l := v1.ResourceList{}
	if cpu != "" {
		l[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return l
}

func TestPodResources(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	i := func(v int64) *int64 { return &v }
	burstable := &v1.Pod{Spec: v1.PodSpec{
		Containers: []v1.Container{{Name: "a", Resources: v1.ResourceRequirements{Requests: resList("100m", "64Mi"), Limits: resList("200m", "128Mi")}}},
		Overhead:   resList("250m", "32Mi"),
	}}
	podLevel := &v1.Pod{Spec: v1.PodSpec{
		Containers: []v1.Container{{Name: "a", Resources: v1.ResourceRequirements{Requests: resList("", "256Mi")}}},
		Resources:  &v1.ResourceRequirements{Requests: resList("1", "1Gi"), Limits: resList("2", "2Gi")},
	}}
	bestEffort := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "a"}}}}
	tests := []struct {
		name    string
		pod     *v1.Pod
		running bool
		cgroup  *cm.ResourceConfig
		old     *v1.ResourceRequirements
		want    v1.ResourceRequirements
	}{
		{
			name: "not running: effective requests and limits with the overhead", pod: burstable,
			want: v1.ResourceRequirements{Requests: resList("350m", "96Mi"), Limits: resList("450m", "160Mi")},
		},
		{
			name: "running: the pod cgroup's values", pod: burstable, running: true,
			cgroup: &cm.ResourceConfig{CPUShares: u(358), CPUQuota: i(45000), CPUPeriod: u(100000), Memory: i(160 << 20)},
			want:   v1.ResourceRequirements{Requests: resList("350m", "96Mi"), Limits: resList("450m", "160Mi")},
		},
		{
			name: "running with pod-level resources: shares of the request keep it", pod: podLevel, running: true,
			cgroup: &cm.ResourceConfig{CPUShares: u(1024), CPUQuota: i(200000), CPUPeriod: u(100000), Memory: i(2 << 30)},
			want:   v1.ResourceRequirements{Requests: resList("1", "1Gi"), Limits: resList("2", "2Gi")},
		},
		{
			name: "running without cgroup values: the last reported stay", pod: podLevel, running: true,
			old:  &v1.ResourceRequirements{Requests: resList("900m", ""), Limits: resList("1500m", "1536Mi")},
			want: v1.ResourceRequirements{Requests: resList("900m", "1Gi"), Limits: resList("1500m", "1536Mi")},
		},
		{
			name: "running best effort: minimum shares and no limits report nothing", pod: bestEffort, running: true,
			cgroup: &cm.ResourceConfig{CPUShares: u(2)},
			want:   v1.ResourceRequirements{Requests: v1.ResourceList{}, Limits: v1.ResourceList{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := podResources(tt.pod, podAllocatedResources(tt.pod), tt.running, tt.cgroup, tt.old)
			if !apiequality.Semantic.DeepEqual(*got, tt.want) {
				t.Errorf("podResources = %v, want %v", got, tt.want)
			}
		})
	}
	if got, want := podAllocatedResources(podLevel), resList("1", "1Gi"); !apiequality.Semantic.DeepEqual(got, want) {
		t.Errorf("allocated resources with pod-level requests = %v, want %v", got, want)
	}
}
