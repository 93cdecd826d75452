package app

import (
	"fmt"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/nodeshutdown"
)

// podAdmission is what every new pod goes through: node pressure (the
// eviction manager's conditions, upstream's first admit handler) and the
// sysctl allowlist first, for every pod (static ones too, also standalone
// and before the Node exists, since they need nothing from the API), then
// berth's Pod Security Standards levels (static pods, API pod floor) and
// the AppArmor check, then with an API server the checks against the Node.
// Upstream checks AppArmor after the Node; berth does it before, so that a
// critical pod that cannot run never preempts others.
func podAdmission(logger klog.Logger, opts Options, api *apiComponents, security podSecurity, pressure func() []v1.NodeConditionType, devices deviceAdmitter, shutdown *nodeshutdown.Manager) (nodeAdmission, error) {
	kernel, err := kernelVersion()
	if err != nil {
		logger.Error(err, "Cannot tell the kernel version; only sysctls namespaced in every kernel count as safe")
	}
	sysctls, err := admission.NewSysctls(append(admission.SafeSysctls(kernel), opts.AllowedUnsafeSysctls...))
	if err != nil {
		return nodeAdmission{}, fmt.Errorf("allowedUnsafeSysctls: %w", err)
	}
	apparmor := admission.NewAppArmor(appArmorEnabled())
	return nodeAdmission{sysctls: sysctls, security: security, apparmor: apparmor, api: api, pressure: pressure, devices: devices, shutdown: shutdown}, nil
}

// deviceAdmitter allocates a pod's devices (the device manager), as
// upstream's allocate-resources handler: before the resource fit, so that
// too few devices is its UnexpectedAdmissionError.
type deviceAdmitter interface {
	Admit(pod *v1.Pod, active []*v1.Pod) admission.Result
}

type nodeAdmission struct {
	sysctls  *admission.Sysctls
	security podSecurity
	apparmor admission.AppArmor
	api      *apiComponents // nil standalone
	pressure func() []v1.NodeConditionType
	devices  deviceAdmitter
	shutdown *nodeshutdown.Manager // nil without graceful node shutdown
}

func (n nodeAdmission) Admit(pod *v1.Pod, active []*v1.Pod) admission.Result {
	if r := admission.AdmitUnderPressure(pod, n.pressure()); !r.Admit {
		return r
	}
	if r := n.sysctls.Admit(pod); !r.Admit {
		return r
	}
	if r := n.security.Admit(pod); !r.Admit {
		return r
	}
	if r := n.apparmor.Admit(pod); !r.Admit {
		return r
	}
	// Upstream's shutdown admit handler comes before the resource checks.
	if ok, reason, msg := n.shutdown.Admit(); !ok {
		return admission.Result{Reason: reason, Message: msg}
	}
	if r := n.devices.Admit(pod, active); !r.Admit || n.api == nil {
		return r
	}
	return n.api.admit(pod, active)
}

// AdmitResize decides a resize against the Node (admission.AdmitResize);
// standalone, without a Node, every resize fits.
func (n nodeAdmission) AdmitResize(pod *v1.Pod, others []*v1.Pod) admission.Result {
	if n.api == nil {
		return admission.Result{Admit: true}
	}
	node, ok := n.api.published.Node()
	if !ok {
		return admission.Result{Admit: true}
	}
	return admission.AdmitResize(pod, node, others)
}

// appArmorEnabled reports whether the kernel enforces AppArmor, as
// upstream's libcontainer check does.
func appArmorEnabled() bool {
	if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
		return false
	}
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 1 && b[0] == 'Y'
}

func kernelVersion() (*version.Version, error) {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return nil, err
	}
	return version.ParseGeneric(strings.TrimSpace(string(b)))
}
