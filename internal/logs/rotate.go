package logs

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Runtime is the part of the CRI runtime service rotation needs;
// internalapi.RuntimeService satisfies it.
type Runtime interface {
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	ReopenContainerLog(ctx context.Context, containerID string) error
}

// Options configures a Manager.
type Options struct {
	Runtime Runtime
	// MaxSize is the size in bytes at which a container's log is rotated
	// (containerLogMaxSize); 0 or less disables rotation.
	MaxSize int64
	// MaxFiles is how many files a container's log may have, the current
	// one included (containerLogMaxFiles); at least 2.
	MaxFiles int
	// MaxWorkers bounds how many containers are rotated at once
	// (containerLogMaxWorkers); default 1.
	MaxWorkers int
	// Interval between passes over the running containers
	// (containerLogMonitorInterval); default 10 s.
	Interval time.Duration
	// Clock names rotated files and times the passes; default real time.
	Clock clock.WithTicker
}

// ParseMaxSize parses containerLogMaxSize ("10Mi") into bytes for
// Options.MaxSize.
func ParseMaxSize(size string) (int64, error) {
	q, err := resource.ParseQuantity(size)
	if err != nil {
		return 0, fmt.Errorf("containerLogMaxSize %q: %w", size, err)
	}
	n, ok := q.AsInt64()
	if !ok {
		return 0, fmt.Errorf("containerLogMaxSize %q: out of range", size)
	}
	return n, nil
}

// Manager rotates the logs of running containers, as upstream's
// ContainerLogManager does: every Interval, a log that has reached MaxSize
// is renamed to <log>.<timestamp> and the runtime reopens it; older rotated
// files are compressed and the oldest removed so that at most MaxFiles
// remain.
type Manager struct {
	opts Options
}

// New checks opts and returns a Manager; Run starts it.
func New(opts Options) (*Manager, error) {
	if opts.Runtime == nil {
		return nil, errors.New("log rotation needs a runtime")
	}
	if opts.MaxSize > 0 && opts.MaxFiles < 2 {
		return nil, fmt.Errorf("containerLogMaxFiles is %d, must be at least 2", opts.MaxFiles)
	}
	if opts.MaxWorkers <= 0 {
		opts.MaxWorkers = 1
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Manager{opts: opts}, nil
}

// Run rotates logs every Interval until ctx is cancelled. With rotation
// disabled it only waits for ctx.
func (m *Manager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if m.opts.MaxSize <= 0 {
		logger.Info("Container log rotation is disabled")
		<-ctx.Done()
		return
	}
	logger.Info("Rotating container logs", "maxSize", m.opts.MaxSize, "maxFiles", m.opts.MaxFiles, "workers", m.opts.MaxWorkers, "interval", m.opts.Interval)
	t := m.opts.Clock.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			if err := m.RotateOnce(ctx); err != nil {
				logger.Error(err, "Listing containers for log rotation failed")
			}
		}
	}
}

// RotateOnce makes one pass over the running containers and returns when
// every one has been looked at. Failures for one container are logged and
// retried on the next pass; only failing to list containers is returned.
func (m *Manager) RotateOnce(ctx context.Context) error {
	if m.opts.MaxSize <= 0 {
		return nil
	}
	containers, err := m.opts.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	ids := make(chan string)
	var wg sync.WaitGroup
	for range min(m.opts.MaxWorkers, len(containers)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				m.rotateContainer(ctx, id)
			}
		}()
	}
	for _, c := range containers {
		// A runtime that ignores the filter still only gets running
		// containers rotated: stopped ones write nothing new.
		if c.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		select {
		case ids <- c.GetId():
		case <-ctx.Done():
		}
	}
	close(ids)
	wg.Wait()
	return nil
}

// rotateContainer rotates one container's log if it is due.
func (m *Manager) rotateContainer(ctx context.Context, id string) {
	logger := klog.FromContext(ctx).WithValues("containerID", id)
	resp, err := m.opts.Runtime.ContainerStatus(ctx, id, false)
	if err != nil {
		logger.V(2).Info("Container status for log rotation failed", "err", err)
		return
	}
	path := resp.GetStatus().GetLogPath()
	if path == "" {
		return
	}
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		// An earlier rotation renamed the file but the reopen failed, or
		// someone removed it: have the runtime write a new one.
		if err := m.opts.Runtime.ReopenContainerLog(ctx, id); err != nil {
			logger.Error(err, "Container log is missing and reopening it failed", "path", path)
			return
		}
		info, err = os.Stat(path)
	}
	if err != nil {
		logger.Error(err, "Checking container log size failed", "path", path)
		return
	}
	if info.Size() < m.opts.MaxSize {
		return
	}
	if err := m.rotate(ctx, id, path); err != nil {
		logger.Error(err, "Rotating container log failed", "path", path, "size", info.Size(), "maxSize", m.opts.MaxSize)
	}
}

// rotate makes room for one more rotated file, compresses the older ones
// and rotates the current file.
func (m *Manager) rotate(ctx context.Context, id, path string) error {
	rotated, err := rotatedFiles(path)
	if err != nil {
		return err
	}
	inuse, unused := splitInUse(rotated)
	for _, f := range unused {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove leftover %s: %w", f, err)
		}
	}
	// The current file and the one rotated now count towards MaxFiles, so
	// MaxFiles-2 older files stay. Remove oldest first, so that a reader
	// going through them in order loses as little as possible.
	keep := max(m.opts.MaxFiles-2, 0)
	for len(inuse) > keep {
		if err := os.Remove(inuse[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove old log %s: %w", inuse[0], err)
		}
		inuse = inuse[1:]
	}
	for _, f := range inuse {
		if !strings.HasSuffix(f, compressSuffix) {
			if err := compress(f); err != nil {
				return err
			}
		}
	}
	// The newest rotated file stays uncompressed: the runtime may still
	// write to it until it has reopened, and readers may be following it.
	target := path + "." + m.opts.Clock.Now().Format(timestampFormat)
	if err := os.Rename(path, target); err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	if err := m.opts.Runtime.ReopenContainerLog(ctx, id); err != nil {
		// Put the file back so that the next pass tries again.
		if err2 := os.Rename(target, path); err2 != nil {
			klog.FromContext(ctx).Error(err2, "Restoring container log after failed reopen failed; its content is in the rotated file", "path", path, "rotated", target)
		}
		return fmt.Errorf("reopen container log: %w", err)
	}
	return nil
}

// compress replaces f by f.gz, through a temporary file so that an
// interrupted compression leaves f intact.
func compress(f string) error {
	in, err := os.Open(f)
	if err != nil {
		return fmt.Errorf("compress %s: %w", f, err)
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return fmt.Errorf("compress %s: %w", f, err)
	}
	tmp := f + compressSuffix + tmpSuffix
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return fmt.Errorf("compress %s: %w", f, err)
	}
	defer os.Remove(tmp) // no-op once renamed
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err2 := out.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("compress %s: %w", f, err)
	}
	if err := os.Rename(tmp, f+compressSuffix); err != nil {
		return fmt.Errorf("compress %s: %w", f, err)
	}
	if err := os.Remove(f); err != nil {
		return fmt.Errorf("remove %s after compressing it: %w", f, err)
	}
	return nil
}
