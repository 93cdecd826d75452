package compare

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"

	"github.com/berth-dev/berth/internal/container"
)

// Whether a container that exited runs again, by its restartPolicyRules,
// its restartPolicy and the pod's: berth's container.ShouldRestartAfterExit
// (which both the planner and the phase use) against upstream's
// podutil.ContainerShouldRestart with v1.37's default gates, over every
// combination of pod policy, container policy, rules and exit code. Rules
// with action RestartAllContainers are left out: berth does not act on them
// (docs/architecture.md, "Restart rules").
func TestContainerShouldRestart(t *testing.T) {
	podPolicies := []v1.RestartPolicy{v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever, ""}
	containerPolicies := []v1.ContainerRestartPolicy{"", v1.ContainerRestartPolicyAlways, v1.ContainerRestartPolicyOnFailure, v1.ContainerRestartPolicyNever}
	rule := func(op v1.ContainerRestartRuleOnExitCodesOperator, codes ...int32) v1.ContainerRestartRule {
		return v1.ContainerRestartRule{Action: v1.ContainerRestartRuleActionRestart,
			ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: op, Values: codes}}
	}
	in, notIn := v1.ContainerRestartRuleOnExitCodesOpIn, v1.ContainerRestartRuleOnExitCodesOpNotIn
	ruleSets := map[string][]v1.ContainerRestartRule{
		"none":           nil,
		"In 42":          {rule(in, 42)},
		"NotIn 0":        {rule(notIn, 0)},
		"In 1,137":       {rule(in, 1, 137)},
		"NotIn 0,42; In": {rule(notIn, 0, 42), rule(in, 42)},
		"no exit codes":  {{Action: v1.ContainerRestartRuleActionRestart}},
	}
	n := 0
	for _, pp := range podPolicies {
		for _, cp := range containerPolicies {
			for rname, rules := range ruleSets {
				for _, code := range []int32{0, 1, 42, 137} {
					c := v1.Container{Name: "c", RestartPolicyRules: rules}
					if cp != "" {
						c.RestartPolicy = &cp
					}
					spec := v1.PodSpec{RestartPolicy: pp, Containers: []v1.Container{c}}
					want := podutil.ContainerShouldRestart(c, spec, code)
					if got := container.ShouldRestartAfterExit(&c, &spec, code); got != want {
						t.Errorf("pod %q, container %q, rules %s, exit %d: berth %v, upstream %v", pp, cp, rname, code, got, want)
					}
					n++
				}
			}
		}
	}
	t.Logf("%d combinations", n)
}
