package devicemanager

import (
	"slices"
	"sort"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-dev/berth/internal/devicemanager/checkpoint"
	"github.com/berth-dev/berth/internal/runtime"
)

// pickDevices chooses needed devices: the reusable ones first (devices an
// init container of the same pod had), then those the plugin prefers
// among the available, then the available in name order. It returns fewer
// than needed only when there are not enough.
func pickDevices(reusable, available, preferred []string, needed int) []string {
	out := make([]string, 0, needed)
	taken := map[string]bool{}
	take := func(ids []string) {
		for _, id := range ids {
			if len(out) == needed {
				return
			}
			if !taken[id] {
				taken[id] = true
				out = append(out, id)
			}
		}
	}
	take(sorted(reusable))
	avail := map[string]bool{}
	for _, id := range available {
		avail[id] = true
	}
	for _, id := range preferred {
		if avail[id] {
			take([]string{id})
		}
	}
	take(sorted(available))
	return out
}

func sorted(ids []string) []string {
	s := slices.Clone(ids)
	sort.Strings(s)
	return s
}

// byNUMA files devices under their NUMA nodes as the checkpoint keeps
// them (-1: no topology).
func byNUMA(ids []string, devices map[string]*pluginapi.Device) checkpoint.DevicesPerNUMA {
	out := checkpoint.DevicesPerNUMA{}
	for _, id := range ids {
		d := devices[id]
		if d == nil || d.Topology == nil || len(d.Topology.Nodes) == 0 {
			out[-1] = append(out[-1], id)
			continue
		}
		for _, n := range d.Topology.Nodes {
			out[n.ID] = append(out[n.ID], id)
		}
	}
	return out
}

// deviceIDs are all devices of an allocation.
func deviceIDs(d checkpoint.DevicesPerNUMA) []string {
	seen := map[string]bool{}
	var out []string
	for _, ids := range d {
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// extrasFrom merges the Allocate responses of a container's resources
// (in resource name order) into what the container is given, as
// upstream's deviceRunContainerOptions: the first setting of an env var,
// a container path or an annotation wins.
func extrasFrom(responses []*pluginapi.ContainerAllocateResponse) runtime.ContainerExtras {
	var x runtime.ContainerExtras
	envs, mounts, devs, cdi := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range responses {
		keys := make([]string, 0, len(r.Envs))
		for k := range r.Envs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !envs[k] {
				envs[k] = true
				x.Env = append(x.Env, runtime.ExtraEnv{Name: k, Value: r.Envs[k]})
			}
		}
		for _, m := range r.Mounts {
			if !mounts[m.ContainerPath] {
				mounts[m.ContainerPath] = true
				x.Mounts = append(x.Mounts, runtime.ExtraMount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, ReadOnly: m.ReadOnly})
			}
		}
		for _, d := range r.Devices {
			if !devs[d.ContainerPath] {
				devs[d.ContainerPath] = true
				x.Devices = append(x.Devices, runtime.ExtraDevice{ContainerPath: d.ContainerPath, HostPath: d.HostPath, Permissions: d.Permissions})
			}
		}
		for k, v := range r.Annotations {
			if x.Annotations == nil {
				x.Annotations = map[string]string{}
			}
			if _, ok := x.Annotations[k]; !ok {
				x.Annotations[k] = v
			}
		}
		for _, c := range r.CdiDevices {
			if !cdi[c.Name] {
				cdi[c.Name] = true
				x.CDIDevices = append(x.CDIDevices, c.Name)
			}
		}
	}
	return x
}
