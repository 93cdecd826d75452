// Package mirror keeps a mirror pod in the API server for every static pod
// berth runs, so the cluster can see them (upstream: pkg/kubelet/pod's
// mirror client and the mirror handling of the kubelet's syncPod and
// HandlePodCleanups).
//
// A mirror pod is a copy of the static pod's name, namespace, labels,
// annotations and spec, bound to this node, marked with the annotation
// kubernetes.io/config.mirror holding the static pod's config hash, and owned
// by the Node (which the NodeRestriction admission plugin requires). Its
// status is written by internal/apistatus, never here.
//
// Plan decides, purely, which mirrors to create and delete; Manager.Sync
// carries it out. The caller calls Sync whenever the static pods or the
// mirror pods change, and every 10 s as a safety net: a failed or refused
// create is simply tried again at the next call.
package mirror

import (
	"maps"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/internal/source"
)

// Plan returns which mirror pods to create and which to delete.
//
// static are the static pods berth runs (include those still terminating:
// their mirror carries their status until they are gone); mirrors are the
// API server's mirror pods on this node (pods without the mirror annotation
// are ignored). create lists the static pods that need a mirror (build it
// with NewMirrorPod); del lists mirror pods to delete. A mirror is deleted
// when no static pod of its namespace/name exists (an orphan), when its hash
// is not the static pod's (the manifest changed: stale), or when it has a
// deletionTimestamp (someone deleted it; upstream finishes the deletion at
// once). In the last two cases the static pod is also in create: the mirror
// is replaced, delete first. Both lists keep the order of the inputs.
func Plan(static []*v1.Pod, mirrors []*v1.Pod) (create []*v1.Pod, del []*v1.Pod) {
	byName := make(map[string]*v1.Pod, len(static))
	for _, p := range static {
		byName[fullName(p)] = p
	}
	current := make(map[string]bool, len(mirrors))
	for _, m := range mirrors {
		if !IsMirror(m) {
			continue
		}
		s, ok := byName[fullName(m)]
		if !ok || m.Annotations[source.AnnotationConfigMirror] != Hash(s) || m.DeletionTimestamp != nil {
			del = append(del, m)
			continue
		}
		current[fullName(m)] = true
	}
	for _, s := range static {
		if !current[fullName(s)] {
			create = append(create, s)
		}
	}
	return create, del
}

// NewMirrorPod returns the API object that mirrors static on node: the
// static pod's name, namespace, labels, annotations (plus
// kubernetes.io/config.mirror = its config hash) and spec, with
// spec.nodeName set, owned by the Node. It has no UID; the API server assigns
// one.
//
// The owner reference is a controller reference (controller: true) without
// blockOwnerDeletion: NodeRestriction admits a mirror pod only with exactly
// that reference to the node that creates it, matching the node's UID. With
// node nil the pod has no owner and spec.nodeName stays as in static; an API
// server with NodeRestriction refuses it.
func NewMirrorPod(static *v1.Pod, node *v1.Node) *v1.Pod {
	annotations := maps.Clone(static.Annotations)
	if annotations == nil {
		annotations = make(map[string]string, 1)
	}
	annotations[source.AnnotationConfigMirror] = Hash(static)
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        static.Name,
			Namespace:   static.Namespace,
			Labels:      maps.Clone(static.Labels),
			Annotations: annotations,
		},
		Spec: *static.Spec.DeepCopy(),
	}
	if node != nil {
		p.Spec.NodeName = node.Name
		p.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: v1.SchemeGroupVersion.String(),
			Kind:       "Node",
			Name:       node.Name,
			UID:        node.UID,
			Controller: ptr.To(true),
		}}
	}
	return p
}

// Hash is the config hash of a static pod (annotation
// kubernetes.io/config.hash, which berth's file source always sets; the UID
// otherwise, which that annotation equals).
func Hash(static *v1.Pod) string {
	if h, ok := static.Annotations[source.AnnotationConfigHash]; ok {
		return h
	}
	return string(static.UID)
}

// IsMirror reports whether an API pod is a mirror pod.
func IsMirror(pod *v1.Pod) bool {
	_, ok := pod.Annotations[source.AnnotationConfigMirror]
	return ok
}

// IsMirrorOf reports whether mirror is the current mirror of static: same
// namespace and name, and the static pod's hash.
func IsMirrorOf(mirror, static *v1.Pod) bool {
	h, ok := mirror.Annotations[source.AnnotationConfigMirror]
	return ok && fullName(mirror) == fullName(static) && h == Hash(static)
}

func fullName(p *v1.Pod) string { return p.Namespace + "/" + p.Name }
