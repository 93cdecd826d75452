package nodestatus

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
)

// machine is what the node status reports about the host. It is read once
// when the controller starts, as upstream caches cAdvisor's machine info.
type machine struct {
	numCPU      int
	memoryBytes int64 // MemTotal
	// rootFSBytes is the size of the file system holding the root dir,
	// the node's ephemeral-storage capacity; 0 when it cannot be read.
	rootFSBytes int64
	// hugePages maps a page size in bytes to the bytes of memory
	// preallocated in pages of that size.
	hugePages map[int64]int64

	machineID     string
	systemUUID    string
	bootID        string
	kernelVersion string
	osImage       string
}

// hostFiles are the files a machine is read from; tests point them at
// fixtures.
type hostFiles struct {
	meminfo      string
	machineID    []string // the first readable one wins
	productUUID  string
	bootID       string
	osRelease    []string // the first readable one wins
	kernel       string
	hugePagesDir string
}

// linuxFiles are where a Linux host keeps the facts (kernelVersion is
// uname -r).
func linuxFiles() hostFiles {
	return hostFiles{
		meminfo:      "/proc/meminfo",
		machineID:    []string{"/etc/machine-id", "/var/lib/dbus/machine-id"},
		productUUID:  "/sys/class/dmi/id/product_uuid",
		bootID:       "/proc/sys/kernel/random/boot_id",
		osRelease:    []string{"/etc/os-release", "/usr/lib/os-release"},
		kernel:       "/proc/sys/kernel/osrelease",
		hugePagesDir: "/sys/kernel/mm/hugepages",
	}
}

// readMachine reads the host's facts. A fact that cannot be read is left
// empty (zero): the node still registers, and a missing capacity shows up
// in the Ready condition as upstream reports it.
func readMachine(files hostFiles, rootDir string) (machine, []error) {
	var errs []error
	m := machine{numCPU: goruntime.NumCPU()}
	if b, err := os.ReadFile(files.meminfo); err != nil {
		errs = append(errs, fmt.Errorf("read memory size: %w", err))
	} else if m.memoryBytes, err = parseMemTotal(b); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", files.meminfo, err))
	}
	if size, err := fsSize(rootDir); err != nil {
		errs = append(errs, err)
	} else {
		m.rootFSBytes = size
	}
	hp, err := readHugePages(files.hugePagesDir)
	if err != nil {
		errs = append(errs, err)
	}
	m.hugePages = hp
	m.machineID = firstFile(files.machineID)
	m.systemUUID = firstFile([]string{files.productUUID}) // root-only on most hosts
	m.bootID = firstFile([]string{files.bootID})
	m.kernelVersion = firstFile([]string{files.kernel})
	m.osImage = "Linux" // cAdvisor's default when there is no os-release
	for _, p := range files.osRelease {
		if b, err := os.ReadFile(p); err == nil {
			if name := parseOSRelease(b); name != "" {
				m.osImage = name
			}
			break
		}
	}
	return m, errs
}

// firstFile returns the trimmed content of the first readable file.
func firstFile(paths []string) string {
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// parseMemTotal returns MemTotal from /proc/meminfo, in bytes.
func parseMemTotal(meminfo []byte) (int64, error) {
	s := bufio.NewScanner(bytes.NewReader(meminfo))
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 || fields[0] != "MemTotal:" {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil || kb <= 0 {
			return 0, fmt.Errorf("bad MemTotal %q", fields[1])
		}
		if len(fields) > 2 && fields[2] != "kB" {
			return 0, fmt.Errorf("MemTotal in unknown unit %q", fields[2])
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no MemTotal")
}

// parseOSRelease returns PRETTY_NAME from an os-release file, unquoted.
func parseOSRelease(data []byte) string {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		val, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "PRETTY_NAME=")
		if !ok {
			continue
		}
		if unq, err := strconv.Unquote(val); err == nil {
			return unq
		}
		return strings.Trim(val, `"'`)
	}
	return ""
}

// fsSize returns the size of the file system holding path, or of its
// nearest existing parent: the root dir may not exist yet on a new node.
func fsSize(path string) (int64, error) {
	p := filepath.Clean(path)
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(p, &st)
		if err == nil {
			return int64(st.Blocks) * st.Bsize, nil
		}
		parent := filepath.Dir(p)
		if !os.IsNotExist(err) || parent == p {
			return 0, fmt.Errorf("file system size of %s: %w", path, err)
		}
		p = parent
	}
}

// readHugePages reads the preallocated huge pages of each supported size
// from dir (/sys/kernel/mm/hugepages/hugepages-<size>kB/nr_hugepages). A
// host without huge page support has no dir, and no huge pages.
func readHugePages(dir string) (map[int64]int64, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read huge pages: %w", err)
	}
	pages := map[int64]int64{}
	for _, e := range entries {
		size, ok := parseHugePageDir(e.Name())
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "nr_hugepages"))
		if err != nil {
			return nil, fmt.Errorf("read huge pages: %w", err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read huge pages of %s: %w", e.Name(), err)
		}
		pages[size] = n * size
	}
	return pages, nil
}

// parseHugePageDir returns the page size in bytes of a directory named
// like "hugepages-2048kB".
func parseHugePageDir(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, "hugepages-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "kB")
	if !ok {
		return 0, false
	}
	kb, err := strconv.ParseInt(s, 10, 64)
	if err != nil || kb <= 0 {
		return 0, false
	}
	return kb * 1024, true
}
