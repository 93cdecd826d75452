package admission

import (
	"errors"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// ReasonAppArmor is the status reason of a pod whose AppArmor profiles the
// node cannot enforce (upstream lifecycle.AppArmorNotAdmittedReason).
const ReasonAppArmor = "AppArmor"

// AppArmor checks pods' AppArmor profiles against the host, as upstream's
// AppArmor admit handler: a pod asking for any profile other than
// Unconfined is refused on a host without AppArmor, and a Localhost
// profile must name one.
type AppArmor struct {
	// hostErr is why the host cannot enforce AppArmor; nil if it can.
	hostErr error
}

// NewAppArmor takes whether the kernel has AppArmor enabled (see
// AppArmorEnabled; read once at start, as upstream).
func NewAppArmor(enabled bool) AppArmor {
	if !enabled {
		return AppArmor{hostErr: errors.New("AppArmor is not enabled on the host")}
	}
	return AppArmor{}
}

// Admit refuses a pending pod whose profiles cannot be enforced; a pod
// already running or finished is not checked again.
func (a AppArmor) Admit(pod *v1.Pod) Result {
	if pod.Status.Phase != "" && pod.Status.Phase != v1.PodPending {
		return Result{Admit: true}
	}
	if err := a.validate(pod); err != nil {
		return Result{Reason: ReasonAppArmor, Message: fmt.Sprintf("Cannot enforce AppArmor: %v", err)}
	}
	return Result{Admit: true}
}

func (a AppArmor) validate(pod *v1.Pod) error {
	if !appArmorRequired(pod) {
		return nil
	}
	if a.hostErr != nil {
		return a.hostErr
	}
	for _, c := range container.AllContainers(pod) {
		p := container.AppArmorProfile(pod, c)
		if p != nil && p.Type == v1.AppArmorProfileTypeLocalhost && (p.LocalhostProfile == nil || strings.TrimSpace(*p.LocalhostProfile) == "") {
			return fmt.Errorf("invalid empty AppArmor profile name: %q", p)
		}
	}
	return nil
}

// appArmorRequired: some profile other than Unconfined is asked for, in a
// field or a deprecated annotation (upstream isRequired, which decides on
// the first such annotation it meets).
func appArmorRequired(pod *v1.Pod) bool {
	if sc := pod.Spec.SecurityContext; sc != nil && sc.AppArmorProfile != nil && sc.AppArmorProfile.Type != v1.AppArmorProfileTypeUnconfined {
		return true
	}
	for _, c := range container.AllContainers(pod) {
		if sc := c.SecurityContext; sc != nil && sc.AppArmorProfile != nil && sc.AppArmorProfile.Type != v1.AppArmorProfileTypeUnconfined {
			return true
		}
	}
	for key, value := range pod.Annotations {
		if strings.HasPrefix(key, v1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) {
			return value != v1.DeprecatedAppArmorBetaProfileNameUnconfined
		}
	}
	return false
}
