package credprovider

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// fakeRunner answers with resp and counts the requests.
type fakeRunner struct {
	mu   sync.Mutex
	reqs []request
	resp credentialproviderv1.CredentialProviderResponse
}

func (f *fakeRunner) run(_ context.Context, req request) (*credentialproviderv1.CredentialProviderResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	r := f.resp
	return &r, nil
}

func (f *fakeRunner) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func response(keyType credentialproviderv1.PluginCacheKeyType, d *time.Duration) credentialproviderv1.CredentialProviderResponse {
	r := credentialproviderv1.CredentialProviderResponse{
		CacheKeyType: keyType,
		Auth:         map[string]credentialproviderv1.AuthConfig{"*.example.com": {Username: "u", Password: "p"}},
	}
	if d != nil {
		r.CacheDuration = &metav1.Duration{Duration: *d}
	}
	return r
}

func testPlugin(r runner, clk *clocktesting.FakeClock, tokens *kubeletconfigv1.ServiceAccountTokenAttributes) *plugin {
	return newPlugin(kubeletconfigv1.CredentialProvider{
		Name:                 "test",
		MatchImages:          []string{"*.example.com", "other.io:5000/team"},
		DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
		TokenAttributes:      tokens,
	}, r, clk)
}

// TestCacheKeyTypes asks for images in turn and checks which ones run the
// plugin again, by the cache key type and duration of its answer.
func TestCacheKeyTypes(t *testing.T) {
	ctx := context.Background()
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	zero, hour := time.Duration(0), time.Hour
	type ask struct {
		repo    string
		advance time.Duration // before asking
		runs    int           // plugin runs so far, after asking
	}
	for _, tc := range []struct {
		name string
		resp credentialproviderv1.CredentialProviderResponse
		asks []ask
	}{
		{"image key: per image", response(credentialproviderv1.ImagePluginCacheKeyType, nil), []ask{
			{"a.example.com/x", 0, 1}, {"a.example.com/x", 0, 1}, {"a.example.com/y", 0, 2}, {"a.example.com/x", 59 * time.Second, 2}, {"a.example.com/x", 2 * time.Second, 3}}},
		{"registry key: per registry", response(credentialproviderv1.RegistryPluginCacheKeyType, &hour), []ask{
			{"a.example.com/x", 0, 1}, {"a.example.com/y", 0, 1}, {"b.example.com/y", 0, 2}, {"a.example.com/z", 61 * time.Minute, 3}}},
		{"global key: one for all", response(credentialproviderv1.GlobalPluginCacheKeyType, nil), []ask{
			{"a.example.com/x", 0, 1}, {"b.example.com/y", 0, 1}, {"other.io:5000/team/app", 0, 1}}},
		{"duration zero: never cached", response(credentialproviderv1.GlobalPluginCacheKeyType, &zero), []ask{
			{"a.example.com/x", 0, 1}, {"a.example.com/x", 0, 2}}},
		{"not matched: never run", response(credentialproviderv1.GlobalPluginCacheKeyType, nil), []ask{
			{"example.com/x", 0, 0}, {"a.b.example.com/x", 0, 0}, {"other.io:5000/elsewhere", 0, 0}, {"other.io/team/x", 0, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
			r := &fakeRunner{resp: tc.resp}
			p := testPlugin(r, clk, nil)
			for i, a := range tc.asks {
				clk.Step(a.advance)
				got, err := p.provide(ctx, nil, pod, a.repo)
				if err != nil {
					t.Fatalf("ask %d (%s): %v", i, a.repo, err)
				}
				if r.calls() != a.runs {
					t.Errorf("ask %d (%s): plugin ran %d times, want %d", i, a.repo, r.calls(), a.runs)
				}
				if a.runs > 0 && (got == nil || got.Auth["*.example.com"].Password != "p" || got.ServiceAccount != nil) {
					t.Errorf("ask %d (%s): got %+v, want the plugin's node credentials", i, a.repo, got)
				}
			}
		})
	}
}

func TestBadCacheKeyType(t *testing.T) {
	r := &fakeRunner{resp: response("Pod", nil)}
	p := testPlugin(r, clocktesting.NewFakeClock(time.Unix(1000, 0)), nil)
	_, err := p.provide(context.Background(), nil, &v1.Pod{}, "a.example.com/x")
	if err == nil || !strings.Contains(err.Error(), "did not return a valid cacheKeyType: Pod") {
		t.Errorf("err = %v, want the invalid cacheKeyType", err)
	}
}

// fakeAccounts serves one service account and counts tokens.
type fakeAccounts struct {
	sa     *v1.ServiceAccount
	tokens int
	last   *authenticationv1.TokenRequest
}

func (f *fakeAccounts) GetServiceAccount(_ context.Context, ns, name string) (*v1.ServiceAccount, error) {
	return f.sa, nil
}

func (f *fakeAccounts) CreateToken(_ context.Context, ns, name string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	f.tokens++
	f.last = req
	out := req.DeepCopy()
	out.Status.Token = "token-" + string(rune('0'+f.tokens))
	return out, nil
}

func TestServiceAccountTokenMode(t *testing.T) {
	ctx := context.Background()
	sa := &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "builder", UID: "sa-uid",
		Annotations: map[string]string{"example.com/role": "puller", "example.com/extra": "x"}}}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "pod-uid"}, Spec: v1.PodSpec{ServiceAccountName: "builder"}}
	attrs := func(cacheType kubeletconfigv1.ServiceAccountTokenCacheType, require bool, required ...string) *kubeletconfigv1.ServiceAccountTokenAttributes {
		return &kubeletconfigv1.ServiceAccountTokenAttributes{ServiceAccountTokenAudience: "registry.example", CacheType: cacheType,
			RequireServiceAccount: ptr.To(require), RequiredServiceAccountAnnotationKeys: required, OptionalServiceAccountAnnotationKeys: []string{"example.com/extra"}}
	}

	t.Run("token, annotations and coordinates", func(t *testing.T) {
		r := &fakeRunner{resp: response(credentialproviderv1.RegistryPluginCacheKeyType, nil)}
		accounts := &fakeAccounts{sa: sa}
		p := testPlugin(r, clocktesting.NewFakeClock(time.Unix(1000, 0)), attrs(kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType, true, "example.com/role"))
		got, err := p.provide(ctx, accounts, pod, "a.example.com/x")
		if err != nil {
			t.Fatal(err)
		}
		if got.ServiceAccount == nil || got.ServiceAccount.UID != "sa-uid" || got.ServiceAccount.Name != "builder" || got.ServiceAccount.Namespace != "ns" {
			t.Errorf("service account %+v, want ns/builder sa-uid", got.ServiceAccount)
		}
		req := r.reqs[0]
		if req.token != "token-1" || req.annotations["example.com/role"] != "puller" || req.annotations["example.com/extra"] != "x" {
			t.Errorf("request %+v, want the token and both annotations", req)
		}
		tr := accounts.last
		if tr.Spec.Audiences[0] != "registry.example" || tr.Spec.BoundObjectRef.UID != "pod-uid" || tr.UID != "sa-uid" {
			t.Errorf("token request %+v, want the audience, bound to the pod", tr)
		}
		// Cached per service account: a new token each time, no new run.
		if _, err := p.provide(ctx, accounts, pod, "a.example.com/y"); err != nil || r.calls() != 1 || accounts.tokens != 2 {
			t.Errorf("second ask: err %v, runs %d, tokens %d; want 1 run, 2 tokens", err, r.calls(), accounts.tokens)
		}
	})
	t.Run("token cache type: a new token runs the plugin again", func(t *testing.T) {
		r := &fakeRunner{resp: response(credentialproviderv1.RegistryPluginCacheKeyType, nil)}
		p := testPlugin(r, clocktesting.NewFakeClock(time.Unix(1000, 0)), attrs(kubeletconfigv1.TokenServiceAccountTokenCacheType, true))
		accounts := &fakeAccounts{sa: sa}
		for range 2 {
			if _, err := p.provide(ctx, accounts, pod, "a.example.com/x"); err != nil {
				t.Fatal(err)
			}
		}
		if r.calls() != 2 {
			t.Errorf("runs %d, want 2 (one per token)", r.calls())
		}
	})
	t.Run("required annotation missing: not run", func(t *testing.T) {
		r := &fakeRunner{resp: response(credentialproviderv1.RegistryPluginCacheKeyType, nil)}
		p := testPlugin(r, clocktesting.NewFakeClock(time.Unix(1000, 0)), attrs(kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType, true, "example.com/absent"))
		got, err := p.provide(ctx, &fakeAccounts{sa: sa}, pod, "a.example.com/x")
		if got != nil || err != nil || r.calls() != 0 {
			t.Errorf("got %+v, %v, %d runs; want nothing", got, err, r.calls())
		}
	})
	t.Run("no service account", func(t *testing.T) {
		static := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "static"}}
		for _, require := range []bool{true, false} {
			r := &fakeRunner{resp: response(credentialproviderv1.RegistryPluginCacheKeyType, nil)}
			p := testPlugin(r, clocktesting.NewFakeClock(time.Unix(1000, 0)), attrs(kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType, require))
			got, err := p.provide(ctx, &fakeAccounts{sa: sa}, static, "a.example.com/x")
			if err != nil {
				t.Fatal(err)
			}
			if ran := r.calls() == 1; ran == require || (ran && (got.ServiceAccount != nil || r.reqs[0].token != "")) {
				t.Errorf("requireServiceAccount %v: ran %v, got %+v; want a run without a token only when not required", require, ran, got)
			}
		}
	})
	t.Run("token echoed as the password", func(t *testing.T) {
		resp := response(credentialproviderv1.RegistryPluginCacheKeyType, nil)
		resp.Auth["*.example.com"] = credentialproviderv1.AuthConfig{Username: "u", Password: "token-1"}
		p := testPlugin(&fakeRunner{resp: resp}, clocktesting.NewFakeClock(time.Unix(1000, 0)), attrs(kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType, true))
		if _, err := p.provide(ctx, &fakeAccounts{sa: sa}, pod, "a.example.com/x"); err == nil || !strings.Contains(err.Error(), "returned the service account token as the password") {
			t.Errorf("err = %v, want the echoed token refused", err)
		}
	})
}

