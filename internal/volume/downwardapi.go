package volume

import (
	"context"
	"errors"
	"path/filepath"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// setUpDownwardAPI writes pod fields and container resources as files, on
// a tmpfs as upstream. SetUp runs on every pod update, so label and
// annotation changes reach the files.
func (m *Manager) setUpDownwardAPI(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState) (bool, error) {
	src := vol.DownwardAPI
	payload, err := m.downwardAPIPayload(pod, src.Items, modeOrDefault(src.DefaultMode))
	if err != nil {
		return false, err
	}
	return m.setUpFiles(ctx, pod, vol, vs, dirDownwardAPI, true, payload)
}

// downwardAPIPayload collects the items' values; every failing item is
// reported.
func (m *Manager) downwardAPIPayload(pod *v1.Pod, items []v1.DownwardAPIVolumeFile, defaultMode int32) (map[string]fileProjection, error) {
	var allocatable v1.ResourceList
	if m.nodeAllocatable != nil {
		allocatable = m.nodeAllocatable()
	}
	payload := make(map[string]fileProjection, len(items))
	var errs []error
	for _, item := range items {
		f := fileProjection{mode: itemMode(item.Mode, defaultMode)}
		switch {
		case item.FieldRef != nil:
			v, err := container.FieldValue(pod, item.FieldRef.FieldPath, container.PodIPs{})
			if err != nil {
				errs = append(errs, err)
			}
			f.data = []byte(v)
		case item.ResourceFieldRef != nil:
			v, err := container.ResourceValue(pod, nil, item.ResourceFieldRef, allocatable)
			if err != nil {
				errs = append(errs, err)
			}
			f.data = []byte(v)
		}
		payload[filepath.Clean(item.Path)] = f
	}
	return payload, errors.Join(errs...)
}
