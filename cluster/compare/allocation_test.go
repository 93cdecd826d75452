package compare

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	upstream "k8s.io/kubernetes/pkg/kubelet/allocation/state"

	"github.com/berth-dev/berth/internal/allocation"
)

// The allocation checkpoints are upstream's files: what upstream's
// checkpoint writes berth reads, and the other way round.
func TestAllocationCheckpointFormat(t *testing.T) {
	logger := klog.Background()
	res := v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("150m"), v1.ResourceMemory: resource.MustParse("80Mi")},
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("300m"), v1.ResourceMemory: resource.MustParse("160Mi")},
	}
	uid := types.UID("0f4f6c6e-1")

	// Upstream writes, berth reads.
	dir := t.TempDir()
	up, err := upstream.NewStateCheckpoint(logger, dir, allocation.AllocatedFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.SetContainerResources(logger, uid, "main", res); err != nil {
		t.Fatal(err)
	}
	m, err := allocation.New(dir, clock.RealClock{})
	if err != nil {
		t.Fatalf("berth cannot read upstream's checkpoint: %v", err)
	}
	pod := &v1.Pod{}
	pod.UID = uid
	pod.Spec.Containers = []v1.Container{{Name: "main"}}
	got, differs := m.Allocated(pod)
	if !differs || !apiequality.Semantic.DeepEqual(got.Spec.Containers[0].Resources, res) {
		t.Errorf("berth read %v from upstream's checkpoint, want %v", got.Spec.Containers[0].Resources, res)
	}

	// Berth writes, upstream reads.
	dir = t.TempDir()
	m, err = allocation.New(dir, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Spec.Containers[0].Resources = res
	if err := m.SetAllocated(pod); err != nil {
		t.Fatal(err)
	}
	if err := m.SetActuated(uid, "main", res); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{allocation.AllocatedFile, allocation.ActuatedFile} {
		up, err := upstream.NewStateCheckpoint(logger, dir, name)
		if err != nil {
			t.Fatalf("upstream cannot read berth's %s: %v", name, err)
		}
		r, ok := up.GetContainerResources(uid, "main")
		if !ok || !apiequality.Semantic.DeepEqual(r, res) {
			t.Errorf("upstream read %v (found %v) from berth's %s, want %v", r, ok, name, res)
		}
	}
}
