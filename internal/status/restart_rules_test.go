package status

import (
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

// The phase with container-level restart policies and rules, as
// upstream's getPhase computes it with ContainerRestartRules on: a stopped
// container counts as restarting when its own rules and policy say so.
func TestPhaseContainerRestartRules(t *testing.T) {
	always, never := v1.RestartPolicyAlways, v1.RestartPolicyNever
	cAlways, cOnFailure, cNever := v1.ContainerRestartPolicyAlways, v1.ContainerRestartPolicyOnFailure, v1.ContainerRestartPolicyNever
	in := v1.ContainerRestartRuleOnExitCodesOpIn
	backOff := map[string]container.Waiting{"a": {Reason: "CrashLoopBackOff"}}

	rows := []struct {
		name       string
		in         Input
		phase      v1.PodPhase
		containers string
		inits      string
	}{
		{
			name:  "pod Never, container Always exited 1: restarting, Running",
			in:    Input{Pod: testPod(never, onlyA, containerPolicy("a", cAlways)), Runtime: rt(readySB(), c("a", "c1", exited, 1))},
			phase: v1.PodRunning, containers: "a=terminated:1:Error",
		},
		{
			name: "pod Never, container Always in back-off: Running, waiting shown",
			in: Input{Pod: testPod(never, onlyA, containerPolicy("a", cAlways)), Runtime: rt(readySB(), c("a", "c1", exited, 1)),
				Waiting: backOff},
			phase: v1.PodRunning, containers: "a=waiting:CrashLoopBackOff last=terminated:1:Error",
		},
		{
			name:  "pod Always, container Never exited 1: Failed",
			in:    Input{Pod: testPod(always, onlyA, containerPolicy("a", cNever)), Runtime: rt(readySB(), c("a", "c1", exited, 1))},
			phase: v1.PodFailed, containers: "a=terminated:1:Error",
		},
		{
			name: "pod Always, container Never: a back-off is not shown, it won't restart",
			in: Input{Pod: testPod(always, onlyA, containerPolicy("a", cNever)), Runtime: rt(readySB(), c("a", "c1", exited, 1)),
				Waiting: backOff},
			phase: v1.PodFailed, containers: "a=terminated:1:Error",
		},
		{
			name:  "pod Always, container Never exited 0: Succeeded",
			in:    Input{Pod: testPod(always, onlyA, containerPolicy("a", cNever)), Runtime: rt(readySB(), c("a", "c1", exited, 0))},
			phase: v1.PodSucceeded,
		},
		{
			name:  "pod Never, rule matches exit 42: Running",
			in:    Input{Pod: testPod(never, onlyA, containerPolicy("a", cNever, restartOn(in, 42))), Runtime: rt(readySB(), c("a", "c1", exited, 42))},
			phase: v1.PodRunning,
		},
		{
			name:  "pod Never, rule does not match exit 1: Failed",
			in:    Input{Pod: testPod(never, onlyA, containerPolicy("a", cNever, restartOn(in, 42))), Runtime: rt(readySB(), c("a", "c1", exited, 1))},
			phase: v1.PodFailed,
		},
		{
			name: "pod Never, container OnFailure failed once then succeeded: Succeeded",
			in: Input{Pod: testPod(never, onlyA, containerPolicy("a", cOnFailure)),
				Runtime: rt(readySB(), restarts(c("a", "c2", exited, 0), 1), c("a", "c1", exited, 1))},
			phase: v1.PodSucceeded, containers: "a=terminated:0:Completed last=terminated:1:Error restarts=1",
		},
		{
			name: "one container done for good, the other restarting: Running",
			in: Input{Pod: testPod(never, containerPolicy("a", cNever), containerPolicy("b", cAlways)),
				Runtime: rt(readySB(), c("a", "c1", exited, 1), c("b", "c2", exited, 1))},
			phase: v1.PodRunning,
		},
		{
			name: "terminal pod: container Always does not keep it Running",
			in: Input{Pod: testPod(never, onlyA, containerPolicy("a", cAlways)), Terminal: true,
				Runtime: rt(readySB(), c("a", "c1", exited, 1))},
			phase: v1.PodFailed,
		},

		// Init containers.
		{
			name: "init container failed, pod Never, its rule matches: Pending",
			in: Input{Pod: testPod(never, withInits("i0"), containerPolicy("i0", cNever, restartOn(in, 7))),
				Runtime: rt(readySB(), c("i0", "c1", exited, 7))},
			phase: v1.PodPending, inits: "i0=terminated:7:Error",
		},
		{
			name: "init container failed, pod Always, its policy Never: Failed",
			in: Input{Pod: testPod(always, withInits("i0"), containerPolicy("i0", cNever)),
				Runtime: rt(readySB(), c("i0", "c1", exited, 1))},
			phase: v1.PodFailed,
		},
		{
			name: "init container waiting to restart after a failure its policy retries: Pending",
			in: Input{Pod: testPod(never, withInits("i0"), containerPolicy("i0", cOnFailure)),
				Runtime: rt(readySB(), c("i0", "c1", exited, 1)), Waiting: map[string]container.Waiting{"i0": {Reason: "CrashLoopBackOff"}}},
			phase: v1.PodPending, inits: "i0=waiting:CrashLoopBackOff last=terminated:1:Error",
		},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			r.in.Now = now
			s := Compute(r.in)
			if s.Phase != r.phase {
				t.Errorf("phase %s, want %s", s.Phase, r.phase)
			}
			if got := summary(s.ContainerStatuses); r.containers != "" && got != r.containers {
				t.Errorf("containers:\n got  %q\n want %q", got, r.containers)
			}
			if got := summary(s.InitContainerStatuses); r.inits != "" && got != r.inits {
				t.Errorf("init containers:\n got  %q\n want %q", got, r.inits)
			}
		})
	}
}
