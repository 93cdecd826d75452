package file

import (
	"fmt"
	"regexp"

	v1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validatePod checks what is cheap and would otherwise fail later, deep in a
// CRI call, with a worse message: names, containers, images, the enum
// fields berth acts on, env sources, probe and hook actions, host ports. It
// is a subset of the API server's validation (cluster/compare holds
// manifests both refuse); a pod it accepts may still fail to run.
func validatePod(pod *v1.Pod) error {
	var errs field.ErrorList
	meta := field.NewPath("metadata")
	for _, msg := range validation.IsDNS1123Subdomain(pod.Name) {
		errs = append(errs, field.Invalid(meta.Child("name"), pod.Name,
			"with the node name appended: "+msg))
	}
	for _, msg := range validation.IsDNS1123Label(pod.Namespace) {
		errs = append(errs, field.Invalid(meta.Child("namespace"), pod.Namespace, msg))
	}
	errs = append(errs, validateUID(pod.UID, meta.Child("uid"))...)
	errs = append(errs, metav1validation.ValidateLabels(pod.Labels, meta.Child("labels"))...)
	errs = append(errs, apivalidation.ValidateAnnotations(pod.Annotations, meta.Child("annotations"))...)

	spec := &pod.Spec
	sp := field.NewPath("spec")
	errs = append(errs, oneOf(sp.Child("restartPolicy"), string(spec.RestartPolicy),
		v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever)...)
	errs = append(errs, oneOf(sp.Child("dnsPolicy"), string(spec.DNSPolicy),
		v1.DNSClusterFirst, v1.DNSClusterFirstWithHostNet, v1.DNSDefault, v1.DNSNone)...)
	if spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace && spec.HostPID {
		errs = append(errs, field.Invalid(sp.Child("shareProcessNamespace"), true, "ShareProcessNamespace and HostPID cannot both be enabled"))
	}
	if len(spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(sp.Child("ephemeralContainers"), "cannot be set in a manifest"))
	}

	volumes := sets.New[string]()
	for i, v := range spec.Volumes {
		p := sp.Child("volumes").Index(i).Child("name")
		for _, msg := range validation.IsDNS1123Label(v.Name) {
			errs = append(errs, field.Invalid(p, v.Name, msg))
		}
		if volumes.Has(v.Name) {
			errs = append(errs, field.Duplicate(p, v.Name))
		}
		volumes.Insert(v.Name)
	}

	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(sp.Child("containers"), "a pod needs at least one container"))
	}
	names := sets.New[string]()
	grace := spec.TerminationGracePeriodSeconds
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		p := sp.Child("initContainers").Index(i)
		errs = append(errs, validateContainer(c, p, names, volumes, grace)...)
		// Each init container runs apart: its host ports only need to be
		// unique within itself.
		errs = append(errs, hostPortConflicts(spec.InitContainers[i:i+1], sp.Child("initContainers"), i)...)
	}
	for i := range spec.Containers {
		errs = append(errs, validateContainer(&spec.Containers[i], sp.Child("containers").Index(i), names, volumes, grace)...)
	}
	errs = append(errs, hostPortConflicts(spec.Containers, sp.Child("containers"), 0)...)
	errs = append(errs, validateProcMount(spec, sp)...)
	if len(errs) > 0 {
		return fmt.Errorf("invalid pod: %w", errs.ToAggregate())
	}
	return nil
}

