package image

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

func TestNewVerifyPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy    kubeletconfig.ImagePullCredentialsVerificationPolicy
		allowlist []string
		wantErr   string
	}{
		{"", nil, ""},
		{kubeletconfig.NeverVerify, nil, ""},
		{kubeletconfig.AlwaysVerify, nil, ""},
		{kubeletconfig.NeverVerifyAllowlistedImages, []string{"registry.example/app", "registry.example/team/*"}, ""},
		{"Sometimes", nil, `option "Sometimes" specified for imagePullCredentialsVerificationPolicy`},
		{kubeletconfig.AlwaysVerify, []string{"registry.example/app"}, "can't set `preloadedImagesVerificationAllowlist`"},
		{kubeletconfig.NeverVerifyAllowlistedImages, []string{"registry.example/app:1"}, "neither tag nor digest is accepted"},
		{kubeletconfig.NeverVerifyAllowlistedImages, []string{"registry.example/*/app"}, "only patterns ending with '/*' are allowed"},
		{kubeletconfig.NeverVerifyAllowlistedImages, []string{" registry.example/app"}, "leading/trailing spaces"},
		{kubeletconfig.NeverVerifyAllowlistedImages, []string{"/*"}, "at least registry hostname is required"},
		{kubeletconfig.NeverVerifyAllowlistedImages, []string{"Registry.example/App"}, "failed to parse as an image name"},
	} {
		_, err := NewVerifyPolicy(tc.policy, tc.allowlist)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("NewVerifyPolicy(%q, %q) = %v, want error %q", tc.policy, tc.allowlist, err, tc.wantErr)
		}
	}
}

