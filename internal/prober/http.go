package prober

import (
	"github.com/berth-dev/berth/internal/container"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
)

// userAgent is what upstream's probes send ("kube-probe/<major>.<minor>");
// applications recognise probes by it.
const userAgent = "kube-probe/1.37"

// maxRedirects is how many same-host redirects a probe follows.
const maxRedirects = 10

// dialer makes probe connections. A short linger keeps the many short
// probe connections out of TIME-WAIT (upstream's ProbeDialer, issue 89898).
func dialer() *net.Dialer {
	return &net.Dialer{
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
			})
		},
	}
}

// newTransports returns the HTTP transport for probes and the one for
// HTTP/2 without TLS (protocol HTTP2 on scheme http). Neither uses a proxy,
// keeps connections or checks certificates, as upstream's.
func newTransports() (h1, h2c *http.Transport) {
	h1 = &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives:   true,
		DisableCompression:  true,
		Proxy:               nil,
		DialContext:         dialer().DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true, // HTTPS negotiates HTTP/2 as upstream's does
	}
	h2c = &http.Transport{
		DisableKeepAlives:  true,
		DisableCompression: true,
		DialContext:        dialer().DialContext,
		Protocols:          new(http.Protocols),
	}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return h1, h2c
}

// http GETs the probe's URL: a status from 200 to 399 is success. Redirects
// are followed on the same host only; a redirect elsewhere ends the probe as
// a success with a warning.
func (pr *prober) http(ctx context.Context, a *v1.HTTPGetAction, t target, timeout time.Duration) (outcome, error) {
	req, err := newHTTPRequest(ctx, a, t)
	if err != nil {
		return outcome{}, err
	}
	transport := pr.h1
	if a.Protocol != nil && *a.Protocol == v1.HTTPProtocolHTTP2 && req.URL.Scheme == "http" {
		transport = pr.h2c
	}
	client := &http.Client{Timeout: timeout, Transport: transport, CheckRedirect: sameHostRedirects}
	res, err := client.Do(req)
	if err != nil {
		return outcome{result: failure, output: err.Error()}, nil
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxOutput))
	if err != nil {
		return outcome{result: failure, output: fmt.Sprintf("read response: %v", err)}, nil
	}
	switch code := res.StatusCode; {
	case code >= http.StatusOK && code < http.StatusMultipleChoices:
		return outcome{result: success, output: clip(body)}, nil
	case code >= http.StatusMultipleChoices && code < http.StatusBadRequest:
		return outcome{result: success, warning: true, output: "Probe terminated redirects, Response body: " + clip(body)}, nil
	default:
		// Upstream keeps the body out of the message (issue 99425).
		return outcome{result: failure, output: fmt.Sprintf("HTTP probe failed with statuscode: %d", code)}, nil
	}
}

// newHTTPRequest builds the probe request; the host defaults to the pod IP.
func newHTTPRequest(ctx context.Context, a *v1.HTTPGetAction, t target) (*http.Request, error) {
	return container.HTTPGetRequest(ctx, a, t.container, t.podIP, userAgent)
}

// sameHostRedirects follows redirects on the probed host only.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}
