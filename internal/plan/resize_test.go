package plan

import (
	"encoding/json"
	"hash/fnv"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/berth-dev/berth/internal/container"
)

func reqs(cpuReq, cpuLim, memReq, memLim string) v1.ResourceRequirements {
	r := v1.ResourceRequirements{Requests: v1.ResourceList{}, Limits: v1.ResourceList{}}
	put := func(l v1.ResourceList, n v1.ResourceName, s string) {
		if s != "" {
			l[n] = resource.MustParse(s)
		}
	}
	put(r.Requests, v1.ResourceCPU, cpuReq)
	put(r.Limits, v1.ResourceCPU, cpuLim)
	put(r.Requests, v1.ResourceMemory, memReq)
	put(r.Limits, v1.ResourceMemory, memLim)
	return r
}

func withRes(name string, r v1.ResourceRequirements, policy ...v1.ContainerResizePolicy) podOpt {
	return func(p *v1.Pod) {
		for i := range p.Spec.Containers {
			if p.Spec.Containers[i].Name == name {
				p.Spec.Containers[i].Resources = r
				p.Spec.Containers[i].ResizePolicy = policy
			}
		}
	}
}

func withPodLevel(r v1.ResourceRequirements) podOpt {
	return func(p *v1.Pod) { p.Spec.Resources = &r }
}

func podApplied(st *container.PodStatus, r v1.ResourceRequirements) *container.PodStatus {
	st.ActuatedPodLevel = &r
	return st
}

func applied(c *container.ContainerStatus, r v1.ResourceRequirements) *container.ContainerStatus {
	c.Actuated = &r
	return c
}

