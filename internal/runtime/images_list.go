package runtime

import (
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// As upstream: the Node reports at most nodeStatusMaxImages images (the
// default of the field of that name), each with at most
// maxNamesPerImage names.
const (
	nodeStatusMaxImages = 50
	maxNamesPerImage    = 5
)

// ListImages returns the runtime's images as the Node's status reports
// them: largest first (ties by image ID, descending, as upstream sorts),
// at most 50, each named by its repo digests then its repo tags, at most
// five names.
func (m *Manager) ListImages(ctx context.Context) ([]v1.ContainerImage, error) {
	_, is, err := m.services(ctx)
	if err != nil {
		return nil, err
	}
	images, err := is.ListImages(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", wrapUnavailable(m.opts.ImageEndpoint, err))
	}
	return nodeImages(images), nil
}

// nodeImages converts CRI images into the Node's image list.
func nodeImages(images []*runtimeapi.Image) []v1.ContainerImage {
	images = slices.Clone(images)
	slices.SortFunc(images, func(a, b *runtimeapi.Image) int {
		if a.GetSize() != b.GetSize() {
			if a.GetSize() > b.GetSize() {
				return -1
			}
			return 1
		}
		return -strings.Compare(a.GetId(), b.GetId())
	})
	if len(images) > nodeStatusMaxImages {
		images = images[:nodeStatusMaxImages]
	}
	out := make([]v1.ContainerImage, 0, len(images))
	for _, img := range images {
		names := append(slices.Clone(img.GetRepoDigests()), img.GetRepoTags()...)
		if len(names) > maxNamesPerImage {
			names = names[:maxNamesPerImage]
		}
		out = append(out, v1.ContainerImage{Names: names, SizeBytes: int64(img.GetSize())})
	}
	return out
}
