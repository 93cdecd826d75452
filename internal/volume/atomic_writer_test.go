package volume

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func files(kv ...string) map[string]fileProjection {
	p := make(map[string]fileProjection)
	for i := 0; i < len(kv); i += 2 {
		p[kv[i]] = fileProjection{data: []byte(kv[i+1]), mode: 0o644}
	}
	return p
}

// visible lists what a reader of dir sees: every path (through the links)
// and its content, and the top-level entries that are not "..".
func visible(t *testing.T, dir string) (map[string]string, []string) {
	t.Helper()
	content := make(map[string]string)
	var top []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		top = append(top, e.Name())
		err := filepath.Walk(filepath.Join(dir, e.Name())+"/", func(path string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(dir, path)
				content[rel] = string(b)
			}
			return nil
		})
		if err != nil {
			// A top-level file, not a directory.
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			content[e.Name()] = string(b)
		}
	}
	sort.Strings(top)
	return content, top
}

func TestAtomicWriter(t *testing.T) {
	cases := []struct {
		name        string
		first, next map[string]fileProjection
		wantChanged bool
		wantTop     []string
	}{
		{"unchanged", files("a", "1", "b/c", "2"), files("a", "1", "b/c", "2"), false, []string{"a", "b"}},
		{"content changed", files("a", "1"), files("a", "2"), true, []string{"a"}},
		{"file added", files("a", "1"), files("a", "1", "b", "2"), true, []string{"a", "b"}},
		{"file removed", files("a", "1", "b", "2"), files("a", "1"), true, []string{"a"}},
		{"nested file removed", files("d/x", "1", "d/y", "2"), files("d/x", "1"), true, []string{"d"}},
		{"directory replaced by file", files("d/x", "1"), files("e", "1"), true, []string{"e"}},
		{"everything removed", files("a", "1"), files(), true, nil},
		{"empty to empty", files(), files(), false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if changed, err := writeAtomically(dir, tc.first, nil); err != nil || !changed {
				t.Fatalf("first write = %v, %v; want changed", changed, err)
			}
			oldTS, _ := os.Readlink(filepath.Join(dir, dataDirName))
			changed, err := writeAtomically(dir, tc.next, nil)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.wantChanged {
				t.Errorf("changed = %v; want %v", changed, tc.wantChanged)
			}
			newTS, err := os.Readlink(filepath.Join(dir, dataDirName))
			if err != nil {
				t.Fatal(err)
			}
			if (newTS != oldTS) != tc.wantChanged {
				t.Errorf("..data moved from %s to %s; want moved=%v", oldTS, newTS, tc.wantChanged)
			}
			if tc.wantChanged {
				if _, err := os.Stat(filepath.Join(dir, oldTS)); !os.IsNotExist(err) {
					t.Errorf("old data directory %s still there", oldTS)
				}
			}
			content, top := visible(t, dir)
			want := make(map[string]string)
			for p, f := range tc.next {
				want[p] = string(f.data)
			}
			if len(content) != len(want) {
				t.Errorf("visible files = %v; want %v", content, want)
			}
			for p, v := range want {
				if content[p] != v {
					t.Errorf("%s = %q; want %q", p, content[p], v)
				}
			}
			if strings.Join(top, ",") != strings.Join(tc.wantTop, ",") {
				t.Errorf("top-level entries = %v; want %v", top, tc.wantTop)
			}
			for _, name := range top {
				target, err := os.Readlink(filepath.Join(dir, name))
				if err != nil || target != filepath.Join(dataDirName, name) {
					t.Errorf("%s links to %q (%v); want ..data/%s", name, target, err, name)
				}
			}
			if _, err := os.Lstat(filepath.Join(dir, newDataDirName)); !os.IsNotExist(err) {
				t.Errorf("%s left behind", newDataDirName)
			}
		})
	}
}

func TestAtomicWriterModesAndOwner(t *testing.T) {
	dir := t.TempDir()
	uid := int64(1234)
	payload := map[string]fileProjection{
		"secret": {data: []byte("s"), mode: 0o400},
		"public": {data: []byte("p"), mode: 0o755},
		"owned":  {data: []byte("o"), mode: 0o600, fsUser: &uid},
	}
	old := setUmask(0o077)
	defer setUmask(old)
	if _, err := writeAtomically(dir, payload, nil); err != nil {
		t.Fatal(err)
	}
	for name, f := range payload {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != os.FileMode(f.mode) {
			t.Errorf("%s mode = %v; want %v", name, info.Mode().Perm(), os.FileMode(f.mode))
		}
	}
	if got := ownerOf(t, filepath.Join(dir, "owned")); got != 1234 {
		t.Errorf("owned file uid = %d; want 1234", got)
	}
	ts, _ := os.Readlink(filepath.Join(dir, dataDirName))
	info, _ := os.Stat(filepath.Join(dir, ts))
	if info.Mode().Perm() != 0o755 {
		t.Errorf("data directory mode = %v; want 0755 whatever the umask", info.Mode().Perm())
	}
}

func TestAtomicWriterSetPermsBeforePublish(t *testing.T) {
	dir := t.TempDir()
	called := false
	_, err := writeAtomically(dir, files("a", "1"), func() error {
		called = true
		// The new data is written but not yet published.
		if _, err := os.Lstat(filepath.Join(dir, dataDirName)); !os.IsNotExist(err) {
			t.Error("..data published before setPerms")
		}
		return nil
	})
	if err != nil || !called {
		t.Fatalf("write = %v, setPerms called = %v", err, called)
	}
}

func TestAtomicWriterRecreatesMissingLinks(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeAtomically(dir, files("a", "1"), nil); err != nil {
		t.Fatal(err)
	}
	// As if berth died between publishing ..data and linking the names.
	if err := os.Remove(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := writeAtomically(dir, files("a", "1"), nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a")); err != nil || string(b) != "1" {
		t.Fatalf("a = %q, %v; want the link back", b, err)
	}
}

func TestValidatePath(t *testing.T) {
	cases := map[string]bool{
		"a":                      true,
		"a/b/c":                  true,
		"..a":                    false,
		"..":                     false,
		"a/../b":                 false,
		"/abs":                   false,
		"":                       false,
		strings.Repeat("x", 256): false,
		"..data":                 false,
		"a/..b":                  true,
	}
	for p, ok := range cases {
		if err := validatePath(p); (err == nil) != ok {
			t.Errorf("validatePath(%q) = %v; want ok=%v", p, err, ok)
		}
	}
	if _, err := writeAtomically(t.TempDir(), files("../escape", "x"), nil); err == nil {
		t.Error("write of ../escape succeeded")
	}
}
