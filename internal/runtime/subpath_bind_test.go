package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// subPathFixture is a volume with a directory "dir" holding a file "marker"
// that says "inside", a file "file", and a directory "outside" the volume
// (standing in for the host's /) holding a "marker" that says "outside".
type subPathFixture struct {
	vol, outside, podDir string
}

func newSubPathFixture(t *testing.T) subPathFixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	top := t.TempDir()
	f := subPathFixture{vol: filepath.Join(top, "vol"), outside: filepath.Join(top, "outside"), podDir: filepath.Join(top, "pod")}
	for _, d := range []string{filepath.Join(f.vol, "dir"), f.outside, f.podDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, content := range map[string]string{
		filepath.Join(f.vol, "dir", "marker"): "inside",
		filepath.Join(f.vol, "file"):          "file",
		filepath.Join(f.outside, "marker"):    "outside",
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Unmount before t.TempDir's RemoveAll, which would walk into the mounts.
	t.Cleanup(func() {
		if err := unmountUnder(filepath.Join(f.podDir, subPathsDir)); err != nil {
			t.Error(err)
		}
	})
	return f
}

// unmountUnder unmounts every mount in dir's tree (one level per subPath
// target, possibly stacked).
func unmountUnder(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == dir {
			return nil
		}
		for unix.Unmount(path, unix.MNT_DETACH) == nil {
		}
		return nil
	})
}

func readMarker(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBindSubPath(t *testing.T) {
	f := newSubPathFixture(t)
	target := subPathTarget(f.podDir, "data", "app", 0)
	b := subPathBind{volumePath: f.vol, path: filepath.Join(f.vol, "dir"), target: target}
	got, err := bindSubPath(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.podDir, "volume-subpaths", "data", "app", "0"); got != want {
		t.Errorf("target %s, want %s", got, want)
	}
	if m := readMarker(t, filepath.Join(got, "marker")); m != "inside" {
		t.Errorf("the mount shows %q, want the volume's directory", m)
	}
	// A restarted container reuses the mount rather than stacking another.
	if _, err := bindSubPath(b); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(target, 0); err == nil {
		t.Error("a second bind mount was stacked on the first")
	}

	// A file.
	fileTarget := subPathTarget(f.podDir, "data", "app", 1)
	if _, err := bindSubPath(subPathBind{volumePath: f.vol, path: filepath.Join(f.vol, "file"), target: fileTarget}); err != nil {
		t.Fatal(err)
	}
	if m := readMarker(t, fileTarget); m != "file" {
		t.Errorf("the file mount shows %q", m)
	}
	// The same target now bound to a directory: the stale file mount is
	// replaced.
	if _, err := bindSubPath(subPathBind{volumePath: f.vol, path: filepath.Join(f.vol, "dir"), target: fileTarget}); err != nil {
		t.Fatal(err)
	}
	if m := readMarker(t, filepath.Join(fileTarget, "marker")); m != "inside" {
		t.Errorf("the replaced mount shows %q", m)
	}

	if _, err := bindSubPath(subPathBind{volumePath: f.vol, path: f.outside, target: target}); err == nil || !strings.Contains(err.Error(), "not within volume path") {
		t.Errorf("a path outside the volume: %v", err)
	}
}

// TestBindSubPathRace swaps a directory of the subPath for a symlink to
// "outside" in the two windows a container has: after the check, before
// the open (the open fails), and after the open, before the mount (the
// mount still shows the directory that was checked).
func TestBindSubPathRace(t *testing.T) {
	swap := func(t *testing.T, f subPathFixture) {
		t.Helper()
		if err := os.Rename(filepath.Join(f.vol, "dir"), filepath.Join(f.vol, "dir-moved")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(f.outside, filepath.Join(f.vol, "dir")); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("after the check", func(t *testing.T) {
		f := newSubPathFixture(t)
		base, resolved, err := prepareSubPath(f.vol, "dir")
		if err != nil {
			t.Fatal(err)
		}
		swap(t, f)
		target := subPathTarget(f.podDir, "data", "app", 0)
		_, err = bindSubPath(subPathBind{volumePath: base, path: resolved, target: target})
		if err == nil || !strings.Contains(err.Error(), "unexpected symlink found") {
			t.Fatalf("err = %v, want the symlink refused", err)
		}
		if b, err := os.ReadFile(filepath.Join(target, "marker")); err == nil {
			t.Errorf("the target shows %q", b)
		}
	})

	t.Run("after the open", func(t *testing.T) {
		f := newSubPathFixture(t)
		base, resolved, err := prepareSubPath(f.vol, "dir")
		if err != nil {
			t.Fatal(err)
		}
		target := subPathTarget(f.podDir, "data", "app", 0)
		got, err := bindSubPath(subPathBind{volumePath: base, path: resolved, target: target, opened: func() { swap(t, f) }})
		if err != nil {
			t.Fatal(err)
		}
		if m := readMarker(t, filepath.Join(got, "marker")); m != "inside" {
			t.Errorf("the mount shows %q, want the directory that was checked", m)
		}
	})

	t.Run("a deeper component", func(t *testing.T) {
		f := newSubPathFixture(t)
		if err := os.MkdirAll(filepath.Join(f.vol, "dir", "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		base, resolved, err := prepareSubPath(f.vol, "dir/sub")
		if err != nil {
			t.Fatal(err)
		}
		swap(t, f)
		if err := os.MkdirAll(filepath.Join(f.outside, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err = bindSubPath(subPathBind{volumePath: base, path: resolved, target: subPathTarget(f.podDir, "data", "app", 0)})
		if err == nil || !strings.Contains(err.Error(), "unexpected symlink found") {
			t.Fatalf("err = %v, want the symlink refused", err)
		}
	})
}
