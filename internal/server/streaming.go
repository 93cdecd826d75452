package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/proxy"
	translator "k8s.io/apiserver/pkg/util/proxy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
)

// streaming serves /exec, /attach, /portForward and /run through the
// runtime's CRI streaming server: berth asks the runtime for a URL and
// proxies the client's upgraded connection (SPDY, or WebSocket) to it, as
// upstream's kubelet does. A WebSocket client speaking the v5 remote
// command protocol (or port-forward tunneling) is translated to SPDY on
// the way, since container runtimes speak SPDY.
type streaming struct {
	pods       PodLister
	runtime    RuntimePods
	cri        Streamer
	runTimeout time.Duration
}

// defaultRunTimeout is upstream's default runtimeRequestTimeout.
const defaultRunTimeout = 2 * time.Minute

func (s *streaming) ready() bool { return s.pods != nil && s.runtime != nil && s.cri != nil }

// streamOptions are the stdin/stdout/stderr/tty query parameters.
type streamOptions struct {
	stdin, stdout, stderr, tty bool
}

// parseStreamOptions reads the remote command options as upstream's
// remotecommand.NewOptions does ("1" is true).
func parseStreamOptions(q url.Values) (streamOptions, error) {
	o := streamOptions{
		stdin:  q.Get(v1.ExecStdinParam) == "1",
		stdout: q.Get(v1.ExecStdoutParam) == "1",
		stderr: q.Get(v1.ExecStderrParam) == "1",
		tty:    q.Get(v1.ExecTTYParam) == "1",
	}
	if o.tty && o.stderr {
		o.stderr = false // a terminal merges stderr into stdout
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

// pod finds the request's pod; a UID in the path must match.
func (s *streaming) pod(w http.ResponseWriter, r *http.Request) *v1.Pod {
	pod := findPod(s.pods, r.PathValue("ns"), r.PathValue("pod"))
	if pod == nil {
		http.Error(w, "pod does not exist", http.StatusNotFound)
		return nil
	}
	if uid := r.PathValue("uid"); uid != "" && types.UID(uid) != pod.UID {
		http.Error(w, "pod not found", http.StatusNotFound)
		return nil
	}
	return pod
}

// runningContainer returns the runtime ID of the pod's running container
// by that name.
func (s *streaming) runningContainer(ctx context.Context, pod *v1.Pod, name string) (string, error) {
	st, err := s.runtime.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace)
	if err != nil {
		return "", err
	}
	for _, c := range st.ContainersNamed(name) {
		if c.State == container.StateRunning {
			return c.ID, nil
		}
	}
	return "", notFoundError(fmt.Sprintf("container not found (%q)", name))
}

func (s *streaming) exec(w http.ResponseWriter, r *http.Request) {
	opts, err := parseStreamOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod := s.pod(w, r)
	if pod == nil {
		return
	}
	ctx := r.Context()
	id, err := s.runningContainer(ctx, pod, r.PathValue("container"))
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	resp, err := s.cri.Exec(ctx, &runtimeapi.ExecRequest{
		ContainerId: id,
		Cmd:         r.URL.Query()[v1.ExecCommandParam],
		Tty:         opts.tty,
		Stdin:       opts.stdin,
		Stdout:      opts.stdout,
		Stderr:      opts.stderr,
	})
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	proxyStream(w, r, resp.GetUrl(), &opts)
}

func (s *streaming) attach(w http.ResponseWriter, r *http.Request) {
	opts, err := parseStreamOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod := s.pod(w, r)
	if pod == nil {
		return
	}
	name := r.PathValue("container")
	// Whether the process has a terminal was fixed when it started: the
	// spec says, not the client.
	spec := container.FindContainer(pod, name)
	if spec == nil {
		http.Error(w, fmt.Sprintf("container %s not found in pod %s", name, pod.Name), http.StatusNotFound)
		return
	}
	opts.tty = spec.TTY
	ctx := r.Context()
	id, err := s.runningContainer(ctx, pod, name)
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	resp, err := s.cri.Attach(ctx, &runtimeapi.AttachRequest{
		ContainerId: id,
		Stdin:       opts.stdin,
		Stdout:      opts.stdout,
		Stderr:      opts.stderr,
		Tty:         opts.tty,
	})
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	proxyStream(w, r, resp.GetUrl(), &opts)
}

func (s *streaming) portForward(w http.ResponseWriter, r *http.Request) {
	// A WebSocket client tunneling SPDY names its ports inside the tunnel;
	// a plain WebSocket one names them in the query; SPDY ones in streams.
	tunnel := wsstream.IsWebSocketRequestWithTunnelingProtocol(r)
	var ports []int32
	if !tunnel && wsstream.IsWebSocketRequest(r) {
		var err error
		if ports, err = parsePorts(r.URL.Query()["port"]); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	pod := s.pod(w, r)
	if pod == nil {
		return
	}
	ctx := r.Context()
	st, err := s.runtime.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace)
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	sb := st.LatestSandbox()
	if sb == nil {
		writeRuntimeError(w, notFoundError(fmt.Sprintf("failed to find sandboxID for pod %s/%s", pod.Namespace, pod.Name)))
		return
	}
	resp, err := s.cri.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: sb.ID, Port: ports})
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	u, err := url.Parse(resp.GetUrl())
	if err != nil {
		writeRuntimeError(w, fmt.Errorf("runtime streaming URL %q: %w", resp.GetUrl(), err))
		return
	}
	var h http.Handler = proxy.NewUpgradeAwareHandler(u, nil, false, true, responder{})
	if tunnel {
		h = translator.NewTunnelingHandler(h)
	}
	h.ServeHTTP(w, r)
}

