package file

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/source"
)

// allowedStore keeps, under Options.AllowedDir, the content of the last
// version of each manifest that Screen allowed, so that after a restart a
// refused manifest still leaves its last allowed version running: the
// containers of that version are adopted, as they would be had the file
// not changed. Only Run's goroutine uses it.
type allowedStore struct {
	dir string // "" keeps nothing
}

func (a allowedStore) name(path string) string {
	return filepath.Join(a.dir, fmt.Sprintf("%x", sha256.Sum256([]byte(path))))
}

// load returns the last allowed version of the manifest at path, parsed,
// if there is one that the node still allows.
func (s *Source) loadAllowed(logger klog.Logger, path string) *v1.Pod {
	if s.allowed.dir == "" {
		return nil
	}
	data, err := os.ReadFile(s.allowed.name(path))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			logger.Error(err, "Cannot read the last allowed version of a static pod manifest", "path", path)
		}
		return nil
	}
	pod, err := s.parser.parse(data, path, s.opts.NodeName)
	if err != nil || s.opts.Screen(pod) != nil {
		// Not a version that may run (any more, should the level have
		// been raised): forget it.
		s.forgetAllowed(logger, path)
		return nil
	}
	pod.Annotations[source.AnnotationConfigSeen] = s.opts.Now().Format(source.SeenTimeLayout)
	return pod
}

// storeAllowed records data as the last allowed version of path.
func (s *Source) storeAllowed(logger klog.Logger, path string, data []byte) {
	if s.allowed.dir == "" {
		return
	}
	if err := os.MkdirAll(s.allowed.dir, 0o700); err != nil {
		logger.Error(err, "Cannot keep the last allowed version of a static pod manifest", "path", path)
		return
	}
	name := s.allowed.name(path)
	tmp := name + ".tmp"
	err := os.WriteFile(tmp, data, 0o600)
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
		logger.Error(err, "Cannot keep the last allowed version of a static pod manifest", "path", path)
	}
}

func (s *Source) forgetAllowed(logger klog.Logger, path string) {
	if s.allowed.dir == "" {
		return
	}
	if err := os.Remove(s.allowed.name(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.Error(err, "Cannot remove the last allowed version of a static pod manifest", "path", path)
	}
}

// pruneAllowed removes the kept versions of manifests that are gone,
// also those removed while berth was down.
func (s *Source) pruneAllowed(logger klog.Logger, present map[string]bool) {
	if s.allowed.dir == "" {
		return
	}
	entries, err := os.ReadDir(s.allowed.dir)
	if err != nil {
		return // nothing kept yet
	}
	keep := make(map[string]bool, len(present))
	for p := range present {
		keep[filepath.Base(s.allowed.name(p))] = true
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(s.allowed.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				logger.Error(err, "Cannot remove the last allowed version of a static pod manifest", "file", e.Name())
			}
		}
	}
}
