package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fileProjection is one file of a file-based volume.
type fileProjection struct {
	data []byte
	mode int32
	// fsUser, if set, owns the file (projected service-account tokens).
	fsUser *int64
}

const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"

	maxFileNameLength = 255
	maxPathLength     = 4096
)

// writeAtomically projects payload into dir as upstream's AtomicWriter does,
// and reports whether anything visible changed. Names starting with ".."
// are reserved. setPerms, if set, runs on the new data before it is
// published. dir must exist; callers serialize writes to it.
//
// Layout after a write:
//
//	dir/..2024_01_02_15_04_05.123456789/   the files (a new directory per write)
//	dir/..data -> ..2024_01_02_15_04_05.123456789
//	dir/key    -> ..data/key                (one link per top-level name)
//
// The steps:
//  1. validate and clean the payload's paths;
//  2. read ..data to find the current timestamped directory;
//  3. list what it holds that the payload no longer does;
//  4. compare its files with the payload; nothing to do if all match;
//  5. write the payload into a new timestamped directory, set perms;
//  6. point ..data_tmp at it and rename it over ..data (atomic);
//  7. create the visible links of new top-level names;
//  8. remove the visible links of names that went away;
//  9. remove the old timestamped directory.
func writeAtomically(dir string, payload map[string]fileProjection, setPerms func() error) (bool, error) {
	// (1)
	clean := make(map[string]fileProjection, len(payload))
	for p, f := range payload {
		if err := validatePath(p); err != nil {
			return false, err
		}
		clean[filepath.Clean(p)] = f
	}

	// (2)
	dataDir := filepath.Join(dir, dataDirName)
	oldTS, err := os.Readlink(dataDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read link %s: %w", dataDir, err)
	}

	var stale []string
	write := true
	if oldTS != "" {
		oldDir := filepath.Join(dir, oldTS)
		// (3)
		if stale, err = stalePaths(clean, oldDir); err != nil {
			return false, err
		}
		// (4)
		differs, err := payloadDiffers(clean, oldDir)
		if err != nil {
			return false, err
		}
		if !differs && len(stale) == 0 {
			// Up to date, but the visible links may be missing after a
			// crash between (6) and (7): make sure of them below.
			write = false
			oldTS = ""
		}
	}

	if write {
		// (5)
		tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
		if err != nil {
			return false, fmt.Errorf("create data directory: %w", err)
		}
		// Readable for every user in the container whatever the umask.
		if err := os.Chmod(tsDir, 0o755); err != nil {
			return false, fmt.Errorf("chmod data directory: %w", err)
		}
		if err := writePayload(clean, tsDir); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, err
		}
		if setPerms != nil {
			if err := setPerms(); err != nil {
				_ = os.RemoveAll(tsDir)
				return false, fmt.Errorf("set ownership: %w", err)
			}
		}
		// (6)
		tmpLink := filepath.Join(dir, newDataDirName)
		_ = os.Remove(tmpLink) // left by a crash
		if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, fmt.Errorf("create data link: %w", err)
		}
		if err := os.Rename(tmpLink, dataDir); err != nil {
			_ = os.Remove(tmpLink)
			_ = os.RemoveAll(tsDir)
			return false, fmt.Errorf("publish data link: %w", err)
		}
	}

	// (7)
	if err := createVisibleLinks(dir, clean); err != nil {
		return write, err
	}
	// (8) Only top-level names are links; deeper ones went with ..data.
	var errs []error
	for _, p := range stale {
		if strings.Contains(p, string(os.PathSeparator)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	// (9)
	if oldTS != "" {
		if err := os.RemoveAll(filepath.Join(dir, oldTS)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return write, fmt.Errorf("remove old data: %w", err)
	}
	return write, nil
}

// validatePath rejects paths that are empty, absolute, too long, contain a
// ".." element or start with "..".
func validatePath(p string) error {
	if p == "" {
		return fmt.Errorf("invalid path: must not be empty: %q", p)
	}
	if filepath.IsAbs(p) {
		return fmt.Errorf("invalid path: must be relative path: %s", p)
	}
	if len(p) > maxPathLength {
		return fmt.Errorf("invalid path: must be less than or equal to %d characters", maxPathLength)
	}
	items := strings.Split(p, string(os.PathSeparator))
	for _, item := range items {
		if item == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", p)
		}
		if len(item) > maxFileNameLength {
			return fmt.Errorf("invalid path: filenames must be less than or equal to %d characters", maxFileNameLength)
		}
	}
	if strings.HasPrefix(items[0], "..") && len(items[0]) > 2 {
		return fmt.Errorf("invalid path: must not start with '..': %s", p)
	}
	return nil
}

// payloadDiffers reports whether a file of the payload is missing from
// oldDir or has other content.
func payloadDiffers(payload map[string]fileProjection, oldDir string) (bool, error) {
	for p, f := range payload {
		b, err := os.ReadFile(filepath.Join(oldDir, p))
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if !bytes.Equal(b, f.data) {
			return true, nil
		}
	}
	return false, nil
}

// stalePaths lists the paths under oldDir, files and directories, that the
// payload no longer has.
func stalePaths(payload map[string]fileProjection, oldDir string) ([]string, error) {
	keep := make(map[string]bool)
	for p := range payload {
		// Keep every parent, so no directory still in use is removed.
		for q := p; q != "." && q != string(os.PathSeparator); q = filepath.Dir(q) {
			keep[q] = true
		}
	}
	var stale []string
	err := filepath.WalkDir(oldDir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(oldDir, path)
		if err != nil || rel == "." {
			return err
		}
		if !keep[rel] {
			stale = append(stale, rel)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return stale, err
}

func writePayload(payload map[string]fileProjection, dir string) error {
	for p, f := range payload {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("create directory for %s: %w", p, err)
		}
		mode := os.FileMode(f.mode) & os.ModePerm
		if err := os.WriteFile(full, f.data, mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		// WriteFile's mode is subject to the umask.
		if err := os.Chmod(full, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
		if f.fsUser != nil {
			if err := os.Lchown(full, int(*f.fsUser), -1); err != nil {
				return fmt.Errorf("chown %s: %w", p, err)
			}
		}
	}
	return nil
}

// createVisibleLinks links each top-level name of the payload through
// ..data, where the link is missing.
func createVisibleLinks(dir string, payload map[string]fileProjection) error {
	for p, f := range payload {
		top, _, _ := strings.Cut(p, string(os.PathSeparator))
		link := filepath.Join(dir, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Symlink(filepath.Join(dataDirName, top), link); err != nil {
			return fmt.Errorf("create link %s: %w", top, err)
		}
		if f.fsUser != nil {
			if err := os.Lchown(link, int(*f.fsUser), -1); err != nil {
				return fmt.Errorf("chown link %s: %w", top, err)
			}
		}
	}
	return nil
}
