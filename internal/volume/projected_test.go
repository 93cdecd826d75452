package volume

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// kubeAPIAccess is the volume the ServiceAccount admission plugin adds to
// every pod.
func kubeAPIAccess() v1.Volume {
	return v1.Volume{Name: "kube-api-access-abcde", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
		DefaultMode: ptr(int32(0o644)),
		Sources: []v1.VolumeProjection{
			{ServiceAccountToken: &v1.ServiceAccountTokenProjection{ExpirationSeconds: ptr(int64(3607)), Path: "token"}},
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []v1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}
}

func TestProjectedKubeAPIAccess(t *testing.T) {
	h := newHarness(t)
	h.objects.setConfigMap("kube-root-ca.crt", map[string]string{"ca.crt": "CA"})
	pod := newPod("u1", kubeAPIAccess())
	pod.Spec.ServiceAccountName = "builder"
	h.mustSetUp(pod)

	dir := h.path(pod, "kube-api-access-abcde")
	if want := filepath.Join(h.root, "pods/u1/volumes/kubernetes.io~projected/kube-api-access-abcde"); dir != want {
		t.Fatalf("path = %s; want %s", dir, want)
	}
	if ok, _ := isTmpfsMount(dir); !ok && requireRootOK() {
		t.Fatal("projected volume not on tmpfs")
	}
	for file, want := range map[string]string{"token": "token-1", "ca.crt": "CA", "namespace": "ns"} {
		if got := h.read(pod, "kube-api-access-abcde", file); got != want {
			t.Errorf("%s = %q; want %q", file, got, want)
		}
	}
	if m := mode(t, filepath.Join(dir, "token")); m.Perm() != 0o644 {
		t.Errorf("token mode = %v; want defaultMode 0644 (no runAsUser, no fsGroup)", m)
	}

	reqs := h.tokenRequests()
	if len(reqs) != 1 {
		t.Fatalf("token requests = %d; want 1", len(reqs))
	}
	spec := reqs[0].Spec
	if ref := spec.BoundObjectRef; ref == nil || ref.Kind != "Pod" || ref.APIVersion != "v1" || ref.Name != "pod-u1" || ref.UID != "u1" {
		t.Errorf("BoundObjectRef = %+v; want the pod", spec.BoundObjectRef)
	}
	if spec.ExpirationSeconds == nil || *spec.ExpirationSeconds != 3607 {
		t.Errorf("ExpirationSeconds = %v; want 3607", spec.ExpirationSeconds)
	}
	if len(spec.Audiences) != 0 {
		t.Errorf("Audiences = %v; want none (the API server's)", spec.Audiences)
	}
	if h.saNames[0] != "builder" {
		t.Errorf("token requested for service account %q; want builder", h.saNames[0])
	}

	// Another sync reuses the token.
	h.mustSetUp(pod)
	if n := len(h.tokenRequests()); n != 1 {
		t.Fatalf("token requests after a second SetUp = %d; want 1", n)
	}
}

func requireRootOK() bool { return isRoot }

func TestProjectedTokenOwnedByRunAsUser(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	vol := v1.Volume{Name: "tok", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
		DefaultMode: ptr(int32(0o644)),
		Sources:     []v1.VolumeProjection{{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Audience: "vault", Path: "vault/token"}}},
	}}}
	pod := newPod("u1", vol)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: ptr(int64(1000))}
	pod.Spec.InitContainers = []v1.Container{{Name: "init", SecurityContext: &v1.SecurityContext{RunAsUser: ptr(int64(1000))}}}
	h.mustSetUp(pod)
	file := filepath.Join(h.path(pod, "tok"), "vault/token")
	if m := mode(t, file); m.Perm() != 0o600 {
		t.Errorf("token mode = %v; want 0600", m)
	}
	if uid := ownerOf(t, file); uid != 1000 {
		t.Errorf("token owner = %d; want 1000", uid)
	}
	if aud := h.tokenRequests()[0].Spec.Audiences; len(aud) != 1 || aud[0] != "vault" {
		t.Errorf("audiences = %v; want [vault]", aud)
	}
	if exp := h.tokenRequests()[0].Spec.ExpirationSeconds; exp == nil || *exp != 3600 {
		t.Errorf("expirationSeconds = %v; want the default 3600", exp)
	}
}

