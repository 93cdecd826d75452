package runtime

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/plan"
)

// resizeLog records, in order, the pod cgroup writes and the container
// updates of a resize.
type resizeLog struct {
	mu       sync.Mutex
	calls    []string
	set      map[string]v1.ResourceRequirements
	podLevel *v1.ResourceRequirements
}

func (l *resizeLog) add(s string) { l.mu.Lock(); l.calls = append(l.calls, s); l.mu.Unlock() }

func (l *resizeLog) ResizePodCgroup(_ context.Context, _ *v1.Pod, r v1.ResourceName, grow bool) error {
	l.add(fmt.Sprintf("pod %s grow=%v", r, grow))
	return nil
}

func (l *resizeLog) Actuated(types.UID, string) (v1.ResourceRequirements, bool) {
	return v1.ResourceRequirements{}, false
}

func (l *resizeLog) SetActuated(_ types.UID, name string, r v1.ResourceRequirements) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.set[name] = r
	return nil
}

func (l *resizeLog) ActuatedPodLevel(types.UID) (*v1.ResourceRequirements, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.podLevel, l.podLevel != nil
}

func (l *resizeLog) SetActuatedPodLevel(_ types.UID, r *v1.ResourceRequirements) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.podLevel = r.DeepCopy()
}

type updateRecorder struct {
	*fakeRuntime
	log   *resizeLog
	usage uint64 // every container's memory usage
}

func (u updateRecorder) ContainerStats(_ context.Context, id string) (*runtimeapi.ContainerStats, error) {
	return &runtimeapi.ContainerStats{Memory: &runtimeapi.MemoryUsage{UsageBytes: &runtimeapi.UInt64Value{Value: u.usage}}}, nil
}

func (u updateRecorder) UpdateContainerResources(_ context.Context, id string, r *runtimeapi.ContainerResources) error {
	u.log.add(fmt.Sprintf("%s quota=%d shares=%d mem=%d", id, r.GetLinux().GetCpuQuota(), r.GetLinux().GetCpuShares(), r.GetLinux().GetMemoryLimitInBytes()))
	return nil
}

// A resize updates memory, then cpu; each time the pod cgroup grows
// before the containers and shrinks after them, and every container's
// new values are recorded as they are applied.
func TestResizePodOrder(t *testing.T) {
	e := newEnv(t)
	log := &resizeLog{set: map[string]v1.ResourceRequirements{}}
	e.m.opts.PodCgroupResizer = log
	e.m.opts.Resources = log
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"}, Spec: v1.PodSpec{
		Containers: []v1.Container{{Name: "a"}, {Name: "b"}}}}
	mi := int64(1 << 20)
	r := &plan.Resize{
		Memory: []plan.ResizeContainer{
			{ID: "cb", Name: "b", Current: plan.ResourceValues{CPULimit: 200, MemoryLimit: 128 * mi}, Desired: plan.ResourceValues{CPULimit: 200, MemoryLimit: 64 * mi}},
			{ID: "ca", Name: "a", Current: plan.ResourceValues{CPULimit: 100, MemoryLimit: 64 * mi}, Desired: plan.ResourceValues{CPULimit: 300, MemoryLimit: 96 * mi}},
		},
		CPU: []plan.ResizeContainer{
			{ID: "ca", Name: "a", Current: plan.ResourceValues{CPULimit: 100, MemoryLimit: 64 * mi}, Desired: plan.ResourceValues{CPULimit: 300, MemoryLimit: 96 * mi}},
		},
	}
	// b's new limit is below what it uses: nothing is changed.
	err := e.m.resizePod(context.Background(), updateRecorder{e.rs, log, uint64(80 * mi)}, pod, r)
	if want := fmt.Sprintf(`cannot decrease memory limits: attempting to set container "b" memory limit (%d) below current usage (%d)`, 64*mi, 80*mi); err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if len(log.calls) != 0 {
		t.Fatalf("a refused resize changed something: %q", log.calls)
	}
	if err := e.m.resizePod(context.Background(), updateRecorder{e.rs, log, uint64(10 * mi)}, pod, r); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pod memory grow=true",
		fmt.Sprintf("cb quota=20000 shares=204 mem=%d", 64*mi), // shares from the limit: no request
		fmt.Sprintf("ca quota=10000 shares=102 mem=%d", 96*mi), // memory first: cpu as it was
		"pod memory grow=false",
		"pod cpu grow=true",
		fmt.Sprintf("ca quota=30000 shares=307 mem=%d", 96*mi), // then cpu, with the new memory
		"pod cpu grow=false",
	}
	if !reflect.DeepEqual(log.calls, want) {
		t.Errorf("calls\n%q\nwant\n%q", log.calls, want)
	}
	a := log.set["a"]
	if !a.Limits.Cpu().Equal(resource.MustParse("300m")) || !a.Limits.Memory().Equal(*resource.NewQuantity(96*mi, resource.BinarySI)) {
		t.Errorf("recorded for a: %v", a)
	}
}

