package runtime

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerExtras is what a node plugin gives one container beyond its
// spec, as upstream's RunContainerOptions carry what the device manager
// and DRA add: environment variables (before the container's own, so that
// its env wins where both name a variable), mounts (before its volumes),
// device nodes, annotations (berth's own win on a clash) and CDI devices
// (fully qualified names, "vendor.com/class=name").
type ContainerExtras struct {
	Env         []ExtraEnv
	Mounts      []ExtraMount
	Devices     []ExtraDevice
	Annotations map[string]string
	CDIDevices  []string
}

// ExtraEnv is one environment variable.
type ExtraEnv struct{ Name, Value string }

// ExtraMount is a host path bound into the container.
type ExtraMount struct {
	ContainerPath, HostPath string
	ReadOnly                bool
}

// ExtraDevice is a device node given to the container; Permissions are
// cgroup device permissions ("rwm").
type ExtraDevice struct{ ContainerPath, HostPath, Permissions string }

// ContainerExtrasSource gives the extras of a container about to be
// created (the device manager, DRA). It is asked only for containers of
// pods it may know, so it must answer quickly for the others. An error
// keeps the container from being created: it waits with
// CreateContainerConfigError and the error's message, and is tried again.
type ContainerExtrasSource interface {
	ContainerExtras(ctx context.Context, pod *v1.Pod, c *v1.Container) (ContainerExtras, error)
}

// containerExtras gathers the extras of every source, in the order of
// Options.ContainerExtras.
func (m *Manager) containerExtras(ctx context.Context, pod *v1.Pod, c *v1.Container) (ContainerExtras, error) {
	var all ContainerExtras
	for _, src := range m.opts.ContainerExtras {
		x, err := src.ContainerExtras(ctx, pod, c)
		if err != nil {
			return ContainerExtras{}, fmt.Errorf("get resources of container %q: %w", c.Name, err)
		}
		all.Env = append(all.Env, x.Env...)
		all.Mounts = append(all.Mounts, x.Mounts...)
		all.Devices = append(all.Devices, x.Devices...)
		all.CDIDevices = append(all.CDIDevices, x.CDIDevices...)
		for k, v := range x.Annotations {
			if all.Annotations == nil {
				all.Annotations = map[string]string{}
			}
			all.Annotations[k] = v
		}
	}
	return all, nil
}

// extraEnv is the extras' environment in the form containerEnv returns.
func (x ContainerExtras) extraEnv() []envVar {
	out := make([]envVar, 0, len(x.Env))
	for _, e := range x.Env {
		out = append(out, envVar{Name: e.Name, Value: e.Value})
	}
	return out
}

// criMounts are the extras' mounts as CRI mounts (private propagation,
// no relabelling, as upstream makes device plugin mounts).
func (x ContainerExtras) criMounts() []*runtimeapi.Mount {
	out := make([]*runtimeapi.Mount, 0, len(x.Mounts))
	for _, mt := range x.Mounts {
		out = append(out, &runtimeapi.Mount{ContainerPath: mt.ContainerPath, HostPath: mt.HostPath, Readonly: mt.ReadOnly})
	}
	return out
}

func (x ContainerExtras) criDevices() []*runtimeapi.Device {
	if len(x.Devices) == 0 {
		return nil
	}
	out := make([]*runtimeapi.Device, 0, len(x.Devices))
	for _, d := range x.Devices {
		out = append(out, &runtimeapi.Device{ContainerPath: d.ContainerPath, HostPath: d.HostPath, Permissions: d.Permissions})
	}
	return out
}

func (x ContainerExtras) criCDIDevices() []*runtimeapi.CDIDevice {
	if len(x.CDIDevices) == 0 {
		return nil
	}
	out := make([]*runtimeapi.CDIDevice, 0, len(x.CDIDevices))
	for _, name := range x.CDIDevices {
		out = append(out, &runtimeapi.CDIDevice{Name: name})
	}
	return out
}
