package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	cristreaming "k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/berth-dev/berth/internal/container"
)

// echoRuntime is the container side of a fake CRI streaming server: exec
// reports what it ran ("cat" echoes stdin), attach says hello, port
// forwarding echoes.
type echoRuntime struct{}

func (echoRuntime) Exec(_ context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, _ <-chan remotecommandserver.TerminalSize) error {
	if len(cmd) == 1 && cmd[0] == "cat" {
		_, err := io.Copy(out, in)
		return err
	}
	fmt.Fprintf(out, "%s in %s tty=%v\n", strings.Join(cmd, " "), id, tty)
	if errw != nil {
		fmt.Fprint(errw, "to stderr\n")
	}
	return nil
}

func (echoRuntime) Attach(_ context.Context, id string, _ io.Reader, out, _ io.WriteCloser, tty bool, _ <-chan remotecommandserver.TerminalSize) error {
	fmt.Fprintf(out, "attached to %s tty=%v\n", id, tty)
	return nil
}

func (echoRuntime) PortForward(_ context.Context, sandbox string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	buf := make([]byte, 64)
	n, err := stream.Read(buf)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stream, "%s:%d got %s", sandbox, port, buf[:n])
	return err
}

// streamingCRI is the runtime's CRI side: it records requests and hands
// out URLs on a real CRI streaming server (k8s.io/cri-streaming, the one
// containerd uses).
type streamingCRI struct {
	fakeCRI
	backend cristreaming.Server
}

func (s *streamingCRI) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	s.fakeCRI.Exec(ctx, req)
	return s.backend.GetExec(req)
}

func (s *streamingCRI) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	s.fakeCRI.Attach(ctx, req)
	return s.backend.GetAttach(req)
}

func (s *streamingCRI) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	s.fakeCRI.PortForward(ctx, req)
	return s.backend.GetPortForward(req)
}

// streamingFixture serves berth's handler in front of a CRI streaming
// server; it returns berth's URL and the CRI fake.
func streamingFixture(t *testing.T) (string, *streamingCRI) {
	t.Helper()
	var backend cristreaming.Server
	backendSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { backend.ServeHTTP(w, r) }))
	t.Cleanup(backendSrv.Close)
	base, _ := url.Parse(backendSrv.URL)
	cfg := cristreaming.DefaultConfig
	cfg.BaseURL = base
	var err error
	if backend, err = cristreaming.NewServer(cfg, echoRuntime{}); err != nil {
		t.Fatal(err)
	}
	cri := &streamingCRI{backend: backend}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app", TTY: true}, {Name: "stopped"}}},
	}
	rt := &fakeRuntime{pods: map[types.UID]*container.PodStatus{"u1": {UID: "u1", Name: "web", Namespace: "default",
		Sandboxes: []*container.SandboxStatus{{ID: "sb-new", State: container.SandboxReady}, {ID: "sb-old", State: container.SandboxNotReady}},
		Containers: []*container.ContainerStatus{
			{ID: "c-app", Name: "app", State: container.StateRunning},
			{ID: "c-stopped", Name: "stopped", State: container.StateExited},
		}}}}
	h := NewHandler(Handlers{Pods: podList{pod}, Health: func() error { return nil }, Runtime: rt, Streaming: cri, EnableDebuggingHandlers: true})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, cri
}

func TestExecSPDYAndWebSocket(t *testing.T) {
	base, cri := streamingFixture(t)
	cfg := &rest.Config{Host: base}
	u, _ := url.Parse(base + "/exec/default/web/app?command=echo&command=hi&output=1&error=1")
	spdyExec, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	wsExec, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		t.Fatal(err)
	}
	for name, exec := range map[string]remotecommand.Executor{"spdy": spdyExec, "websocket v5": wsExec} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}); err != nil {
				t.Fatal(err)
			}
			if out.String() != "echo hi in c-app tty=false\n" || errOut.String() != "to stderr\n" {
				t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
			}
			cri.mu.Lock()
			req := cri.exec
			cri.mu.Unlock()
			if req.ContainerId != "c-app" || strings.Join(req.Cmd, " ") != "echo hi" || req.Stdin || !req.Stdout || !req.Stderr || req.Tty {
				t.Errorf("CRI exec request %+v", req)
			}
		})
	}
}

