package nodestatus

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMemTotal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{
			name: "proc meminfo",
			in:   "MemTotal:        4028356 kB\nMemFree:          123456 kB\nMemAvailable:    2000000 kB\n",
			want: 4028356 * 1024,
		},
		{name: "not the first line", in: "Foo: 1 kB\nMemTotal: 1024 kB\n", want: 1 << 20},
		{name: "no unit", in: "MemTotal: 2\n", want: 2048},
		{name: "missing", in: "MemFree: 1 kB\n", wantErr: true},
		{name: "garbage", in: "MemTotal: lots kB\n", wantErr: true},
		{name: "zero", in: "MemTotal: 0 kB\n", wantErr: true},
		{name: "unknown unit", in: "MemTotal: 5 MB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMemTotal([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseMemTotal = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseOSRelease(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{
			name: "debian",
			in:   "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\n",
			want: "Debian GNU/Linux 13 (trixie)",
		},
		{name: "unquoted", in: "NAME=Alpine\nPRETTY_NAME=Alpine\n", want: "Alpine"},
		{name: "single quotes", in: "PRETTY_NAME='Fedora Linux 40'\n", want: "Fedora Linux 40"},
		{name: "escaped quote", in: `PRETTY_NAME="My \"Linux\""` + "\n", want: `My "Linux"`},
		{name: "missing", in: "NAME=Linux\n", want: ""},
		{name: "prefix of another key", in: "XPRETTY_NAME=no\n", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseOSRelease([]byte(tt.in)); got != tt.want {
				t.Errorf("parseOSRelease = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseHugePageDir(t *testing.T) {
	tests := []struct {
		name string
		size int64
		ok   bool
	}{
		{"hugepages-2048kB", 2 << 20, true},
		{"hugepages-1048576kB", 1 << 30, true},
		{"hugepages-64kB", 64 << 10, true},
		{"hugepages-2048", 0, false},
		{"hugepages-xkB", 0, false},
		{"other", 0, false},
	}
	for _, tt := range tests {
		size, ok := parseHugePageDir(tt.name)
		if size != tt.size || ok != tt.ok {
			t.Errorf("parseHugePageDir(%q) = %d, %v; want %d, %v", tt.name, size, ok, tt.size, tt.ok)
		}
	}
}

// TestReadMachine reads a fake host laid out in a temporary directory.
func TestReadMachine(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) string {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := hostFiles{
		meminfo:      write("proc/meminfo", "MemTotal: 2048 kB\n"),
		machineID:    []string{filepath.Join(dir, "etc/machine-id"), write("var/lib/dbus/machine-id", "dbus-id\n")},
		productUUID:  filepath.Join(dir, "sys/product_uuid"), // unreadable: left empty
		bootID:       write("proc/boot_id", "boot-1\n"),
		osRelease:    []string{write("etc/os-release", "PRETTY_NAME=\"Test OS 1\"\n")},
		kernel:       write("proc/osrelease", "6.1.0-test\n"),
		hugePagesDir: filepath.Join(dir, "hugepages"),
	}
	write("hugepages/hugepages-2048kB/nr_hugepages", "3\n")
	write("hugepages/hugepages-1048576kB/nr_hugepages", "0\n")

	m, errs := readMachine(files, filepath.Join(dir, "not/yet/there"))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if m.numCPU < 1 || m.memoryBytes != 2048*1024 || m.rootFSBytes <= 0 {
		t.Errorf("cpu %d memory %d rootfs %d", m.numCPU, m.memoryBytes, m.rootFSBytes)
	}
	if m.machineID != "dbus-id" || m.systemUUID != "" || m.bootID != "boot-1" || m.kernelVersion != "6.1.0-test" || m.osImage != "Test OS 1" {
		t.Errorf("ids: %+v", m)
	}
	if want := map[int64]int64{2 << 20: 3 * (2 << 20), 1 << 30: 0}; !maps.Equal(m.hugePages, want) {
		t.Errorf("huge pages = %v, want %v", m.hugePages, want)
	}

	// A host without huge pages or os-release, and no meminfo.
	files.hugePagesDir = filepath.Join(dir, "none")
	files.osRelease = nil
	files.meminfo = filepath.Join(dir, "none")
	m, errs = readMachine(files, dir)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "memory") {
		t.Errorf("errors = %v, want one about memory", errs)
	}
	if m.hugePages != nil || m.osImage != "Linux" || m.memoryBytes != 0 {
		t.Errorf("got %+v", m)
	}
}
