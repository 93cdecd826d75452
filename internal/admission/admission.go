// Package admission decides whether this node can run a pod it has been
// given, as upstream's kubelet does in its predicate admit handler
// (pkg/kubelet/lifecycle/predicate.go) together with the critical-pod
// preemption of pkg/kubelet/preemption.
//
// Admit is a pure function of the pod, the Node object and the pods already
// admitted; it does no IO. Its reasons and messages are upstream's, so that
// a rejected pod reads the same as one rejected by the upstream kubelet
// (phase Failed, status.reason = Result.Reason).
//
// What is checked, in upstream's order (the first failure is reported):
//
//  1. the pod's kubernetes.io/os label and spec.os against this node's OS;
//  2. SupplementalGroupsPolicy=Strict against node.status.features;
//  3. resources: pod count, cpu, memory, ephemeral-storage and scalar
//     resources (hugepages, extended resources the node advertises) of the
//     admitted pods plus this one against node.status.allocatable;
//  4. nodeSelector and required node affinity against the node's labels and
//     name (NodeAffinity);
//  5. spec.nodeName (NodeName);
//  6. host ports against those of the admitted pods (NodePorts);
//  7. NoExecute taints the pod does not tolerate (TaintToleration), except
//     for static pods.
//
// A critical pod (static, mirror, or of system priority) is not rejected for
// resources alone: Admit then names, in Result.Preempt, the admitted pods the
// caller must stop to make room, chosen by upstream's rules.
//
// The sysctl allowlist (sysctls.go, upstream's sysctl admit handler) is a
// check of its own, run before Admit and for static pods too; so is
// berth's own Pod Security Standards check (podsecurity.go), which
// upstream's kubelet does not have, and the AppArmor check (apparmor.go,
// upstream's AppArmor admit handler). Upstream's other admit handlers are
// not here: eviction (node pressure), device/topology managers, node
// shutdown, and pod features.
package admission

