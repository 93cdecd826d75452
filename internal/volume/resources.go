package volume

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// podMemoryLimit is the memory limit of the pod's cgroup, as upstream
// computes it for sizing memory-backed volumes: the pod-level limit if set;
// otherwise, when every container has a memory limit, the larger of the
// long-running containers' sum (regular and sidecars) and each init
// container's own limit plus the sidecars started before it; plus the
// pod overhead. ok is false when the pod has no memory limit.
func podMemoryLimit(pod *v1.Pod) (int64, bool) {
	overhead := pod.Spec.Overhead.Memory().Value()
	if r := pod.Spec.Resources; r != nil {
		if q, ok := r.Limits[v1.ResourceMemory]; ok && !q.IsZero() {
			return q.Value() + overhead, true
		}
	}
	limit := func(c *v1.Container) (int64, bool) {
		q, ok := c.Resources.Limits[v1.ResourceMemory]
		return q.Value(), ok && !q.IsZero()
	}
	var sum, initMax, sidecars int64
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		l, ok := limit(c)
		if !ok {
			return 0, false
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			sidecars += l
			initMax = max(initMax, sidecars)
			continue
		}
		initMax = max(initMax, sidecars+l)
	}
	for i := range pod.Spec.Containers {
		l, ok := limit(&pod.Spec.Containers[i])
		if !ok {
			return 0, false
		}
		sum += l
	}
	return max(sum+sidecars, initMax) + overhead, true
}

// tmpfsSize is the size of a memory-backed volume as upstream's
// calculateEmptyDirMemorySize: node allocatable memory, lowered to the
// pod's memory limit, lowered to the volume's sizeLimit; 0 when none is
// known (the kernel's default).
func (m *Manager) tmpfsSize(pod *v1.Pod, sizeLimit *resource.Quantity) int64 {
	var size int64
	if m.nodeAllocatable != nil {
		if q, ok := m.nodeAllocatable()[v1.ResourceMemory]; ok {
			size = q.Value()
		}
	}
	lower := func(v int64) {
		if v > 0 && (size == 0 || v <= size) {
			size = v
		}
	}
	if l, ok := podMemoryLimit(pod); ok {
		lower(l)
	}
	if sizeLimit != nil {
		lower(sizeLimit.Value())
	}
	return size
}

// fieldValue is the downward API value of a pod field that volumes may
// show (upstream's fieldpath.ExtractFieldPathAsString).
func fieldValue(pod *v1.Pod, fieldPath string) (string, error) {
	if path, sub, ok := splitSubscript(fieldPath); ok {
		switch path {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(sub)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Annotations[sub], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(sub); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Labels[sub], nil
		default:
			return "", fmt.Errorf("fieldPath %q does not support subscript", fieldPath)
		}
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
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fieldPath)
}

// splitSubscript splits "metadata.labels['key']" into its path and key.
func splitSubscript(fieldPath string) (string, string, bool) {
	if !strings.HasSuffix(fieldPath, "']") {
		return fieldPath, "", false
	}
	path, sub, ok := strings.Cut(strings.TrimSuffix(fieldPath, "']"), "['")
	if !ok || path == "" {
		return fieldPath, "", false
	}
	return path, sub, true
}

// formatMap renders labels or annotations one per line, key="quoted
// value", sorted by key.
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

// resourceValue is the downward API value of a container resource, in
// units of the divisor, rounded up; a limit the container does not set
// reads as the node's allocatable (upstream's
// ExtractResourceValueByContainerNameAndNodeAllocatable).
func resourceValue(pod *v1.Pod, sel *v1.ResourceFieldSelector, allocatable v1.ResourceList) (string, error) {
	c := findContainer(pod, sel.ContainerName)
	if c == nil {
		return "", fmt.Errorf("container %s not found", sel.ContainerName)
	}
	limits := c.Resources.Limits.DeepCopy()
	if limits == nil {
		limits = v1.ResourceList{}
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage} {
		if q, ok := limits[name]; !ok || q.IsZero() {
			if a, ok := allocatable[name]; ok {
				limits[name] = a.DeepCopy()
			}
		}
	}
	divisor := sel.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	requests := c.Resources.Requests
	var q resource.Quantity
	kind, name, _ := strings.Cut(sel.Resource, ".")
	switch kind {
	case "limits":
		q = limits[v1.ResourceName(name)]
	case "requests":
		q = requests[v1.ResourceName(name)]
	default:
		return "", fmt.Errorf("unsupported container resource : %v", sel.Resource)
	}
	switch {
	case name == "cpu":
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	case name == "memory", name == "ephemeral-storage", strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", sel.Resource)
}

func findContainer(pod *v1.Pod, name string) *v1.Container {
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
	return nil
}
