package pluginmanager

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Handler is what a plugin type (CSIPlugin, DRAPlugin, DevicePlugin) gives
// the manager. Calls for different plugins may run concurrently.
type Handler interface {
	// ValidatePlugin says whether the plugin may register; its error is
	// sent to the plugin.
	ValidatePlugin(name, endpoint string, versions []string) error
	// RegisterPlugin starts using the plugin at endpoint.
	RegisterPlugin(name, endpoint string, versions []string) error
	// DeRegisterPlugin stops using it: its socket is gone or was replaced.
	DeRegisterPlugin(name, endpoint string)
}

// Options configure a Manager.
type Options struct {
	// Dir is the registration directory, <root dir>/plugins_registry.
	Dir string
	// Clock times the retries (a real clock when nil).
	Clock clock.WithTicker
}

// Manager registers the plugins whose sockets appear in its directory.
type Manager struct {
	dir   string
	clock clock.WithTicker

	mu       sync.Mutex
	handlers map[string]Handler
}

// New returns a Manager; add the handlers before Run.
func New(opts Options) *Manager {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Manager{dir: opts.Dir, clock: opts.Clock, handlers: map[string]Handler{}}
}

// AddHandler makes h the handler of plugins of pluginType (the Type their
// GetInfo returns, e.g. "CSIPlugin").
func (m *Manager) AddHandler(pluginType string, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[pluginType] = h
}

func (m *Manager) handlersCopy() map[string]Handler {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(map[string]Handler, len(m.handlers))
	for t, h := range m.handlers {
		c[t] = h
	}
	return c
}

// result is what an operation reports back to the loop.
type result struct {
	op  op
	reg *registration
	err error
}

// Run watches the directory (created if missing) and registers plugins
// until ctx is cancelled. Plugins stay registered with their handlers when
// it returns: berth is stopping, and the plugins go on serving.
func (m *Manager) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("pluginmanager")
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return fmt.Errorf("plugin registration directory %s: %w", m.dir, err)
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch plugin registration directory %s: %w", m.dir, err)
	}
	defer watcher.Close()

	w := newWorld()
	// The directory is watched before it is read, so that no socket
	// created meanwhile is missed.
	if err := m.watchTree(logger, watcher, w, m.dir); err != nil {
		return err
	}
	logger.Info("Watching for plugins", "path", m.dir)

	var ops sync.WaitGroup
	defer ops.Wait()
	results := make(chan result)
	var retry clock.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		due, next := decide(w.states, m.clock.Now())
		w.started(due)
		for _, o := range due {
			ops.Add(1)
			go func() {
				defer ops.Done()
				r := m.carryOut(ctx, o)
				select {
				case results <- r:
				case <-ctx.Done():
				}
			}()
		}
		var retryC <-chan time.Time
		if retry != nil {
			retry.Stop()
			retry = nil
		}
		if !next.IsZero() {
			retry = m.clock.NewTimer(next.Sub(m.clock.Now()))
			retryC = retry.C()
		}

		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-watcher.Events:
			if !ok {
				return fmt.Errorf("plugin registration directory %s: watch closed", m.dir)
			}
			m.handleEvent(logger, watcher, w, ev)
		case err, ok := <-watcher.Errors:
			if !ok {
				return fmt.Errorf("plugin registration directory %s: watch closed", m.dir)
			}
			// Overflowed queues and the like: rescan, so that what
			// was missed is found.
			logger.Error(err, "Watching plugin registration directory failed; reading it again", "path", m.dir)
			if err := m.watchTree(logger, watcher, w, m.dir); err != nil {
				logger.Error(err, "Reading plugin registration directory failed", "path", m.dir)
			}
		case r := <-results:
			m.record(logger, w, r)
		case <-retryC:
		}
	}
}

// carryOut runs one operation.
func (m *Manager) carryOut(ctx context.Context, o op) result {
	switch o.kind {
	case opRegister:
		reg, err := register(ctx, o.path, o.gen, m.handlersCopy())
		return result{op: o, reg: reg, err: err}
	default:
		o.reg.handler.DeRegisterPlugin(o.reg.name, o.reg.endpoint)
		return result{op: o}
	}
}

// record applies an operation's result to the world.
func (m *Manager) record(logger klog.Logger, w *world, r result) {
	switch r.op.kind {
	case opRegister:
		if r.err != nil {
			logger.Error(r.err, "Plugin registration failed; retrying", "path", r.op.path)
		} else {
			logger.Info("Registered plugin", "type", r.reg.pluginType, "name", r.reg.name, "endpoint", r.reg.endpoint, "path", r.op.path)
		}
		w.registered(r.op.path, r.op.gen, r.reg, r.err != nil, m.clock.Now())
	case opDeregister:
		logger.Info("Deregistered plugin", "type", r.op.reg.pluginType, "name", r.op.reg.name, "path", r.op.path)
		w.deregistered(r.op.path)
	}
}

// handleEvent turns a file system event into a change of the world: a
// socket created, a directory to watch, something removed.
func (m *Manager) handleEvent(logger klog.Logger, watcher *fsnotify.Watcher, w *world, ev fsnotify.Event) {
	switch {
	case ev.Has(fsnotify.Create):
		if ignored(ev.Name) {
			return
		}
		fi, err := os.Lstat(ev.Name)
		if err != nil {
			// Gone already; its removal event follows.
			return
		}
		switch {
		case fi.IsDir():
			if err := m.watchTree(logger, watcher, w, ev.Name); err != nil {
				logger.Error(err, "Watching plugin directory failed", "path", ev.Name)
			}
		case fi.Mode()&fs.ModeSocket != 0:
			// A socket already known was found by the walk that
			// raced with this event: a socket created again
			// shows its removal first.
			if s := w.states[ev.Name]; s == nil || !s.present {
				w.created(ev.Name)
			}
		}
	case ev.Has(fsnotify.Remove), ev.Has(fsnotify.Rename):
		// A socket renamed away is gone from here too (its new name,
		// if in the tree, is a Create).
		w.removed(ev.Name)
	}
}

// watchTree watches dir and the directories below it and records the
// sockets found there.
func (m *Manager) watchTree(logger klog.Logger, watcher *fsnotify.Watcher, w *world, dir string) error {
	if err := watcher.Add(dir); err != nil {
		return fmt.Errorf("watch plugin directory %s: %w", dir, err)
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return fmt.Errorf("read plugin directory %s: %w", dir, err)
			}
			logger.Error(err, "Reading plugin directory failed", "path", path)
			return nil
		}
		if path == dir {
			return nil
		}
		if ignored(path) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			if err := watcher.Add(path); err != nil {
				logger.Error(err, "Watching plugin directory failed", "path", path)
			}
		case d.Type()&fs.ModeSocket != 0:
			// Known already (a rescan): nothing changed.
			if s := w.states[path]; s == nil || !s.present {
				w.created(path)
			}
		}
		return nil
	})
}

// ignored: upstream ignores names starting with ".".
func ignored(path string) bool {
	return strings.HasPrefix(filepath.Base(path), ".")
}