// validateContainer checks one container; names collects the container
// names seen so far (init and regular containers share one namespace);
// grace is the pod's termination grace period, which a sleep hook may not
// exceed.
func validateContainer(c *v1.Container, p *field.Path, names, volumes sets.Set[string], grace *int64) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateRestartPolicy(c, p)...)
	for _, msg := range validation.IsDNS1123Label(c.Name) {
		errs = append(errs, field.Invalid(p.Child("name"), c.Name, msg))
	}
	if names.Has(c.Name) {
		errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
	}
	names.Insert(c.Name)
	if c.Image == "" {
		errs = append(errs, field.Required(p.Child("image"), ""))
	}
	errs = append(errs, oneOf(p.Child("imagePullPolicy"), string(c.ImagePullPolicy),
		v1.PullAlways, v1.PullIfNotPresent, v1.PullNever)...)
	errs = append(errs, oneOf(p.Child("terminationMessagePolicy"), string(c.TerminationMessagePolicy),
		v1.TerminationMessageReadFile, v1.TerminationMessageFallbackToLogsOnError)...)
	for j, port := range c.Ports {
		pp := p.Child("ports").Index(j)
		for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
			errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, msg))
		}
		if port.HostPort != 0 {
			for _, msg := range validation.IsValidPortNum(int(port.HostPort)) {
				errs = append(errs, field.Invalid(pp.Child("hostPort"), port.HostPort, msg))
			}
		}
		errs = append(errs, oneOf(pp.Child("protocol"), string(port.Protocol),
			v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP)...)
	}
	for j, e := range c.Env {
		errs = append(errs, validateEnvSource(&e, p.Child("env").Index(j))...)
	}
	for _, probe := range []struct {
		name string
		p    *v1.Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
		if probe.p != nil {
			h := &probe.p.ProbeHandler
			errs = append(errs, validateHandler(handler{h.Exec, h.HTTPGet, h.TCPSocket, h.GRPC, nil}, grace, p.Child(probe.name))...)
		}
	}
	if lc := c.Lifecycle; lc != nil {
		for _, hook := range []struct {
			name string
			h    *v1.LifecycleHandler
		}{{"postStart", lc.PostStart}, {"preStop", lc.PreStop}} {
			if h := hook.h; h != nil {
				errs = append(errs, validateHandler(handler{h.Exec, h.HTTPGet, h.TCPSocket, nil, h.Sleep}, grace, p.Child("lifecycle", hook.name))...)
			}
		}
	}
	for j, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(j)
		if !volumes.Has(m.Name) {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		}
	}
	return errs
}

// handler is what a probe or a lifecycle hook does: exactly one is set.
type handler struct {
	exec  *v1.ExecAction
	http  *v1.HTTPGetAction
	tcp   *v1.TCPSocketAction
	grpc  *v1.GRPCAction
	sleep *v1.SleepAction
}

// validateHandler: one action, and a sleep that fits in the grace period,
// as the API server requires.
func validateHandler(h handler, grace *int64, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	for _, a := range []struct {
		name string
		set  bool
	}{{"exec", h.exec != nil}, {"httpGet", h.http != nil}, {"tcpSocket", h.tcp != nil}, {"grpc", h.grpc != nil}, {"sleep", h.sleep != nil}} {
		if !a.set {
			continue
		}
		if n > 0 {
			errs = append(errs, field.Forbidden(p.Child(a.name), "may not specify more than 1 handler type"))
		}
		n++
	}
	if n == 0 {
		errs = append(errs, field.Required(p, "must specify a handler type"))
	}
	if h.sleep != nil && grace != nil && (h.sleep.Seconds < 0 || h.sleep.Seconds > *grace) {
		errs = append(errs, field.Invalid(p.Child("sleep"), h.sleep.Seconds,
			fmt.Sprintf("must be non-negative and less than terminationGracePeriodSeconds (%d)", *grace)))
	}
	return errs
}

// validateEnvSource: an env var takes its value from one place only.
func validateEnvSource(e *v1.EnvVar, p *field.Path) field.ErrorList {
	from := e.ValueFrom
	if from == nil {
		return nil
	}
	n := 0
	for _, set := range []bool{from.FieldRef != nil, from.ResourceFieldRef != nil, from.ConfigMapKeyRef != nil,
		from.SecretKeyRef != nil, from.FileKeyRef != nil} {
		if set {
			n++
		}
	}
	vp := p.Child("valueFrom")
	switch {
	case n == 0:
		return field.ErrorList{field.Invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")}
	case e.Value != "":
		return field.ErrorList{field.Invalid(vp, "", "may not be specified when `value` is not empty")}
	case n > 1:
		return field.ErrorList{field.Invalid(vp, "", "may not have more than one field specified at a time")}
	}
	return nil
}

// hostPortConflicts: containers running together may not ask for the same
// host port (protocol, host IP and port). first is the index of
// containers[0] in the field path.
func hostPortConflicts(containers []v1.Container, p *field.Path, first int) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i := range containers {
		for j, port := range containers[i].Ports {
			if port.HostPort == 0 {
				continue
			}
			key := fmt.Sprintf("%s/%s/%d", port.Protocol, port.HostIP, port.HostPort)
			if seen.Has(key) {
				errs = append(errs, field.Duplicate(p.Index(first+i).Child("ports").Index(j).Child("hostPort"), key))
			}
			seen.Insert(key)
		}
	}
	return errs
}

