package image

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// registryFake is a CRI image service in front of a registry that wants
// user "berth" with password "pw" for repositories under "private/". It
// records who pulled.
type registryFake struct {
	mu    sync.Mutex
	local map[string]string // image -> ID on the node
	pulls []string          // the user of each pull, "" for anonymous
}

func (f *registryFake) ImageStatus(_ context.Context, spec *runtimeapi.ImageSpec, _ bool) (*runtimeapi.ImageStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.local[spec.Image]; ok {
		return &runtimeapi.ImageStatusResponse{Image: &runtimeapi.Image{Id: id}}, nil
	}
	return &runtimeapi.ImageStatusResponse{}, nil
}

func (f *registryFake) PullImage(_ context.Context, spec *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, _ *runtimeapi.PodSandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	user := ""
	if auth != nil {
		user = auth.Username
	}
	f.pulls = append(f.pulls, user)
	if strings.Contains(spec.Image, "/private/") && (auth == nil || auth.Username != "berth" || auth.Password != "pw") {
		return "", errors.New("failed to authorize: 401 Unauthorized")
	}
	id := "sha256:" + strings.NewReplacer("/", "-", ":", "-").Replace(spec.Image)
	f.local[spec.Image] = id
	return id, nil
}

func (f *registryFake) takePulls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pulls
	f.pulls = nil
	return p
}

// nsSecrets are Secrets by "namespace/name".
type nsSecrets map[string]*v1.Secret

func (s nsSecrets) GetSecret(_ context.Context, namespace, name string) (*v1.Secret, error) {
	if sec, ok := s[namespace+"/"+name]; ok {
		return sec, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("secret"), name)
}

// TestEnsureImageVerifiesCredentials plays KEP-2535's story with the
// default policy: a private image pulled with one pod's secret is not
// handed to a pod without it, which pulls (and fails) with its own
// credentials; the same credentials in another secret are enough; images
// pulled anonymously and preloaded images are free for all.
func TestEnsureImageVerifiesCredentials(t *testing.T) {
	const private = "127.0.0.1:5000/private/app:1"
	cfg := func(uid, password string) *v1.Secret {
		s := dockerConfigJSON(`{"127.0.0.1:5000": {"auth": "` + base64.StdEncoding.EncodeToString([]byte("berth:"+password)) + `"}}`)
		s.UID = types.UID(uid)
		return s
	}
	secrets := nsSecrets{"a/good": cfg("u-good", "pw"), "b/copy": cfg("u-copy", "pw"), "c/wrong": cfg("u-wrong", "nope")}
	svc := &registryFake{local: map[string]string{"berth.local/busybox:1.0": "sha256:busybox"}}
	records, err := OpenRecords(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	policy, err := NewVerifyPolicy("", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(100)
	p := New(Options{Service: svc, Recorder: rec, Keyring: PullSecretKeyring{Secrets: secrets}, Records: records, Verify: policy})

	steps := []struct {
		name       string
		ns, secret string
		image      string
		policy     v1.PullPolicy
		wantReason string   // "" runs
		wantPulls  []string // users of the pulls made
		wantEvent  string   // a substring of one event
	}{
		{"A with the secret pulls the private image", "a", "good", private, v1.PullIfNotPresent, "", []string{"berth"}, "Successfully pulled image"},
		{"B without it pulls anonymously and is refused", "b", "", private, v1.PullIfNotPresent, ReasonErrImagePull, []string{""}, "401 Unauthorized"},
		{"B with Never: as if the image were absent", "b", "", private, v1.PullNever, ReasonErrImageNeverPull, nil, "is not present with pull policy of Never"},
		{"C with wrong credentials pulls and is refused", "c", "wrong", private, v1.PullIfNotPresent, ReasonErrImagePull, []string{"berth"}, "401 Unauthorized"},
		{"B with a copy of the credentials uses the image", "b", "copy", private, v1.PullIfNotPresent, "", nil, "already present on machine and can be accessed by the pod"},
		{"A again: no pull", "a", "good", private, v1.PullNever, "", nil, "can be accessed by the pod"},
		{"a preloaded image is free for all", "b", "", "berth.local/busybox:1.0", v1.PullNever, "", nil, "can be accessed by the pod"},
		{"a public image pulled anonymously", "a", "", "127.0.0.1:5000/public/app:1", v1.PullIfNotPresent, "", []string{""}, "Successfully pulled image"},
		{"is free for all", "b", "", "127.0.0.1:5000/public/app:1", v1.PullNever, "", nil, "can be accessed by the pod"},
	}
	for i, s := range steps {
		pod, c := testPod(s.image, s.policy)
		pod.Namespace, pod.UID = s.ns, types.UID(strings.Repeat("x", i+1))
		if s.secret != "" {
			pod.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: s.secret}}
		}
		_, w, err := p.EnsureImage(context.Background(), pod, c, nil)
		switch {
		case s.wantReason == "" && err != nil:
			t.Errorf("%s: %v", s.name, err)
		case s.wantReason != "" && (w == nil || w.Reason != s.wantReason):
			t.Errorf("%s: waiting %+v, want reason %s", s.name, w, s.wantReason)
		}
		if got := svc.takePulls(); strings.Join(got, ",") != strings.Join(s.wantPulls, ",") {
			t.Errorf("%s: pulls by %q, want %q", s.name, got, s.wantPulls)
		}
		events := drain(rec)
		found := false
		for _, e := range events {
			found = found || strings.Contains(e, s.wantEvent)
		}
		if !found {
			t.Errorf("%s: no event with %q in %q", s.name, s.wantEvent, events)
		}
	}

	// The copy's secret was remembered for the image.
	r, _, err := records.lookup(private, svc.local[private])
	if err != nil || r == nil {
		t.Fatalf("record: %v %v", r, err)
	}
	var names []string
	for _, s := range r.CredentialMapping["127.0.0.1:5000/private/app"].KubernetesSecrets {
		names = append(names, s.Namespace+"/"+s.Name)
	}
	if strings.Join(names, ",") != "a/good,b/copy" {
		t.Errorf("secrets recorded for the private image: %v, want a/good,b/copy", names)
	}
}

// TestEnsureImageNeverVerify: with NeverVerify, or without records, a
// present image is used by every pod.
func TestEnsureImageNeverVerify(t *testing.T) {
	never, err := NewVerifyPolicy(kubeletconfig.NeverVerify, nil)
	if err != nil {
		t.Fatal(err)
	}
	records, err := OpenRecords(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const private = "127.0.0.1:5000/private/app:1"
	for _, opts := range []Options{{Records: records, Verify: never}, {}} {
		svc := &registryFake{local: map[string]string{private: "sha256:p"}}
		opts.Service = svc
		p := New(opts)
		pod, c := testPod(private, v1.PullIfNotPresent)
		if _, w, err := p.EnsureImage(context.Background(), pod, c, nil); err != nil || len(svc.takePulls()) != 0 {
			t.Errorf("records %v: %v %v, or pulled", opts.Records != nil, w, err)
		}
	}
}
