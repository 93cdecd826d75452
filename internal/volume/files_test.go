package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func configMapVolume(name, cm string, items ...v1.KeyToPath) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: cm}, Items: items,
	}}}
}

func secretVolume(name, secret string, defaultMode int32) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: secret, DefaultMode: &defaultMode}}}
}

func TestConfigMapVolume(t *testing.T) {
	h := newHarness(t)
	pod := newPod("u1", configMapVolume("config", "app"))

	// Missing: the pod waits, with upstream's event.
	err := h.m.SetUp(context.Background(), pod)
	if err == nil || !strings.Contains(err.Error(), `configmap "app" not found`) {
		t.Fatalf("SetUp with a missing ConfigMap = %v", err)
	}
	if e := h.event(); e != `Warning FailedMount MountVolume.SetUp failed for volume "config" : configmap "app" not found` {
		t.Fatalf("event = %q", e)
	}
	if _, ok := h.m.HostPath(pod.UID, "config"); ok {
		t.Fatal("a failed volume has a host path")
	}
	if _, err := os.Stat(filepath.Join(h.root, "pods/u1/volumes")); !os.IsNotExist(err) {
		t.Fatal("a failed volume left a directory behind")
	}

	h.objects.setConfigMap("app", map[string]string{"a.conf": "1", "b.conf": "2"})
	h.mustSetUp(pod)
	dir := h.path(pod, "config")
	if want := filepath.Join(h.root, "pods/u1/volumes/kubernetes.io~configmap/config"); dir != want {
		t.Fatalf("path = %s; want %s", dir, want)
	}
	if v, _ := h.m.Volume(pod.UID, "config"); !v.ReadOnly {
		t.Fatal("a configMap volume must be mounted read-only")
	}
	if got := h.read(pod, "config", "a.conf"); got != "1" {
		t.Fatalf("a.conf = %q", got)
	}
	if m := mode(t, filepath.Join(dir, "b.conf")); m.Perm() != 0o644 {
		t.Fatalf("b.conf mode = %v; want the default 0644", m)
	}
	if ok, _ := isTmpfsMount(dir); ok {
		t.Fatal("a configMap volume is on disk, as upstream")
	}
}

func TestConfigMapItems(t *testing.T) {
	h := newHarness(t)
	h.objects.setConfigMap("app", map[string]string{"a": "1", "b": "2"})
	vol := configMapVolume("config", "app", v1.KeyToPath{Key: "a", Path: "sub/dir/a.txt", Mode: ptr(int32(0o600))})
	vol.ConfigMap.DefaultMode = ptr(int32(0o640))
	pod := newPod("u1", vol)
	h.mustSetUp(pod)
	dir := h.path(pod, "config")
	if got := h.read(pod, "config", "sub/dir/a.txt"); got != "1" {
		t.Fatalf("sub/dir/a.txt = %q", got)
	}
	if m := mode(t, filepath.Join(dir, "sub/dir/a.txt")); m.Perm() != 0o600 {
		t.Fatalf("item mode = %v; want 0600", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Fatal("a key not listed in items was projected")
	}

	// A listed key that does not exist.
	pod2 := newPod("u2", configMapVolume("config", "app", v1.KeyToPath{Key: "nope", Path: "x"}))
	if err := h.m.SetUp(context.Background(), pod2); err == nil || !strings.Contains(err.Error(), "configmap references non-existent config key: nope") {
		t.Fatalf("SetUp with a missing key = %v", err)
	}
}

func TestOptionalObjects(t *testing.T) {
	h := newHarness(t)
	cmVol := configMapVolume("config", "missing", v1.KeyToPath{Key: "k", Path: "k"})
	cmVol.ConfigMap.Optional = ptr(true)
	secVol := secretVolume("secret", "missing", 0o644)
	secVol.Secret.Optional = ptr(true)
	pod := newPod("u1", cmVol, secVol)
	h.mustSetUp(pod)
	for _, name := range []string{"config", "secret"} {
		entries, err := os.ReadDir(h.path(pod, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), "..") {
				t.Fatalf("optional missing %s volume has %s", name, e.Name())
			}
		}
	}
}

func TestSecretVolumeOnTmpfs(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	h.objects.setSecret("creds", map[string][]byte{"password": []byte("hunter2")})
	pod := newPod("u1", secretVolume("creds", "creds", 0o400))
	h.mustSetUp(pod)
	dir := h.path(pod, "creds")
	if want := filepath.Join(h.root, "pods/u1/volumes/kubernetes.io~secret/creds"); dir != want {
		t.Fatalf("path = %s; want %s", dir, want)
	}
	if ok, err := isTmpfsMount(dir); !ok || err != nil {
		t.Fatalf("secret volume on tmpfs = %v, %v; want true", ok, err)
	}
	if got := h.read(pod, "creds", "password"); got != "hunter2" {
		t.Fatalf("password = %q", got)
	}
	if m := mode(t, filepath.Join(dir, "password")); m.Perm() != 0o400 {
		t.Fatalf("mode = %v; want 0400", m)
	}
	// Idempotent: still one mount.
	h.mustSetUp(pod)
	if mounts, _ := mountsUnder(dir); len(mounts) != 1 {
		t.Fatalf("mounts = %v; want one", mounts)
	}
}

func TestFileVolumesFSGroup(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	h.objects.setSecret("creds", map[string][]byte{"password": []byte("x")})
	pod := newPod("u1", secretVolume("creds", "creds", 0o400))
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr(int64(3000))}
	h.mustSetUp(pod)
	file := filepath.Join(h.path(pod, "creds"), "password")
	if g := groupOf(t, file); g != 3000 {
		t.Fatalf("group = %d; want 3000", g)
	}
	// Read-only volume: the group gets read, not write.
	if m := mode(t, file); m.Perm() != 0o440 {
		t.Fatalf("mode = %v; want 0440", m)
	}
}

func TestDownwardAPIVolume(t *testing.T) {
	h := newHarness(t)
	vol := v1.Volume{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
		{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		{Path: "tier", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['tier']"}},
		{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		{Path: "cpu_limit", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "c", Resource: "limits.cpu", Divisor: resource.MustParse("1m")}},
		{Path: "mem_limit", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "c", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
	}}}}
	pod := newPod("u1", vol)
	pod.Labels = map[string]string{"app": "web", "tier": "front"}
	pod.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")}
	h.mustSetUp(pod)
	want := map[string]string{
		"labels":    "app=\"web\"\ntier=\"front\"",
		"tier":      "front",
		"name":      "pod-u1",
		"cpu_limit": "250",
		"mem_limit": "1024", // no limit: the node's allocatable 1Gi
	}
	for file, v := range want {
		if got := h.read(pod, "info", file); got != v {
			t.Errorf("%s = %q; want %q", file, got, v)
		}
	}

	// A label change reaches the file on the next SetUp.
	updated := pod.DeepCopy()
	updated.Labels["tier"] = "back"
	h.mustSetUp(updated)
	if got := h.read(pod, "info", "tier"); got != "back" {
		t.Fatalf("tier after update = %q; want back", got)
	}
}
