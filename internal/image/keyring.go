package image

import (
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Keyring finds the registry credentials to pull an image for a pod. The
// puller tries each one in order and pulls anonymously when there are none.
// Berth has no credential sources yet (pull secrets come with API-server
// pods), so the default is NoKeyring.
type Keyring interface {
	// Lookup returns the credentials for repo, the fully qualified
	// repository (e.g. "docker.io/library/busybox").
	Lookup(pod *v1.Pod, repo string) []*runtimeapi.AuthConfig
}

// NoKeyring has no credentials.
type NoKeyring struct{}

// Lookup returns nothing.
func (NoKeyring) Lookup(*v1.Pod, string) []*runtimeapi.AuthConfig { return nil }
