package plan

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// containerPolicy gives the named container (init or app) its own
// restartPolicy and restartPolicyRules.
func containerPolicy(name string, policy v1.ContainerRestartPolicy, rules ...v1.ContainerRestartRule) podOpt {
	return func(p *v1.Pod) {
		for _, list := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for i := range list {
				if list[i].Name == name {
					list[i].RestartPolicy = &policy
					list[i].RestartPolicyRules = rules
				}
			}
		}
	}
}

func restartOn(op v1.ContainerRestartRuleOnExitCodesOperator, codes ...int32) v1.ContainerRestartRule {
	return v1.ContainerRestartRule{
		Action:    v1.ContainerRestartRuleActionRestart,
		ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: op, Values: codes},
	}
}

// Container-level restartPolicy and restartPolicyRules, as upstream's
// computePodActions decides with ContainerRestartRules on.
func TestComputePodActionsContainerRestartRules(t *testing.T) {
	always, onFailure, never := v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever
	cAlways, cOnFailure, cNever := v1.ContainerRestartPolicyAlways, v1.ContainerRestartPolicyOnFailure, v1.ContainerRestartPolicyNever
	in, notIn := v1.ContainerRestartRuleOnExitCodesOpIn, v1.ContainerRestartRuleOnExitCodesOpNotIn

	type row struct {
		name   string
		pod    *v1.Pod
		st     func(p *v1.Pod) *container.PodStatus
		probes Probes
		want   PodActions
	}
	// b keeps running so that the pod is not done.
	aExited := func(code int32) func(p *v1.Pod) *container.PodStatus {
		return func(p *v1.Pod) *container.PodStatus {
			return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, code), ctr(p, "b", "c2", "s1", running, 0))
		}
	}
	restartA := PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0}}
	leaveA := PodActions{SandboxID: "s1", NextInitContainer: NoInit}

	rows := []row{
		{name: "pod Never, container Always: restarted after exit 1",
			pod: testPod(never, containerPolicy("a", cAlways)), st: aExited(1), want: restartA},
		{name: "pod Never, container Always: restarted after exit 0",
			pod: testPod(never, containerPolicy("a", cAlways)), st: aExited(0), want: restartA},
		{name: "pod Always, container Never: not restarted",
			pod: testPod(always, containerPolicy("a", cNever)), st: aExited(1), want: leaveA},
		{name: "pod Never, container OnFailure: restarted after a failure",
			pod: testPod(never, containerPolicy("a", cOnFailure)), st: aExited(1), want: restartA},
		{name: "pod Never, container OnFailure: left after success",
			pod: testPod(never, containerPolicy("a", cOnFailure)), st: aExited(0), want: leaveA},
		{name: "rule In matches: restarted though the container's policy is Never",
			pod: testPod(never, containerPolicy("a", cNever, restartOn(in, 42))), st: aExited(42), want: restartA},
		{name: "rule In does not match: the container's policy Never decides",
			pod: testPod(never, containerPolicy("a", cNever, restartOn(in, 42))), st: aExited(1), want: leaveA},
		{name: "rule NotIn matches another code: restarted",
			pod: testPod(never, containerPolicy("a", cNever, restartOn(notIn, 0))), st: aExited(3), want: restartA},
		{name: "rule NotIn does not match a listed code: not restarted",
			pod: testPod(never, containerPolicy("a", cNever, restartOn(notIn, 0))), st: aExited(0), want: leaveA},
		{name: "no rule matches, container OnFailure: its policy decides",
			pod: testPod(always, containerPolicy("a", cOnFailure, restartOn(in, 42))), st: aExited(0), want: leaveA},
		{name: "RestartAllContainers is not acted on: the container's policy decides",
			pod: testPod(never, containerPolicy("a", cNever, v1.ContainerRestartRule{
				Action:    v1.ContainerRestartRuleActionRestartAllContainers,
				ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: in, Values: []int32{42}},
			})), st: aExited(42), want: leaveA},
		{name: "only container left exited under container Never: the pod is done",
			pod: testPod(always, onlyA, containerPolicy("a", cNever)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", exited, 1))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit}},
		{name: "pod being deleted: no rule restarts",
			pod: testPod(never, deleted, containerPolicy("a", cAlways)), st: aExited(1), want: leaveA},

		// Probe failures have no exit code: the container's own policy decides.
		{name: "liveness failed, pod Never, container Always: kill and restart",
			pod: testPod(never, containerPolicy("a", cAlways)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: live("c1", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit, ContainersToStart: []int{0},
				ContainersToKill: kills("c1", "a", ReasonLivenessProbe, "Container a failed liveness probe, will be restarted")}},
		{name: "liveness failed, pod Always, container Never with a matching rule: kill, no restart",
			pod: testPod(always, containerPolicy("a", cNever, restartOn(notIn))),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "a", "c1", "s1", running, 0), ctr(p, "b", "c2", "s1", running, 0))
			},
			probes: live("c1", false),
			want: PodActions{SandboxID: "s1", NextInitContainer: NoInit,
				ContainersToKill: kills("c1", "a", ReasonLivenessProbe, "Container a failed liveness probe")}},

		// A new sandbox.
		{name: "sandbox died, container OnFailure succeeded: not run again",
			pod: testPod(always, containerPolicy("a", cOnFailure)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 0))
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 1, NextInitContainer: NoInit, ContainersToStart: []int{1}}},
		{name: "sandbox died, pod OnFailure, container Always succeeded: run again",
			pod: testPod(onFailure, containerPolicy("a", cAlways)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c1", "s1", exited, 0), ctr(p, "b", "c2", "s1", exited, 0))
			},
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 1, NextInitContainer: NoInit, ContainersToStart: []int{0}}},

		{name: "sandbox died, every container ended for good by its own policy: complete, no sandbox",
			pod: testPod(onFailure, containerPolicy("a", cNever)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt([]*container.SandboxStatus{sb("s1", container.SandboxNotReady, 0)},
					ctr(p, "a", "c1", "s1", exited, 1), ctr(p, "b", "c2", "s1", exited, 0))
			},
			want: PodActions{Attempt: 1, NextInitContainer: NoInit}},

		// Init containers.
		{name: "init container failed, pod Never, its rule matches: restart it",
			pod: testPod(never, withInits("i0"), containerPolicy("i0", cNever, restartOn(in, 7))),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", exited, 7))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0}},
		{name: "init container failed, pod Always, its policy Never: the pod failed",
			pod: testPod(always, withInits("i0"), containerPolicy("i0", cNever)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", exited, 1))
			},
			want: PodActions{KillPod: true, SandboxID: "s1", NextInitContainer: NoInit}},
		{name: "init container failed, pod Never, its policy OnFailure: restart it",
			pod: testPod(never, withInits("i0"), containerPolicy("i0", cOnFailure)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", exited, 1))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0}},
		{name: "init container unknown, pod Never, its policy OnFailure: kill and restart it",
			pod: testPod(never, withInits("i0"), containerPolicy("i0", cOnFailure)),
			st: func(p *v1.Pod) *container.PodStatus {
				return rt(ready("s1"), ctr(p, "i0", "c1", "s1", unknown, 0))
			},
			want: PodActions{SandboxID: "s1", NextInitContainer: 0,
				ContainersToKill: kills("c1", "i0", ReasonUnknown, `Init container is in "unknown" state, try killing it before restart`)}},
	}

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got := ComputePodActions(r.pod, r.st(r.pod), r.probes)
			if len(r.want.ContainersToKill) == 0 {
				r.want.ContainersToKill = nil
			}
			if !reflect.DeepEqual(got, r.want) {
				t.Errorf("got  %+v\nwant %+v", got, r.want)
			}
		})
	}
}
