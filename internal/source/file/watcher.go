package file

import (
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
)

// watcher keeps inotify watches on the static pod path and on its parent.
// The parent's watch sees the path itself appear, vanish or be replaced (a
// single manifest file is watched through it alone); the path's own watch
// sees the files in it. Watches are re-established before every scan, so
// a directory removed and made again is watched again.
type watcher struct {
	path, parent string

	fsw     *fsnotify.Watcher // nil while inotify is unavailable
	initErr string            // last error creating fsw, logged once
	dir     os.FileInfo       // the directory at path that is watched, or nil
}

func newWatcher(path string) *watcher {
	return &watcher{path: path, parent: filepath.Dir(path)}
}

// ensure sets up the watches that are missing and reports whether every
// change to the path is now watched. When it is not, the caller rescans
// more often.
func (w *watcher) ensure(logger klog.Logger) bool {
	if w.fsw == nil {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			if err.Error() != w.initErr {
				logger.Error(err, "Cannot watch the static pod path; rescanning it every second instead", "path", w.path)
			}
			w.initErr = err.Error()
			return false
		}
		w.fsw, w.initErr, w.dir = fsw, "", nil
	}

	watched := map[string]bool{}
	for _, p := range w.fsw.WatchList() {
		watched[filepath.Clean(p)] = true
	}
	ok := true
	if !watched[w.parent] {
		if err := w.fsw.Add(w.parent); err != nil {
			// Usually the parent does not exist yet.
			logger.V(4).Info("Cannot watch the static pod path's parent", "path", w.parent, "err", err)
			ok = false
		}
	}

	info, err := os.Stat(w.path)
	if err != nil || !info.IsDir() {
		w.dir = nil
		return ok
	}
	// A watch follows an inode: if the directory was replaced, watch the
	// new one.
	if w.dir == nil || !os.SameFile(w.dir, info) || !watched[w.path] {
		_ = w.fsw.Remove(w.path) // may be gone with the old directory
		if err := w.fsw.Add(w.path); err != nil {
			logger.V(4).Info("Cannot watch the static pod path", "path", w.path, "err", err)
			w.dir = nil
			return false
		}
		w.dir = info
	}
	return ok
}

// events and errors are nil channels, which block, while there is no
// watcher.
func (w *watcher) events() <-chan fsnotify.Event {
	if w.fsw == nil {
		return nil
	}
	return w.fsw.Events
}

func (w *watcher) errors() <-chan error {
	if w.fsw == nil {
		return nil
	}
	return w.fsw.Errors
}

func (w *watcher) close() {
	if w.fsw != nil {
		_ = w.fsw.Close()
		w.fsw, w.dir = nil, nil
	}
}
