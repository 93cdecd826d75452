// Package logs owns container log files once the runtime has written them:
// rotation by size and count (Manager, as upstream's ContainerLogManager)
// and reading a container's log across its rotated files (Read), which the
// kubelet API's /containerLogs serves.
//
// A container's log is one current file, written by the runtime in the CRI
// format, and the files rotated out of it, named after the rotation time:
//
//	0.log                          current, the runtime appends here
//	0.log.20240102-150405          newest rotated file, left uncompressed
//	0.log.20240102-145955.gz       older rotated files, compressed
//
// Rotation renames the current file and asks the runtime to reopen its log
// (CRI ReopenContainerLog), so a reader holding the old file sees it end and
// finds the new one at the same path.
package logs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	// timestampFormat is the suffix of a rotated file (upstream's).
	timestampFormat = "20060102-150405"
	compressSuffix  = ".gz"
	tmpSuffix       = ".tmp"
)

// rotatedFiles returns every file rotated out of the log at path, in use or
// not (see inUse), sorted oldest first. It lists the directory rather than
// globbing so that no character of the path is taken for a pattern.
func rotatedFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list rotated logs of %s: %w", path, err)
	}
	var out []string
	for _, e := range entries {
		if name := e.Name(); !e.IsDir() && strings.HasPrefix(name, base+".") {
			out = append(out, filepath.Join(dir, name))
		}
	}
	sort.Strings(out)
	return out, nil
}

// splitInUse separates rotated files that hold log content from leftovers
// of an interrupted rotation: temporary files, and uncompressed files whose
// compressed copy is complete.
func splitInUse(files []string) (inuse, unused []string) {
	set := make(map[string]bool, len(files))
	for _, f := range files {
		set[f] = true
	}
	for _, f := range files {
		switch {
		case strings.HasSuffix(f, tmpSuffix), !strings.HasSuffix(f, compressSuffix) && set[f+compressSuffix]:
			unused = append(unused, f)
		default:
			inuse = append(inuse, f)
		}
	}
	return inuse, unused
}

// AllFiles returns the files that make up the log at path, oldest first:
// the rotated files in use, then path itself (which may not exist right
// now, between a rotation and the runtime reopening its log).
func AllFiles(path string) ([]string, error) {
	rotated, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	inuse, _ := splitInUse(rotated)
	return append(inuse, path), nil
}
