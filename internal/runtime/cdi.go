package runtime

import (
	"context"
	"fmt"

	internalapi "k8s.io/cri-api/pkg/apis"

	"github.com/berth-dev/berth/internal/cdi"
)

// resolveCDI gives the container its CDI devices itself when the runtime
// would not: containerd 1.6 ignores the CRI config's CDIDevices, so their
// specs' env, device nodes and bind mounts are added to the extras
// instead (and the names dropped). A runtime with CDI support gets the
// names, as upstream's kubelet passes them.
func (m *Manager) resolveCDI(ctx context.Context, rs internalapi.RuntimeService, x *ContainerExtras) error {
	if len(x.CDIDevices) == 0 {
		return nil
	}
	resp, err := rs.Status(ctx, true)
	if err != nil {
		return fmt.Errorf("ask the runtime whether it resolves CDI devices: %w", m.wrap(err))
	}
	if cdi.RuntimeResolves(m.RuntimeName(), resp.GetInfo()) {
		return nil
	}
	dirs := m.opts.CDISpecDirs
	if dirs == nil {
		dirs = cdi.DefaultSpecDirs
	}
	edits, err := cdi.Resolve(dirs, x.CDIDevices)
	if err != nil {
		return err
	}
	for _, kv := range edits.Env {
		x.Env = append(x.Env, ExtraEnv{Name: kv.Key, Value: string(kv.Value)})
	}
	for _, d := range edits.Devices {
		x.Devices = append(x.Devices, ExtraDevice{ContainerPath: d.ContainerPath, HostPath: d.HostPath, Permissions: d.Permissions})
	}
	for _, mt := range edits.Mounts {
		x.Mounts = append(x.Mounts, ExtraMount{ContainerPath: mt.ContainerPath, HostPath: mt.HostPath, ReadOnly: mt.Readonly})
	}
	x.CDIDevices = nil
	return nil
}
