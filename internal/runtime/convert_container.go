package runtime

import (
	"github.com/berth-dev/berth/internal/container"

	"fmt"
	"path/filepath"
	"reflect"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerParams is everything a container's CRI config depends on
// besides the node.
type containerParams struct {
	pod          *v1.Pod
	c            *v1.Container
	restartCount int
	imageRef     string // the image ID the puller resolved
	user         imageUser
	// userns is the pod's user namespace, as in its sandbox's config.
	userns *runtimeapi.UserNamespace
	// env is the container's resolved environment (containerEnv).
	env []envVar
	// mounts are the container's volumes and the files berth manages for
	// it (/etc/hosts, the termination message file), in that order.
	mounts []*runtimeapi.Mount
	// pidTargetID, for an ephemeral container with a targetContainerName,
	// is the runtime ID of that container: the ephemeral one joins its
	// process namespace.
	pidTargetID string
	// extras are what node plugins give the container (their env and
	// mounts are in env and mounts already).
	extras ContainerExtras
}

// containerConfig converts a container of a pod to its CRI config. Errors
// are configuration errors: the container waits with
// CreateContainerConfigError.
func containerConfig(p containerParams, node *nodeConfig) (*runtimeapi.ContainerConfig, error) {
	sc, err := containerSecurityContext(p.pod, p.c, p.user, p.userns, node)
	if err != nil {
		return nil, err
	}
	stopSignal, err := containerStopSignal(p.c)
	if err != nil {
		return nil, err
	}
	if ns := sc.GetNamespaceOptions(); p.pidTargetID != "" && ns.GetPid() == runtimeapi.NamespaceMode_CONTAINER {
		// Upstream targets only a container-private process namespace: a
		// pod-wide or host one is shared with the target already.
		ns.Pid = runtimeapi.NamespaceMode_TARGET
		ns.TargetId = p.pidTargetID
	}
	withIDMappings(p.mounts, sc.GetNamespaceOptions().GetUsernsOptions())
	envs := make([]*runtimeapi.KeyValue, 0, len(p.env))
	vars := make(map[string]string, len(p.env))
	for _, e := range p.env {
		envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
		vars[e.Name] = e.Value
	}
	annotations := containerAnnotations(p.pod, p.c, p.restartCount)
	for k, v := range p.extras.Annotations {
		if _, ours := annotations[k]; !ours {
			annotations[k] = v
		}
	}
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: p.c.Name, Attempt: uint32(p.restartCount)},
		Image:    &runtimeapi.ImageSpec{Image: p.imageRef, UserSpecifiedImage: p.c.Image},
		// Command and args may refer to the environment with $(NAME).
		Command:     expandAll(p.c.Command, vars),
		Args:        expandAll(p.c.Args, vars),
		WorkingDir:  p.c.WorkingDir,
		Envs:        envs,
		Mounts:      p.mounts,
		Labels:      containerLabels(p.pod, p.c),
		Annotations: annotations,
		Devices:     p.extras.criDevices(),
		CDIDevices:  p.extras.criCDIDevices(),
		LogPath:     containerLogPath(p.c.Name, p.restartCount),
		Stdin:       p.c.Stdin,
		StdinOnce:   p.c.StdinOnce,
		Tty:         p.c.TTY,
		StopSignal:  stopSignal,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       containerResources(p.pod, p.c, node),
			SecurityContext: sc,
		},
	}, nil
}

// containerStopSignal converts lifecycle.stopSignal ("SIGUSR1",
// "SIGRTMIN+1") to the CRI's enum; unset leaves the choice to the runtime
// (the image's STOPSIGNAL, else SIGTERM). Runtimes that predate the field
// (containerd 1.6) ignore it.
func containerStopSignal(c *v1.Container) (runtimeapi.Signal, error) {
	if c.Lifecycle == nil || c.Lifecycle.StopSignal == nil {
		return runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, nil
	}
	name := string(*c.Lifecycle.StopSignal)
	enum := "SIGNAL_" + strings.NewReplacer("+", "PLUS", "-", "MINUS").Replace(name)
	v, ok := runtimeapi.Signal_value[enum]
	if !ok || v == 0 {
		return 0, fmt.Errorf("unsupported stop signal %q", name)
	}
	return runtimeapi.Signal(v), nil
}

func expandAll(in []string, vars map[string]string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = container.Expand(s, container.MapLookup(vars))
	}
	return out
}

// containerLogPath is the container's log file relative to the pod's log
// directory: <container name>/<restart count>.log.
func containerLogPath(name string, restartCount int) string {
	return filepath.Join(name, fmt.Sprintf("%d.log", restartCount))
}

func podVolume(pod *v1.Pod, name string) *v1.Volume {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i]
		}
	}
	return nil
}

// volumeType names the source of a volume as the API does ("emptyDir",
// "hostPath", "configMap", ...).
func volumeType(vol *v1.Volume) string {
	v := reflect.ValueOf(vol.VolumeSource)
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "unknown"
}
