package runtime

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Upstream limits on what a termination message may carry.
const (
	maxTerminationMessageLength    = 4096 // from the file
	maxTerminationMessageLogLength = 2048 // from the log, FallbackToLogsOnError
	maxTerminationMessageLogLines  = 80
	// logTailWindow is how much of the log end is read to find the last
	// lines; the message keeps only the last 2 KiB of them anyway.
	logTailWindow = 64 << 10
)

// terminationMessage is what an exited container left behind to explain
// itself: the content of its termination message file or, with
// FallbackToLogsOnError and a failure, the end of its log.
func terminationMessage(s *runtimeapi.ContainerStatus) string {
	info := parseAnnotations(s.GetAnnotations())
	// A container that could not even start has no logs to fall back to.
	fallback := info.terminationMessagePolicy == v1.TerminationMessageFallbackToLogsOnError &&
		s.GetExitCode() != 0 && s.GetReason() != "ContainerCannotRun"
	msg, checkLogs := readTerminationFile(s, info.terminationMessagePath, fallback)
	if checkLogs {
		tail, err := tailCRILog(s.GetLogPath(), maxTerminationMessageLogLines, maxTerminationMessageLogLength)
		if err != nil {
			return fmt.Sprintf("Error on reading termination message from logs: %v", err)
		}
		msg = tail
	}
	return msg
}

// readTerminationFile reads the host file mounted at path in the
// container. It reports whether the log should be read instead.
func readTerminationFile(s *runtimeapi.ContainerStatus, path string, fallback bool) (string, bool) {
	if path == "" {
		return "", fallback
	}
	for _, m := range s.GetMounts() {
		if m.GetContainerPath() != path {
			continue
		}
		data, err := readTail(m.GetHostPath(), maxTerminationMessageLength)
		if os.IsNotExist(err) {
			return "", fallback
		}
		if err != nil {
			return fmt.Sprintf("Error on reading termination log %s: %v", m.GetHostPath(), err), false
		}
		return string(data), fallback && len(data) == 0
	}
	return "", fallback
}

// readTail reads at most n bytes from the end of a file. It reports
// whether it started mid-file through a nil error and offset > 0.
func readTail(path string, n int64) ([]byte, error) {
	data, _, err := readTailOffset(path, n)
	return data, err
}

func readTailOffset(path string, n int64) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	offset := max(fi.Size()-n, 0)
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(io.LimitReader(f, n))
	return data, offset, err
}

// tailCRILog returns the content of the last maxLines lines of a log in
// the CRI format ("<time> <stream> <P|F> <content>"), at most maxBytes of
// it, the end kept.
func tailCRILog(path string, maxLines, maxBytes int) (string, error) {
	data, offset, err := readTailOffset(path, logTailWindow)
	if err != nil {
		return "", err
	}
	if offset > 0 {
		// The window starts mid-line: drop that fragment.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	var lines []string
	var partial strings.Builder
	for _, raw := range strings.Split(string(data), "\n") {
		fields := strings.SplitN(raw, " ", 4)
		if len(fields) < 3 {
			continue
		}
		content := ""
		if len(fields) == 4 {
			content = fields[3]
		}
		partial.WriteString(content)
		if fields[2] == "P" {
			continue
		}
		lines = append(lines, partial.String()+"\n")
		partial.Reset()
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	out := strings.Join(lines, "")
	if len(out) > maxBytes {
		out = out[len(out)-maxBytes:]
	}
	return out, nil
}
