package container

import (
	v1 "k8s.io/api/core/v1"
)

// ShouldRestartAfterExit reports whether container c, having exited with
// exitCode, is to run again: its restartPolicyRules first (the first
// rule whose exit codes match decides, if its action is Restart), then its
// own restartPolicy, then the pod's. It is upstream's
// podutil.ContainerShouldRestart with the ContainerRestartRules gate on,
// as it is by default in v1.37.
//
// A rule with action RestartAllContainers is not acted on: berth does not
// restart a whole pod in place (upstream's RestartAllContainersOnContainerExits),
// so such a rule falls through to the container's restartPolicy, as
// upstream does with that gate off.
func ShouldRestartAfterExit(c *v1.Container, spec *v1.PodSpec, exitCode int32) bool {
	if c.RestartPolicy != nil {
		if rule, ok := MatchingRestartRule(c, exitCode); ok && rule.Action == v1.ContainerRestartRuleActionRestart {
			return true
		}
		switch *c.RestartPolicy {
		case v1.ContainerRestartPolicyAlways:
			return true
		case v1.ContainerRestartPolicyOnFailure:
			return exitCode != 0
		case v1.ContainerRestartPolicyNever:
			return false
		}
	}
	switch spec.RestartPolicy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true // Always, and the default
}

// MatchingRestartRule returns the first of c's restartPolicyRules whose
// exit codes match exitCode (operator In: one of the values; NotIn: none
// of them). Rules with an unknown operator never match.
func MatchingRestartRule(c *v1.Container, exitCode int32) (v1.ContainerRestartRule, bool) {
	for _, rule := range c.RestartPolicyRules {
		if rule.ExitCodes == nil {
			continue
		}
		listed := false
		for _, v := range rule.ExitCodes.Values {
			if v == exitCode {
				listed = true
				break
			}
		}
		switch rule.ExitCodes.Operator {
		case v1.ContainerRestartRuleOnExitCodesOpIn:
			if listed {
				return rule, true
			}
		case v1.ContainerRestartRuleOnExitCodesOpNotIn:
			if !listed {
				return rule, true
			}
		}
	}
	return v1.ContainerRestartRule{}, false
}

// RestartsWhenKilled reports whether a running container that is killed
// (a failed probe) or whose state is unknown is to run again. There is no
// exit code to match rules against, so the container's restartPolicy
// decides when it has one (anything but Never restarts), else the pod's.
func RestartsWhenKilled(c *v1.Container, spec *v1.PodSpec) bool {
	if c.RestartPolicy != nil {
		return *c.RestartPolicy != v1.ContainerRestartPolicyNever
	}
	return spec.RestartPolicy != v1.RestartPolicyNever
}

// RunsOnce reports whether a container that exited 0 stays done when its
// pod gets a new sandbox: its restartPolicy (else the pod's) is OnFailure.
// Upstream restarts every other container in the new sandbox, even one
// whose policy is Never, once the pod itself may restart.
func RunsOnce(c *v1.Container, spec *v1.PodSpec) bool {
	if c.RestartPolicy != nil {
		return *c.RestartPolicy == v1.ContainerRestartPolicyOnFailure
	}
	return spec.RestartPolicy == v1.RestartPolicyOnFailure
}