// parsePorts reads the port parameters of a WebSocket port-forward.
func parsePorts(values []string) ([]int32, error) {
	if len(values) == 0 {
		return nil, errors.New(`query parameter "port" is required`)
	}
	var ports []int32
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("unable to parse %q as a port", v)
			}
			ports = append(ports, int32(n))
		}
	}
	return ports, nil
}

// run executes a command and returns its output: /run takes the command
// space-separated in "cmd" (legacy, unlike exec).
func (s *streaming) run(w http.ResponseWriter, r *http.Request) {
	pod := s.pod(w, r)
	if pod == nil {
		return
	}
	ctx := r.Context()
	id, err := s.runningContainer(ctx, pod, r.PathValue("container"))
	if err != nil {
		writeRuntimeError(w, err)
		return
	}
	cmd := strings.Split(r.URL.Query().Get("cmd"), " ")
	// A command that does not end is killed by the runtime rather than
	// holding the runtime's exec and this request for hours.
	stdout, stderr, err := s.cri.ExecSync(ctx, id, cmd, s.runTimeout)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(stdout, stderr...))
}

// proxyStream proxies an exec or attach connection to the runtime.
func proxyStream(w http.ResponseWriter, r *http.Request, location string, opts *streamOptions) {
	u, err := url.Parse(location)
	if err != nil {
		writeRuntimeError(w, fmt.Errorf("runtime streaming URL %q: %w", location, err))
		return
	}
	var h http.Handler = proxy.NewUpgradeAwareHandler(u, nil, false, true, responder{})
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		h = translator.NewStreamTranslatorHandler(u, nil, 0, translator.Options{
			Stdin: opts.stdin, Stdout: opts.stdout, Stderr: opts.stderr, Tty: opts.tty,
		})
	}
	h.ServeHTTP(w, r)
}

// responder reports a failed proxy connection: a client's mistake (such
// as no upgrade) with its status, anything else as 500.
type responder struct{}

func (responder) Error(w http.ResponseWriter, r *http.Request, err error) {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code >= 400 && status.Status().Code < 500 {
		http.Error(w, err.Error(), int(status.Status().Code))
		return
	}
	klog.FromContext(r.Context()).Error(err, "Proxying a streaming request to the runtime failed", "path", r.URL.Path)
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// notFoundError is a CRI-style NotFound, answered with 404.
func notFoundError(msg string) error { return grpcstatus.Error(codes.NotFound, msg) }

// writeRuntimeError answers as upstream's streaming.WriteError: the
// runtime's NotFound is 404, ResourceExhausted 429, anything else 500.
func writeRuntimeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch grpcstatus.Code(err) {
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.ResourceExhausted:
		w.Header().Set("Retry-After", "60")
		code = http.StatusTooManyRequests
	}
	http.Error(w, err.Error(), code)
}
