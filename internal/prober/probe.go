package prober

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	remote "k8s.io/cri-client/pkg"
)

// outcome is what one probe found. A warning is a success worth an event
// (an HTTP redirect to another host that was not followed).
type outcome struct {
	result  result
	warning bool
	output  string
}

// maxOutput bounds the probe output kept for events, as upstream's 10 KiB.
const maxOutput = 10 << 10

// target is where a probe goes: the container and its pod's address.
type target struct {
	containerID string
	container   *v1.Container
	podIP       string
}

// run performs probe p once. An error means the probe could not be made
// (bad port name, runtime unreachable): it says nothing about the
// container. Failures of the container itself (refused, timed out, bad
// status, non-zero exit) are a failure outcome, not an error.
func (pr *prober) run(ctx context.Context, p *v1.Probe, t target, timeout time.Duration) (outcome, error) {
	switch {
	case p.Exec != nil:
		return pr.exec(ctx, p.Exec, t, timeout)
	case p.HTTPGet != nil:
		return pr.http(ctx, p.HTTPGet, t, timeout)
	case p.TCPSocket != nil:
		return pr.tcp(ctx, p.TCPSocket, t, timeout)
	case p.GRPC != nil:
		return pr.grpc(ctx, p.GRPC, t, timeout)
	}
	return outcome{}, errors.New("probe has no handler")
}

// exec runs the command in the container; exit code 0 is success. The
// command sees only the container's literal env values, as upstream's.
func (pr *prober) exec(ctx context.Context, a *v1.ExecAction, t target, timeout time.Duration) (outcome, error) {
	if pr.execer == nil {
		return outcome{}, errors.New("exec probes are not supported: no runtime to exec in")
	}
	cmd := expandStatic(a.Command, t.container.Env)
	stdout, stderr, code, err := pr.execer.ExecSync(ctx, t.containerID, cmd, timeout)
	if err != nil {
		if isTimeout(err) {
			return outcome{result: failure, output: fmt.Sprintf("command %q timed out after %s", strings.Join(cmd, " "), timeout)}, nil
		}
		return outcome{}, fmt.Errorf("exec in container: %w", err)
	}
	// Both streams, as upstream's combined output.
	out := make([]byte, 0, len(stdout)+len(stderr))
	out = append(append(out, stdout...), stderr...)
	if code != 0 {
		return outcome{result: failure, output: clip(out)}, nil
	}
	return outcome{result: success, output: clip(out)}, nil
}

// clip bounds probe output kept for events.
func clip(b []byte) string {
	if len(b) > maxOutput {
		return strings.ToValidUTF8(string(b[:maxOutput]), "")
	}
	return string(b)
}

func isTimeout(err error) bool {
	return errors.Is(err, remote.ErrCommandTimedOut) || errors.Is(err, context.DeadlineExceeded) ||
		grpcstatus.Code(err) == codes.DeadlineExceeded
}
