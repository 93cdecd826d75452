package credprovider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.yaml", `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
- name: one
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  matchImages: ["*.example.com"]
  defaultCacheDuration: 1m
  tokenAttributes:
    serviceAccountTokenAudience: aud
    requireServiceAccount: true
    cacheType: ServiceAccount
`)
	write("b.json", `{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"CredentialProviderConfig","providers":[{"name":"two","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","matchImages":["reg.io"],"defaultCacheDuration":"0s"}]}`)
	write("c.txt", "not read")
	cfg, hash, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Providers) != 2 || cfg.Providers[0].Name != "one" || cfg.Providers[1].Name != "two" || !strings.HasPrefix(hash, "sha256:") {
		t.Errorf("config %+v, hash %s", cfg, hash)
	}
	if errs := validate(cfg, true); len(errs) != 0 {
		t.Errorf("validate: %v", errs)
	}
	if _, _, err := ReadConfig(a); err != nil {
		t.Errorf("one file: %v", err)
	}

	for name, doc := range map[string]string{
		"unknown field":              "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\nextra: 1\n",
		"wrong kind":                 "apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n",
		"tokenAttributes in v1beta1": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: CredentialProviderConfig\nproviders:\n- name: x\n  tokenAttributes: {}\n",
	} {
		if _, _, err := ReadConfig(write("bad.yaml", doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestValidate(t *testing.T) {
	base := `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
- name: %s
  apiVersion: %s
  matchImages: %s
  defaultCacheDuration: %s
`
	for _, tc := range []struct {
		name, provider, apiVersion, match, duration, extra string
		gate                                               bool
		want                                               string
	}{
		{"valid", "p", apiVersionV1, `["*.io"]`, "1m", "", true, ""},
		{"slash in name", "a/b", apiVersionV1, `["*.io"]`, "1m", "", true, "provider name cannot contain '/'"},
		{"dot name", "..", apiVersionV1, `["*.io"]`, "1m", "", true, "provider name cannot be '..'"},
		{"bad apiVersion", "p", "credentialprovider.kubelet.k8s.io/v2", `["*.io"]`, "1m", "", true, "providers.apiVersion: Unsupported value"},
		{"no matchImages", "p", apiVersionV1, `[]`, "1m", "", true, "at least 1 item in matchImages is required"},
		{"negative duration", "p", apiVersionV1, `["*.io"]`, "-1m", "", true, "must be greater than or equal to 0"},
		{"token mode, gate off", "p", apiVersionV1, `["*.io"]`, "1m", "  tokenAttributes: {serviceAccountTokenAudience: a, requireServiceAccount: true, cacheType: Token}\n", false,
			"KubeletServiceAccountTokenForCredentialProviders feature gate is disabled"},
		{"token mode, no cache type", "p", apiVersionV1, `["*.io"]`, "1m", "  tokenAttributes: {serviceAccountTokenAudience: a, requireServiceAccount: true}\n", true,
			"cacheType is required"},
		{"token mode, required keys without requiring the account", "p", apiVersionV1, `["*.io"]`, "1m",
			"  tokenAttributes: {serviceAccountTokenAudience: a, requireServiceAccount: false, cacheType: Token, requiredServiceAccountAnnotationKeys: [a.io/x]}\n", true,
			"requireServiceAccount cannot be false"},
		{"token mode, a key both required and optional", "p", apiVersionV1, `["*.io"]`, "1m",
			"  tokenAttributes: {serviceAccountTokenAudience: a, requireServiceAccount: true, cacheType: Token, requiredServiceAccountAnnotationKeys: [a.io/x], optionalServiceAccountAnnotationKeys: [a.io/x]}\n", true,
			"cannot be both required and optional"},
	} {
		cfg, err := decodeConfig([]byte(strings.Join([]string{fmt.Sprintf(base, tc.provider, tc.apiVersion, tc.match, tc.duration), tc.extra}, "")))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		errs := validate(cfg, tc.gate)
		got := ""
		for _, e := range errs {
			got += e.Error() + "\n"
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: errors %q, want %q", tc.name, got, tc.want)
		}
	}
}
