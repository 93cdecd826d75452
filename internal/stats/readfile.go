package stats

import (
	"bytes"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// fileReader reads the small files of cgroup file systems and /proc with
// plain system calls into one buffer that it reuses.
//
// os.ReadFile costs eight system calls per file there: kernfs and procfs
// files can be polled, so os.File registers each with the runtime's
// network poller (epoll_ctl add and delete, two fcntl to make it
// non-blocking) and stats it to size a new buffer. This costs open, read
// until EOF and close, and allocates nothing but the name's copy that
// unix.Openat makes.
//
// Walking a path is most of an open's cost on cgroup file systems, so
// cgroup files are opened relative to their directory, and directories
// relative to the nearest one the reader still has open from earlier in
// the pass (see cgroupDir); closeDirs ends the pass.
//
// A fileReader belongs to the housekeeping goroutine; what it returns is
// valid until its next read.
type fileReader struct {
	buf  []byte
	pids []int        // procs' result
	dirs []openedDirs // one per hierarchy (v1: per controller) read this pass
}

// openedDirs are the directories of one hierarchy that a pass keeps open:
// its root and a chain of cgroups below it, each below the one before, such
// as /kubepods, a pod and the container read last. A pod's sandbox and
// containers thus cost one path component each.
type openedDirs struct {
	root   string
	rootFD int
	chain  []openedDir
}

type openedDir struct {
	name string // clean absolute cgroup name
	fd   int
}

// minReadSize is the first buffer's size: every cgroup file and a pod's
// /proc/<pid>/net/dev fit; bigger files grow it.
const minReadSize = 4096

// dirFD is an open directory whose files readAt opens relative to it.
type dirFD struct {
	fd         int
	root, name string // for errors: the directory is join(root, name)
	owned      bool   // close it when done; else the reader keeps it open
}

func (d dirFD) close() {
	if d.owned {
		_ = unix.Close(d.fd)
	}
}

func (d dirFD) path() string {
	return join(d.root, d.name)
}

// cgroupDir opens the directory of cgroup name (such as
// "/kubepods/besteffort/pod<uid>/<id>") in the hierarchy mounted at root,
// relative to the nearest directory above it that the reader has open. It
// stays open until a cgroupDir of the same root outside it, or closeDirs;
// call close when done all the same.
func (r *fileReader) cgroupDir(root, name string) (dirFD, error) {
	d := dirFD{fd: -1, root: root, name: name}
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
	if name == "" || name[0] != '/' || path.Clean(name) != name {
		// A cgroup named in configuration, not clean: resolve it the
		// long way (path.Clean allocates only for such names).
		fd, err := openRetry(unix.AT_FDCWD, join(root, name), flags)
		if err != nil {
			return d, &fs.PathError{Op: "open", Path: d.path(), Err: err}
		}
		d.fd, d.owned = fd, true
		return d, nil
	}
	h, err := r.hierarchy(root)
	if err != nil {
		return d, err
	}
	if name == "/" {
		d.fd = h.rootFD
		return d, nil
	}
	for n := len(h.chain); n > 0 && !within(name, h.chain[n-1].name); n-- {
		_ = unix.Close(h.chain[n-1].fd)
		h.chain = h.chain[:n-1]
	}
	parent, rel := h.rootFD, name[1:]
	if n := len(h.chain); n > 0 {
		top := h.chain[n-1]
		if top.name == name {
			d.fd = top.fd
			return d, nil
		}
		parent, rel = top.fd, name[len(top.name)+1:]
	}
	fd, err := openRetry(parent, rel, flags)
	if err != nil {
		return d, &fs.PathError{Op: "open", Path: d.path(), Err: err}
	}
	h.chain = append(h.chain, openedDir{name: name, fd: fd})
	d.fd = fd
	return d, nil
}

// within says cgroup name is dir or below it.
func within(name, dir string) bool {
	return strings.HasPrefix(name, dir) && (len(name) == len(dir) || name[len(dir)] == '/')
}

// hierarchy returns the open root of the hierarchy mounted at root.
func (r *fileReader) hierarchy(root string) (*openedDirs, error) {
	for i := range r.dirs {
		if r.dirs[i].root == root {
			return &r.dirs[i], nil
		}
	}
	fd, err := openRetry(unix.AT_FDCWD, root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	r.dirs = append(r.dirs, openedDirs{root: root, rootFD: fd})
	return &r.dirs[len(r.dirs)-1], nil
}

// closeDirs closes the directories kept open, at the end of a pass: the
// next pass must see cgroups removed and made again meanwhile.
func (r *fileReader) closeDirs() {
	for _, h := range r.dirs {
		_ = unix.Close(h.rootFD)
		for _, d := range h.chain {
			_ = unix.Close(d.fd)
		}
	}
	r.dirs = r.dirs[:0]
}

// readFile reads the file at path.
func (r *fileReader) readFile(path string) ([]byte, error) {
	b, op, err := r.read(unix.AT_FDCWD, path)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: path, Err: err}
	}
	return b, nil
}

// readAt reads the file name in directory d.
func (r *fileReader) readAt(d dirFD, name string) ([]byte, error) {
	b, op, err := r.read(d.fd, name)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: d.path() + "/" + name, Err: err}
	}
	return b, nil
}

// optAt reads a file of directory d that some kernels or cgroups lack
// (memory.peak, PSI, settings the root has not): false when it cannot be
// read, with no error built for the caller to drop.
func (r *fileReader) optAt(d dirFD, name string) ([]byte, bool) {
	b, _, err := r.read(d.fd, name)
	return b, err == nil
}

// read reads name relative to dirfd. On failure it returns the system
// call and its errno, for the caller to name the file in an error.
func (r *fileReader) read(dirfd int, name string) (b []byte, op string, err error) {
	fd, err := openRetry(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, "open", err
	}
	defer unix.Close(fd)
	if cap(r.buf) < minReadSize {
		r.buf = make([]byte, 0, minReadSize)
	}
	b = r.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			r.buf = b
			return nil, "read", err
		}
		if n == 0 {
			r.buf = b
			return b, "", nil
		}
		b = b[:len(b)+n]
	}
}

// uintAt reads a file of directory d holding one number (see parseUint)
// and a newline.
func (r *fileReader) uintAt(d dirFD, name string) (uint64, error) {
	b, err := r.readAt(d, name)
	if err != nil {
		return 0, err
	}
	v, err := parseUint(bytes.TrimSpace(b))
	if err != nil {
		return 0, &fs.PathError{Op: "parse", Path: d.path() + "/" + name, Err: err}
	}
	return v, nil
}

// optUintAt is uintAt for a file that may be missing: false when it
// cannot be read or parsed.
func (r *fileReader) optUintAt(d dirFD, name string) (uint64, bool) {
	b, ok := r.optAt(d, name)
	if !ok {
		return 0, false
	}
	v, err := parseUint(bytes.TrimSpace(b))
	return v, err == nil
}

// uintFile reads a file holding one number (see parseUint) and a newline.
func (r *fileReader) uintFile(path string) (uint64, error) {
	b, err := r.readFile(path)
	if err != nil {
		return 0, err
	}
	v, err := parseUint(bytes.TrimSpace(b))
	if err != nil {
		return 0, &fs.PathError{Op: "parse", Path: path, Err: err}
	}
	return v, nil
}

// openRetry is openat, repeated when a signal interrupts it.
func openRetry(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}
