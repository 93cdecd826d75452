package runtime

import (
	"context"
	"fmt"
	"io"
	"os"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/logs"
)

// Upstream limits on what a termination message may carry.
const (
	maxTerminationMessageLength    = 4096 // from the file
	maxTerminationMessageLogLength = 2048 // from the log, FallbackToLogsOnError
	maxTerminationMessageLogLines  = 80
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

// readTail reads at most n bytes from the end of a file.
func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(max(fi.Size()-n, 0), io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, n))
}

// tailCRILog returns the end of a container's log as upstream's
// readLastStringFromContainerLogs does: the last maxLines records (across
// rotated files), at most the last maxBytes of their content. A partial
// record keeps its missing newline: "echo -n DONE" gives "DONE".
func tailCRILog(path string, maxLines, maxBytes int) (string, error) {
	lines := int64(maxLines)
	w := &lastBytes{n: maxBytes}
	if err := logs.Read(context.Background(), path, logs.ReadOptions{TailLines: &lines}, w, w); err != nil {
		return "", err
	}
	return string(w.b), nil
}

// lastBytes keeps the last n bytes written to it.
type lastBytes struct {
	n int
	b []byte
}

func (l *lastBytes) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if len(l.b) > 2*l.n {
		l.b = append([]byte(nil), l.b[len(l.b)-l.n:]...)
	}
	if len(l.b) > l.n {
		l.b = l.b[len(l.b)-l.n:]
	}
	return len(p), nil
}
