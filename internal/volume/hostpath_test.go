package volume

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestHostPathTypeCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	char := "/dev/null"
	block := ""
	if os.Geteuid() == 0 {
		block = filepath.Join(dir, "block")
		if err := syscall.Mknod(block, syscall.S_IFBLK|0o600, 7<<8); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")

	cases := []struct {
		name    string
		path    string
		typ     v1.HostPathType
		wantErr string
	}{
		{"directory", dir, v1.HostPathDirectory, ""},
		{"directory is a file", file, v1.HostPathDirectory, "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{"directory missing", missing, v1.HostPathDirectory, "hostPath type check failed, " + missing + " is not a directory, unable to determine its type: path \"" + missing + "\" does not exist"},
		{"file", file, v1.HostPathFile, ""},
		{"file is a directory", dir, v1.HostPathFile, "hostPath type check failed: " + dir + " is not a file, it's a Directory"},
		{"socket", sock, v1.HostPathSocket, ""},
		{"socket is a file", file, v1.HostPathSocket, "hostPath type check failed: " + file + " is not a socket file, it's a File"},
		{"char device", char, v1.HostPathCharDev, ""},
		{"char device is a socket", sock, v1.HostPathCharDev, "hostPath type check failed: " + sock + " is not a character device, it's a Socket"},
		{"block device is a char device", char, v1.HostPathBlockDev, "hostPath type check failed: " + char + " is not a block device, it's a CharDevice"},
		{"directory-or-create exists as file", file, v1.HostPathDirectoryOrCreate, "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{"file-or-create exists as directory", dir, v1.HostPathFileOrCreate, "hostPath type check failed: " + dir + " is not a file, it's a Directory"},
		{"file-or-create without parent", filepath.Join(dir, "no/such/file"), v1.HostPathFileOrCreate, "open " + filepath.Join(dir, "no/such/file") + ": no such file or directory"},
		{"invalid type", dir, v1.HostPathType("Bogus"), "Bogus is an invalid volume type"},
	}
	if block != "" {
		cases = append(cases, struct {
			name    string
			path    string
			typ     v1.HostPathType
			wantErr string
		}{"block device", block, v1.HostPathBlockDev, ""})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkHostPathType(tc.path, tc.typ)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("checkHostPathType(%s, %s) = %q; want %q", tc.path, tc.typ, got, tc.wantErr)
			}
		})
	}
}

func TestHostPathOrCreate(t *testing.T) {
	dir := t.TempDir()
	newDir := filepath.Join(dir, "a/b/c")
	if err := checkHostPathType(newDir, v1.HostPathDirectoryOrCreate); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(newDir); err != nil || !info.IsDir() {
		t.Fatalf("DirectoryOrCreate did not create %s: %v", newDir, err)
	}
	newFile := filepath.Join(dir, "f")
	if err := checkHostPathType(newFile, v1.HostPathFileOrCreate); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(newFile); err != nil || !info.Mode().IsRegular() {
		t.Fatalf("FileOrCreate did not create %s: %v", newFile, err)
	}
	// Once created, the plain checks pass.
	if err := checkHostPathType(newFile, v1.HostPathFile); err != nil {
		t.Fatal(err)
	}
}

func TestHostPathVolume(t *testing.T) {
	dir := t.TempDir()
	unset := v1.HostPathUnset
	vs := &volumeState{}
	if err := setUpHostPath(&v1.HostPathVolumeSource{Path: filepath.Join(dir, "nothing-checked"), Type: &unset}, vs); err != nil || vs.path != filepath.Join(dir, "nothing-checked") || !vs.ready {
		t.Fatalf("unset type: err %v, state %+v", err, vs)
	}
	err := setUpHostPath(&v1.HostPathVolumeSource{Path: "/a/../etc"}, &volumeState{})
	if err == nil || err.Error() != "invalid HostPath `/a/../etc`: must not contain '..'" {
		t.Fatalf("backsteps: %v", err)
	}
}
