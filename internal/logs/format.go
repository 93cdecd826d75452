package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// message is one parsed record.
type message struct {
	timestamp time.Time
	stream    runtimeapi.LogStreamType
	log       []byte // ends in '\n' unless partial
}

// parseCRILog parses "<time> <stream> <tags> <message>". A partial (P)
// record loses its trailing newline, so that it joins the next record.
func parseCRILog(line []byte) (message, error) {
	var msg message
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return msg, errors.New("no timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return msg, fmt.Errorf("timestamp: %w", err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return msg, errors.New("no stream")
	}
	msg.stream = runtimeapi.LogStreamType(stream)
	if msg.stream != runtimeapi.Stdout && msg.stream != runtimeapi.Stderr {
		return msg, fmt.Errorf("unknown stream %q", stream)
	}
	tags, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return msg, errors.New("no tags")
	}
	tag, _, _ := bytes.Cut(tags, []byte(runtimeapi.LogTagDelimiter))
	if runtimeapi.LogTag(tag) == runtimeapi.LogTagPartial {
		content = bytes.TrimSuffix(content, []byte{'\n'})
	}
	msg.timestamp = t
	msg.log = content
	return msg, nil
}

// recordWriter applies Since, Timestamps and LimitBytes.
type recordWriter struct {
	stdout, stderr io.Writer
	since          time.Time
	timestamps     bool
	remain         int64
	// atLineStart is false after a partial record: its continuation gets
	// no timestamp of its own.
	atLineStart bool
}

func newRecordWriter(stdout, stderr io.Writer, opts ReadOptions) *recordWriter {
	w := &recordWriter{stdout: stdout, stderr: stderr, since: opts.Since, timestamps: opts.Timestamps, remain: math.MaxInt64, atLineStart: true}
	if opts.LimitBytes != nil {
		w.remain = *opts.LimitBytes
	}
	return w
}

// timestampFormatOut is the fixed-width RFC 3339 format of timestamps in
// the output (upstream's).
const timestampFormatOut = "2006-01-02T15:04:05.000000000Z07:00"

func (w *recordWriter) write(msg message) error {
	if msg.timestamp.Before(w.since) {
		return nil
	}
	out := w.stdout
	if msg.stream == runtimeapi.Stderr {
		out = w.stderr
	}
	startsLine := w.atLineStart
	w.atLineStart = len(msg.log) == 0 || msg.log[len(msg.log)-1] == '\n'
	if out == nil {
		return nil
	}
	line := msg.log
	if w.timestamps && startsLine {
		line = append([]byte(msg.timestamp.Format(timestampFormatOut)+" "), line...)
	}
	if int64(len(line)) > w.remain {
		line = line[:w.remain]
	}
	n, err := out.Write(line)
	w.remain -= int64(n)
	if err != nil {
		return err
	}
	if w.remain <= 0 {
		return errLimitReached
	}
	return nil
}
