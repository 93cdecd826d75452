package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/utils/clock"
)

// ErrUnreachable is wrapped by errors from calls that could not reach the
// container runtime at all.
var ErrUnreachable = errors.New("container runtime unreachable")

// unreachableError says which endpoint could not be reached, and why.
type unreachableError struct {
	endpoint string
	err      error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("container runtime unreachable at %s: %v", e.endpoint, e.err)
}
func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// retryConnectAfter spaces connection attempts while the runtime is down,
// so that calls in between fail at once with the last reason.
const retryConnectAfter = time.Second

// connection connects to the CRI runtime and image services on first use
// and again after failures: berth starts, and keeps serving, while the
// runtime is down. Once connected, gRPC reconnects by itself.
type connection struct {
	runtimeEndpoint string
	imageEndpoint   string
	timeout         time.Duration
	clock           clock.Clock
	// wrapRuntime and wrapImage, if set, wrap the services once connected
	// (berth instruments them with metrics).
	wrapRuntime func(internalapi.RuntimeService) internalapi.RuntimeService
	wrapImage   func(internalapi.ImageManagerService) internalapi.ImageManagerService

	mu      sync.Mutex
	rs      internalapi.RuntimeService
	is      internalapi.ImageManagerService
	lastErr error
	lastTry time.Time
}

func (c *connection) services(ctx context.Context) (internalapi.RuntimeService, internalapi.ImageManagerService, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rs != nil && c.is != nil {
		return c.rs, c.is, nil
	}
	if c.lastErr != nil && c.clock.Since(c.lastTry) < retryConnectAfter {
		return nil, nil, c.lastErr
	}
	c.lastTry = c.clock.Now()
	c.lastErr = nil
	if c.rs == nil {
		if err := probe(ctx, c.runtimeEndpoint); err != nil {
			c.lastErr = &unreachableError{endpoint: c.runtimeEndpoint, err: err}
			return nil, nil, c.lastErr
		}
		rs, err := remote.NewRemoteRuntimeServiceBuilder().
			WithEndpoint(c.runtimeEndpoint).
			WithConnectionTimeout(c.timeout).
			WithTracerProvider(nil).
			Build(ctx)
		if err != nil {
			c.lastErr = &unreachableError{endpoint: c.runtimeEndpoint, err: err}
			return nil, nil, c.lastErr
		}
		if c.wrapRuntime != nil {
			rs = c.wrapRuntime(rs)
		}
		c.rs = rs
	}
	if c.is == nil {
		if err := probe(ctx, c.imageEndpoint); err != nil {
			c.lastErr = &unreachableError{endpoint: c.imageEndpoint, err: err}
			return nil, nil, c.lastErr
		}
		is, err := remote.NewRemoteImageServiceBuilder().
			WithEndpoint(c.imageEndpoint).
			WithConnectionTimeout(c.timeout).
			WithTracerProvider(nil).
			Build(ctx)
		if err != nil {
			c.lastErr = &unreachableError{endpoint: c.imageEndpoint, err: err}
			return nil, nil, c.lastErr
		}
		if c.wrapImage != nil {
			is = c.wrapImage(is)
		}
		c.is = is
	}
	return c.rs, c.is, nil
}

// probe checks that a unix socket endpoint accepts connections before a
// gRPC client is built for it: the CRI client builder leaks its connection
// when the runtime is down, and this is by far the common way to be down.
func probe(ctx context.Context, endpoint string) error {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		if strings.Contains(endpoint, "://") {
			return nil // other transports: let the builder find out
		}
		path = endpoint
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return err
	}
	return conn.Close()
}

// wrapUnavailable marks errors from a call that found the runtime gone.
func wrapUnavailable(endpoint string, err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.Unavailable {
		return &unreachableError{endpoint: endpoint, err: err}
	}
	return err
}
