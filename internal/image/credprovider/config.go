// Package credprovider runs the node's image credential provider plugins
// (--image-credential-provider-config, --image-credential-provider-bin-dir)
// as upstream's kubelet does: the credentialprovider.kubelet.k8s.io exec
// protocol (a CredentialProviderRequest on stdin, a
// CredentialProviderResponse on stdout), matchImages, the response cached
// by its cacheKeyType for its cacheDuration, and service account token
// mode (tokenAttributes).
package credprovider

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/internal/image"
)

// configGroup is the group of CredentialProviderConfig; every version of
// it has the same fields but tokenAttributes (v1 only).
const configGroup = "kubelet.config.k8s.io"

// apiVersions are the versions of the exec protocol a provider may speak,
// as upstream.
var apiVersions = []string{
	"credentialprovider.kubelet.k8s.io/v1",
	"credentialprovider.kubelet.k8s.io/v1alpha1",
	"credentialprovider.kubelet.k8s.io/v1beta1",
}

const apiVersionV1 = "credentialprovider.kubelet.k8s.io/v1"

// ReadConfig reads the configuration at path, a file or a directory whose
// *.json, *.yaml and *.yml files are read in lexical order and their
// providers merged, and returns it with the SHA-256 of the files (length
// prefixed, as upstream's config hash).
func ReadConfig(path string) (*kubeletconfigv1.CredentialProviderConfig, string, error) {
	if path == "" {
		return nil, "", errors.New("credential provider config path is empty")
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("unable to access path %q: %w", path, err)
	}
	files := []string{path}
	if info.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, "", fmt.Errorf("unable to read directory %q: %w", path, err)
		}
		files = nil
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".json" || ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		slices.Sort(files)
		if len(files) == 0 {
			return nil, "", fmt.Errorf("no configuration files found in directory %q", path)
		}
	}
	hash := sha256.New()
	merged := &kubeletconfigv1.CredentialProviderConfig{}
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, "", fmt.Errorf("unable to read file %q: %w", f, err)
		}
		_ = binary.Write(hash, binary.BigEndian, uint64(len(data)))
		hash.Write(data)
		cfg, err := decodeConfig(data)
		if err != nil {
			return nil, "", fmt.Errorf("error decoding config %q: %w", f, err)
		}
		for _, p := range cfg.Providers {
			if seen[p.Name] {
				return nil, "", fmt.Errorf("duplicate provider name %q found in configuration file(s)", p.Name)
			}
			seen[p.Name] = true
			merged.Providers = append(merged.Providers, p)
		}
	}
	return merged, fmt.Sprintf("sha256:%x", hash.Sum(nil)), nil
}

// decodeConfig decodes one file strictly. Every version of the type has
// v1's fields but tokenAttributes, which older versions refuse.
func decodeConfig(data []byte) (*kubeletconfigv1.CredentialProviderConfig, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, err
	}
	group, version, _ := strings.Cut(tm.APIVersion, "/")
	if tm.Kind != "CredentialProviderConfig" {
		return nil, fmt.Errorf("failed to decode %q (wrong Kind)", tm.Kind)
	}
	if group != configGroup || !slices.Contains([]string{"v1", "v1beta1", "v1alpha1"}, version) {
		return nil, fmt.Errorf("failed to decode CredentialProviderConfig, unexpected apiVersion: %s", tm.APIVersion)
	}
	var cfg kubeletconfigv1.CredentialProviderConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, err
	}
	if version != "v1" {
		for _, p := range cfg.Providers {
			if p.TokenAttributes != nil {
				return nil, fmt.Errorf("strict decoding error: unknown field \"providers[].tokenAttributes\" in %s", tm.APIVersion)
			}
		}
	}
	return &cfg, nil
}

