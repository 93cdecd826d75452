package stats

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileReaderRead(t *testing.T) {
	dir := t.TempDir()
	r := testReader(t)
	tests := []struct {
		name    string
		content string // "" with missing: no such file
		missing bool
		isDir   bool
	}{
		{name: "empty", content: ""},
		{name: "number", content: "42\n"},
		{name: "just below the first buffer", content: strings.Repeat("a", minReadSize-1)},
		{name: "exactly the first buffer", content: strings.Repeat("b", minReadSize)},
		{name: "bigger than the first buffer", content: strings.Repeat("c", 3*minReadSize+5)},
		{name: "small after big", content: "7\n"},
		{name: "missing", missing: true},
		{name: "a directory", isDir: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "f"+string(rune('a'+i)))
			switch {
			case tt.isDir:
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			case !tt.missing:
				writeFiles(t, dir, map[string]string{filepath.Base(p): tt.content})
			}
			got, err := r.readFile(p)
			switch {
			case tt.missing:
				if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
					t.Errorf("err = %v, want ErrNotExist naming %s", err, p)
				}
			case tt.isDir:
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Op != "read" || pe.Path != p {
					t.Errorf("err = %v, want a read error naming %s", err, p)
				}
			case err != nil:
				t.Fatal(err)
			case string(got) != tt.content:
				t.Errorf("read %d bytes, want %d", len(got), len(tt.content))
			}
		})
	}
}

func TestFileReaderUint(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"n": "123\n", "max": "max\n", "neg": "-1\n", "zero": "0", "bad": "12x\n", "empty": "",
	})
	r := testReader(t)
	d, err := r.cgroupDir(dir, "/")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file    string
		want    uint64
		wantErr bool
	}{
		{"n", 123, false},
		{"max", 0, false},
		{"neg", 0, false},
		{"zero", 0, false},
		{"bad", 0, true},
		{"empty", 0, true},
		{"missing", 0, true},
	}
	for _, tt := range tests {
		got, err := r.uintAt(d, tt.file)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("uintAt(%s) = %d, %v; want %d, error %v", tt.file, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), filepath.Join(dir, tt.file)) {
			t.Errorf("uintAt(%s) error %q does not name the file", tt.file, err)
		}
		opt, ok := r.optUintAt(d, tt.file)
		if opt != tt.want || ok == tt.wantErr {
			t.Errorf("optUintAt(%s) = %d, %v; want %d, %v", tt.file, opt, ok, tt.want, !tt.wantErr)
		}
	}
}

func TestCgroupDir(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"a/b/c", "a/b/d", "x/y"} {
		writeFiles(t, root, map[string]string{p + "/file": p})
	}
	openFDs := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(entries)
	}
	before := openFDs()
	r := &fileReader{}
	// In order: each step may rely on what the previous ones left open.
	steps := []struct {
		name    string
		owned   bool   // a directory of its own, not kept by the reader
		content string // of name/file; "" for no file there
		missing bool
	}{
		{name: "/"},
		{name: "/a/b"},                     // from the root
		{name: "/a/b/c", content: "a/b/c"}, // relative to /a/b
		{name: "/a/b/d", content: "a/b/d"}, // /a/b/c closed, relative to /a/b
		{name: "/a/b"},                     // still open
		{name: "/a/b/nope", missing: true},
		{name: "a/b/c", owned: true, content: "a/b/c"}, // not absolute: the long way
		{name: "/x/../a/b/c", owned: true, content: "a/b/c"},
		{name: "/x/y", content: "x/y"},     // /a/b closed, from the root
		{name: "/a/b/c", content: "a/b/c"}, // from the root again
		{name: "/gone", missing: true},
	}
	for _, s := range steps {
		d, err := r.cgroupDir(root, s.name)
		if s.missing {
			if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), join(root, s.name)) {
				t.Errorf("cgroupDir(%s): err = %v, want ErrNotExist naming it", s.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cgroupDir(%s): %v", s.name, err)
		}
		if d.owned != s.owned {
			t.Errorf("cgroupDir(%s): owned = %v, want %v", s.name, d.owned, s.owned)
		}
		if s.content != "" {
			if b, err := r.readAt(d, "file"); err != nil || string(b) != s.content {
				t.Errorf("cgroupDir(%s)/file = %q, %v; want %q", s.name, b, err, s.content)
			}
		}
		d.close()
	}

	// Below an open directory, the rest of the path is all that is walked:
	// /a/b stays reachable within the pass after a rename, not after it.
	if _, err := r.cgroupDir(root, "/a/b"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "a"), filepath.Join(root, "z")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cgroupDir(root, "/a/b/d"); err != nil {
		t.Errorf("cgroupDir below an open directory walked the whole path: %v", err)
	}
	r.closeDirs()
	if _, err := r.cgroupDir(root, "/a/b/d"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after closeDirs a renamed cgroup is still found: %v", err)
	}
	r.closeDirs()
	if after := openFDs(); after != before {
		t.Errorf("%d files open after closeDirs, %d before", after, before)
	}
}

// The point of fileReader and the parsers: a round does not allocate per
// value read.
func TestReadAllocations(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"memory.stat": memoryStatV1Sample, "memory.usage_in_bytes": "123456\n"})
	r := testReader(t)
	d, err := r.cgroupDir(dir, "/")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := r.uintAt(d, "memory.usage_in_bytes"); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("uintAt allocates %v times, want at most 1 (unix.Openat's copy of the name)", n)
	}
	b, err := r.readAt(d, "memory.stat")
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Clone(b)
	if n := testing.AllocsPerRun(100, func() { parseMemoryStatV1(b) }); n != 0 {
		t.Errorf("parseMemoryStatV1 allocates %v times, want 0", n)
	}
}
