package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// ReadOptions selects what Read writes; the fields are those of
// v1.PodLogOptions.
type ReadOptions struct {
	// Since skips records written before it; zero means from the start.
	Since time.Time
	// TailLines, when not nil, starts that many records before the end.
	TailLines *int64
	// LimitBytes, when not nil, stops after writing that many bytes.
	LimitBytes *int64
	// Timestamps prefixes each line with the time the runtime wrote it.
	Timestamps bool
	// Follow keeps reading new records, across rotations, until Running
	// reports the container stopped (and its log is read to the end) or
	// ctx ends.
	Follow bool
	// Running tells a following Read whether the container still writes
	// its log. It is asked at most once per second. Required with Follow.
	Running func(ctx context.Context) (bool, error)
	// Clock paces the polling when following; default real time.
	Clock clock.Clock
}

// pollPeriod is how often a following Read looks for new records when no
// file event woke it, and the least time between two Running calls.
const pollPeriod = time.Second

// errLimitReached ends a read that wrote LimitBytes or TailLines.
var errLimitReached = errors.New("log limit reached")

// Read writes the container log whose current file is path to stdout and
// stderr (either may be nil to leave that stream out), oldest record first,
// going through the rotated files before the current one. Records are in
// the CRI format "<RFC3339Nano> <stdout|stderr> <F|P> <message>"; a P
// (partial) record continues in the next one.
func Read(ctx context.Context, path string, opts ReadOptions, stdout, stderr io.Writer) error {
	if opts.Follow && opts.Running == nil {
		return errors.New("following a log needs a Running function")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	files, err := AllFiles(path)
	if err != nil {
		return err
	}
	start, err := tailStart(files, opts.TailLines)
	if err != nil {
		return err
	}
	r := &reader{opts: opts, w: newRecordWriter(stdout, stderr, opts), linesLeft: -1}
	if opts.TailLines != nil && !opts.Follow {
		if *opts.TailLines <= 0 {
			return nil
		}
		r.linesLeft = *opts.TailLines
	}
	err = r.read(ctx, path, files, start)
	if errors.Is(err, errLimitReached) {
		return nil
	}
	return err
}

// position is where reading starts: in files[file], after skipping either
// offset bytes (plain files) or skipLines lines (compressed files).
type position struct {
	file      int
	offset    int64
	skipLines int64
}

// tailStart finds where the last n lines of files begin, going back from
// the newest file. A missing file counts as empty: rotation or removal may
// race with the read.
func tailStart(files []string, n *int64) (position, error) {
	if n == nil {
		return position{}, nil
	}
	need := *n
	for i := len(files) - 1; i >= 0; i-- {
		if strings.HasSuffix(files[i], compressSuffix) {
			total, err := countLines(files[i])
			if err != nil {
				return position{}, err
			}
			if total >= need {
				return position{file: i, skipLines: total - need}, nil
			}
			need -= total
			continue
		}
		offset, found, err := tailOffset(files[i], need)
		if err != nil {
			return position{}, err
		}
		if found >= need {
			return position{file: i, offset: offset}, nil
		}
		need -= found
	}
	return position{}, nil
}

// tailOffset returns where the last n complete lines of the plain file f
// begin and how many complete lines it found (at most n). An incomplete
// last line is not counted but is read from the offset on.
func tailOffset(f string, n int64) (offset, found int64, err error) {
	file, err := os.Open(f)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("tail %s: %w", f, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("tail %s: %w", f, err)
	}
	const block = 32 * 1024
	buf := make([]byte, block)
	// Newlines seen from the end; the n+1-th newline from the end ends the
	// line before the wanted ones.
	var seen int64
	for end := info.Size(); end > 0; {
		begin := max(end-block, 0)
		chunk := buf[:end-begin]
		if _, err := file.ReadAt(chunk, begin); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, fmt.Errorf("tail %s: %w", f, err)
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			if seen == n {
				return begin + int64(i) + 1, n, nil
			}
			seen++
		}
		end = begin
	}
	return 0, seen, nil
}

// countLines counts the newlines of a compressed file.
func countLines(f string) (int64, error) {
	rc, err := openFile(f)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	var n int64
	buf := make([]byte, 32*1024)
	for {
		k, err := rc.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", f, err)
		}
	}
}

// openFile opens a log file, decompressing it if it is compressed.
func openFile(f string) (io.ReadCloser, error) {
	file, err := os.Open(f)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(f, compressSuffix) {
		return file, nil
	}
	zr, err := gzip.NewReader(file)
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("read %s: %w", f, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, file}, nil
}

// reader carries one Read through the files.
type reader struct {
	opts ReadOptions
	w    *recordWriter
	// linesLeft counts down the records a bounded tail still writes; -1
	// means unbounded (no tail, or following).
	linesLeft   int64
	lastRunning time.Time
}

func (r *reader) read(ctx context.Context, path string, files []string, start position) error {
	// Rotated files first: they are complete.
	for i := start.file; i < len(files)-1; i++ {
		p := position{}
		if i == start.file {
			p = start
		}
		if err := r.readRotated(files[i], p); err != nil {
			return err
		}
	}
	var offset int64
	if start.file == len(files)-1 {
		offset = start.offset
	}
	return r.readCurrent(ctx, path, offset)
}

