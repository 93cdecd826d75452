package image

import (
	"context"
	"encoding/base64"
	"errors"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRegistryMatches(t *testing.T) {
	tests := []struct {
		registry, repo string
		want           bool
	}{
		{"registry.example", "registry.example/app", true},
		{"https://registry.example", "registry.example/app", true},
		{"http://registry.example/v1/", "registry.example/app", true},
		{"https://registry.example/v2/", "registry.example/team/app", true},
		{"registry.example", "other.example/app", false},
		// The port is part of the host.
		{"registry.example:5000", "registry.example:5000/app", true},
		{"registry.example:5000", "registry.example/app", false},
		{"registry.example", "registry.example:5000/app", false},
		{"127.0.0.1:5000", "127.0.0.1:5000/berth/app", true},
		// A path must be a prefix of the repository's.
		{"registry.example/team", "registry.example/team/app", true},
		{"registry.example/team", "registry.example/other/app", false},
		{"registry.example/team/app", "registry.example/team/app", true},
		// Globs per host label, same number of labels.
		{"*.example", "registry.example/app", true},
		{"*.example", "a.registry.example/app", false},
		{"reg*.example", "registry.example/app", true},
		{"*.*.example", "a.b.example/app", true},
		{"*", "localhost/app", true},
		// Subdomains do not match their parent's entry.
		{"example", "registry.example/app", false},
	}
	for _, tt := range tests {
		key, ok := registryKey(tt.registry)
		if !ok {
			t.Errorf("registryKey(%q) failed", tt.registry)
			continue
		}
		if got := RegistryMatches(key, tt.repo); got != tt.want {
			t.Errorf("%q (key %q) matches %q = %v, want %v", tt.registry, key, tt.repo, got, tt.want)
		}
	}
}

func TestIsDefaultRegistry(t *testing.T) {
	for repo, want := range map[string]bool{
		"docker.io/library/busybox":       true,
		"index.docker.io/library/busybox": true,
		"library/busybox":                 true,
		"busybox":                         true,
		"registry.example/app":            false,
		"localhost:5000/app":              false,
		"/app":                            false,
	} {
		if got := isDefaultRegistry(repo); got != want {
			t.Errorf("isDefaultRegistry(%q) = %v, want %v", repo, got, want)
		}
	}
}

// fakeSecrets serves secrets of namespace "default" by name.
type fakeSecrets map[string]*v1.Secret

func (f fakeSecrets) GetSecret(_ context.Context, namespace, name string) (*v1.Secret, error) {
	if s, ok := f[name]; ok && namespace == "default" {
		return s, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("secret"), name)
}

func dockerConfigJSON(auths string) *v1.Secret {
	return &v1.Secret{
		Type: v1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(`{"auths":` + auths + `}`)},
	}
}