func TestFSUser(t *testing.T) {
	u := func(v int64) *int64 { return &v }
	sc := func(v int64) *v1.SecurityContext { return &v1.SecurityContext{RunAsUser: u(v)} }
	cases := []struct {
		name string
		pod  *v1.Pod
		want *int64
	}{
		{"nobody says", &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{}}}}, nil},
		{"pod level", &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsUser: u(5)}, Containers: []v1.Container{{}, {}}}}, u(5)},
		{"containers agree", &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{SecurityContext: sc(7)}, {SecurityContext: sc(7)}}}}, u(7)},
		{"containers differ", &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{SecurityContext: sc(7)}, {SecurityContext: sc(8)}}}}, nil},
		{"one container silent", &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{SecurityContext: sc(7)}, {}}}}, nil},
		{"container overrides pod", &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsUser: u(5)}, InitContainers: []v1.Container{{SecurityContext: sc(9)}}, Containers: []v1.Container{{SecurityContext: sc(9)}}}}, u(9)},
	}
	for _, tc := range cases {
		got := fsUserOf(tc.pod)
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("%s: fsUser = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestTokenRefresh(t *testing.T) {
	h := newHarness(t)
	h.objects.setConfigMap("kube-root-ca.crt", map[string]string{"ca.crt": "CA"})
	pod := newPod("u1", kubeAPIAccess())
	h.mustSetUp(pod)
	h.run()

	// Run sleeps until 80% of the token's 3607 s lifetime.
	waitForTimer(t, h)
	h.clock.Step(2885 * time.Second) // just before 80%
	h.m.signal()
	waitForTimer(t, h)
	if n := len(h.tokenRequests()); n != 1 {
		t.Fatalf("token requests before 80%% of the lifetime = %d; want 1", n)
	}
	h.clock.Step(2 * time.Second)
	h.waitChange(pod.UID)
	if got := h.read(pod, "kube-api-access-abcde", "token"); got != "token-2" {
		t.Fatalf("token after refresh = %q; want token-2", got)
	}
}

// waitForTimer waits until Run sleeps on the fake clock.
func waitForTimer(t *testing.T, h *harness) {
	t.Helper()
	select {
	case <-h.timers:
	case <-time.After(guard):
		t.Fatal("Run never waited on the clock")
	}
}

func TestTokenTimes(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		ttl         int64
		wantRefresh time.Duration
	}{
		{"hour", 3600, 48 * time.Minute},
		{"kube-api-access", 3607, 2885*time.Second + 600*time.Millisecond},
		{"week is capped at a day", 7 * 24 * 3600, 24 * time.Hour},
	}
	for _, tc := range cases {
		tr := tokenRequest(tc.ttl, now.Add(time.Duration(tc.ttl)*time.Second))
		expires, refresh := tokenTimes(tr, tc.ttl, now)
		if !expires.Equal(now.Add(time.Duration(tc.ttl) * time.Second)) {
			t.Errorf("%s: expires = %v", tc.name, expires)
		}
		if got := refresh.Sub(now); got != tc.wantRefresh {
			t.Errorf("%s: refresh after %v; want %v", tc.name, got, tc.wantRefresh)
		}
	}
}

func TestProjectedStandalone(t *testing.T) {
	m := New(Options{RootDir: t.TempDir()})
	pod := newPod("u1", kubeAPIAccess())
	err := m.SetUp(context.Background(), pod)
	if err == nil || !strings.Contains(err.Error(), "standalone") {
		t.Fatalf("SetUp of a token volume without an API server = %v; want a standalone error", err)
	}
}