func TestExecStdin(t *testing.T) {
	base, _ := streamingFixture(t)
	u, _ := url.Parse(base + "/exec/default/web/app?command=cat&input=1&output=1")
	exec, err := remotecommand.NewSPDYExecutor(&rest.Config{Host: base}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("ping\n"), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "ping\n" {
		t.Errorf("stdout %q", out.String())
	}
}

func TestAttachTakesTTYFromSpec(t *testing.T) {
	base, cri := streamingFixture(t)
	u, _ := url.Parse(base + "/attach/default/web/app?output=1&input=1")
	exec, err := remotecommand.NewSPDYExecutor(&rest.Config{Host: base}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader(""), Stdout: &out, Tty: true}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "attached to c-app tty=true\n" {
		t.Errorf("stdout %q", out.String())
	}
	if req := cri.attach; req.ContainerId != "c-app" || !req.Tty || !req.Stdin || !req.Stdout || req.Stderr {
		t.Errorf("CRI attach request %+v", req)
	}
}

// forwardOnce sends a message through a port-forward connection to port
// 80 and returns the answer.
func forwardOnce(t *testing.T, dialer httpstream.Dialer) string {
	t.Helper()
	conn, proto, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if proto != portforward.PortForwardProtocolV1Name {
		t.Fatalf("protocol %q", proto)
	}
	headers := http.Header{}
	headers.Set(v1.StreamType, v1.StreamTypeError)
	headers.Set(v1.PortHeader, "80")
	headers.Set(v1.PortForwardRequestIDHeader, "0")
	errStream, err := conn.CreateStream(headers)
	if err != nil {
		t.Fatal(err)
	}
	errStream.Close() // we send nothing on it
	headers.Set(v1.StreamType, v1.StreamTypeData)
	data, err := conn.CreateStream(headers)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := data.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(data)
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}

func TestPortForwardSPDYAndTunnel(t *testing.T) {
	base, cri := streamingFixture(t)
	cfg := &rest.Config{Host: base}
	u, _ := url.Parse(base + "/portForward/default/web")
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	tunnelDialer, err := portforward.NewSPDYOverWebsocketDialer(u, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]httpstream.Dialer{"spdy": spdyDialer, "websocket tunnel": tunnelDialer} {
		t.Run(name, func(t *testing.T) {
			if got := forwardOnce(t, d); got != "sb-new:80 got ping" {
				t.Errorf("answer %q", got)
			}
			if req := cri.portForward; req.PodSandboxId != "sb-new" {
				t.Errorf("CRI port-forward request %+v", req)
			}
		})
	}
}

// rawUpgrade sends an upgrade request by hand and returns the response.
func rawUpgrade(t *testing.T, base, method, path string) *http.Response {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n", method, path, u.Host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestStreamingErrors(t *testing.T) {
	base, _ := streamingFixture(t)
	tests := []struct {
		name, method, path string
		code               int
		body               string
	}{
		{"not an upgrade", "POST", "/exec/default/web/app?command=ls&output=1", 400, "Upgrade request required\n"},
		{"no streams", "POST", "/exec/default/web/app?command=ls", 400, "you must specify at least 1 of stdin, stdout, stderr\n"},
		{"no such pod", "POST", "/exec/default/nope/app?output=1", 404, "pod does not exist\n"},
		{"uid mismatch", "POST", "/portForward/default/web/other-uid", 404, "pod not found\n"},
		{"container not running", "POST", "/exec/default/web/stopped?output=1", 404, "rpc error: code = NotFound desc = container not found (\"stopped\")\n"},
		{"attach unknown container", "POST", "/attach/default/web/nope?output=1", 404, "container nope not found in pod web\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			if tt.name == "not an upgrade" {
				var err error
				if resp, err = http.Post(base+tt.path, "", nil); err != nil {
					t.Fatal(err)
				}
			} else {
				resp = rawUpgrade(t, base, tt.method, tt.path)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || (tt.body != "" && string(body) != tt.body) {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.code, tt.body)
			}
		})
	}

	// The runtime's NotFound becomes 404, anything else 500.
	for code, want := range map[codes.Code]int{codes.NotFound: 404, codes.ResourceExhausted: 429, codes.Internal: 500} {
		failing := &fakeCRI{err: grpcstatus.Error(code, "runtime says no")}
		h := NewHandler(Handlers{Pods: podList{{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"}}}, Health: func() error { return nil },
			Runtime:   &fakeRuntime{pods: map[types.UID]*container.PodStatus{"u1": {Sandboxes: []*container.SandboxStatus{{ID: "sb"}}}}},
			Streaming: failing, EnableDebuggingHandlers: true})
		rec := get(h, "POST", "/portForward/default/web")
		if rec.Code != want {
			t.Errorf("CRI %v: %d, want %d", code, rec.Code, want)
		}
	}
}

func TestRun(t *testing.T) {
	cri := &fakeCRI{}
	pods := podList{{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"}, Spec: v1.PodSpec{Containers: []v1.Container{{Name: "app"}}}}}
	rt := &fakeRuntime{pods: map[types.UID]*container.PodStatus{"u1": {Containers: []*container.ContainerStatus{{ID: "c-app", Name: "app", State: container.StateRunning}}}}}
	h := NewHandler(Handlers{Pods: pods, Health: func() error { return nil }, Runtime: rt, Streaming: cri, EnableDebuggingHandlers: true})
	rec := get(h, "POST", "/run/default/web/app?cmd=echo+hello+world")
	if rec.Code != 200 || rec.Body.String() != "out\nerr\n" {
		t.Errorf("got %d %q", rec.Code, rec.Body.String())
	}
	if got := strings.Join(cri.execSync, " "); got != "c-app echo hello world" {
		t.Errorf("ExecSync got %q", got)
	}
	if cri.execTimeout != 2*time.Minute {
		t.Errorf("ExecSync timeout %s, want the default runtime request timeout", cri.execTimeout)
	}
	h = NewHandler(Handlers{Pods: pods, Health: func() error { return nil }, Runtime: rt, Streaming: cri, RunTimeout: 5 * time.Second, EnableDebuggingHandlers: true})
	if rec := get(h, "POST", "/run/default/web/app?cmd=true"); rec.Code != 200 || cri.execTimeout != 5*time.Second {
		t.Errorf("with RunTimeout 5s: %d, ExecSync timeout %s", rec.Code, cri.execTimeout)
	}
	if rec := get(h, "GET", "/run/default/web/app?cmd=ls"); rec.Code != 405 {
		t.Errorf("GET /run: %d", rec.Code)
	}
}