func TestRequireVerification(t *testing.T) {
	policy := func(p kubeletconfig.ImagePullCredentialsVerificationPolicy, allow ...string) VerifyPolicy {
		v, err := NewVerifyPolicy(p, allow)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	allow := policy(kubeletconfig.NeverVerifyAllowlistedImages, "registry.example/app", "registry.example/team/*")
	for _, tc := range []struct {
		name   string
		policy VerifyPolicy
		image  string
		pulled bool
		want   bool
	}{
		{"NeverVerify", policy(kubeletconfig.NeverVerify), "busybox:1", true, false},
		{"preloaded image, default policy", policy(""), "busybox:1", false, false},
		{"kubelet-pulled image, default policy", policy(""), "busybox:1", true, true},
		{"AlwaysVerify, preloaded", policy(kubeletconfig.AlwaysVerify), "busybox:1", false, true},
		{"allowlisted by name, tag ignored", allow, "registry.example/app:2", true, false},
		{"allowlisted by name, digest ignored", allow, "registry.example/app@sha256:" + strings.Repeat("a", 64), true, false},
		{"allowlisted by prefix", allow, "registry.example/team/x/y:1", false, false},
		{"not on the allowlist, even preloaded", allow, "registry.example/other:1", false, true},
		{"the prefix needs its slash", allow, "registry.example/teamwork:1", false, true},
		{"zero value never verifies", VerifyPolicy{}, "busybox:1", true, false},
	} {
		if got := tc.policy.requireVerification(tc.image, tc.pulled); got != tc.want {
			t.Errorf("%s: requireVerification(%q, pulled %v) = %v, want %v", tc.name, tc.image, tc.pulled, got, tc.want)
		}
	}
}

func TestMustPull(t *testing.T) {
	always, err := NewVerifyPolicy("", nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := func(ns, name, uid, hash string) kubeletconfig.ImagePullSecret {
		return kubeletconfig.ImagePullSecret{Namespace: ns, Name: name, UID: uid, CredentialHash: hash}
	}
	good := secret("a", "good", "u1", "h1")
	record := func(key string, creds kubeletconfig.ImagePullCredentials) *kubeletconfig.ImagePulledRecord {
		return &kubeletconfig.ImagePulledRecord{ImageRef: "sha256:1", CredentialMapping: map[string]kubeletconfig.ImagePullCredentials{key: creds}}
	}
	bySecret := record("registry.example/app", kubeletconfig.ImagePullCredentials{KubernetesSecrets: []kubeletconfig.ImagePullSecret{good}})
	many := make([]kubeletconfig.ImagePullSecret, writeWhileMatchingLimit)
	for i := range many {
		many[i] = secret("a", "s", string(rune('a'+i%26))+strings.Repeat("x", i/26), "h-other")
	}
	many[0] = good
	full := record("registry.example/app", kubeletconfig.ImagePullCredentials{KubernetesSecrets: many})
	builder := kubeletconfig.ImagePullServiceAccount{Namespace: "a", Name: "builder", UID: "sa-1"}
	bySA := record("registry.example/app", kubeletconfig.ImagePullCredentials{KubernetesServiceAccounts: []kubeletconfig.ImagePullServiceAccount{builder}})

	for _, tc := range []struct {
		name    string
		image   string
		record  *kubeletconfig.ImagePulledRecord
		intent  bool
		secrets []kubeletconfig.ImagePullSecret
		sa      *kubeletconfig.ImagePullServiceAccount
		want    verdict
	}{
		{"preloaded: no record, no intent", "registry.example/app:1", nil, false, nil, nil, verdict{}},
		{"a pull in flight or interrupted: verify, nothing to match", "registry.example/app:1", nil, true, []kubeletconfig.ImagePullSecret{good}, nil, verdict{pull: true}},
		{"pulled anonymously: free for all", "registry.example/app:1",
			record("registry.example/app", kubeletconfig.ImagePullCredentials{NodePodsAccessible: true}), false, nil, nil, verdict{}},
		{"pulled with a secret, pod has none", "registry.example/app:1", bySecret, false, nil, nil, verdict{pull: true}},
		{"same secret", "registry.example/app:2", bySecret, false, []kubeletconfig.ImagePullSecret{good}, nil, verdict{}},
		{"same credentials in another secret: remembered", "registry.example/app:1", bySecret, false,
			[]kubeletconfig.ImagePullSecret{secret("b", "copy", "u2", "h1")}, nil, verdict{remember: &kubeletconfig.ImagePullSecret{Namespace: "b", Name: "copy", UID: "u2", CredentialHash: "h1"}}},
		{"same secret, rotated credentials: remembered", "registry.example/app:1", bySecret, false,
			[]kubeletconfig.ImagePullSecret{secret("a", "good", "u1", "h2")}, nil, verdict{remember: &kubeletconfig.ImagePullSecret{Namespace: "a", Name: "good", UID: "u1", CredentialHash: "h2"}}},
		{"another secret of the same name (new UID), other credentials", "registry.example/app:1", bySecret, false,
			[]kubeletconfig.ImagePullSecret{secret("a", "good", "u9", "h2")}, nil, verdict{pull: true}},
		{"the record is for another name of the image", "other.example/app:1", bySecret, false, []kubeletconfig.ImagePullSecret{good}, nil, verdict{pull: true}},
		{"a record without credentials: verify", "registry.example/app:1", &kubeletconfig.ImagePulledRecord{ImageRef: "sha256:1"}, false,
			[]kubeletconfig.ImagePullSecret{good}, nil, verdict{pull: true}},
		{"full record: a hash match is not written", "registry.example/app:1", full, false,
			[]kubeletconfig.ImagePullSecret{secret("b", "copy", "u2", "h1")}, nil, verdict{}},
		{"full record: a rotated secret must pull", "registry.example/app:1", full, false,
			[]kubeletconfig.ImagePullSecret{secret("a", "good", "u1", "h2")}, nil, verdict{pull: true}},
		{"pulled through a plugin with the pod's service account", "registry.example/app:1", bySA, false, nil, &builder, verdict{}},
		{"pulled through a plugin with another service account", "registry.example/app:1", bySA, false, nil,
			&kubeletconfig.ImagePullServiceAccount{Namespace: "a", Name: "builder", UID: "sa-other"}, verdict{pull: true}},
		{"pulled through a plugin with a service account, pod shows a secret", "registry.example/app:1", bySA, false,
			[]kubeletconfig.ImagePullSecret{good}, nil, verdict{pull: true}},
	} {
		if got := always.mustPull(tc.image, tc.record, tc.intent, access{secrets: tc.secrets, serviceAccount: tc.sa}); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: mustPull = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestMergeRecord(t *testing.T) {
	now := metav1.NewTime(time.Unix(2000, 0))
	secret := func(name, hash string) kubeletconfig.ImagePullSecret {
		return kubeletconfig.ImagePullSecret{Namespace: "ns", Name: name, UID: "uid-" + name, CredentialHash: hash}
	}
	creds := func(s ...kubeletconfig.ImagePullSecret) *kubeletconfig.ImagePullCredentials {
		return &kubeletconfig.ImagePullCredentials{KubernetesSecrets: s}
	}
	anyone := &kubeletconfig.ImagePullCredentials{NodePodsAccessible: true}
	rec := func(m map[string]kubeletconfig.ImagePullCredentials) *kubeletconfig.ImagePulledRecord {
		return &kubeletconfig.ImagePulledRecord{ImageRef: "sha256:1", CredentialMapping: m, LastUpdatedTime: metav1.NewTime(time.Unix(1000, 0))}
	}
	stamped := func(r *kubeletconfig.ImagePulledRecord) *kubeletconfig.ImagePulledRecord {
		r.LastUpdatedTime = now
		return r
	}
	withB := rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *creds(secret("b", "1"))})
	sa := func(name string) kubeletconfig.ImagePullServiceAccount {
		return kubeletconfig.ImagePullServiceAccount{Namespace: "ns", Name: name, UID: "uid-" + name}
	}
	bySA := func(names ...string) *kubeletconfig.ImagePullCredentials {
		c := &kubeletconfig.ImagePullCredentials{}
		for _, n := range names {
			c.KubernetesServiceAccounts = append(c.KubernetesServiceAccounts, sa(n))
		}
		return c
	}

	for _, tc := range []struct {
		name        string
		old         *kubeletconfig.ImagePulledRecord
		image       string
		creds       *kubeletconfig.ImagePullCredentials
		want        *kubeletconfig.ImagePulledRecord
		wantChanged bool
	}{
		{"first pull with a secret", nil, "reg.example/app:1", creds(secret("b", "1")),
			stamped(rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *creds(secret("b", "1"))})), true},
		{"first record without credentials", nil, "reg.example/app:1", nil,
			stamped(rec(map[string]kubeletconfig.ImagePullCredentials{})), true},
		{"nothing new", withB, "reg.example/app:2", creds(secret("b", "1")), withB, false},
		{"another secret, sorted in", withB, "reg.example/app:1", creds(secret("a", "2")),
			stamped(rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *creds(secret("a", "2"), secret("b", "1"))})), true},
		{"a new hash for a known secret", withB, "reg.example/app:1", creds(secret("b", "9")),
			stamped(rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *creds(secret("b", "9"))})), true},
		{"anonymous pull opens the image to all", withB, "reg.example/app:1", anyone,
			stamped(rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *anyone})), true},
		{"open stays open", rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *anyone}), "reg.example/app:1", creds(secret("b", "1")),
			rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *anyone}), false},
		{"another name of the same image", withB, "mirror.example/app@sha256:" + strings.Repeat("b", 64), anyone,
			stamped(rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *creds(secret("b", "1")), "mirror.example/app": *anyone})), true},
		{"no credentials add nothing", withB, "reg.example/app:1", nil, withB, false},
		{"a service account added beside a secret", withB, "reg.example/app:1", bySA("sa-x"),
			stamped(rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": {KubernetesSecrets: []kubeletconfig.ImagePullSecret{secret("b", "1")}, KubernetesServiceAccounts: []kubeletconfig.ImagePullServiceAccount{sa("sa-x")}}})), true},
		{"a known service account adds nothing", rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *bySA("sa-x")}), "reg.example/app:1", bySA("sa-x"),
			rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *bySA("sa-x")}), false},
		{"service accounts sorted", rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *bySA("sa-y")}), "reg.example/app:1", bySA("sa-x"),
			stamped(rec(map[string]kubeletconfig.ImagePullCredentials{"reg.example/app": *bySA("sa-x", "sa-y")})), true},
	} {
		before := tc.old.DeepCopy()
		got, changed, err := mergeRecord(tc.old, "sha256:1", tc.image, tc.creds, now)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if changed != tc.wantChanged || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v (changed %v)\nwant %+v (changed %v)", tc.name, got, changed, tc.want, tc.wantChanged)
		}
		if !reflect.DeepEqual(before, tc.old) {
			t.Errorf("%s: the old record was modified", tc.name)
		}
	}
}

