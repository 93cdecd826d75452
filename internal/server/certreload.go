package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

const (
	// fileCheckInterval is how often watched files are stat'ed. Stat is
	// cheap, and certificates are rotated by replacing their files, so
	// polling finds a rotation within seconds without an fsnotify watch.
	fileCheckInterval = 5 * time.Second
	// fileResyncInterval is how often the files are read even though
	// stat saw no change: a file rewritten in place with the same size
	// within the filesystem's timestamp granularity looks unchanged.
	// Upstream re-reads once a minute as well.
	fileResyncInterval = time.Minute
)

// watchedFiles holds what load made of some files (a certificate and its
// key; a CA bundle) and makes it again when they change on disk. A change
// that does not load (a half-written pair, a missing file) keeps the last
// good value, as upstream's dynamic certificate controllers do.
type watchedFiles[T any] struct {
	what  string // "serving certificate", for logs and errors
	paths []string
	load  func(contents [][]byte) (*T, error)
	clock clock.WithTicker

	current atomic.Pointer[T]

	mu       sync.Mutex // serialises check; guards the fields below
	stamps   []fileStamp
	sum      [sha256.Size]byte // of the contents current was loaded from
	loadedAt time.Time         // last read, successful or not
}

// newWatchedFiles loads the files once; that must succeed.
func newWatchedFiles[T any](what string, paths []string, load func([][]byte) (*T, error), clk clock.WithTicker) (*watchedFiles[T], error) {
	f := &watchedFiles[T]{what: what, paths: paths, load: load, clock: clk}
	f.stamps = stampFiles(paths)
	v, sum, err := f.read()
	if err != nil {
		return nil, err
	}
	f.current.Store(v)
	f.sum = sum
	f.loadedAt = clk.Now()
	return f, nil
}

// get returns the last good value; it never blocks on IO.
func (f *watchedFiles[T]) get() *T { return f.current.Load() }

// run checks the files every fileCheckInterval until ctx ends.
func (f *watchedFiles[T]) run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	logger.V(2).Info("Watching files for changes", "what", f.what, "files", f.paths)
	t := f.clock.NewTicker(fileCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			f.check(logger)
		}
	}
}

// check reloads the files if stat says one of them changed, or if they
// were last read fileResyncInterval ago. It reports whether the value
// changed.
func (f *watchedFiles[T]) check(logger klog.Logger) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Stat before reading: a change made while reading shows next time.
	stamps := stampFiles(f.paths)
	if slices.EqualFunc(stamps, f.stamps, fileStamp.same) && f.clock.Since(f.loadedAt) < fileResyncInterval {
		return false
	}
	// Remembered even when loading fails, so that a broken file is tried
	// again when it changes or at the next resync, not on every tick.
	f.stamps = stamps
	f.loadedAt = f.clock.Now()
	v, sum, err := f.read()
	if err != nil {
		logger.Error(err, "Keeping the last good content of changed files", "what", f.what, "files", f.paths)
		return false
	}
	if sum == f.sum {
		return false
	}
	f.current.Store(v)
	f.sum = sum
	logger.Info("Reloaded changed files", "what", f.what, "files", f.paths)
	return true
}

// read reads and loads all files, returning the value and a digest of the
// contents.
func (f *watchedFiles[T]) read() (*T, [sha256.Size]byte, error) {
	contents := make([][]byte, len(f.paths))
	h := sha256.New()
	for i, p := range f.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("%s: %w", f.what, err)
		}
		if len(b) == 0 {
			return nil, [sha256.Size]byte{}, fmt.Errorf("%s: %s is empty", f.what, p)
		}
		contents[i] = b
		// Length-prefixed, so that moving bytes between files changes the sum.
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	v, err := f.load(contents)
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("%s from %v: %w", f.what, f.paths, err)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return v, sum, nil
}

// fileStamp is what stat says of a file: nil when stat failed.
type fileStamp struct{ fi os.FileInfo }

func stampFiles(paths []string) []fileStamp {
	stamps := make([]fileStamp, len(paths))
	for i, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			stamps[i].fi = fi
		}
	}
	return stamps
}

// same reports whether two stamps show the same file unchanged: same
// inode (a rename or symlink swap replaces it), size and mtime.
func (a fileStamp) same(b fileStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return os.SameFile(a.fi, b.fi) && a.fi.Size() == b.fi.Size() && a.fi.ModTime().Equal(b.fi.ModTime())
}
