package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// SecretGetter reads a Secret; the runtime's API object cache is one.
type SecretGetter interface {
	GetSecret(ctx context.Context, namespace, name string) (*v1.Secret, error)
}

// PullSecretKeyring has the credentials of a pod's imagePullSecrets: Secrets
// of type kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg, read
// when an image is pulled, and matched to the image's registry as the
// upstream kubelet's credentialprovider does.
type PullSecretKeyring struct {
	Secrets SecretGetter
}

// Lookup returns the credentials of the pod's pull secrets that match repo,
// the most specific entries first, each with the secret it came from.
// Secrets that cannot be read, or do not parse, are named in missing.
func (k PullSecretKeyring) Lookup(ctx context.Context, pod *v1.Pod, repo string) ([]Credential, []string) {
	logger := klog.FromContext(ctx)
	var kr dockerKeyring
	var missing []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			// The API once let empty names through; upstream ignores them.
			continue
		}
		secret, err := k.Secrets.GetSecret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			logger.Info("Unable to retrieve pull secret, the image pull may not succeed.", "pod", klog.KObj(pod), "secret", klog.KRef(pod.Namespace, ref.Name), "err", err)
			missing = append(missing, ref.Name)
			continue
		}
		cfg, err := secretDockerConfig(secret)
		if err != nil {
			logger.Info("Unable to parse pull secret, the image pull may not succeed.", "pod", klog.KObj(pod), "secret", klog.KRef(pod.Namespace, ref.Name), "err", err)
			missing = append(missing, ref.Name)
			continue
		}
		kr.add(cfg, &kubeletconfig.ImagePullSecret{UID: string(secret.UID), Namespace: pod.Namespace, Name: ref.Name}, nil)
	}
	return kr.lookup(repo), missing
}

// dockerConfigEntry is one registry's credentials in a docker config; an
// "auth" field (base64 of user:password) overrides username and password.
type dockerConfigEntry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

// secretDockerConfig parses a pull secret: registry (URL or host[/path]) to
// credentials. Secrets of other types, or without their key, give none.
func secretDockerConfig(s *v1.Secret) (map[string]dockerConfigEntry, error) {
	var cfg map[string]dockerConfigEntry
	switch {
	case s.Type == v1.SecretTypeDockerConfigJson && len(s.Data[v1.DockerConfigJsonKey]) > 0:
		var doc struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[v1.DockerConfigJsonKey], &doc); err != nil {
			return nil, fmt.Errorf("parse %s: %w", v1.DockerConfigJsonKey, err)
		}
		cfg = doc.Auths
	case s.Type == v1.SecretTypeDockercfg && len(s.Data[v1.DockerConfigKey]) > 0:
		if err := json.Unmarshal(s.Data[v1.DockerConfigKey], &cfg); err != nil {
			return nil, fmt.Errorf("parse %s: %w", v1.DockerConfigKey, err)
		}
	default:
		return nil, nil
	}
	for registry, e := range cfg {
		if e.Auth == "" {
			continue
		}
		user, password, err := decodeAuthField(e.Auth)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", registry, err)
		}
		e.Username, e.Password = user, password
		cfg[registry] = e
	}
	return cfg, nil
}

// decodeAuthField decodes base64(user:password), padded or not.
func decodeAuthField(field string) (user, password string, err error) {
	enc := base64.RawStdEncoding
	if strings.HasSuffix(strings.TrimSpace(field), "=") {
		enc = base64.StdEncoding
	}
	decoded, err := enc.DecodeString(field)
	if err != nil {
		return "", "", err
	}
	user, password, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return "", "", errors.New("unable to parse auth field, must be formatted as base64(username:password)")
	}
	return user, password, nil
}

// defaultRegistryKey is where docker configs keep Docker Hub's credentials
// ("https://index.docker.io/v1/" reduced to its host).
const defaultRegistryKey = "index.docker.io"

// dockerKeyring indexes credentials by registry key: host[:port][/path].
type dockerKeyring struct {
	index []string // keys, reverse-sorted so that longer paths match first
	creds map[string][]Credential
}

