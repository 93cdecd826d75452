package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FuzzParseCRILog: any line parses or is refused, never panics; what
// parses is a stream berth knows and a message cut from the line.
func FuzzParseCRILog(f *testing.F) {
	for _, s := range []string{
		rec(0, "stdout", "F", "hello"),
		rec(1, "stderr", "P", "part"),
		"2024-01-02T03:04:05.123456789+01:00 stdout F:x multi tag\n",
		"2024-01-02T03:04:05Z stdout F ",
		"2024-01-02T03:04:05Z stdin F x",
		"no timestamp",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		msg, err := parseCRILog(line)
		if err != nil {
			return
		}
		if msg.stream != runtimeapi.Stdout && msg.stream != runtimeapi.Stderr {
			t.Fatalf("stream %q accepted", msg.stream)
		}
		if !bytes.Contains(line, msg.log) {
			t.Fatalf("message %q is not part of the line %q", msg.log, line)
		}
	})
}

// FuzzRead: a log file of any content is read to the end (tail, limit,
// timestamps as a client may ask), never panics, and never writes more
// than limitBytes.
func FuzzRead(f *testing.F) {
	f.Add([]byte(rec(0, "stdout", "F", "a")+rec(1, "stderr", "P", "b")+rec(2, "stderr", "F", "c")), int64(2), int64(100), true)
	f.Add([]byte(rec(0, "stdout", "P", "a")+"garbage\n"+rec(1, "stdout", "F", "b")), int64(-1), int64(1), false)
	f.Add([]byte("\n\n\n"), int64(0), int64(0), false)
	f.Add([]byte(rec(0, "stdout", "F", "no newline at the end")[:40]), int64(1), int64(-1), true)
	f.Fuzz(func(t *testing.T, content []byte, tail, limit int64, timestamps bool) {
		path := filepath.Join(t.TempDir(), "0.log")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		opts := ReadOptions{Timestamps: timestamps}
		if tail >= 0 {
			opts.TailLines = &tail
		}
		if limit > 0 {
			opts.LimitBytes = &limit
		}
		var out bytes.Buffer
		if err := Read(context.Background(), path, opts, &out, &out); err != nil {
			t.Fatalf("Read: %v", err)
		}
		if limit > 0 && int64(out.Len()) > limit {
			t.Fatalf("wrote %d bytes, limit %d", out.Len(), limit)
		}
	})
}
