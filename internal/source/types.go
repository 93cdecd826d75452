package source

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
)

// Source names, as upstream writes them into AnnotationConfigSource.
const (
	SourceFile = "file"
	SourceHTTP = "http"
	SourceAPI  = "api"
)

// Annotations the kubelet puts on the pods it is given. The keys are
// upstream's, so that tools and mirror pods read berth's pods the same way.
const (
	// AnnotationConfigSource names the source a pod came from ("file", "api").
	AnnotationConfigSource = "kubernetes.io/config.source"
	// AnnotationConfigHash is the UID a static pod was given, derived from
	// its content; mirror pods carry it to say which static pod they mirror.
	AnnotationConfigHash = "kubernetes.io/config.hash"
	// AnnotationConfigSeen is when berth first saw a pod (RFC3339 with
	// nanoseconds). It is berth's own bookkeeping and never makes a change.
	AnnotationConfigSeen = "kubernetes.io/config.seen"
	// AnnotationConfigMirror marks a mirror pod in the API server.
	AnnotationConfigMirror = v1.MirrorPodAnnotationKey
)

// SeenTimeLayout is the layout of AnnotationConfigSeen (upstream's
// RFC3339NanoFixed: fixed width, so the strings sort by time).
const SeenTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Op is what happened to a desired pod.
type Op int

const (
	// Add: a pod berth did not want before.
	Add Op = iota
	// Update: the same pod (same UID) with a changed spec, labels,
	// annotations or deletion request.
	Update
	// Remove: a pod no source wants any more.
	Remove
)

func (o Op) String() string {
	switch o {
	case Add:
		return "Add"
	case Update:
		return "Update"
	case Remove:
		return "Remove"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Change is one desired-pod change. Pod is the new pod for Add and Update and
// the last known pod for Remove. Pods are shared, not copied: receivers must
// treat them as read-only.
type Change struct {
	Op  Op
	Pod *v1.Pod
}

// IsStatic reports whether a pod came from a source other than the API server
// (upstream's rule: anything not from "api" is static).
func IsStatic(pod *v1.Pod) bool {
	src, ok := pod.Annotations[AnnotationConfigSource]
	return ok && src != SourceAPI
}

// SystemCriticalPriority is the priority of the system-cluster-critical
// class; pods at or above it are critical (upstream's
// scheduling.SystemCriticalPriority).
const SystemCriticalPriority = 2000000000

// IsCritical reports whether the node must run the pod even if others have
// to make room: a static or mirror pod, or one of system priority
// (upstream's kubetypes.IsCriticalPod).
func IsCritical(pod *v1.Pod) bool {
	_, mirror := pod.Annotations[AnnotationConfigMirror]
	return IsStatic(pod) || mirror || (pod.Spec.Priority != nil && *pod.Spec.Priority >= SystemCriticalPriority)
}
