package image

import (
	"context"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Keyring finds the registry credentials to pull an image for a pod. The
// puller tries each one in order and pulls anonymously when there are none.
type Keyring interface {
	// Lookup returns the credentials for repo, the fully qualified
	// repository (e.g. "docker.io/library/busybox"), and the names of the
	// pod's pull secrets that could not be read: should the pull fail,
	// the puller says so in an event.
	Lookup(ctx context.Context, pod *v1.Pod, repo string) (auths []*runtimeapi.AuthConfig, missing []string)
}

// NoKeyring has no credentials.
type NoKeyring struct{}

// Lookup returns nothing.
func (NoKeyring) Lookup(context.Context, *v1.Pod, string) ([]*runtimeapi.AuthConfig, []string) {
	return nil, nil
}
