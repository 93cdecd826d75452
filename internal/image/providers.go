package image

import (
	"context"

	v1 "k8s.io/api/core/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// CredentialProviders are the node's credential provider plugins
// (--image-credential-provider-config, internal/image/credprovider).
type CredentialProviders interface {
	// Provide returns what each plugin whose matchImages cover repo gave
	// for it, from its cache or by running it; a plugin that failed gives
	// nothing (it is logged), as upstream.
	Provide(ctx context.Context, pod *v1.Pod, repo string) []Provided
}

// Provided is one plugin's answer for an image.
type Provided struct {
	// Auth is the plugin's credentials by registry key (host[:port][/path],
	// globs per host label), as in its CredentialProviderResponse.
	Auth map[string]RegistryAuth
	// ServiceAccount is the pod's service account whose token the plugin
	// was given (service account token mode); nil means the credentials
	// are the node's, for every pod.
	ServiceAccount *kubeletconfig.ImagePullServiceAccount
}

// RegistryAuth is a user name and password for a registry.
type RegistryAuth struct {
	Username string
	Password string
}

// ProviderKeyring has the credentials of the node's credential provider
// plugins, matched to the image's registry as pull secrets are.
type ProviderKeyring struct {
	Providers CredentialProviders
}

// Lookup returns the plugins' credentials that match repo, the most
// specific registry keys first.
func (k ProviderKeyring) Lookup(ctx context.Context, pod *v1.Pod, repo string) ([]Credential, []string) {
	var kr dockerKeyring
	for _, p := range k.Providers.Provide(ctx, pod, repo) {
		cfg := make(map[string]dockerConfigEntry, len(p.Auth))
		for registry, a := range p.Auth {
			cfg[registry] = dockerConfigEntry{Username: a.Username, Password: a.Password}
		}
		kr.add(cfg, nil, p.ServiceAccount)
	}
	return kr.lookup(repo), nil
}
