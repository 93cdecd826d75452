package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// entry is one file of the image's filesystem.
type entry struct {
	typ  byte        // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	mode os.FileMode // permission, setuid, setgid and sticky bits
	src  string      // host file holding a regular file's content
	link string      // symlink target
}

// fileTree is the filesystem of a single-layer image, keyed by clean path
// relative to the image root ("bin/sh"). Later additions replace earlier ones.
type fileTree struct {
	entries map[string]entry
}

func (t *fileTree) put(name string, e entry) {
	clean := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(name)), "/")
	if clean == "" {
		return // the root itself is implicit
	}
	if t.entries == nil {
		t.entries = map[string]entry{}
	}
	t.entries[clean] = e
}

// addDir adds the tree under root. Only directories, regular files and
// symlinks are supported; devices and sockets have no place in a test image.
func (t *fileTree) addDir(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
		switch {
		case d.IsDir():
			t.put(rel, entry{typ: tar.TypeDir, mode: mode})
		case info.Mode().IsRegular():
			t.put(rel, entry{typ: tar.TypeReg, mode: mode, src: p})
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			t.put(rel, entry{typ: tar.TypeSymlink, mode: 0o777, link: target})
		default:
			return fmt.Errorf("%s: unsupported file type %v", p, info.Mode().Type())
		}
		return nil
	})
}

// addFile adds the regular file src at dest; a zero mode keeps src's.
func (t *fileTree) addFile(src, dest string, mode os.FileMode) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	if mode == 0 {
		mode = info.Mode().Perm()
	}
	t.put(dest, entry{typ: tar.TypeReg, mode: mode, src: src})
	return nil
}

// writeTar writes the tree as a tar stream in sorted order, adding any
// missing parent directories so that every path resolves on extraction.
func (t *fileTree) writeTar(w io.Writer, mtime time.Time) error {
	all := map[string]entry{}
	for name, e := range t.entries {
		all[name] = e
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := t.entries[dir]; !ok {
				all[dir] = entry{typ: tar.TypeDir, mode: 0o755}
			}
		}
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)

	tw := tar.NewWriter(w)
	for _, name := range names {
		e := all[name]
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     name,
			Linkname: e.link,
			Mode:     tarMode(e.mode),
			Uname:    "root",
			Gname:    "root",
			ModTime:  mtime,
		}
		if e.typ == tar.TypeDir {
			hdr.Name += "/"
		}
		if e.typ != tar.TypeReg {
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			continue
		}
		if err := writeRegular(tw, hdr, e.src); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return tw.Close()
}

func writeRegular(tw *tar.Writer, hdr *tar.Header, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = info.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("%s changed size while being read", src)
	}
	return nil
}

// tarMode converts Go's mode bits to the Unix bits a tar header carries.
func tarMode(m os.FileMode) int64 {
	mode := int64(m.Perm())
	if m&os.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
