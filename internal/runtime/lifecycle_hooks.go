package runtime

import (
	"github.com/berth-dev/berth/internal/container"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Waiting reason of a container whose postStart hook failed (upstream
// ErrPostStartHook); the container was killed.
const ReasonPostStartHookError = "PostStartHookError"

// killReasonFailedPostStartHook is the kill reason after a failed postStart.
const killReasonFailedPostStartHook = "FailedPostStartHook"

// hookUserAgent is what upstream's kubelet of the version berth reports
// sends with httpGet hooks.
const hookUserAgent = "kube-lifecycle/1.37"

// maxHookResponseBody is how much of a response is read (and discarded) so
// that the connection can be reused.
const maxHookResponseBody = 10 << 10

// httpDoer sends an HTTP request; *http.Client is one.
type httpDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

// execer runs a command in a container; the CRI runtime service is one.
type execer interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error)
}

// hookRunner holds what lifecycle hooks need beyond the Manager.
type hookRunner struct {
	http httpDoer
}

// newHookHTTPClient is upstream's client for httpGet hooks: certificates
// are not checked (the pod's IP is not in them), and redirects are followed
// only on the same host.
func newHookHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
}

// hookCall is one run of a hook for a container.
type hookCall struct {
	id          podIdentity
	pod         *v1.Pod // for messages; rebuilt from id for an orphan
	spec        *v1.Container
	containerID string
	handler     *v1.LifecycleHandler
	exec        execer
	// timeout bounds an exec hook; 0 means none (postStart, as upstream).
	timeout time.Duration
	// host is the address of httpGet hooks that name none: the pod's IP.
	host func(ctx context.Context) (string, error)
}

// runHook runs a lifecycle hook (upstream lifecycle.handlerRunner.Run) and
// returns, on failure, the upstream message describing it. The message may
// quote the hook's output: it goes into the container's status and logs,
// not into events.
func (m *Manager) runHook(ctx context.Context, h hookCall) (string, error) {
	logger := klog.FromContext(ctx)
	c := h.spec
	switch {
	case h.handler.Exec != nil:
		cmd := h.handler.Exec.Command
		stdout, stderr, err := h.exec.ExecSync(ctx, h.containerID, cmd, h.timeout)
		if err == nil {
			return "", nil
		}
		out := string(append(stdout, stderr...))
		logger.V(1).Info("Exec lifecycle hook for Container in Pod failed", "execCommand", cmd, "containerName", c.Name, "pod", klog.KObj(h.pod), "message", out, "err", err)
		return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", cmd, c.Name, podDesc(h.pod), err, out), err
	case h.handler.HTTPGet != nil:
		err := m.runHTTPHook(ctx, h)
		if err == nil {
			return "", nil
		}
		logger.V(1).Info("HTTP lifecycle hook for Container in Pod failed", "path", h.handler.HTTPGet.Path, "containerName", c.Name, "pod", klog.KObj(h.pod), "err", err)
		return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.handler.HTTPGet.Path, c.Name, podDesc(h.pod), err), err
	case h.handler.Sleep != nil:
		select {
		case <-m.clock.After(time.Duration(h.handler.Sleep.Seconds) * time.Second):
			return "", nil
		case <-ctx.Done():
			err := errors.New("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v", h.handler.Sleep.Seconds, c.Name, podDesc(h.pod), err), err
		}
	}
	err := fmt.Errorf("invalid handler: %v", h.handler)
	return fmt.Sprintf("Cannot run handler: %v", err), err
}

// runHTTPHook sends the GET of an httpGet hook. As upstream, only a failure
// to get a response fails the hook, whatever the status code; an HTTPS
// request answered in plain HTTP is retried in HTTP.
func (m *Manager) runHTTPHook(ctx context.Context, h hookCall) error {
	action := h.handler.HTTPGet
	host := action.Host
	if host == "" {
		var err error
		if host, err = h.host(ctx); err != nil {
			return err
		}
	}
	req, err := hookRequest(ctx, action, h.spec, host)
	if err != nil {
		return err
	}
	resp, err := m.hooks.http.Do(req)
	discardBody(resp)
	if !isHTTPResponseToHTTPS(err) {
		return err
	}
	retry := req.Clone(ctx)
	retry.URL.Scheme = "http"
	retry.Header.Del("Authorization")
	resp, retryErr := m.hooks.http.Do(retry)
	discardBody(resp)
	if retryErr != nil {
		return err
	}
	m.podEvent(h.id, v1.EventTypeWarning, eventLifecycleHTTPFallback,
		fmt.Sprintf("request to HTTPS lifecycle hook %s got HTTP response, retry with HTTP succeeded", retry.URL.Host))
	return nil
}

// hookRequest builds the request of an httpGet hook (upstream
// NewRequestForHTTPGetAction); host is the pod's (or node's) address.
func hookRequest(ctx context.Context, action *v1.HTTPGetAction, c *v1.Container, host string) (*http.Request, error) {
	return container.HTTPGetRequest(ctx, action, c, host, hookUserAgent)
}

func discardBody(resp *http.Response) {
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	if resp.ContentLength <= maxHookResponseBody {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHookResponseBody))
	}
}

func isHTTPResponseToHTTPS(err error) bool {
	var urlErr *url.Error
	return err != nil && errors.As(err, &urlErr) && strings.Contains(urlErr.Err.Error(), "server gave HTTP response to HTTPS client")
}
