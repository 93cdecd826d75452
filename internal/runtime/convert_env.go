package runtime

import (
	"github.com/berth-dev/berth/internal/container"

	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// envVar is one resolved environment variable.
type envVar struct {
	Name, Value string
}

// errNotSupported marks spec features berth cannot honour yet; the
// container then waits with CreateContainerConfigError instead of running
// without them.
type errNotSupported struct{ what string }

func (e errNotSupported) Error() string { return e.what + " is not supported yet" }

// containerEnv resolves a container's environment (upstream
// makeEnvironmentVariables): first the variables of envFrom, in the order
// of its sources and by key within one, then env in declaration order,
// which overrides them. Each env value may refer to variables declared
// before it with $(NAME); valueFrom is resolved from the pod, its IPs, the
// node and the ConfigMaps and Secrets in objs.
//
// The order is kept stable (upstream's comes from a map) so that the same
// spec always gives the same config. envFrom keys that cannot be variable
// names are skipped with an InvalidEnvironmentVariableNames event; service
// links are not injected (berth has no Service informer yet), as for an
// upstream standalone kubelet.
func containerEnv(pod *v1.Pod, c *v1.Container, podIPs []string, node *nodeConfig, objs envObjects) ([]envVar, []eventNote, error) {
	var (
		out    []envVar
		notes  []eventNote
		index  = map[string]int{} // name -> position in out
		values = map[string]string{}
	)
	set := func(name, value string) {
		values[name] = value
		// A name set twice keeps its first position and its last value.
		if i, ok := index[name]; ok {
			out[i].Value = value
			return
		}
		index[name] = len(out)
		out = append(out, envVar{Name: name, Value: value})
	}

	for _, from := range c.EnvFrom {
		var (
			data     map[string]string
			kind     string
			name     string
			optional bool
		)
		switch {
		case from.ConfigMapRef != nil:
			kind, name, optional = "configMap", from.ConfigMapRef.Name, isTrue(from.ConfigMapRef.Optional)
			cm, err := objs.configMap(pod.Namespace, name)
			if err != nil {
				if optional && apierrors.IsNotFound(err) {
					continue
				}
				return nil, notes, err
			}
			data = cm.Data
		case from.SecretRef != nil:
			kind, name, optional = "secret", from.SecretRef.Name, isTrue(from.SecretRef.Optional)
			secret, err := objs.secret(pod.Namespace, name)
			if err != nil {
				if optional && apierrors.IsNotFound(err) {
					continue
				}
				return nil, notes, err
			}
			data = make(map[string]string, len(secret.Data))
			for k, v := range secret.Data {
				data[k] = string(v)
			}
		default:
			continue
		}
		var invalid []string
		for _, k := range slices.Sorted(maps.Keys(data)) {
			key := from.Prefix + k
			if errs := validation.IsRelaxedEnvVarName(key); len(errs) > 0 {
				invalid = append(invalid, key)
				continue
			}
			set(key, data[k])
		}
		if len(invalid) > 0 {
			notes = append(notes, eventNote{eventType: v1.EventTypeWarning, reason: eventInvalidEnvironmentVariableNames,
				message: fmt.Sprintf("Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.",
					strings.Join(invalid, ", "), kind, pod.Namespace, name)})
		}
	}

	for _, e := range c.Env {
		var value string
		switch {
		case e.Value != "":
			value = container.Expand(e.Value, container.MapLookup(values))
		case e.ValueFrom != nil:
			v, ok, err := envValueFrom(pod, c, e, podIPs, node, objs)
			if err != nil {
				return nil, notes, err
			}
			if !ok {
				continue // optional and absent
			}
			value = v
		}
		set(e.Name, value)
	}
	return out, notes, nil
}

// envValueFrom resolves one valueFrom. ok is false when an optional
// ConfigMap or Secret, or its key, is absent: the variable is left out.
// Errors about objects carry upstream's messages unchanged.
func envValueFrom(pod *v1.Pod, c *v1.Container, e v1.EnvVar, podIPs []string, node *nodeConfig, objs envObjects) (value string, ok bool, err error) {
	from := e.ValueFrom
	switch {
	case from.FieldRef != nil:
		v, err := podFieldValue(pod, from.FieldRef, podIPs, node)
		if err != nil {
			return "", false, fmt.Errorf("env var %q: %w", e.Name, err)
		}
		return v, true, nil
	case from.ResourceFieldRef != nil:
		v, err := resourceFieldValue(pod, c, from.ResourceFieldRef, node)
		if err != nil {
			return "", false, fmt.Errorf("env var %q: %w", e.Name, err)
		}
		return v, true, nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		optional := isTrue(ref.Optional)
		cm, err := objs.configMap(pod.Namespace, ref.Name)
		if err != nil {
			if optional && apierrors.IsNotFound(err) {
				return "", false, nil
			}
			return "", false, err
		}
		v, found := cm.Data[ref.Key]
		if !found {
			if optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, pod.Namespace, ref.Name)
		}
		return v, true, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		optional := isTrue(ref.Optional)
		secret, err := objs.secret(pod.Namespace, ref.Name)
		if err != nil {
			if optional && apierrors.IsNotFound(err) {
				return "", false, nil
			}
			return "", false, err
		}
		v, found := secret.Data[ref.Key]
		if !found {
			if optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), true, nil
	case from.FileKeyRef != nil:
		return "", false, fmt.Errorf("env var %q: %w", e.Name, errNotSupported{fmt.Sprintf("fileKeyRef %s/%s", from.FileKeyRef.VolumeName, from.FileKeyRef.Path)})
	}
	return "", true, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// podFieldValue is the downward API for env vars (upstream:
// podFieldSelectorRuntimeValue and fieldpath.ExtractFieldPathAsString).
func podFieldValue(pod *v1.Pod, fs *v1.ObjectFieldSelector, podIPs []string, node *nodeConfig) (string, error) {
	if fs.APIVersion != "" && fs.APIVersion != "v1" {
		return "", fmt.Errorf("unsupported fieldRef apiVersion %q", fs.APIVersion)
	}
	path := fs.FieldPath
	if base, key, ok := splitSubscript(path); ok {
		switch base {
		case "metadata.labels":
			if errs := validation.IsQualifiedName(key); len(errs) > 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Labels[key], nil
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) > 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Annotations[key], nil
		}
		return "", fmt.Errorf("fieldPath %q does not support subscript", path)
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		if len(node.nodeIPs) == 0 {
			return "", nil
		}
		return node.nodeIPs[0], nil
	case "status.hostIPs":
		return strings.Join(node.nodeIPs, ","), nil
	case "status.podIP":
		if len(podIPs) == 0 {
			return "", nil
		}
		return podIPs[0], nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", path)
}

// splitSubscript splits "metadata.labels['key']" into its parts.
func splitSubscript(path string) (base, key string, ok bool) {
	if !strings.HasSuffix(path, "']") {
		return path, "", false
	}
	base, key, found := strings.Cut(strings.TrimSuffix(path, "']"), "['")
	if !found || base == "" {
		return path, "", false
	}
	return base, key, true
}

// formatMap renders labels or annotations one key="value" per line, sorted.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, k+"="+strconv.Quote(m[k]))
	}
	return strings.Join(lines, "\n")
}

