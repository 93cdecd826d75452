package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// Keyring finds the registry credentials to pull an image for a pod. The
// puller tries each one in order and pulls anonymously when there are none.
type Keyring interface {
	// Lookup returns the credentials for repo, the fully qualified
	// repository (e.g. "docker.io/library/busybox"), and the names of the
	// pod's pull secrets that could not be read: should the pull fail,
	// the puller says so in an event.
	Lookup(ctx context.Context, pod *v1.Pod, repo string) (creds []Credential, missing []string)
}

// Credential is one set of registry credentials and where it comes from.
type Credential struct {
	Auth *runtimeapi.AuthConfig
	// Secret is the pull secret the credentials are in, with their hash
	// (upstream's secret coordinates and credential hash), as a pull with
	// them is recorded. ServiceAccount is the service account whose token
	// a credential provider plugin exchanged for them. Both nil: the
	// credentials every pod on the node has (a plugin without a service
	// account token).
	Secret         *kubeletconfig.ImagePullSecret
	ServiceAccount *kubeletconfig.ImagePullServiceAccount
}

// Keyrings looks up each keyring in turn and returns all their
// credentials, in that order (upstream's UnionDockerKeyring: the pod's
// pull secrets first, then the node's credential provider plugins).
type Keyrings []Keyring

// Lookup returns the credentials of every keyring for repo.
func (ks Keyrings) Lookup(ctx context.Context, pod *v1.Pod, repo string) ([]Credential, []string) {
	var creds []Credential
	var missing []string
	for _, k := range ks {
		c, m := k.Lookup(ctx, pod, repo)
		creds = append(creds, c...)
		missing = append(missing, m...)
	}
	return creds, missing
}

// credentialHash is upstream's hash of credentials (credentialprovider's
// hashAuthConfig): SHA-256 of the JSON of user name, password and email,
// so that a record written by either kubelet matches in the other.
func credentialHash(username, password, email string) string {
	b, err := json.Marshal(struct {
		Username string `json:"username,omitempty"`
		Password string `json:"password,omitempty"`
		Email    string `json:"email,omitempty"`
	}{username, password, email})
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NoKeyring has no credentials.
type NoKeyring struct{}

// Lookup returns nothing.
func (NoKeyring) Lookup(context.Context, *v1.Pod, string) ([]Credential, []string) {
	return nil, nil
}
