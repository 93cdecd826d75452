package volume

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func emptyDir(name string, medium v1.StorageMedium, size string) v1.Volume {
	src := &v1.EmptyDirVolumeSource{Medium: medium}
	if size != "" {
		q := resource.MustParse(size)
		src.SizeLimit = &q
	}
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{EmptyDir: src}}
}

func TestEmptyDirOnDisk(t *testing.T) {
	h := newHarness(t)
	pod := newPod("u1", emptyDir("scratch", "", ""))
	h.mustSetUp(pod)
	dir := h.path(pod, "scratch")
	if want := filepath.Join(h.root, "pods/u1/volumes/kubernetes.io~empty-dir/scratch"); dir != want {
		t.Fatalf("path = %s; want %s", dir, want)
	}
	if got := mode(t, dir); got.Perm() != 0o777 || !got.IsDir() {
		t.Fatalf("mode = %v; want drwxrwxrwx", got)
	}
	if v, _ := h.m.Volume(pod.UID, "scratch"); v.ReadOnly {
		t.Fatal("emptyDir must be writable")
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustSetUp(pod)

	// A restarted berth adopts the volume and its data.
	h2 := New(Options{RootDir: h.root})
	if err := h2.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "data")); err != nil || string(b) != "kept" {
		t.Fatalf("data after restart = %q, %v", b, err)
	}

	if err := h.m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.root, "pods/u1")); !os.IsNotExist(err) {
		t.Fatalf("pod directory still there after TearDown: %v", err)
	}
	if _, ok := h.m.HostPath(pod.UID, "scratch"); ok {
		t.Fatal("HostPath still answers after TearDown")
	}
}

func TestEmptyDirFSGroup(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	pod := newPod("u1", emptyDir("scratch", "", ""))
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr(int64(2000))}
	h.mustSetUp(pod)
	dir := h.path(pod, "scratch")
	if g := groupOf(t, dir); g != 2000 {
		t.Fatalf("group = %d; want 2000", g)
	}
	if m := mode(t, dir); m&os.ModeSetgid == 0 || m.Perm() != 0o777 {
		t.Fatalf("mode = %v; want setgid and 0777", m)
	}
}

func TestEmptyDirMemory(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name     string
		size     string
		limit    string
		wantSize int64
	}{
		{"sizeLimit below pod limit", "1Mi", "64Mi", 1 << 20},
		{"pod limit below sizeLimit", "64Mi", "8Mi", 8 << 20},
		{"pod limit only", "", "4Mi", 4 << 20},
		{"node allocatable", "", "", 1 << 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			pod := newPod("u1", emptyDir("mem", v1.StorageMediumMemory, tc.size))
			if tc.limit != "" {
				pod.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceMemory: resource.MustParse(tc.limit)}
			}
			h.mustSetUp(pod)
			h.mustSetUp(pod) // idempotent: one mount
			dir := h.path(pod, "mem")
			mounts, err := mountsUnder(dir)
			if err != nil || len(mounts) != 1 {
				t.Fatalf("mounts at %s = %v, %v; want exactly one", dir, mounts, err)
			}
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				t.Fatal(err)
			}
			if st.Type != tmpfsMagic {
				t.Fatalf("%s is not a tmpfs", dir)
			}
			if got := int64(st.Blocks) * st.Bsize; got != tc.wantSize {
				t.Fatalf("tmpfs size = %d; want %d", got, tc.wantSize)
			}
			if err := h.m.TearDown(context.Background(), pod.UID); err != nil {
				t.Fatal(err)
			}
			if mounts, _ := mountsUnder(h.root); len(mounts) != 0 {
				t.Fatalf("mounts left after TearDown: %v", mounts)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("volume left after TearDown: %v", err)
			}
		})
	}
}

func TestEmptyDirHugePagesUnsupported(t *testing.T) {
	h := newHarness(t)
	pod := newPod("u1", emptyDir("huge", v1.StorageMediumHugePages, ""))
	if err := h.m.SetUp(context.Background(), pod); err == nil {
		t.Fatal("SetUp of a hugepages emptyDir succeeded")
	}
	if e := h.event(); e != `Warning FailedMount MountVolume.SetUp failed for volume "huge" : emptyDir medium "HugePages" is not supported by berth yet` {
		t.Fatalf("event = %q", e)
	}
}
