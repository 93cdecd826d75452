package runtime

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"github.com/berth-dev/berth/internal/container"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// imageUser is the user an image runs as, from the runtime's image status:
// a uid, or a user name when the image names a non-numeric user.
type imageUser struct {
	uid      *int64
	username string
}

// imageUserOf reads the user out of an image status; an image that names
// no user runs as root.
func imageUserOf(img *runtimeapi.Image) imageUser {
	switch {
	case img.GetUid() != nil:
		uid := img.GetUid().GetValue()
		return imageUser{uid: &uid}
	case img.GetUsername() != "":
		return imageUser{username: img.GetUsername()}
	}
	root := int64(0)
	return imageUser{uid: &root}
}

// Paths hidden or read-only in /proc and /sys unless the container is
// privileged or asks for an unmasked /proc (kept in sync with moby, as
// upstream's securitycontext package is).
var (
	defaultMaskedPaths = []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

// effectiveSecurityContext merges the pod's security context into the
// container's; the container's fields win.
func effectiveSecurityContext(pod *v1.Pod, c *v1.Container) *v1.SecurityContext {
	sc := &v1.SecurityContext{}
	if psc := pod.Spec.SecurityContext; psc != nil {
		sc.SELinuxOptions = psc.SELinuxOptions
		sc.RunAsUser = psc.RunAsUser
		sc.RunAsGroup = psc.RunAsGroup
		sc.RunAsNonRoot = psc.RunAsNonRoot
		sc.SeccompProfile = psc.SeccompProfile
		sc.AppArmorProfile = psc.AppArmorProfile
	}
	csc := c.SecurityContext
	if csc == nil {
		return sc
	}
	if csc.SELinuxOptions != nil {
		sc.SELinuxOptions = csc.SELinuxOptions
	}
	if csc.RunAsUser != nil {
		sc.RunAsUser = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		sc.RunAsGroup = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		sc.RunAsNonRoot = csc.RunAsNonRoot
	}
	if csc.SeccompProfile != nil {
		sc.SeccompProfile = csc.SeccompProfile
	}
	if csc.AppArmorProfile != nil {
		sc.AppArmorProfile = csc.AppArmorProfile
	}
	sc.Capabilities = csc.Capabilities
	sc.Privileged = csc.Privileged
	sc.ReadOnlyRootFilesystem = csc.ReadOnlyRootFilesystem
	sc.AllowPrivilegeEscalation = csc.AllowPrivilegeEscalation
	sc.ProcMount = csc.ProcMount
	return sc
}

// containerSecurityContext converts the effective security context of a
// container (upstream determineEffectiveSecurityContext). It fails when
// runAsNonRoot cannot be honoured.
func containerSecurityContext(pod *v1.Pod, c *v1.Container, user imageUser, userns *runtimeapi.UserNamespace, node *nodeConfig) (*runtimeapi.LinuxContainerSecurityContext, error) {
	sc := effectiveSecurityContext(pod, c)
	if err := verifyRunAsNonRoot(pod, c, sc, user); err != nil {
		return nil, err
	}
	ns, err := namespaceOptions(pod, userns)
	if err != nil {
		return nil, err
	}
	out := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: ns,
		SelinuxOptions:   seLinuxOptions(sc.SELinuxOptions),
		Privileged:       sc.Privileged != nil && *sc.Privileged,
		ReadonlyRootfs:   sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem,
		// no_new_privs only when privilege escalation is explicitly refused.
		NoNewPrivs: sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
	}
	if caps := sc.Capabilities; caps != nil {
		out.Capabilities = &runtimeapi.Capability{
			AddCapabilities:  make([]string, 0, len(caps.Add)),
			DropCapabilities: make([]string, 0, len(caps.Drop)),
		}
		for _, c := range caps.Add {
			out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, string(c))
		}
		for _, c := range caps.Drop {
			out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, string(c))
		}
	}
	switch {
	case sc.RunAsUser != nil:
		out.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
	case user.uid != nil:
		out.RunAsUser = &runtimeapi.Int64Value{Value: *user.uid}
	default:
		out.RunAsUsername = user.username
	}
	if sc.RunAsGroup != nil {
		out.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		groups, policy, err := supplementalGroups(psc)
		if err != nil {
			return nil, err
		}
		out.SupplementalGroups, out.SupplementalGroupsPolicy = groups, policy
	}

	if out.Seccomp, err = seccompProfile(sc.SeccompProfile, filepath.Join(node.rootDir, "seccomp"), node.seccompDefault); err != nil {
		return nil, err
	}
	if out.Apparmor, out.ApparmorProfile, err = appArmorProfile(container.AppArmorProfile(pod, c)); err != nil {
		return nil, err
	}

	unmasked := sc.ProcMount != nil && *sc.ProcMount == v1.UnmaskedProcMount
	if !out.Privileged && !unmasked {
		out.MaskedPaths = defaultMaskedPaths
		out.ReadonlyPaths = defaultReadonlyPaths
	}
	return out, nil
}

