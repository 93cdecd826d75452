package compare

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/credentialprovider/secrets"
	"k8s.io/kubernetes/pkg/util/parsers"

	"github.com/berth-dev/berth/internal/image"
)

// secretStore serves berth's keyring the same Secrets upstream is given.
type secretStore map[string]*v1.Secret

func (s secretStore) GetSecret(_ context.Context, _, name string) (*v1.Secret, error) {
	if sec, ok := s[name]; ok {
		return sec, nil
	}
	return nil, fmt.Errorf("secret %q not found", name)
}

func dockerConfigJSON(name, auths string) v1.Secret {
	return v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Type: v1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(`{"auths":` + auths + `}`)}}
}

func dockercfg(name, cfg string) v1.Secret {
	return v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Type: v1.SecretTypeDockercfg,
		Data: map[string][]byte{v1.DockerConfigKey: []byte(cfg)}}
}

// TestKeyring: the credentials tried for an image, in order, given a pod's
// pull secrets. Both sides go from the image as the pod names it: upstream
// through parsers.ParseImageName and its keyring's Lookup, berth through
// image.ParseReference and PullSecretKeyring.Lookup, as its puller does.
func TestKeyring(t *testing.T) {
	auth := func(user, pass string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)) }
	unpadded := func(user, pass string) string { return base64.RawStdEncoding.EncodeToString([]byte(user + ":" + pass)) }
	pullSecrets := []v1.Secret{
		dockerConfigJSON("hub", `{"https://index.docker.io/v1/": {"username": "hub", "password": "h"}}`),
		dockerConfigJSON("wild", `{"*.example.com": {"auth": "`+auth("wild", "w")+`"}}`),
		dockerConfigJSON("team", `{"example.com/team": {"auth": "`+unpadded("team", "t")+`"},
			"example.com:5000": {"username": "port", "password": "p", "email": "a@b.c"}}`),
		dockercfg("legacy", `{"http://legacy.example/v2/": {"username": "legacy", "password": "l"},
			"legacy.example/app/sub": {"username": "sub", "password": "s"}}`),
		dockerConfigJSON("host", `{"example.com": {"username": "host", "password": "x"},
			"quay.io/someone": {"username": "someone", "password": "q"}}`),
		dockerConfigJSON("second-hub", `{"docker.io": {"username": "hub2", "password": "h2"}}`),
		dockerConfigJSON("ipv6", `{"[::1]:5000": {"username": "v6", "password": "6"}}`),
		dockerConfigJSON("empty", `{}`),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "opaque"}, Type: v1.SecretTypeOpaque,
			Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(`{"auths":{"example.com":{"username":"no"}}}`)}},
	}
	images := []string{
		"busybox", "busybox:1.36", "library/busybox", "docker.io/library/busybox", "index.docker.io/busybox",
		"someone/app", "quay.io/someone/app", "quay.io/other/app",
		"example.com/app", "example.com/team/app", "example.com/teamx/app", "example.com:5000/app",
		"a.example.com/app", "a.b.example.com/app", "EXAMPLE.com/app",
		"legacy.example/app", "legacy.example/app/sub/x", "legacy.example:443/app",
		"localhost/app", "localhost:5000/app", "[::1]:5000/app",
		"registry.k8s.io/pause:3.10",
	}

	for _, tc := range []struct {
		name    string
		secrets []v1.Secret
	}{
		{"all", pullSecrets},
		{"reversed", reversed(pullSecrets)},
		{"none", nil},
		{"hub only", pullSecrets[:1]},
	} {
		store := secretStore{}
		var refs []v1.LocalObjectReference
		for i := range tc.secrets {
			store[tc.secrets[i].Name] = &tc.secrets[i]
			refs = append(refs, v1.LocalObjectReference{Name: tc.secrets[i].Name})
		}
		pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"}, Spec: v1.PodSpec{ImagePullSecrets: refs}}
		upstream, err := secrets.MakeDockerKeyring(tc.secrets, nil)
		if err != nil {
			t.Fatalf("%s: upstream keyring: %v", tc.name, err)
		}
		berth := image.PullSecretKeyring{Secrets: store}
		matched := 0

		for _, img := range images {
			t.Run(tc.name+"/"+img, func(t *testing.T) {
				var want []string
				if repo, _, _, err := parsers.ParseImageName(img); err == nil && upstream != nil {
					found, _ := upstream.Lookup(repo)
					for _, a := range found {
						want = append(want, a.Username+":"+a.Password)
					}
				}
				var got []string
				if ref, err := image.ParseReference(img); err == nil {
					auths, missing := berth.Lookup(context.Background(), pod, ref.Repository())
					if len(missing) > 0 {
						t.Errorf("berth could not read %v", missing)
					}
					for _, a := range auths {
						got = append(got, a.Auth.Username+":"+a.Auth.Password)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("berth tries %q, upstream %q", got, want)
				}
				if len(want) > 0 {
					matched++
				}
			})
		}
		// Guard the table itself: secrets that match nothing compare nothing.
		if len(tc.secrets) > 0 && matched == 0 {
			t.Errorf("%s: no image matched any credential", tc.name)
		}
	}
}

func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
