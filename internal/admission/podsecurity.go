package admission

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// ReasonPodSecurity is the status reason of a pod refused by berth's Pod
// Security Standards check at the node (--static-pod-security), and the
// reason of the events that report it. Upstream's kubelet has no such
// check; the name is that of the admission plugin whose rules it applies.
const ReasonPodSecurity = "PodSecurity"

// ParsePodSecurityLevel parses "<level>[:<version>]" (level privileged,
// baseline or restricted; version "latest" or "v1.<minor>", "latest" when
// left out), the form of the PodSecurity namespace labels joined as
// LevelVersion.String prints them.
func ParsePodSecurityLevel(s string) (psapi.LevelVersion, error) {
	level, ver, hasVersion := strings.Cut(s, ":")
	var lv psapi.LevelVersion
	l, err := psapi.ParseLevel(level)
	if err != nil {
		return lv, fmt.Errorf("pod security level %q: %w", level, err)
	}
	lv.Level = l
	lv.Version = psapi.LatestVersion()
	if hasVersion {
		v, err := psapi.ParseVersion(ver)
		if err != nil {
			return lv, fmt.Errorf("pod security version %q: %w", ver, err)
		}
		lv.Version = v
	}
	return lv, nil
}

// PodSecurity checks pods against one Pod Security Standards level and
// version with the checks of k8s.io/pod-security-admission, the library
// the API server's PodSecurity admission uses, so that a pod is refused
// here exactly when a namespace enforcing that level would refuse it.
type PodSecurity struct {
	level     psapi.LevelVersion
	evaluator policy.Evaluator
}

// NewPodSecurity returns the check for lv.
func NewPodSecurity(lv psapi.LevelVersion) (*PodSecurity, error) {
	e, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return nil, fmt.Errorf("pod security checks: %w", err)
	}
	return &PodSecurity{level: lv, evaluator: e}, nil
}

// Level is the level and version the pods are checked against.
func (p *PodSecurity) Level() psapi.LevelVersion { return p.level }

// Admit refuses a pod that violates the level, with the message
// PodSecurity admission writes: `violates PodSecurity "baseline:latest":
// privileged (container "c" must not set securityContext.privileged=true),
// ...`, every violated check named with its detail.
func (p *PodSecurity) Admit(pod *v1.Pod) Result {
	r := policy.AggregateCheckResults(p.evaluator.EvaluatePod(p.level, &pod.ObjectMeta, &pod.Spec))
	if r.Allowed {
		return Result{Admit: true}
	}
	return Result{Reason: ReasonPodSecurity,
		Message: fmt.Sprintf("violates PodSecurity %q: %s", p.level.String(), r.ForbiddenDetail())}
}
