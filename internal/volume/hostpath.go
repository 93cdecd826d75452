package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// setUpHostPath checks a hostPath volume's type (creating the path for the
// *OrCreate types); containers mount the path itself.
func setUpHostPath(src *v1.HostPathVolumeSource, vs *volumeState) error {
	vs.path, vs.readOnly = src.Path, false
	if vs.ready {
		return nil
	}
	if err := validateNoBacksteps(src.Path); err != nil {
		return fmt.Errorf("invalid HostPath `%s`: %v", src.Path, err)
	}
	if src.Type != nil && *src.Type != v1.HostPathUnset {
		if err := checkHostPathType(src.Path, *src.Type); err != nil {
			return err
		}
	}
	vs.ready = true
	return nil
}

func validateNoBacksteps(p string) error {
	for _, item := range strings.Split(p, "/") {
		if item == ".." {
			return errors.New("must not contain '..'")
		}
	}
	return nil
}

// Host file types, named as upstream's hostutil.FileType.
const (
	fileTypeDirectory   = "Directory"
	fileTypeFile        = "File"
	fileTypeSocket      = "Socket"
	fileTypeCharDevice  = "CharDevice"
	fileTypeBlockDevice = "BlockDevice"
)

var errUnknownFileType = errors.New("only recognise file, directory, socket, block device and character device")

// fileType is the type of path, following symlinks.
func fileType(path string) (string, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("path %q does not exist", path)
	}
	if err != nil {
		return "", err
	}
	mode := info.Mode()
	switch {
	case mode.IsDir():
		return fileTypeDirectory, nil
	case mode.IsRegular():
		return fileTypeFile, nil
	case mode&os.ModeSocket != 0:
		return fileTypeSocket, nil
	case mode&os.ModeCharDevice != 0:
		return fileTypeCharDevice, nil
	case mode&os.ModeDevice != 0:
		return fileTypeBlockDevice, nil
	}
	return "", errUnknownFileType
}

// checkHostPathType checks path against a hostPath type with upstream's
// rules and messages, e.g. "hostPath type check failed: /x is not a
// directory, it's a File".
func checkHostPathType(path string, t v1.HostPathType) error {
	var want, expected string
	switch t {
	case v1.HostPathDirectoryOrCreate:
		if !exists(path) {
			return makeHostDir(path)
		}
		want, expected = fileTypeDirectory, "directory"
	case v1.HostPathDirectory:
		want, expected = fileTypeDirectory, "directory"
	case v1.HostPathFileOrCreate:
		if !exists(path) {
			return makeHostFile(path)
		}
		want, expected = fileTypeFile, "file"
	case v1.HostPathFile:
		want, expected = fileTypeFile, "file"
	case v1.HostPathSocket:
		want, expected = fileTypeSocket, "socket file"
	case v1.HostPathCharDev:
		want, expected = fileTypeCharDevice, "character device"
	case v1.HostPathBlockDev:
		want, expected = fileTypeBlockDevice, "block device"
	default:
		return fmt.Errorf("%s is an invalid volume type", t)
	}
	got, err := fileType(path)
	if err != nil {
		return fmt.Errorf("hostPath type check failed, %s is not a %s, unable to determine its type: %w", path, expected, err)
	}
	if got != want {
		return fmt.Errorf("hostPath type check failed: %s is not a %s, it's a %s", path, expected, got)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// makeHostDir creates a directory and its parents, 0755.
func makeHostDir(path string) error {
	if err := os.MkdirAll(path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// makeHostFile creates an empty file, 0644; its directory must exist (as
// upstream).
func makeHostFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE, 0o644)
	if f != nil {
		f.Close()
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