// TestExecPlugin runs a shell script through the exec protocol.
func TestExecPlugin(t *testing.T) {
	dir := t.TempDir()
	script := `#!/bin/sh
cat > "$0.request"
echo "args: $*" > "$0.args"
printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{"reg.example":{"username":"%s","password":"pw"}}}' "$PLUGIN_USER"
`
	if err := os.WriteFile(filepath.Join(dir, "plug"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := kubeletconfigv1.CredentialProvider{Name: "plug", APIVersion: apiVersionV1, Args: []string{"--flag"}, Env: []kubeletconfigv1.ExecEnvVar{{Name: "PLUGIN_USER", Value: "alice"}}}
	resp, err := newExecPlugin(dir, cfg).run(context.Background(), request{image: "reg.example/app", token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.CacheKeyType != credentialproviderv1.RegistryPluginCacheKeyType || resp.Auth["reg.example"].Username != "alice" {
		t.Errorf("response %+v", resp)
	}
	req, _ := os.ReadFile(filepath.Join(dir, "plug.request"))
	want := `{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"reg.example/app","serviceAccountToken":"tok"}`
	if string(req) != want {
		t.Errorf("request %s\nwant    %s", req, want)
	}
	if args, _ := os.ReadFile(filepath.Join(dir, "plug.args")); string(args) != "args: --flag\n" {
		t.Errorf("args %q", args)
	}
	cfg.APIVersion = "credentialprovider.kubelet.k8s.io/v1beta1"
	if _, err := newExecPlugin(dir, cfg).run(context.Background(), request{image: "reg.example/app"}); err == nil || !strings.Contains(err.Error(), "did not match expected apiVersion") {
		t.Errorf("err = %v, want an apiVersion mismatch", err)
	}
}