func TestTrimTagDigest(t *testing.T) {
	d := "sha256:" + strings.Repeat("c", 64)
	for in, want := range map[string]string{
		"busybox":                       "busybox",
		"busybox:1.0":                   "busybox",
		"127.0.0.1:5000/private/app:1":  "127.0.0.1:5000/private/app",
		"registry.example/app@" + d:     "registry.example/app",
		"registry.example/app:v1@" + d:  "registry.example/app",
		"docker.io/library/busybox:1.0": "docker.io/library/busybox",
	} {
		if got, err := trimTagDigest(in); err != nil || got != want {
			t.Errorf("trimTagDigest(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := trimTagDigest("Not Valid"); err == nil {
		t.Error("trimTagDigest accepted an invalid name")
	}
}

// TestCredentialHash pins the hash to upstream's: SHA-256 of the JSON of
// the credentials with upstream's field names and order.
func TestCredentialHash(t *testing.T) {
	for _, tc := range []struct{ user, password, email, json string }{
		{"berth", "s3cret", "", `{"username":"berth","password":"s3cret"}`},
		{"u", "p", "u@example.com", `{"username":"u","password":"p","email":"u@example.com"}`},
		{"", "", "", `{}`},
	} {
		sum := sha256.Sum256([]byte(tc.json))
		if got, want := credentialHash(tc.user, tc.password, tc.email), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("credentialHash(%q, %q, %q) = %s, want sha256(%s) = %s", tc.user, tc.password, tc.email, got, tc.json, want)
		}
	}
}
