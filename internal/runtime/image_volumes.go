package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/image"
)

// imageMountMinimum is the first version of each runtime that mounts an
// image volume from the CRI mount's image field; older ones drop the
// field and mount nothing useful (containerd 1.6 fails with an empty host
// path).
var imageMountMinimum = map[string]*version.Version{
	"containerd": version.MustParseGeneric("2.1.0"),
	"cri-o":      version.MustParseGeneric("1.31.0"),
}

// imageMountSupport says why the runtime (its name and version, as its
// Version call answers) cannot mount image volumes, or nil. A runtime it
// does not know is given the mount. It is pure.
func imageMountSupport(name, ver string) error {
	min, known := imageMountMinimum[name]
	if !known {
		return nil
	}
	v, err := version.ParseGeneric(ver)
	if err == nil && v.AtLeast(min) {
		return nil
	}
	return fmt.Errorf("the container runtime (%s %s) cannot mount images; image volumes need containerd 2.1 or later, or CRI-O 1.31 or later", name, ver)
}

// imageVolumes makes sure the image of every image volume container c
// mounts is on the node (their pull policies, the pod's pull secrets) and
// returns their specs by volume name for the CRI mounts. When one cannot
// be mounted yet it returns why, for the container's status, and when to
// try again: a runtime that cannot mount images is refused before any
// pull, with CreateContainerError (berth's own check; upstream hands the
// mount to the runtime whatever it is).
func (m *Manager) imageVolumes(ctx context.Context, t startTarget, id podIdentity, pod *v1.Pod, c *v1.Container) (map[string]*runtimeapi.ImageSpec, *container.Waiting, time.Duration) {
	var specs map[string]*runtimeapi.ImageSpec
	for _, vm := range c.VolumeMounts {
		vol := podVolume(pod, vm.Name)
		if vol == nil || vol.Image == nil {
			continue
		}
		if _, done := specs[vol.Name]; done {
			continue
		}
		if specs == nil {
			name, ver, err := m.Version(ctx)
			if err == nil {
				err = imageMountSupport(name, ver)
			}
			if err != nil {
				msg := fmt.Sprintf("image volume %q: %v", vol.Name, message(err))
				m.containerEvent(id, c.Name, "", v1.EventTypeWarning, eventFailed, "Error: "+msg)
				return nil, &container.Waiting{Reason: ReasonCreateContainerError, Message: msg}, startRetry
			}
			specs = map[string]*runtimeapi.ImageSpec{}
		}
		ref, w, err := m.images.EnsureVolumeImage(ctx, pod, vol.Image, t.sandboxConfig)
		if err != nil {
			m.containerEvent(id, c.Name, "", v1.EventTypeWarning, eventFailed, "Error: "+w.Reason)
			var pe *image.PullError
			if errors.As(err, &pe) {
				return nil, w, pe.RetryAfter
			}
			return nil, w, startRetry
		}
		specs[vol.Name] = &runtimeapi.ImageSpec{
			Image:              ref,
			UserSpecifiedImage: vol.Image.Reference,
			RuntimeHandler:     t.handler,
			Annotations:        pod.Annotations,
		}
	}
	return specs, nil, 0
}
