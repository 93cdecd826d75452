package prober

import (
	"context"
	"errors"
	"time"

	utilexec "k8s.io/utils/exec"
)

// CRIExec is the ExecSync of a CRI runtime service (k8s.io/cri-api's
// RuntimeService, as cri-client implements it), which reports a non-zero
// exit as an error.
type CRIExec interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error)
}

// ExecFromCRI adapts a CRI runtime service to Exec: the k8s.io/utils/exec
// ExitError that cri-client returns for a non-zero exit becomes exitCode;
// its timeouts (ErrCommandTimedOut) pass through as errors.
func ExecFromCRI(rs CRIExec) Exec { return criExec{rs} }

type criExec struct{ rs CRIExec }

func (c criExec) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, []byte, int32, error) {
	stdout, stderr, err := c.rs.ExecSync(ctx, containerID, cmd, timeout)
	var exit utilexec.ExitError
	if errors.As(err, &exit) {
		return stdout, stderr, int32(exit.ExitStatus()), nil
	}
	return stdout, stderr, 0, err
}