// seccompProfile converts a seccomp profile (upstream
// fieldSeccompProfile). Unset means Unconfined, or RuntimeDefault with the
// seccompDefault setting.
func seccompProfile(p *v1.SeccompProfile, profileRoot string, runtimeDefault bool) (*runtimeapi.SecurityProfile, error) {
	if p == nil {
		if runtimeDefault {
			return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
		}
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	}
	switch p.Type {
	case v1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case v1.SeccompProfileTypeLocalhost:
		if p.LocalhostProfile == nil || *p.LocalhostProfile == "" {
			return nil, errors.New("localhostProfile must be set if seccompProfile type is Localhost.")
		}
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: filepath.Join(profileRoot, *p.LocalhostProfile),
		}, nil
	}
	return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
}

// appArmorProfile converts an AppArmor profile, also in the deprecated
// string form older runtimes read (upstream getAppArmorProfile); unset
// leaves the choice to the runtime. Admission has refused pods asking for a
// profile on a host without AppArmor.
func appArmorProfile(p *v1.AppArmorProfile) (*runtimeapi.SecurityProfile, string, error) {
	if p == nil {
		return nil, "", nil
	}
	switch p.Type {
	case v1.AppArmorProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, v1.DeprecatedAppArmorBetaProfileRuntimeDefault, nil
	case v1.AppArmorProfileTypeUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, v1.DeprecatedAppArmorBetaProfileNameUnconfined, nil
	case v1.AppArmorProfileTypeLocalhost:
		if p.LocalhostProfile == nil {
			return nil, "", errors.New("missing localhost apparmor profile name")
		}
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: *p.LocalhostProfile},
			v1.DeprecatedAppArmorBetaProfileNamePrefix + *p.LocalhostProfile, nil
	}
	return nil, "", fmt.Errorf("unknown apparmor profile type: %q", p.Type)
}

// verifyRunAsNonRoot refuses to run a container as root when the pod or
// container demands a non-root user; with a user name instead of a uid it
// cannot tell, and refuses too (upstream verifyRunAsNonRoot).
func verifyRunAsNonRoot(pod *v1.Pod, c *v1.Container, sc *v1.SecurityContext, user imageUser) error {
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		return nil
	}
	if sc.RunAsUser != nil {
		if *sc.RunAsUser == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", podDesc(pod), c.Name)
		}
		return nil
	}
	switch {
	case user.uid == nil && user.username != "":
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", user.username, podDesc(pod), c.Name)
	case user.uid == nil || *user.uid == 0:
		return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", podDesc(pod), c.Name)
	case *user.uid < 0 || *user.uid > math.MaxInt32:
		return fmt.Errorf("container has runAsNonRoot and image has an invalid user id (%d). (Must be 1-(%d)) (pod: %q, container: %s)", *user.uid, math.MaxInt32, podDesc(pod), c.Name)
	}
	return nil
}
