package credprovider

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/image"
)

// ServiceAccounts reads a pod's service account and asks for a token of
// it (service account token mode); an API client is one.
type ServiceAccounts interface {
	GetServiceAccount(ctx context.Context, namespace, name string) (*v1.ServiceAccount, error)
	CreateToken(ctx context.Context, namespace, name string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
}

// Options configures Providers.
type Options struct {
	// ConfigPath and BinDir are --image-credential-provider-config and
	// --image-credential-provider-bin-dir.
	ConfigPath string
	BinDir     string
	// ServiceAccountTokens is the
	// KubeletServiceAccountTokenForCredentialProviders feature gate.
	ServiceAccountTokens bool
	// ServiceAccounts serves token mode; nil (standalone) gives plugins in
	// token mode no token: they are run only where a service account is
	// not required.
	ServiceAccounts ServiceAccounts
	// Clock drives the cache; nil means real time.
	Clock clock.Clock
}

// Providers are the configured plugins, in the configuration's order.
type Providers struct {
	plugins []*plugin
	sa      ServiceAccounts
}

var _ image.CredentialProviders = (*Providers)(nil)

// New reads and validates the configuration and checks that every plugin's
// binary is there, as upstream's RegisterCredentialProviderPlugins: any
// fault stops the kubelet from starting.
func New(opts Options) (*Providers, error) {
	if _, err := os.Stat(opts.BinDir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("plugin binary directory %s did not exist", opts.BinDir)
		}
		return nil, fmt.Errorf("error inspecting binary directory %s: %w", opts.BinDir, err)
	}
	cfg, _, err := ReadConfig(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if errs := validate(cfg, opts.ServiceAccountTokens); len(errs) > 0 {
		return nil, fmt.Errorf("failed to validate credential provider config: %w", errors.Join(errs...))
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	ps := &Providers{sa: opts.ServiceAccounts}
	for _, p := range cfg.Providers {
		bin, err := exec.LookPath(filepath.Join(opts.BinDir, p.Name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
				return nil, fmt.Errorf("plugin binary executable %s did not exist", filepath.Join(opts.BinDir, p.Name))
			}
			return nil, fmt.Errorf("error inspecting binary executable %s: %w", bin, err)
		}
		ps.plugins = append(ps.plugins, newPlugin(p, newExecPlugin(opts.BinDir, p), clk))
	}
	return ps, nil
}

// Provide runs (or reads the cache of) every plugin whose matchImages
// cover repo. A plugin that fails is logged and gives nothing, as
// upstream: the pull goes on with the other credentials.
func (ps *Providers) Provide(ctx context.Context, pod *v1.Pod, repo string) []image.Provided {
	var out []image.Provided
	for _, p := range ps.plugins {
		got, err := p.provide(ctx, ps.sa, pod, repo)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Failed to provide credentials for image", "provider", p.name, "image", repo, "pod", klog.KObj(pod))
			continue
		}
		if got != nil {
			out = append(out, *got)
		}
	}
	return out
}

// plugin is one configured provider with its cache.
type plugin struct {
	name            string
	matchImages     []string
	defaultDuration time.Duration
	tokens          *kubeletconfigv1.ServiceAccountTokenAttributes // nil: not in token mode
	runner          runner
	clock           clock.Clock
	cache           *cache
	// flights runs the plugin once for concurrent asks of one image.
	flights singleflight.Group
}

func newPlugin(p kubeletconfigv1.CredentialProvider, r runner, clk clock.Clock) *plugin {
	return &plugin{
		name:            p.Name,
		matchImages:     p.MatchImages,
		defaultDuration: p.DefaultCacheDuration.Duration,
		tokens:          p.TokenAttributes,
		runner:          r,
		clock:           clk,
		cache:           newCache(clk),
	}
}

// matches reports whether the plugin's matchImages cover repo.
func (p *plugin) matches(repo string) bool {
	return slices.ContainsFunc(p.matchImages, func(m string) bool { return image.RegistryMatches(m, repo) })
}

// provide returns the plugin's credentials for repo; nil when the plugin
// does not apply (no match, or token mode without the service account or
// annotations it requires).
func (p *plugin) provide(ctx context.Context, sas ServiceAccounts, pod *v1.Pod, repo string) (*image.Provided, error) {
	if !p.matches(repo) {
		return nil, nil
	}
	req := request{image: repo}
	var saKey string
	var account *kubeletconfig.ImagePullServiceAccount
	if p.tokens != nil {
		saName := pod.Spec.ServiceAccountName
		if saName == "" || sas == nil {
			if *p.tokens.RequireServiceAccount {
				klog.FromContext(ctx).V(5).Info("Service account name is empty", "provider", p.name, "image", repo, "pod", klog.KObj(pod))
				return nil, nil
			}
		} else {
			sa, err := sas.GetServiceAccount(ctx, pod.Namespace, saName)
			if err != nil {
				return nil, fmt.Errorf("failed to get service account: %w", err)
			}
			annotations, missing := p.annotations(sa)
			if missing != "" {
				klog.FromContext(ctx).V(5).Info("Service account lacks an annotation the plugin requires", "provider", p.name, "annotation", missing, "serviceAccount", klog.KObj(sa))
				return nil, nil
			}
			token, err := p.token(ctx, sas, pod, sa)
			if err != nil {
				return nil, fmt.Errorf("failed to get service account token: %w", err)
			}
			req.token, req.annotations = token, annotations
			account = &kubeletconfig.ImagePullServiceAccount{UID: string(sa.UID), Namespace: pod.Namespace, Name: saName}
			saKey = serviceAccountKey(sa, annotations, p.tokens.CacheType, token)
		}
	}
	if auth, ok := p.cache.get(repo, saKey); ok {
		return &image.Provided{Auth: auth, ServiceAccount: account}, nil
	}
	flight := repo
	if req.token != "" {
		flight = lengthPrefixed(repo, tokenHash(req.token), annotationsKey(req.annotations))
	}
	v, err, _ := p.flights.Do(flight, func() (any, error) {
		// Not the pull's context: one caller giving up must not fail the
		// others waiting on the same run.
		return p.runner.run(context.WithoutCancel(ctx), req)
	})
	if err != nil {
		return nil, fmt.Errorf("failed to get credential from external registry credential provider: %w", err)
	}
	resp := v.(*credentialproviderv1.CredentialProviderResponse)
	auth, err := p.accept(resp, req.token)
	if err != nil {
		return nil, err
	}
	base, ok := cacheBase(resp.CacheKeyType, repo)
	if !ok {
		return nil, fmt.Errorf("credential provider plugin did not return a valid cacheKeyType: %s", resp.CacheKeyType)
	}
	if expires, ok := expiry(resp, p.defaultDuration, p.clock.Now()); ok {
		p.cache.put(base, saKey, auth, expires)
	}
	return &image.Provided{Auth: auth, ServiceAccount: account}, nil
}

// accept turns a response into credentials. A plugin in token mode must
// not hand the token back as the password unless the cache is per token.
func (p *plugin) accept(resp *credentialproviderv1.CredentialProviderResponse, token string) (map[string]image.RegistryAuth, error) {
	auth := make(map[string]image.RegistryAuth, len(resp.Auth))
	for registry, a := range resp.Auth {
		if token != "" && a.Password == token && p.tokens.CacheType != kubeletconfigv1.TokenServiceAccountTokenCacheType {
			return nil, errors.New("credential provider plugin returned the service account token as the password which is not allowed when service account cache type is not set to 'Token'")
		}
		auth[registry] = image.RegistryAuth{Username: a.Username, Password: a.Password}
	}
	return auth, nil
}

// annotations are the service account's annotations the plugin asks for;
// missing names a required one that is absent.
func (p *plugin) annotations(sa *v1.ServiceAccount) (map[string]string, string) {
	out := map[string]string{}
	for _, k := range p.tokens.RequiredServiceAccountAnnotationKeys {
		v, ok := sa.Annotations[k]
		if !ok {
			return nil, k
		}
		out[k] = v
	}
	for _, k := range p.tokens.OptionalServiceAccountAnnotationKeys {
		if v, ok := sa.Annotations[k]; ok {
			out[k] = v
		}
	}
	return out, ""
}

// token asks for a token of the pod's service account for the plugin's
// audience, bound to the pod (default lifetime).
func (p *plugin) token(ctx context.Context, sas ServiceAccounts, pod *v1.Pod, sa *v1.ServiceAccount) (string, error) {
	tr, err := sas.CreateToken(ctx, pod.Namespace, sa.Name, &authenticationv1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{UID: sa.UID},
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:      []string{p.tokens.ServiceAccountTokenAudience},
			BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
		},
	})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// serviceAccountKey is the part of a cache key that belongs to the service
// account: its coordinates and the annotations given to the plugin, and
// the token's hash when the cache is per token.
func serviceAccountKey(sa *v1.ServiceAccount, annotations map[string]string, cacheType kubeletconfigv1.ServiceAccountTokenCacheType, token string) string {
	parts := []string{sa.Namespace, sa.Name, string(sa.UID), annotationsKey(annotations)}
	if cacheType == kubeletconfigv1.TokenServiceAccountTokenCacheType {
		parts = append(parts, "token", tokenHash(token))
	}
	return lengthPrefixed(parts...)
}

func annotationsKey(annotations map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		parts = append(parts, k, annotations[k])
	}
	return lengthPrefixed(parts...)
}

func tokenHash(token string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(token)))
}

// lengthPrefixed joins parts so that no two lists give the same string.
func lengthPrefixed(parts ...string) string {
	var b []byte
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return string(b)
}
