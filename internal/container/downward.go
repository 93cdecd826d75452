package container

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	resourcehelper "k8s.io/component-helpers/resource"
)

// The downward API: pod fields and container resources as env var values
// (runtime) and as files (downwardAPI and projected volumes), resolved as
// upstream's kubelet does (podFieldSelectorRuntimeValue,
// fieldpath.ExtractFieldPathAsString, resource.ExtractContainerResourceValue).

// PodIPs are the addresses status.podIP(s) and status.hostIP(s) read. The
// API allows those fields in env vars only; volumes pass none.
type PodIPs struct {
	Pod, Host []string
}

// FieldValue is the value of a pod field. A host-network pod's IPs are the
// node's, as upstream reports them before the runtime knows any.
func FieldValue(pod *v1.Pod, fieldPath string, ips PodIPs) (string, error) {
	if path, key, ok := splitSubscript(fieldPath); ok {
		switch path {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Annotations[key], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(key); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Labels[key], nil
		}
		return "", fmt.Errorf("fieldPath %q does not support subscript", fieldPath)
	}
	podIPs := ips.Pod
	if len(podIPs) == 0 && pod.Spec.HostNetwork {
		podIPs = ips.Host
	}
	switch fieldPath {
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return first(ips.Host), nil
	case "status.hostIPs":
		return strings.Join(ips.Host, ","), nil
	case "status.podIP":
		return first(podIPs), nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fieldPath)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// splitSubscript splits "metadata.labels['key']" into its path and key.
func splitSubscript(fieldPath string) (path, key string, ok bool) {
	if !strings.HasSuffix(fieldPath, "']") {
		return fieldPath, "", false
	}
	path, key, ok = strings.Cut(strings.TrimSuffix(fieldPath, "']"), "['")
	if !ok || path == "" {
		return fieldPath, "", false
	}
	return path, key, true
}

// formatMap renders labels or annotations one key="quoted value" per line,
// sorted by key.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		if len(b) > 0 {
			b = append(b, '\n')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, m[k])
	}
	return string(b)
}

// ResourceValue is the value of a container resource in units of the
// divisor, rounded up. The container is sel.ContainerName's, or c when
// that is empty (env vars of c). A cpu, memory or ephemeral-storage limit
// the container does not set reads as the node's allocatable.
func ResourceValue(pod *v1.Pod, c *v1.Container, sel *v1.ResourceFieldSelector, allocatable v1.ResourceList) (string, error) {
	if sel.ContainerName != "" {
		if c = FindContainer(pod, sel.ContainerName); c == nil {
			return "", fmt.Errorf("container %s not found", sel.ContainerName)
		}
	}
	if c == nil {
		return "", fmt.Errorf("no container for resource %s", sel.Resource)
	}
	divisor := sel.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	kind, name, _ := strings.Cut(sel.Resource, ".")
	var q resource.Quantity
	switch kind {
	case "limits":
		q = c.Resources.Limits[v1.ResourceName(name)]
		if unsetOrZero(c.Resources.Limits, v1.ResourceName(name)) && defaultsToAllocatable(v1.ResourceName(name)) {
			q = defaultLimit(pod, v1.ResourceName(name), allocatable)
		}
	case "requests":
		q = c.Resources.Requests[v1.ResourceName(name)]
	default:
		return "", fmt.Errorf("unsupported container resource : %v", sel.Resource)
	}
	switch {
	case name == string(v1.ResourceCPU):
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	case name == string(v1.ResourceMemory), name == string(v1.ResourceEphemeralStorage), strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", sel.Resource)
}

// defaultLimit is what a limit the container does not set reads as: the
// pod-level limit where the pod sets one (cpu, memory), else the node's
// allocatable, as upstream's defaultPodLimitsForDownwardAPI.
func defaultLimit(pod *v1.Pod, name v1.ResourceName, allocatable v1.ResourceList) resource.Quantity {
	q, ok := allocatable[name]
	if !ok || pod.Spec.Resources == nil || !resourcehelper.IsSupportedPodLevelResource(name) {
		return q
	}
	if pl, set := pod.Spec.Resources.Limits[name]; set && !pl.IsZero() {
		return pl
	}
	return q
}

func unsetOrZero(l v1.ResourceList, name v1.ResourceName) bool {
	q, ok := l[name]
	return !ok || q.IsZero()
}

// defaultsToAllocatable: hugepages are never overcommitted, so they always
// have a limit of their own.
func defaultsToAllocatable(name v1.ResourceName) bool {
	return name == v1.ResourceCPU || name == v1.ResourceMemory || name == v1.ResourceEphemeralStorage
}

// FindContainer returns the container of the pod named name: a regular,
// init or ephemeral one (the last as a copy of its common part), or nil.
func FindContainer(pod *v1.Pod, name string) *v1.Container {
	if pod == nil {
		return nil
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			c := v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
			return &c
		}
	}
	return nil
}
