package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestTagOf(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"registry.k8s.io/pause:3.10", "3.10"},
		{"berth.local/busybox", "latest"},
		{"127.0.0.1:5000/busybox", "latest"},
		{"127.0.0.1:5000/busybox:1.0", "1.0"},
	} {
		if got := tagOf(tc.name); got != tc.want {
			t.Errorf("tagOf(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseFileFlag(t *testing.T) {
	for _, tc := range []struct {
		in        string
		src, dest string
		mode      os.FileMode
		wantErr   bool
	}{
		{in: "a:/b", src: "a", dest: "/b"},
		{in: "a:/b:0755", src: "a", dest: "/b", mode: 0o755},
		{in: "a", wantErr: true},
		{in: "a:/b:9", wantErr: true},
		{in: ":/b", wantErr: true},
	} {
		src, dest, mode, err := parseFileFlag(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseFileFlag(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if src != tc.src || dest != tc.dest || mode != tc.mode {
			t.Errorf("parseFileFlag(%q) = %q, %q, %o; want %q, %q, %o", tc.in, src, dest, mode, tc.src, tc.dest, tc.mode)
		}
	}
}

// TestArchiveRoundTrip builds an image and reads it back the way an importer
// does: index -> manifest -> config and layer, checking every digest.
func TestArchiveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	mustWrite(t, filepath.Join(rootfs, "bin", "tool"), "tool", 0o755)
	if err := os.Symlink("tool", filepath.Join(rootfs, "bin", "alias")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(rootfs, "tmp"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(dir, "extra")
	mustWrite(t, extra, "extra", 0o600)

	out := filepath.Join(dir, "img.tar")
	args := []string{"-o", out, "-name", "example.test/img:v1", "-rootfs", rootfs,
		"-file", extra + ":/usr/share/extra:0644", "-entrypoint", `["/bin/tool"]`, "-cmd", `["x"]`, "-env", "A=b"}
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(out)
	if !bytes.Equal(first, second) {
		t.Error("two builds of the same inputs differ")
	}

	files := readTar(t, bytes.NewReader(first))
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	mustJSON(t, files["index.json"], &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(index.Manifests))
	}
	md := index.Manifests[0]
	wantAnn := map[string]string{annotationImageName: "example.test/img:v1", annotationRefName: "v1"}
	if !reflect.DeepEqual(md.Annotations, wantAnn) {
		t.Errorf("annotations = %v, want %v", md.Annotations, wantAnn)
	}
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	mustJSON(t, blobOf(t, files, md), &manifest)
	var config struct {
		Config imageConfig `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	mustJSON(t, blobOf(t, files, manifest.Config), &config)
	wantCfg := imageConfig{Env: []string{defaultPath, "A=b"}, Entrypoint: []string{"/bin/tool"}, Cmd: []string{"x"}}
	if !reflect.DeepEqual(config.Config, wantCfg) {
		t.Errorf("config = %+v, want %+v", config.Config, wantCfg)
	}

	gz, err := gzip.NewReader(bytes.NewReader(blobOf(t, files, manifest.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(layer); config.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Error("diff_id does not match the uncompressed layer")
	}
	var got []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %c %04o %s", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Linkname))
	}
	want := []string{
		"bin/ 5 0755 ",
		"bin/alias 2 0777 tool",
		"bin/tool 0 0755 ",
		"tmp/ 5 1777 ",
		"usr/ 5 0755 ", // implicit parent
		"usr/share/ 5 0755 ",
		"usr/share/extra 0 0644 ", // the flag's mode, not the source's 0600
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layer entries:\n got %q\nwant %q", got, want)
	}
}

func mustWrite(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = data
	}
}

// blobOf returns the blob a descriptor points at, checking its size and digest.
func blobOf(t *testing.T, files map[string][]byte, d descriptor) []byte {
	t.Helper()
	data, ok := files["blobs/sha256/"+d.Digest[len("sha256:"):]]
	if !ok {
		t.Fatalf("blob %s missing", d.Digest)
	}
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != d.Digest || int64(len(data)) != d.Size {
		t.Fatalf("blob %s: digest or size mismatch", d.Digest)
	}
	return data
}