// add indexes the registries of one docker config: a pull secret's
// (secret), a credential provider plugin's for a service account (sa), or
// one every pod may use (both nil).
func (k *dockerKeyring) add(cfg map[string]dockerConfigEntry, secret *kubeletconfig.ImagePullSecret, sa *kubeletconfig.ImagePullServiceAccount) {
	if k.creds == nil {
		k.creds = map[string][]Credential{}
	}
	// Sorted, so that two registries of one secret come out the same way
	// every time.
	for _, registry := range slices.Sorted(maps.Keys(cfg)) {
		key, ok := registryKey(registry)
		if !ok {
			continue
		}
		e := cfg[registry]
		c := Credential{Auth: &runtimeapi.AuthConfig{Username: e.Username, Password: e.Password}, ServiceAccount: sa}
		if secret != nil {
			src := *secret
			src.CredentialHash = credentialHash(e.Username, e.Password, e.Email)
			c.Secret = &src
		}
		k.creds[key] = append(k.creds[key], c)
		if !slices.Contains(k.index, key) {
			k.index = append(k.index, key)
		}
	}
	slices.Sort(k.index)
	slices.Reverse(k.index)
}

// registryKey reduces a docker config's registry ("https://host:5000/v1/",
// "host/team") to host[:port][/path], as the docker client matches it: the
// /v1/ or /v2/ API prefix counts as no path.
func registryKey(registry string) (string, bool) {
	if !strings.HasPrefix(registry, "https://") && !strings.HasPrefix(registry, "http://") {
		registry = "https://" + registry
	}
	u, err := url.Parse(registry)
	if err != nil || u.Host == "" {
		return "", false
	}
	path := u.Path
	if strings.HasPrefix(path, "/v2/") || strings.HasPrefix(path, "/v1/") {
		path = path[3:]
	}
	if path == "" || path == "/" {
		return u.Host, true
	}
	return u.Host + path, true
}

// lookup returns every credential whose key matches repo, most specific
// key first; with none, Docker Hub's credentials for Docker Hub images.
func (k *dockerKeyring) lookup(repo string) []Credential {
	var out []Credential
	for _, key := range k.index {
		if RegistryMatches(key, repo) {
			out = append(out, k.creds[key]...)
		}
	}
	if len(out) == 0 && isDefaultRegistry(repo) {
		out = k.creds[defaultRegistryKey]
	}
	return out
}

// RegistryMatches reports whether the registry key (a glob per host label,
// e.g. "*.example.com:5000/team") covers repo: same port, same number of
// host labels each matching, and the key's path a prefix of repo's
// (upstream's URLsMatchStr, also how a credential provider plugin's
// matchImages are matched).
func RegistryMatches(key, repo string) bool {
	k, err := url.Parse("https://" + key)
	if err != nil {
		return false
	}
	r, err := url.Parse("https://" + repo)
	if err != nil {
		return false
	}
	kLabels, kPort := splitHost(k.Host)
	rLabels, rPort := splitHost(r.Host)
	if kPort != rPort || len(kLabels) != len(rLabels) || !strings.HasPrefix(r.Path, k.Path) {
		return false
	}
	for i, glob := range kLabels {
		if ok, err := filepath.Match(glob, rLabels[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitHost(hostport string) (labels []string, port string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	return strings.Split(host, "."), port
}

// isDefaultRegistry reports whether repo lives on Docker Hub: its first
// component is docker.io, index.docker.io or no host at all.
func isDefaultRegistry(repo string) bool {
	first, _, found := strings.Cut(repo, "/")
	if first == "" {
		return false
	}
	if !found || first == "docker.io" || first == defaultRegistryKey {
		return true
	}
	return !strings.ContainsAny(first, ".:")
}

// ValidRegistryKey reports whether key parses as a registry key (a
// credential provider's matchImages entry: upstream's ParseSchemelessURL).
func ValidRegistryKey(key string) bool {
	_, err := url.Parse("https://" + key)
	return err == nil
}
