package container

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestShouldRestartAfterExit(t *testing.T) {
	policy := func(p v1.ContainerRestartPolicy) *v1.ContainerRestartPolicy { return &p }
	rule := func(action v1.ContainerRestartRuleAction, op v1.ContainerRestartRuleOnExitCodesOperator, codes ...int32) v1.ContainerRestartRule {
		return v1.ContainerRestartRule{Action: action, ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: op, Values: codes}}
	}
	restart, all := v1.ContainerRestartRuleActionRestart, v1.ContainerRestartRuleActionRestartAllContainers
	in, notIn := v1.ContainerRestartRuleOnExitCodesOpIn, v1.ContainerRestartRuleOnExitCodesOpNotIn

	rows := []struct {
		name string
		pod  v1.RestartPolicy
		c    v1.Container
		exit int32
		want bool
	}{
		{"pod Always", v1.RestartPolicyAlways, v1.Container{}, 0, true},
		{"pod policy unset means Always", "", v1.Container{}, 0, true},
		{"pod OnFailure, exit 0", v1.RestartPolicyOnFailure, v1.Container{}, 0, false},
		{"pod OnFailure, exit 1", v1.RestartPolicyOnFailure, v1.Container{}, 1, true},
		{"pod Never", v1.RestartPolicyNever, v1.Container{}, 1, false},
		{"container Always beats pod Never", v1.RestartPolicyNever, v1.Container{RestartPolicy: policy(v1.ContainerRestartPolicyAlways)}, 0, true},
		{"container Never beats pod Always", v1.RestartPolicyAlways, v1.Container{RestartPolicy: policy(v1.ContainerRestartPolicyNever)}, 1, false},
		{"container OnFailure, exit 0", v1.RestartPolicyAlways, v1.Container{RestartPolicy: policy(v1.ContainerRestartPolicyOnFailure)}, 0, false},
		{"container OnFailure, exit 2", v1.RestartPolicyNever, v1.Container{RestartPolicy: policy(v1.ContainerRestartPolicyOnFailure)}, 2, true},
		{"rule In matches", v1.RestartPolicyNever, v1.Container{RestartPolicy: policy(v1.ContainerRestartPolicyNever),
			RestartPolicyRules: []v1.ContainerRestartRule{rule(restart, in, 1, 42)}}, 42, true},
		{"rule In misses", v1.RestartPolicyNever, v1.Container{RestartPolicy: policy(v1.ContainerRestartPolicyNever),
			RestartPolicyRules: []v1.ContainerRestartRule{rule(restart, in, 1, 42)}}, 3, false},
		{"rule NotIn matches", v1.RestartPolicyNever, v1.Container{RestartPolicy: policy(v1.ContainerRestartPolicyNever),
			RestartPolicyRules: []v1.ContainerRestartRule{rule(restart, notIn, 0)}}, 3, true},
		{"rule NotIn misses", v1.RestartPolicyNever, v1.Container{RestartPolicy: policy(v1.ContainerRestartPolicyNever),
			RestartPolicyRules: []v1.ContainerRestartRule{rule(restart, notIn, 0)}}, 0, false},
		{"rules without a container policy are ignored", v1.RestartPolicyNever, v1.Container{
			RestartPolicyRules: []v1.ContainerRestartRule{rule(restart, in, 42)}}, 42, false},
		{"RestartAllContainers falls through to the container's policy", v1.RestartPolicyAlways, v1.Container{RestartPolicy: policy(v1.ContainerRestartPolicyNever),
			RestartPolicyRules: []v1.ContainerRestartRule{rule(all, in, 42), rule(restart, in, 42)}}, 42, false},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			spec := &v1.PodSpec{RestartPolicy: r.pod}
			if got := ShouldRestartAfterExit(&r.c, spec, r.exit); got != r.want {
				t.Errorf("ShouldRestartAfterExit = %v, want %v", got, r.want)
			}
		})
	}
}
