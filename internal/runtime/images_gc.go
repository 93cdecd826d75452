package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
)

// ImageList returns the runtime's images as CRI reports them, for image
// garbage collection.
func (m *Manager) ImageList(ctx context.Context) ([]*runtimeapi.Image, error) {
	_, is, err := m.services(ctx)
	if err != nil {
		return nil, err
	}
	images, err := is.ListImages(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", wrapUnavailable(m.opts.ImageEndpoint, err))
	}
	return images, nil
}

// RemoveImage removes an image by ID; one already gone is not an error.
func (m *Manager) RemoveImage(ctx context.Context, id string) error {
	_, is, err := m.services(ctx)
	if err != nil {
		return err
	}
	if err := is.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: id}); err != nil && !crierrors.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", id, wrapUnavailable(m.opts.ImageEndpoint, err))
	}
	return nil
}

// ImagesInUse returns the images no garbage collection may remove: those
// of every container the runtime has, running or not (by image ID and by
// the name it was started from), and the runtime's own sandbox image,
// which containerd 1.6 does not report as pinned.
func (m *Manager) ImagesInUse(ctx context.Context) (map[string]bool, error) {
	rs, err := m.runtime(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := rs.ListContainers(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", m.wrap(err))
	}
	inUse := map[string]bool{}
	for _, c := range cs {
		inUse[c.GetImageRef()] = true
		inUse[c.GetImage().GetImage()] = true
	}
	if img := m.sandboxImage(ctx, rs); img != "" {
		inUse[img] = true
	}
	delete(inUse, "")
	return inUse, nil
}

// sandboxImage is the image the runtime runs pod sandboxes from, as
// containerd's CRI plugin tells in its verbose status; "" when unknown.
func (m *Manager) sandboxImage(ctx context.Context, rs interface {
	Status(context.Context, bool) (*runtimeapi.StatusResponse, error)
}) string {
	resp, err := rs.Status(ctx, true)
	if err != nil {
		return ""
	}
	var cfg struct {
		SandboxImage string `json:"sandboxImage"`
	}
	if raw, ok := resp.GetInfo()["config"]; ok && json.Unmarshal([]byte(raw), &cfg) == nil {
		return cfg.SandboxImage
	}
	return ""
}

// DeleteAllUnusedContainers garbage-collects every pod the runtime has, at
// once rather than at each pod's next sync: the eviction manager's
// node-level reclaim of disk before it evicts pods.
func (m *Manager) DeleteAllUnusedContainers(ctx context.Context) error {
	pods, err := m.ListPods(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for uid, listed := range pods {
		// GarbageCollect needs the log paths, which only a pod's own
		// status read has.
		st, err := m.GetPodStatus(ctx, uid, listed.Name, listed.Namespace)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.GarbageCollect(ctx, nil, st); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