func basic(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

func TestPullSecretKeyring(t *testing.T) {
	secrets := fakeSecrets{
		"team": dockerConfigJSON(`{
			"registry.example/team": {"username": "team", "password": "t"},
			"https://registry.example": {"auth": "` + basic("all", "a:b") + `"},
			"https://index.docker.io/v1/": {"username": "hub", "password": "h"}
		}`),
		"local": dockerConfigJSON(`{"127.0.0.1:5000": {"auth": "` + base64.RawStdEncoding.EncodeToString([]byte("berth:pw1")) + `"}}`),
		"legacy": {
			Type: v1.SecretTypeDockercfg,
			Data: map[string][]byte{v1.DockerConfigKey: []byte(`{"*.example": {"username": "glob", "password": "g"}}`)},
		},
		"opaque":   {Type: v1.SecretTypeOpaque, Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example":{"username":"no"}}}`)}},
		"broken":   dockerConfigJSON(`{"registry.example": {"auth": "bm9jb2xvbg=="}}`), // "nocolon"
		"badjson":  {Type: v1.SecretTypeDockerConfigJson, Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(`{`)}},
		"wrongkey": {Type: v1.SecretTypeDockerConfigJson, Data: map[string][]byte{"other": []byte(`{}`)}},
	}
	auth := func(user, password string) *runtimeapi.AuthConfig {
		return &runtimeapi.AuthConfig{Username: user, Password: password}
	}
	tests := []struct {
		name        string
		pullSecrets []string
		repo        string
		want        []*runtimeapi.AuthConfig
		wantMissing []string
	}{
		{
			name: "longest path first, then the host", pullSecrets: []string{"team"},
			repo: "registry.example/team/app", want: []*runtimeapi.AuthConfig{auth("team", "t"), auth("all", "a:b")},
		},
		{
			name: "host only", pullSecrets: []string{"team"},
			repo: "registry.example/other/app", want: []*runtimeapi.AuthConfig{auth("all", "a:b")},
		},
		{
			name: "docker hub by its v1 URL", pullSecrets: []string{"team"},
			repo: "docker.io/library/busybox", want: []*runtimeapi.AuthConfig{auth("hub", "h")},
		},
		{
			name: "host with port, unpadded auth", pullSecrets: []string{"team", "local"},
			repo: "127.0.0.1:5000/berth/busybox", want: []*runtimeapi.AuthConfig{auth("berth", "pw1")},
		},
		{
			name: "secrets in order, glob from a dockercfg", pullSecrets: []string{"legacy", "team"},
			repo: "registry.example/team/app",
			want: []*runtimeapi.AuthConfig{auth("team", "t"), auth("all", "a:b"), auth("glob", "g")},
		},
		{
			name: "no match", pullSecrets: []string{"team", "legacy"},
			repo: "quay.io/app", want: nil,
		},
		{
			name: "other types and keys are ignored", pullSecrets: []string{"opaque", "wrongkey"},
			repo: "registry.example/app", want: nil,
		},
		{
			name: "missing and unparsable secrets are named", pullSecrets: []string{"nope", "broken", "badjson", "", "local"},
			repo: "127.0.0.1:5000/app", want: []*runtimeapi.AuthConfig{auth("berth", "pw1")}, wantMissing: []string{"nope", "broken", "badjson"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, _ := testPod("x", v1.PullAlways)
			for _, name := range tt.pullSecrets {
				pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, v1.LocalObjectReference{Name: name})
			}
			creds, missing := PullSecretKeyring{Secrets: secrets}.Lookup(context.Background(), pod, tt.repo)
			var got []*runtimeapi.AuthConfig
			for _, c := range creds {
				got = append(got, c.Auth)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("auths = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(missing, tt.wantMissing) {
				t.Errorf("missing = %q, want %q", missing, tt.wantMissing)
			}
		})
	}
}

// failingService fails every pull.
type failingService struct{ blockingService }

func (f *failingService) PullImage(context.Context, *runtimeapi.ImageSpec, *runtimeapi.AuthConfig, *runtimeapi.PodSandboxConfig) (string, error) {
	return "", errors.New("unauthorized")
}

func TestEnsureImageMissingPullSecret(t *testing.T) {
	rec := record.NewFakeRecorder(100)
	p := New(Options{Service: &failingService{}, Recorder: rec, Keyring: PullSecretKeyring{Secrets: fakeSecrets{}}})
	pod, c := testPod("registry.example/app:1", v1.PullAlways)
	pod.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "a"}, {Name: "b"}}
	if _, _, err := p.EnsureImage(context.Background(), pod, c, nil); err == nil {
		t.Fatal("EnsureImage succeeded")
	}
	want := "Warning FailedToRetrieveImagePullSecret Unable to retrieve some image pull secrets (a, b); attempting to pull the image may not succeed."
	events := drain(rec)
	found := false
	for _, e := range events {
		found = found || e == want
	}
	if !found {
		t.Errorf("events %q lack %q", events, want)
	}
}