// In-place resize as upstream's computePodResizeAction plans it.
func TestComputePodActionsResize(t *testing.T) {
	always := v1.RestartPolicyAlways
	small := reqs("100m", "200m", "64Mi", "128Mi")
	big := reqs("200m", "400m", "128Mi", "256Mi")
	cpuUp := reqs("200m", "400m", "64Mi", "128Mi")
	memDown := reqs("100m", "200m", "32Mi", "64Mi")
	restartMem := v1.ContainerResizePolicy{ResourceName: v1.ResourceMemory, RestartPolicy: v1.RestartContainer}
	none := reqs("", "", "", "")
	podSmall := reqs("200m", "400m", "128Mi", "256Mi")
	podBig := reqs("400m", "800m", "128Mi", "256Mi")
	rows := []struct {
		name string
		pod  *v1.Pod
		st   func(p *v1.Pod) *container.PodStatus
		want PodActions
	}{
		{
			name: "applied equals allocated: nothing",
			pod:  testPod(always, withRes("a", small)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), applied(ctr(p, "a", "c1", "s1", running, 0), small), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "cpu up: updated in place, memory untouched",
			pod:  testPod(always, withRes("a", cpuUp)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), applied(ctr(p, "a", "c1", "s1", running, 0), small), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, Resize: &Resize{CPU: []ResizeContainer{{
				ID: "c1", Name: "a", Current: ValuesOf(&small), Desired: ValuesOf(&cpuUp)}}}},
		},
		{
			name: "one up, one down: the decrease first",
			pod:  testPod(always, withRes("a", big), withRes("b", memDown)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), applied(ctr(p, "a", "c1", "s1", running, 0), small), applied(ctr(p, "b", "c2", "s1", running, 0), small))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, Resize: &Resize{
				Memory: []ResizeContainer{
					{ID: "c2", Name: "b", Current: ValuesOf(&small), Desired: ValuesOf(&memDown)},
					{ID: "c1", Name: "a", Current: ValuesOf(&small), Desired: ValuesOf(&big)},
				},
				CPU: []ResizeContainer{{ID: "c1", Name: "a", Current: ValuesOf(&small), Desired: ValuesOf(&big)}},
			}},
		},
		{
			name: "memory with resizePolicy RestartContainer: restarted",
			pod:  testPod(always, withRes("a", memDown, restartMem)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), applied(ctr(p, "a", "c1", "s1", running, 0), small), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0}, Resize: &Resize{Pod: true},
				ContainersToKill: map[string]KillInfo{"c1": {Name: "a", Reason: ReasonResize, Message: "Container a resize requires restart"}}},
		},
		{
			name: "cpu only with a memory RestartContainer policy: in place",
			pod:  testPod(always, withRes("a", cpuUp, restartMem)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), applied(ctr(p, "a", "c1", "s1", running, 0), small), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, Resize: &Resize{CPU: []ResizeContainer{{
				ID: "c1", Name: "a", Current: ValuesOf(&small), Desired: ValuesOf(&cpuUp)}}}},
		},
		{
			name: "nothing recorded of what it got (created by an older berth): left alone",
			pod:  testPod(always, withRes("a", big)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "an older berth's hash (resources included) still matches the same resources",
			pod:  testPod(always, withRes("a", small)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), withHash(ctr(p, "a", "c1", "s1", running, 0), legacy(p, "a")), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "an older berth's container, resized: replaced once (its hash covered the old resources)",
			pod:  testPod(always, withRes("a", big)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), withHash(ctr(p, "a", "c1", "s1", running, 0), legacy(testPod(always, withRes("a", small)), "a")), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0},
				ContainersToKill: map[string]KillInfo{"c1": {Name: "a", Reason: ReasonSpecChanged, Message: "Container a definition changed, will be restarted"}}},
		},
		{
			name: "pod-level applied as allocated: nothing",
			pod:  testPod(always, withPodLevel(podSmall), withRes("b", small)),
			st: func(p *v1.Pod) *container.PodStatus {
				return podApplied(rt(ready("s1"), applied(ctr(p, "a", "c1", "s1", running, 0), none), applied(ctr(p, "b", "c2", "s1", running, 0), small)), podSmall)
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit},
		},
		{
			name: "pod-level cpu up: the pod cgroup, and the container without limits of its own follows the pod's",
			pod:  testPod(always, withPodLevel(podBig), withRes("b", small)),
			st: func(p *v1.Pod) *container.PodStatus {
				return podApplied(rt(ready("s1"), applied(ctr(p, "a", "c1", "s1", running, 0), none), applied(ctr(p, "b", "c2", "s1", running, 0), small)), podSmall)
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, Resize: &Resize{Pod: true, PodLevel: true, CPU: []ResizeContainer{{
				ID: "c1", Name: "a", Current: EffectiveValues(&podSmall, &none), Desired: EffectiveValues(&podBig, &none)}}}},
		},
		{
			name: "pod-level never recorded: the pod cgroup is brought to it",
			pod:  testPod(always, withPodLevel(podSmall)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, Resize: &Resize{Pod: true, PodLevel: true}},
		},
		{
			name: "exited container: started with the allocated resources, no resize",
			pod:  testPod(always, withRes("a", big)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), applied(ctr(p, "a", "c1", "s1", exited, 1), small), ctr(p, "b", "c2", "s1", running, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0}},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			got := ComputePodActions(row.pod, row.st(row.pod), nil)
			if !reflect.DeepEqual(got, row.want) {
				t.Errorf("got  %+v\nwant %+v", got, row.want)
				if got.Resize != nil {
					t.Logf("resize %+v", *got.Resize)
				}
			}
			if row.want.Resize != nil && !got.Changes() {
				t.Errorf("a resize is not a change")
			}
		})
	}
}

// legacy is the hash berth stored before resources were left out of it:
// fnv-64a of the container's JSON.
func legacy(p *v1.Pod, name string) uint64 {
	for i := range p.Spec.Containers {
		if c := &p.Spec.Containers[i]; c.Name == name {
			b, _ := json.Marshal(c)
			h := fnv.New64a()
			h.Write(b)
			return h.Sum64()
		}
	}
	return 0
}