// resourceFieldValue is the downward API for container resources. An unset
// limit reads as the node's capacity (upstream: its allocatable, which is
// the same while berth reserves nothing for the system).
func resourceFieldValue(pod *v1.Pod, c *v1.Container, fs *v1.ResourceFieldSelector, node *nodeConfig) (string, error) {
	target := c
	if fs.ContainerName != "" {
		target = findContainer(pod, fs.ContainerName)
		if target == nil {
			return "", fmt.Errorf("container %q not found in pod", fs.ContainerName)
		}
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	limits := target.Resources.Limits
	requests := target.Resources.Requests
	cpuLimit, memLimit := limits.Cpu(), limits.Memory()
	if cpuLimit.IsZero() {
		cpuLimit = resource.NewMilliQuantity(node.cpuCapacityMilli, resource.DecimalSI)
	}
	if memLimit.IsZero() {
		memLimit = resource.NewQuantity(node.memoryCapacity, resource.BinarySI)
	}
	switch fs.Resource {
	case "limits.cpu":
		return cpuString(cpuLimit, divisor), nil
	case "requests.cpu":
		return cpuString(requests.Cpu(), divisor), nil
	case "limits.memory":
		return bytesString(memLimit, divisor), nil
	case "requests.memory":
		return bytesString(requests.Memory(), divisor), nil
	case "limits.ephemeral-storage":
		return bytesString(limits.StorageEphemeral(), divisor), nil
	case "requests.ephemeral-storage":
		return bytesString(requests.StorageEphemeral(), divisor), nil
	}
	return "", fmt.Errorf("unsupported container resource: %v", fs.Resource)
}

// cpuString and bytesString round up, as the upstream downward API does.
func cpuString(q *resource.Quantity, divisor resource.Quantity) string {
	return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10)
}

func bytesString(q *resource.Quantity, divisor resource.Quantity) string {
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10)
}

// findContainer returns the init or regular container with name, or nil.
func findContainer(pod *v1.Pod, name string) *v1.Container {
	if pod == nil {
		return nil
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}