import (
	"fmt"
	"runtime"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Reasons a pod is rejected with, as upstream writes them into the pod's
// status.reason.
const (
	ReasonOutOfCPU              = "OutOfcpu"
	ReasonOutOfMemory           = "OutOfmemory"
	ReasonOutOfEphemeralStorage = "OutOfephemeral-storage"
	ReasonOutOfPods             = "OutOfpods"
	// ReasonOutOfPrefix precedes the name of any other resource in short
	// supply ("OutOfhugepages-2Mi", "OutOfexample.com/gpu").
	ReasonOutOfPrefix = "OutOf"

	ReasonNodeAffinity    = "NodeAffinity"
	ReasonNodeName        = "NodeName"
	ReasonNodePorts       = "NodePorts"
	ReasonTaintToleration = "TaintToleration"

	ReasonOSSelectorMismatch                   = "PodOSSelectorNodeLabelDoesNotMatch"
	ReasonOSNotSupported                       = "PodOSNotSupported"
	ReasonSupplementalGroupsPolicyNotSupported = "SupplementalGroupsPolicyNotSupported"
	ReasonInvalidNodeInfo                      = "InvalidNodeInfo"
	ReasonUnexpectedAdmissionError             = "UnexpectedAdmissionError"
)

// What a pod stopped to make room for a critical pod is marked with
// (upstream's status reason and message, and the event reason).
const (
	PreemptReason  = "Preempting"
	PreemptMessage = "Preempted in order to admit critical pod"
)

// Why a predicate failed, as upstream's scheduler plugins word it.
const (
	nodeAffinityFailure = "node(s) didn't match Pod's node affinity/selector"
	nodeNameFailure     = "node(s) didn't match the requested node name"
	nodePortsFailure    = "node(s) didn't have free ports for the requested pod ports"
	taintFailure        = "node(s) had taints that the pod didn't tolerate"
)

// Result is the outcome of Admit.
type Result struct {
	// Admit is true if the pod may run.
	Admit bool
	// Reason and Message say why not (empty when admitted).
	Reason, Message string
	// Preempt lists admitted pods that must be stopped before the pod may
	// run: set only for a critical pod admitted although the node lacked
	// resources. The caller stops them as failed with PreemptReason and
	// PreemptMessage (upstream also sets a DisruptionTarget condition).
	Preempt []*v1.Pod
}

// failure is one failed check. For a resource in short supply, resource
// names it and shortage is how much more the pod needs than is free.
type failure struct {
	reason, message string
	resource        v1.ResourceName
	shortage        int64
}

func predicateFailure(name, desc string) failure {
	return failure{reason: name, message: fmt.Sprintf("Predicate %s failed: %s", name, desc)}
}

// Admit decides whether pod may run on node alongside active: the pods
// already admitted and not yet terminal (a pod with pod's UID among them is
// ignored). It does not modify its arguments.
func Admit(pod *v1.Pod, node *v1.Node, active []*v1.Pod) Result {
	if node == nil {
		return Result{Reason: ReasonInvalidNodeInfo, Message: "Kubelet cannot get node info."}
	}
	others := make([]*v1.Pod, 0, len(active))
	for _, p := range active {
		if p.UID != pod.UID {
			others = append(others, p)
		}
	}

	// Checks that preemption cannot help come first.
	if os, ok := pod.Labels[v1.LabelOSStable]; ok && os != runtime.GOOS {
		return Result{Reason: ReasonOSSelectorMismatch,
			Message: "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"}
	}
	if pod.Spec.OS != nil && string(pod.Spec.OS.Name) != runtime.GOOS {
		return Result{Reason: ReasonOSNotSupported, Message: "Failed to admit pod as the OS field doesn't match node OS"}
	}
	if strictSupplementalGroupsUnsupported(pod, node) {
		return Result{Reason: ReasonSupplementalGroupsPolicyNotSupported,
			Message: fmt.Sprintf("SupplementalGroupsPolicy=%s is not supported in this node", v1.SupplementalGroupsPolicyStrict)}
	}

	failures := generalFilter(pod, node, others)
	if len(failures) == 0 {
		return Result{Admit: true}
	}
	if !isCritical(pod) {
		return rejected(failures[0])
	}
	// A critical pod fails only for reasons other than resources; for those
	// it takes the resources from less important pods.
	var short []requirement
	for _, f := range failures {
		if f.resource == "" {
			return rejected(f)
		}
		short = append(short, requirement{name: f.resource, quantity: f.shortage})
	}
	victims, err := podsToPreempt(pod, others, short)
	if err != nil {
		return Result{Reason: ReasonUnexpectedAdmissionError,
			Message: fmt.Sprintf("Unexpected error while attempting to recover from admission failure: preemption: error finding a set of pods to preempt: %v", err)}
	}
	return Result{Admit: true, Preempt: victims}
}

func rejected(f failure) Result {
	return Result{Reason: f.reason, Message: f.message}
}

// generalFilter runs the checks the scheduler would also have made, in
// upstream's order, and returns every failure.
func generalFilter(pod *v1.Pod, node *v1.Node, others []*v1.Pod) []failure {
	failures := fitResources(pod, node, others)
	if !matchesNodeAffinity(pod, node) {
		failures = append(failures, predicateFailure(ReasonNodeAffinity, nodeAffinityFailure))
	}
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != node.Name {
		failures = append(failures, predicateFailure(ReasonNodeName, nodeNameFailure))
	}
	if portsConflict(pod, others) {
		failures = append(failures, predicateFailure(ReasonNodePorts, nodePortsFailure))
	}
	// A static pod was put here by the node's admin, who owns the taints.
	if !isStatic(pod) && hasUntoleratedNoExecuteTaint(node.Spec.Taints, pod.Spec.Tolerations) {
		failures = append(failures, predicateFailure(ReasonTaintToleration, taintFailure))
	}
	return failures
}

// strictSupplementalGroupsUnsupported: a pod asking for the Strict policy
// needs a node that says it supports it.
func strictSupplementalGroupsUnsupported(pod *v1.Pod, node *v1.Node) bool {
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.SupplementalGroupsPolicy == nil || *sc.SupplementalGroupsPolicy != v1.SupplementalGroupsPolicyStrict {
		return false
	}
	f := node.Status.Features
	return f == nil || f.SupplementalGroupsPolicy == nil || !*f.SupplementalGroupsPolicy
}

// AdmitResize decides whether an admitted pod, at its new resources,
// still fits on node beside others (at their allocated resources), as
// upstream's admit handlers do for a resize: the same checks, and no
// preemption (the scheduler owns that for resizes). A reason other than
// v1.PodReasonInfeasible means "not now" (Deferred).
//
// Requests the node's allocatable cannot hold even alone are Infeasible
// with the message upstream's kubelet wrote up to v1.34 ("Node didn't have
// enough capacity: ..."); since v1.35 the API server refuses such a resize
// before it reaches the node (PodResizeValidator), so berth meets one only
// when that admission plugin is off or allocatable shrank since.
func AdmitResize(pod *v1.Pod, node *v1.Node, others []*v1.Pod) Result {
	if node == nil {
		return Result{Reason: ReasonInvalidNodeInfo, Message: "Kubelet cannot get node info."}
	}
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	alloc := node.Status.Allocatable
	cpu, mem := req.Cpu().MilliValue(), req.Memory().Value()
	cpuCap, memCap := alloc.Cpu().MilliValue(), alloc.Memory().Value()
	switch {
	case mem > memCap:
		return Result{Reason: v1.PodReasonInfeasible,
			Message: fmt.Sprintf("Node didn't have enough capacity: memory, requested: %d, capacity: %d", mem, memCap)}
	case cpu > cpuCap:
		return Result{Reason: v1.PodReasonInfeasible,
			Message: fmt.Sprintf("Node didn't have enough capacity: cpu, requested: %d, capacity: %d", cpu, cpuCap)}
	}
	rest := make([]*v1.Pod, 0, len(others))
	for _, p := range others {
		if p.UID != pod.UID {
			rest = append(rest, p)
		}
	}
	if failures := generalFilter(pod, node, rest); len(failures) > 0 {
		return rejected(failures[0])
	}
	return Result{Admit: true}
}