// validate checks cfg as upstream's validateCredentialProviderConfig does;
// saTokens is the KubeletServiceAccountTokenForCredentialProviders gate.
// It is pure.
func validate(cfg *kubeletconfigv1.CredentialProviderConfig, saTokens bool) []error {
	var errs []error
	bad := func(field string, value any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("providers.%s: Invalid value: %v: %s", field, value, fmt.Sprintf(format, args...)))
	}
	if len(cfg.Providers) == 0 {
		errs = append(errs, errors.New("providers: Required value: at least 1 item in plugins is required"))
	}
	seen := map[string]bool{}
	for _, p := range cfg.Providers {
		switch {
		case strings.Contains(p.Name, "/"):
			bad("name", p.Name, "provider name cannot contain '/'")
		case strings.Contains(p.Name, " "):
			bad("name", p.Name, "provider name cannot contain spaces")
		case p.Name == "." || p.Name == "..":
			bad("name", p.Name, "provider name cannot be '%s'", p.Name)
		case p.Name == "":
			errs = append(errs, errors.New("providers.name: Required value"))
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("providers.name: Duplicate value: %q", p.Name))
		}
		seen[p.Name] = true
		switch {
		case p.APIVersion == "":
			errs = append(errs, errors.New("providers.apiVersion: Required value"))
		case !slices.Contains(apiVersions, p.APIVersion):
			errs = append(errs, fmt.Errorf("providers.apiVersion: Unsupported value: %q: supported values: %s", p.APIVersion, strings.Join(apiVersions, ", ")))
		}
		if len(p.MatchImages) == 0 {
			errs = append(errs, errors.New("providers.matchImages: Required value: at least 1 item in matchImages is required"))
		}
		for _, m := range p.MatchImages {
			if !image.ValidRegistryKey(m) {
				bad("matchImages", m, "match image is invalid")
			}
		}
		switch {
		case p.DefaultCacheDuration == nil:
			errs = append(errs, errors.New("providers.defaultCacheDuration: Required value"))
		case p.DefaultCacheDuration.Duration < 0:
			bad("defaultCacheDuration", p.DefaultCacheDuration.Duration, "must be greater than or equal to 0")
		}
		if p.TokenAttributes != nil {
			errs = append(errs, validateTokenAttributes(p, saTokens)...)
		}
	}
	return errs
}

func validateTokenAttributes(p kubeletconfigv1.CredentialProvider, saTokens bool) []error {
	const path = "providers.tokenAttributes"
	ta := p.TokenAttributes
	var errs []error
	if !saTokens {
		errs = append(errs, fmt.Errorf("%s: Forbidden: tokenAttributes is not supported when KubeletServiceAccountTokenForCredentialProviders feature gate is disabled", path))
	}
	if ta.ServiceAccountTokenAudience == "" {
		errs = append(errs, fmt.Errorf("%s.serviceAccountTokenAudience: Required value", path))
	}
	if ta.RequireServiceAccount == nil {
		errs = append(errs, fmt.Errorf("%s.requireServiceAccount: Required value", path))
	}
	if p.APIVersion != apiVersionV1 {
		errs = append(errs, fmt.Errorf("%s: Forbidden: tokenAttributes is only supported for %s API version", path, apiVersionV1))
	}
	if ta.RequireServiceAccount != nil && !*ta.RequireServiceAccount && len(ta.RequiredServiceAccountAnnotationKeys) > 0 {
		errs = append(errs, fmt.Errorf("%s.requiredServiceAccountAnnotationKeys: Forbidden: requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set", path))
	}
	for _, keys := range [][]string{ta.RequiredServiceAccountAnnotationKeys, ta.OptionalServiceAccountAnnotationKeys} {
		seen := map[string]bool{}
		for _, k := range keys {
			// Qualified names, case aside, as annotation keys.
			for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
				errs = append(errs, fmt.Errorf("%s: Invalid value: %q: %s", path, k, msg))
			}
			if seen[k] {
				errs = append(errs, fmt.Errorf("%s: Duplicate value: %q", path, k))
			}
			seen[k] = true
		}
	}
	for _, k := range ta.RequiredServiceAccountAnnotationKeys {
		if slices.Contains(ta.OptionalServiceAccountAnnotationKeys, k) {
			errs = append(errs, fmt.Errorf("%s: Invalid value: %q: annotation keys cannot be both required and optional", path, k))
		}
	}
	switch ta.CacheType {
	case kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType, kubeletconfigv1.TokenServiceAccountTokenCacheType:
	case "":
		errs = append(errs, fmt.Errorf("%s.cacheType: Required value: cacheType is required to be set when tokenAttributes is specified. Supported values are: ServiceAccount, Token", path))
	default:
		errs = append(errs, fmt.Errorf("%s.cacheType: Unsupported value: %q: supported values: \"ServiceAccount\", \"Token\"", path, ta.CacheType))
	}
	return errs
}
