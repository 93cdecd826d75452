package runtime

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/berth-dev/berth/internal/container"
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
// before it with $(NAME), and to the service variables; valueFrom is
// resolved from the pod, its IPs, the node and the ConfigMaps and Secrets
// in objs. The service variables in objs (enableServiceLinks) come last,
// those the container does not set itself.
//
// The order is kept stable (upstream's comes from a map) so that the same
// spec always gives the same config. envFrom keys that cannot be variable
// names are skipped with an InvalidEnvironmentVariableNames event.
func containerEnv(pod *v1.Pod, c *v1.Container, podIPs []string, node *nodeConfig, objs envObjects) ([]envVar, []eventNote, error) {
	if objs.servicesErr != nil {
		return nil, nil, objs.servicesErr
	}
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
			value = container.Expand(e.Value, func(name string) (string, bool) {
				if v, ok := values[name]; ok {
					return v, true
				}
				v, ok := objs.services[name]
				return v, ok
			})
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
	for _, name := range slices.Sorted(maps.Keys(objs.services)) {
		if _, ok := values[name]; !ok {
			out = append(out, envVar{Name: name, Value: objs.services[name]})
		}
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
		if v := from.FieldRef.APIVersion; v != "" && v != "v1" {
			return "", false, fmt.Errorf("env var %q: unsupported pod version: %s", e.Name, v)
		}
		v, err := container.FieldValue(pod, from.FieldRef.FieldPath, container.PodIPs{Pod: podIPs, Host: node.nodeIPs})
		if err != nil {
			return "", false, fmt.Errorf("env var %q: %w", e.Name, err)
		}
		return v, true, nil
	case from.ResourceFieldRef != nil:
		allocatable := objs.allocatable
		if len(allocatable) == 0 {
			allocatable = node.capacity()
		}
		v, err := container.ResourceValue(pod, c, from.ResourceFieldRef, allocatable)
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

// capacity is what a container's unset limits read as in the downward API
// when the Node's allocatable is not known (standalone, or before the Node
// is registered).
func (n *nodeConfig) capacity() v1.ResourceList {
	return v1.ResourceList{
		v1.ResourceCPU:    *resource.NewMilliQuantity(n.cpuCapacityMilli, resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(n.memoryCapacity, resource.BinarySI),
	}
}