// readRotated writes the records of a rotated file from p on. A file that
// went away meanwhile (removed as excess) is skipped.
func (r *reader) readRotated(f string, p position) error {
	rc, err := openFile(f)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open log %s: %w", f, err)
	}
	defer rc.Close()
	if p.offset > 0 {
		// Only plain files get an offset (see tailStart).
		seeker, ok := rc.(io.Seeker)
		if !ok {
			return fmt.Errorf("seek in log %s: compressed", f)
		}
		if _, err := seeker.Seek(p.offset, io.SeekStart); err != nil {
			return fmt.Errorf("seek in log %s: %w", f, err)
		}
	}
	br := bufio.NewReader(rc)
	for skipped := int64(0); skipped < p.skipLines; {
		_, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue // the same long line goes on
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("read log %s: %w", f, err)
		}
		skipped++
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if werr := r.record(line); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log %s: %w", f, err)
		}
	}
}

// readCurrent writes the records of the current file from offset on and,
// when following, waits for more, moving to the new current file when the
// log is rotated.
func (r *reader) readCurrent(ctx context.Context, path string, offset int64) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && r.opts.Follow {
		f = nil // between rotation and reopen: wait for the new file
	} else if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open log %s: %w", path, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var br *bufio.Reader
	if f != nil {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return fmt.Errorf("seek in log %s: %w", path, err)
		}
		br = bufio.NewReader(f)
	}
	var watcher *fsnotify.Watcher
	defer func() {
		if watcher != nil {
			watcher.Close()
		}
	}()
	var pending []byte
	for {
		if br != nil {
			line, err := br.ReadBytes('\n')
			if err == nil {
				if werr := r.record(append(pending, line...)); werr != nil {
					return werr
				}
				pending = pending[:0]
				continue
			}
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("read log %s: %w", path, err)
			}
			pending = append(pending, line...)
		}
		if !r.opts.Follow {
			// An incomplete last line is still a record (upstream too).
			if len(pending) > 0 {
				return r.record(pending)
			}
			return nil
		}

		// At the end of the file we hold. If the log was rotated, the
		// runtime writes to a new file at path: finish the old one first.
		switched, err := sameFileGone(f, path)
		if err != nil {
			return err
		}
		if switched {
			if br != nil {
				if err := r.drain(br, &pending, path); err != nil {
					return err
				}
				f.Close()
			}
			if f, err = os.Open(path); err != nil {
				return fmt.Errorf("open log %s: %w", path, err)
			}
			br = bufio.NewReader(f)
			continue
		}
		running, err := r.running(ctx)
		if err != nil {
			return err
		}
		if !running {
			if br != nil {
				return r.drain(br, &pending, path)
			}
			return nil
		}
		if watcher == nil {
			// Created lazily: a read that never waits needs none. A failed
			// watch only means polling.
			if w, err := fsnotify.NewWatcher(); err == nil {
				if err := w.Add(filepath.Dir(path)); err == nil {
					watcher = w
					continue // something may have changed before the watch
				}
				w.Close()
			}
		}
		if err := r.wait(ctx, watcher); err != nil {
			return err
		}
	}
}

// sameFileGone reports whether path now names a file other than f: the
// log was rotated and the runtime has reopened it. A nil f (no file yet)
// counts as gone once path exists.
func sameFileGone(f *os.File, path string) (bool, error) {
	now, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // rotated, not reopened yet
	}
	if err != nil {
		return false, fmt.Errorf("stat log %s: %w", path, err)
	}
	if f == nil {
		return true, nil
	}
	held, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat log %s: %w", path, err)
	}
	return !os.SameFile(held, now), nil
}

// drain writes what is left of a file that gets no more writes.
func (r *reader) drain(br *bufio.Reader, pending *[]byte, path string) error {
	for {
		line, err := br.ReadBytes('\n')
		*pending = append(*pending, line...)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read log %s: %w", path, err)
		}
		if len(*pending) > 0 && (err == nil || errors.Is(err, io.EOF)) {
			if werr := r.record(*pending); werr != nil {
				return werr
			}
			*pending = (*pending)[:0]
		}
		if err != nil {
			return nil
		}
	}
}

// running asks Running at most once per pollPeriod; in between the
// container counts as running.
func (r *reader) running(ctx context.Context) (bool, error) {
	now := r.opts.Clock.Now()
	if !r.lastRunning.IsZero() && now.Sub(r.lastRunning) < pollPeriod {
		return true, nil
	}
	r.lastRunning = now
	ok, err := r.opts.Running(ctx)
	if err != nil {
		return false, fmt.Errorf("check whether the container is running: %w", err)
	}
	return ok, nil
}

// wait returns on a change in the log directory, after pollPeriod, or with
// an error when ctx ends.
func (r *reader) wait(ctx context.Context, w *fsnotify.Watcher) error {
	var events chan fsnotify.Event
	var errs chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-events:
	case err := <-errs:
		klog.FromContext(ctx).V(4).Info("Watching container log directory failed; polling", "err", err)
	case <-r.opts.Clock.After(pollPeriod):
	}
	return nil
}

// record parses one CRI log line and writes it.
func (r *reader) record(line []byte) error {
	msg, err := parseCRILog(line)
	if err != nil {
		// One bad line (e.g. cut by a crash) should not hide the rest.
		klog.V(4).Info("Skipping unparsable container log line", "err", err)
		return nil
	}
	if err := r.w.write(msg); err != nil {
		return err
	}
	if r.linesLeft > 0 {
		r.linesLeft--
		if r.linesLeft == 0 {
			return errLimitReached
		}
	}
	return nil
}