func oneOf[T ~string](p *field.Path, value string, allowed ...T) field.ErrorList {
	valid := make([]string, len(allowed))
	for i, a := range allowed {
		if string(a) == value {
			return nil
		}
		valid[i] = string(a)
	}
	return field.ErrorList{field.NotSupported(p, value, valid)}
}

// validateRestartPolicy checks a container's restartPolicy and
// restartPolicyRules as the API server does with ContainerRestartRules on.
// The action RestartAllContainers is refused: berth does not restart a pod
// in place (see docs/architecture.md, "Restart rules").
func validateRestartPolicy(c *v1.Container, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.RestartPolicy == nil {
		if len(c.RestartPolicyRules) > 0 {
			errs = append(errs, field.Required(p.Child("restartPolicy"), "must specify restartPolicy when restart rules are used"))
		}
		return errs
	}
	errs = append(errs, oneOf(p.Child("restartPolicy"), string(*c.RestartPolicy),
		v1.ContainerRestartPolicyAlways, v1.ContainerRestartPolicyOnFailure, v1.ContainerRestartPolicyNever)...)
	if len(c.RestartPolicyRules) > 20 {
		errs = append(errs, field.TooMany(p.Child("restartPolicyRules"), len(c.RestartPolicyRules), 20))
	}
	for i, rule := range c.RestartPolicyRules {
		rp := p.Child("restartPolicyRules").Index(i)
		errs = append(errs, oneOf(rp.Child("action"), string(rule.Action), v1.ContainerRestartRuleActionRestart)...)
		if rule.ExitCodes == nil {
			errs = append(errs, field.Required(rp.Child("exitCodes"), "must be specified"))
			continue
		}
		errs = append(errs, oneOf(rp.Child("exitCodes", "operator"), string(rule.ExitCodes.Operator),
			v1.ContainerRestartRuleOnExitCodesOpIn, v1.ContainerRestartRuleOnExitCodesOpNotIn)...)
		if len(rule.ExitCodes.Values) > 255 {
			errs = append(errs, field.TooMany(rp.Child("exitCodes", "values"), len(rule.ExitCodes.Values), 255))
		}
	}
	return errs
}

// uidSegment is what a static pod's UID may be: it names the pod's
// directory under the root dir (pods/<uid>), so it must be one plain path
// segment; "../.." would reach outside on removal.
var uidSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)

func validateUID(uid types.UID, p *field.Path) field.ErrorList {
	if !uidSegment.MatchString(string(uid)) {
		return field.ErrorList{field.Invalid(p, string(uid),
			"must be 1-253 letters, digits, '-', '_' or '.', starting with a letter or digit (it names the pod's directory)")}
	}
	return nil
}

// validateProcMount checks procMount as the API server does: Default or
// Unmasked, and Unmasked only in a user namespace of the pod's own.
func validateProcMount(spec *v1.PodSpec, sp *field.Path) field.ErrorList {
	var errs field.ErrorList
	hostUsers := spec.HostUsers == nil || *spec.HostUsers
	check := func(c *v1.Container, p *field.Path) {
		if c.SecurityContext == nil || c.SecurityContext.ProcMount == nil {
			return
		}
		pm := *c.SecurityContext.ProcMount
		p = p.Child("securityContext", "procMount")
		switch pm {
		case v1.DefaultProcMount:
		case v1.UnmaskedProcMount:
			if hostUsers {
				errs = append(errs, field.Invalid(p, pm, "`hostUsers` must be false to use `Unmasked`"))
			}
		default:
			errs = append(errs, field.NotSupported(p, pm, []v1.ProcMountType{v1.DefaultProcMount, v1.UnmaskedProcMount}))
		}
	}
	for i := range spec.InitContainers {
		check(&spec.InitContainers[i], sp.Child("initContainers").Index(i))
	}
	for i := range spec.Containers {
		check(&spec.Containers[i], sp.Child("containers").Index(i))
	}
	return errs
}
