package status

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

// The planner and the phase must agree: once the phase is terminal, the
// plan starts nothing and makes no sandbox; while the plan would still run
// something, the phase is not terminal.
func TestPhaseAgreesWithPlan(t *testing.T) {
	type cstate struct {
		name  string
		state container.State
		exit  int32
	}
	states := []cstate{{"none", "", 0}, {"running", running, 0}, {"exited0", exited, 0}, {"exited1", exited, 1}}
	// The sidecar dimension: no sidecar in the pod, or one in some state.
	sidecars := append([]cstate{{"absent", "", 0}}, states...)
	// Container a's own restartPolicy: unset, or one that overrides the pod's.
	aPolicies := []v1.ContainerRestartPolicy{"", v1.ContainerRestartPolicyAlways, v1.ContainerRestartPolicyOnFailure, v1.ContainerRestartPolicyNever}
	for _, policy := range []v1.RestartPolicy{v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever} {
		for _, aPolicy := range aPolicies {
			for _, sbState := range []container.SandboxState{container.SandboxReady, container.SandboxNotReady} {
				for _, a := range states {
					for _, b := range states {
						for _, side := range sidecars {
							name := fmt.Sprintf("%s/a policy %q/sandbox %s/a %s/b %s/sidecar %s", policy, aPolicy, sbState, a.name, b.name, side.name)
							t.Run(name, func(t *testing.T) {
								p := testPod(policy)
								if side.name != "absent" {
									p = testPod(policy, withSidecar("side"))
								}
								if aPolicy != "" {
									p.Spec.Containers[0].RestartPolicy = &aPolicy
								}
								var cs []*container.ContainerStatus
								for _, x := range []struct {
									n    string
									s    cstate
									spec *v1.Container
								}{{"a", a, &p.Spec.Containers[0]}, {"b", b, &p.Spec.Containers[1]}, {"side", side, nil}} {
									if x.s.state == "" {
										continue
									}
									if x.spec == nil {
										x.spec = &p.Spec.InitContainers[0]
									}
									ctr := c(x.n, "c-"+x.n, x.s.state, x.s.exit)
									ctr.Hash = container.HashContainer(x.spec)
									cs = append(cs, ctr)
								}
								runtime := rt([]*container.SandboxStatus{sb("s1", sbState)}, cs...)
								s := Compute(Input{Pod: p, Runtime: runtime, Now: now})
								act := plan.ComputePodActions(p, runtime, nil)
								starts := act.CreateSandbox || len(act.ContainersToStart) > 0 || act.NextInitContainer != plan.NoInit
								if IsTerminal(s) && starts {
									t.Errorf("phase %s but the plan starts things: %+v", s.Phase, act)
								}
							})
						}
					}
				}
			}
		}
	}
}
