package logs

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// rec formats one CRI log record written i seconds after t0.
func rec(i int, stream, tag, msg string) string {
	return fmt.Sprintf("%s %s %s %s\n", t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), stream, tag, msg)
}

func writeGzip(t *testing.T, path, content string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(content))
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
}

// rotatedLog lays out a log rotated twice: lines 1-2 compressed, 3-4 in
// the newest rotated file, 5-6 current, with a partial record in 5.
func rotatedLog(t *testing.T) string {
	dir := t.TempDir()
	log := filepath.Join(dir, "0.log")
	writeGzip(t, log+".20240102-030400.gz", rec(1, "stdout", "F", "one")+rec(2, "stderr", "F", "two"))
	writeFile(t, log+".20240102-030410", rec(3, "stdout", "F", "three")+rec(4, "stdout", "F", "four"))
	writeFile(t, log, rec(5, "stdout", "P", "fi")+rec(5, "stdout", "F", "ve")+rec(6, "stderr", "F", "six"))
	// Leftover of an interrupted compression: not part of the log.
	writeFile(t, log+".20240102-030420.gz.tmp", "garbage")
	return log
}

func TestRead(t *testing.T) {
	tests := []struct {
		name         string
		opts         ReadOptions
		noStderr     bool
		want, wantEr string
	}{
		{name: "all across rotated files", want: "one\nthree\nfour\nfive\n", wantEr: "two\nsix\n"},
		{name: "tail within current file", opts: ReadOptions{TailLines: ptr.To[int64](1)}, wantEr: "six\n"},
		{name: "tail spans plain rotated file", opts: ReadOptions{TailLines: ptr.To[int64](4)}, want: "four\nfive\n", wantEr: "six\n"},
		{name: "tail spans compressed file", opts: ReadOptions{TailLines: ptr.To[int64](6)}, want: "three\nfour\nfive\n", wantEr: "two\nsix\n"},
		{name: "tail beyond start", opts: ReadOptions{TailLines: ptr.To[int64](100)}, want: "one\nthree\nfour\nfive\n", wantEr: "two\nsix\n"},
		{name: "tail zero", opts: ReadOptions{TailLines: ptr.To[int64](0)}},
		{name: "since", opts: ReadOptions{Since: t0.Add(4 * time.Second)}, want: "four\nfive\n", wantEr: "six\n"},
		{name: "limit bytes cuts a line", opts: ReadOptions{LimitBytes: ptr.To[int64](6)}, want: "one\n", wantEr: "tw"},
		{name: "stdout only", noStderr: true, want: "one\nthree\nfour\nfive\n"},
		{
			name: "timestamps once per joined line", opts: ReadOptions{Timestamps: true, Since: t0.Add(5 * time.Second)},
			want:   "2024-01-02T03:04:10.000000000Z five\n",
			wantEr: "2024-01-02T03:04:11.000000000Z six\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := rotatedLog(t)
			var out, errOut bytes.Buffer
			var stderr io.Writer = &errOut
			if tt.noStderr {
				stderr = nil
			}
			if err := Read(context.Background(), log, tt.opts, &out, stderr); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want || errOut.String() != tt.wantEr {
				t.Errorf("stdout %q stderr %q, want %q and %q", out.String(), errOut.String(), tt.want, tt.wantEr)
			}
		})
	}
}

func TestReadIncompleteLastLineAndBadLines(t *testing.T) {
	log := filepath.Join(t.TempDir(), "0.log")
	content := rec(1, "stdout", "F", "ok") + "not a cri line\n" + strings.TrimSuffix(rec(2, "stdout", "F", "cut"), "\n")
	writeFile(t, log, content)
	var out bytes.Buffer
	if err := Read(context.Background(), log, ReadOptions{}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "ok\ncut" {
		t.Errorf("got %q", out.String())
	}
}

func TestTailOffsetLongFile(t *testing.T) {
	// More than one read block, to cross block boundaries.
	log := filepath.Join(t.TempDir(), "0.log")
	var b strings.Builder
	for i := range 5000 {
		b.WriteString(rec(i, "stdout", "F", fmt.Sprintf("line %d", i)))
	}
	writeFile(t, log, b.String())
	var out bytes.Buffer
	if err := Read(context.Background(), log, ReadOptions{TailLines: ptr.To[int64](2)}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "line 4998\nline 4999\n" {
		t.Errorf("got %q", out.String())
	}
}

// notifyBuffer is a goroutine-safe buffer that tells of every write.
type notifyBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (b *notifyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (b *notifyBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until out holds want, stepping the clock so that a reader
// polling rather than watching still gets on.
func waitFor(t *testing.T, out *notifyBuffer, clk *clocktesting.FakeClock, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for out.String() != want {
		clk.Step(pollPeriod)
		select {
		case <-out.wrote:
		case <-deadline:
			t.Fatalf("output %q, want %q", out.String(), want)
		}
	}
}

func TestReadFollowAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "0.log")
	writeFile(t, log, rec(1, "stdout", "F", "one"))
	clk := clocktesting.NewFakeClock(t0)
	var running atomic.Bool
	running.Store(true)
	out := &notifyBuffer{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), log, ReadOptions{
			Follow:  true,
			Running: func(context.Context) (bool, error) { return running.Load(), nil },
			Clock:   clk,
		}, out, out)
	}()
	waitFor(t, out, clk, "one\n")

	appendFile(t, log, rec(2, "stdout", "F", "two"))
	waitFor(t, out, clk, "one\ntwo\n")

	// Rotate as the manager does: rename, then the runtime writes a new
	// file. A last record lands in the old file before the reopen.
	appendFile(t, log, rec(3, "stdout", "F", "three"))
	if err := os.Rename(log, log+".20240102-030410"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, log, rec(4, "stdout", "F", "four"))
	waitFor(t, out, clk, "one\ntwo\nthree\nfour\n")

	// The container writes a last record and stops: the record is still
	// written, then Read returns.
	appendFile(t, log, rec(5, "stderr", "F", "five"))
	running.Store(false)
	for {
		clk.Step(pollPeriod)
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if got, want := out.String(), "one\ntwo\nthree\nfour\nfive\n"; got != want {
				t.Fatalf("output %q, want %q", got, want)
			}
			return
		case <-out.wrote:
		case <-time.After(10 * time.Second):
			t.Fatal("Read did not return after the container stopped")
		}
	}
}

func TestReadFollowStopsOnCancel(t *testing.T) {
	log := filepath.Join(t.TempDir(), "0.log")
	writeFile(t, log, rec(1, "stdout", "F", "one"))
	ctx, cancel := context.WithCancel(context.Background())
	out := &notifyBuffer{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- Read(ctx, log, ReadOptions{
			Follow:    true,
			TailLines: ptr.To[int64](0),
			Running:   func(context.Context) (bool, error) { return true, nil },
		}, out, out)
	}()
	cancel()
	if err := <-done; err == nil {
		t.Error("cancelled follow returned no error")
	}
	if out.String() != "" {
		t.Errorf("tail 0 wrote %q", out.String())
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}
