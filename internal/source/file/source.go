// Package file is berth's static pod source (upstream's staticPodPath,
// --pod-manifest-path): a directory of pod manifests, or a single manifest
// file, turned into full snapshots of the pods berth must run.
//
// Each file holds one Pod. A file that cannot be read or parsed, or whose
// pod Options.Screen refuses, is logged once per change and listed by
// Errors; the pod it last defined keeps running until the file is fixed or
// deleted. Changes are seen through
// inotify within tens of milliseconds, and by a periodic rescan should an
// event be lost.
package file

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

const (
	// defaultPeriod is upstream's fileCheckFrequency default.
	defaultPeriod = 20 * time.Second
	// retryPeriod bounds the rescan period while changes cannot be watched
	// (the parent directory is missing, or inotify failed).
	retryPeriod = time.Second
	// settleDelay gathers the burst of events of one save (create, write,
	// chmod, rename) into one scan. Kept short: a dropped manifest must be
	// running within seconds.
	settleDelay = 50 * time.Millisecond
)

// Options configures a Source.
type Options struct {
	// Path is a directory of manifests or a single manifest file. It need
	// not exist yet, but must not be empty: with no staticPodPath, berth
	// runs no file source (and must not wait for it to be seen).
	Path string
	// NodeName is appended to pod names and set as spec.nodeName.
	NodeName string
	// Period is the fallback rescan period (fileCheckFrequency); 0 means
	// 20s.
	Period time.Duration
	// Logger; if unset, Run takes the logger from its context.
	Logger klog.Logger
	// Now stamps when a pod was first seen; nil means time.Now.
	Now func() time.Time
	// Screen, if set, says why the node must not run a static pod, or nil
	// (berth's --static-pod-security). A refused manifest leaves the pod
	// its file gave before in place, if that one was allowed; otherwise
	// the refused pod is listed, for admission to reject (choosePod).
	Screen func(*v1.Pod) error
	// OnRefused, if set, is told of each changed manifest that Screen
	// refused: the refused pod, the pod the file keeps listing instead
	// (nil when the refused pod itself is listed) and Screen's reason.
	OnRefused func(path string, refused, kept *v1.Pod, err error)
	// AllowedDir, if set with Screen, is where the last allowed version of
	// each manifest is kept, so that a refused update still leaves it
	// running after a restart; empty keeps it in memory only.
	AllowedDir string
}

// Source watches the static pod path. Create it with New and call Run once.
type Source struct {
	opts    Options
	parser  *parser
	allowed allowedStore

	mu   sync.Mutex
	errs map[string]error
}

// New returns a Source for opts.
func New(opts Options) *Source {
	// Trailing slashes would make event names and paths differ.
	opts.Path = filepath.Clean(opts.Path)
	if opts.Period <= 0 {
		opts.Period = defaultPeriod
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	src := &Source{opts: opts, parser: newParser(), errs: map[string]error{}}
	if opts.Screen != nil {
		src.allowed.dir = opts.AllowedDir
	}
	return src
}

// Errors returns why each manifest that gives no pod (or an outdated one)
// could not be used, by file path; the manifest path itself is the key of an
// error reading the directory. It is safe to call while Run runs.
func (s *Source) Errors() map[string]error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.errs)
}

// Run sends a full snapshot of the static pods to out after the first
// successful scan (even if there are none, or the path does not exist yet,
// so that the source can be marked seen) and then each time the set of pods
// changes, until ctx is cancelled. Each snapshot is a new slice, in file
// name order; the pods in it are shared and must be treated as read-only.
func (s *Source) Run(ctx context.Context, out chan<- []*v1.Pod) {
	logger := s.opts.Logger
	if logger.GetSink() == nil {
		logger = klog.FromContext(ctx)
	}
	logger = logger.WithName("static-pods")
	logger.V(1).Info("Watching static pod path", "path", s.opts.Path, "period", s.opts.Period)

	w := newWatcher(s.opts.Path)
	defer w.close()
	st := &scanState{files: map[string]*fileState{}}
	// Since Go 1.23 Reset and Stop leave no stale tick in timer.C.
	timer := time.NewTimer(s.opts.Period)
	defer timer.Stop()

	for {
		// Watch before reading, so that no change slips between the two.
		watching := w.ensure(logger)
		if pods, changed := s.scan(logger, st); changed {
			select {
			case out <- pods:
			case <-ctx.Done():
				return
			}
		}

		period := s.opts.Period
		if !watching {
			period = min(period, retryPeriod)
		}
		timer.Reset(period)
		if !s.wait(ctx, w, timer) {
			return
		}
	}
}

// wait blocks until the next scan is due: period elapsed, or a relevant
// change was seen and settleDelay has passed to let it finish. It returns
// false when ctx is done.
func (s *Source) wait(ctx context.Context, w *watcher, timer *time.Timer) bool {
	settling := false
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case ev, ok := <-w.events():
			if !ok {
				// The watcher died; scan now, and ensure makes a new one.
				w.close()
				return true
			}
			if settling || !s.relevant(ev.Name) {
				continue
			}
			settling = true
			timer.Reset(settleDelay)
		case _, ok := <-w.errors():
			if !ok {
				w.close()
				return true
			}
			// Most likely a queue overflow: events were lost, so rescan.
			if !settling {
				settling = true
				timer.Reset(settleDelay)
			}
		}
	}
}

// relevant reports whether an event on name can change the pods: the path
// itself, or a visible file directly inside it.
func (s *Source) relevant(name string) bool {
	name = filepath.Clean(name)
	if name == s.opts.Path {
		return true
	}
	return filepath.Dir(name) == s.opts.Path && !strings.HasPrefix(filepath.Base(name), ".")
}