func TestStatusResources(t *testing.T) {
	actuated := &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("64Mi")}}
	cri := &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{CpuShares: 256, CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: 128 << 20}}
	got := statusResources(cri, actuated)
	if got.CPURequest.MilliValue() != 250 || got.CPULimit.MilliValue() != 500 || got.MemoryLimit.Value() != 128<<20 || !got.MemoryRequest.Equal(resource.MustParse("64Mi")) {
		t.Errorf("from the runtime: %+v", got)
	}
	got = statusResources(nil, actuated)
	if got == nil || got.CPURequest.MilliValue() != 100 {
		t.Errorf("without the runtime's values: %+v", got)
	}
	if statusResources(nil, nil) != nil {
		t.Errorf("nothing known must be nil")
	}
}

// A container restarted for its resizePolicy updates nobody in place, but
// the pod cgroup still follows, before the container starts again.
func TestResizePodCgroupOnly(t *testing.T) {
	e := newEnv(t)
	log := &resizeLog{set: map[string]v1.ResourceRequirements{}}
	e.m.opts.PodCgroupResizer = log
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"}}
	if err := e.m.resizePod(context.Background(), updateRecorder{e.rs, log, 0}, pod, &plan.Resize{Pod: true}); err != nil {
		t.Fatal(err)
	}
	want := []string{"pod memory grow=true", "pod memory grow=false", "pod cpu grow=true", "pod cpu grow=false"}
	if !reflect.DeepEqual(log.calls, want) {
		t.Errorf("calls %q, want %q", log.calls, want)
	}
}

// A pod-level resize: the pod cgroup follows both resources, and the
// allocated pod-level resources are recorded as applied only then.
func TestResizePodLevel(t *testing.T) {
	e := newEnv(t)
	log := &resizeLog{set: map[string]v1.ResourceRequirements{}}
	e.m.opts.PodCgroupResizer = log
	e.m.opts.Resources = log
	level := &v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceCPU: resource.MustParse("400m"), v1.ResourceMemory: resource.MustParse("128Mi")}}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"}, Spec: v1.PodSpec{Resources: level}}
	if err := e.m.resizePod(context.Background(), updateRecorder{e.rs, log, 0}, pod, &plan.Resize{Pod: true, PodLevel: true}); err != nil {
		t.Fatal(err)
	}
	want := []string{"pod memory grow=true", "pod memory grow=false", "pod cpu grow=true", "pod cpu grow=false"}
	if !reflect.DeepEqual(log.calls, want) {
		t.Errorf("calls %q, want %q", log.calls, want)
	}
	if got, ok := log.ActuatedPodLevel("u"); !ok || !got.Limits.Cpu().Equal(resource.MustParse("400m")) {
		t.Errorf("pod-level resources recorded as %v (%v), want %v", got, ok, level)
	}
}
