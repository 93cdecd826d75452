package runtime

import (
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
	podIPs       []string
	user         imageUser
	// mounts are the files berth manages for the container (/etc/hosts,
	// the termination message file).
	mounts []*runtimeapi.Mount
}

// containerConfig converts a container of a pod to its CRI config. Errors
// are configuration errors: the container waits with
// CreateContainerConfigError.
func containerConfig(p containerParams, node *nodeConfig) (*runtimeapi.ContainerConfig, error) {
	if err := checkVolumes(p.pod, p.c); err != nil {
		return nil, err
	}
	env, err := containerEnv(p.pod, p.c, p.podIPs, node)
	if err != nil {
		return nil, err
	}
	sc, err := containerSecurityContext(p.pod, p.c, p.user, node)
	if err != nil {
		return nil, err
	}
	envs := make([]*runtimeapi.KeyValue, 0, len(env))
	vars := make(map[string]string, len(env))
	for _, e := range env {
		envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
		vars[e.Name] = e.Value
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
		Annotations: containerAnnotations(p.pod, p.c, p.restartCount),
		LogPath:     containerLogPath(p.c.Name, p.restartCount),
		Stdin:       p.c.Stdin,
		StdinOnce:   p.c.StdinOnce,
		Tty:         p.c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       containerResources(p.pod, p.c, node),
			SecurityContext: sc,
		},
	}, nil
}

func expandAll(in []string, vars map[string]string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, mapLookup(vars))
	}
	return out
}

// containerLogPath is the container's log file relative to the pod's log
// directory: <container name>/<restart count>.log.
func containerLogPath(name string, restartCount int) string {
	return filepath.Join(name, fmt.Sprintf("%d.log", restartCount))
}

// checkVolumes fails for every volume mount or device: volumes are not
// supported yet, and running a container without the data it expects
// would be worse than not running it.
func checkVolumes(pod *v1.Pod, c *v1.Container) error {
	names := make([]string, 0, len(c.VolumeMounts)+len(c.VolumeDevices))
	for _, m := range c.VolumeMounts {
		names = append(names, m.Name)
	}
	for _, d := range c.VolumeDevices {
		names = append(names, d.Name)
	}
	for _, name := range names {
		vol := podVolume(pod, name)
		if vol == nil {
			return fmt.Errorf("cannot find volume %q to mount into container %q", name, c.Name)
		}
		return errNotSupported{fmt.Sprintf("volume %q of type %s", name, volumeType(vol))}
	}
	return nil
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
