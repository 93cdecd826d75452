package oom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Event reason of upstream's OOM watcher.
const reasonSystemOOM = "SystemOOM"

// Options configures a Watcher.
type Options struct {
	// Recorder receives the SystemOOM events, on the Node NodeName.
	Recorder record.EventRecorder
	NodeName string
	// KernelLog is the kernel log device (/dev/kmsg); tests use a pipe.
	KernelLog string
	// Boot is when the machine booted, to date the records; zero reads
	// it from the kernel.
	Boot time.Time
}

// Watcher reports system OOM kills as Node events.
type Watcher struct {
	opts Options
}

// NewWatcher returns a Watcher; Run starts it.
func NewWatcher(opts Options) *Watcher {
	if opts.KernelLog == "" {
		opts.KernelLog = "/dev/kmsg"
	}
	if opts.Boot.IsZero() {
		opts.Boot = bootTime()
	}
	return &Watcher{opts: opts}
}

// Run reads the kernel log until ctx ends, from the oldest record the
// kernel still holds (as upstream: a kill while berth was down is
// reported when it starts), and records an event for each system OOM
// kill. A kernel log that cannot be opened is logged once and the
// watcher ends: nodes run without it.
func (w *Watcher) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	f, err := os.Open(w.opts.KernelLog)
	if err != nil {
		logger.Error(err, "Cannot read the kernel log; system OOM kills will not be reported")
		return
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	if err := w.read(ctx, f); err != nil {
		logger.Error(err, "Stopped reading the kernel log; system OOM kills will not be reported")
	}
}

// read consumes records from r, one per read as /dev/kmsg gives them.
func (w *Watcher) read(ctx context.Context, r io.Reader) error {
	logger := klog.FromContext(ctx)
	buf := make([]byte, 8192)
	var p killParser
	for {
		n, err := r.Read(buf)
		switch {
		case err == nil:
		case errors.Is(err, syscall.EPIPE):
			// Records were overwritten before we read them; go on with
			// the next one.
			continue
		case ctx.Err() != nil, errors.Is(err, os.ErrClosed), errors.Is(err, io.EOF):
			return nil
		default:
			return fmt.Errorf("read %s: %w", w.opts.KernelLog, err)
		}
		rec, ok := parseRecord(buf[:n], w.opts.Boot)
		if !ok {
			continue
		}
		k, done := p.feed(rec)
		if !done || !k.System() {
			continue
		}
		logger.V(1).Info("System OOM kill", "pid", k.Pid, "process", k.ProcessName, "time", k.Time)
		msg := "System OOM encountered"
		if k.ProcessName != "" && k.Pid != 0 {
			msg = fmt.Sprintf("%s, victim process: %s, pid: %d", msg, k.ProcessName, k.Pid)
		}
		if w.opts.Recorder != nil {
			ref := &v1.ObjectReference{Kind: "Node", Name: w.opts.NodeName, UID: types.UID(w.opts.NodeName)}
			w.opts.Recorder.Event(ref, v1.EventTypeWarning, reasonSystemOOM, msg)
		}
	}
}

// bootTime is now minus the uptime.
func bootTime() time.Time {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return time.Now()
	}
	return time.Now().Add(-time.Duration(si.Uptime) * time.Second)
}
