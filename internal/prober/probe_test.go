package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	remote "k8s.io/cri-client/pkg"
	utilexec "k8s.io/utils/exec"
)

func newTestProber(e Exec) *prober {
	h1, h2c := newTransports()
	return &prober{execer: e, h1: h1, h2c: h2c}
}

// hostPort splits a test server's address.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func TestHTTPProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" && r.URL.RawQuery != "x=1" {
			http.Error(w, "bad query", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "fine")
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "secret body", http.StatusInternalServerError)
	})
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "yes" || r.Host != "custom.example" ||
			!strings.HasPrefix(r.UserAgent(), "kube-probe/") || r.Header.Get("Accept") != "*/*" {
			http.Error(w, fmt.Sprintf("headers %v host %s", r.Header, r.Host), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/agent", func(w http.ResponseWriter, r *http.Request) {
		if r.UserAgent() != "mine" || r.Header["Accept"] != nil {
			http.Error(w, "defaults not replaced", http.StatusBadRequest)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tls := httptest.NewTLSServer(mux)
	defer tls.Close()
	host, port := hostPort(t, srv.URL)
	_, tlsPort := hostPort(t, tls.URL)
	closed := closedPort(t)

	named := &v1.Container{Name: "app", Ports: []v1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}}
	rows := []struct {
		name    string
		action  v1.HTTPGetAction
		want    result
		warning bool
		output  string // a substring, if set
		err     bool
	}{
		{name: "200 on the pod IP", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(port))}, want: success, output: "fine"},
		{name: "query kept", action: v1.HTTPGetAction{Path: "/ok?x=1", Port: intstr.FromInt32(int32(port))}, want: success},
		{name: "named port", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("web")}, want: success},
		{name: "unknown port name: an error, not a failure", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("nope")}, err: true},
		{name: "500: failure without the body", action: v1.HTTPGetAction{Path: "/bad", Port: intstr.FromInt32(int32(port))},
			want: failure, output: "HTTP probe failed with statuscode: 500"},
		{name: "redirect on the same host is followed", action: v1.HTTPGetAction{Path: "/same", Port: intstr.FromInt32(int32(port))}, want: success, output: "fine"},
		{name: "redirect to another host: success with a warning", action: v1.HTTPGetAction{Path: "/other", Port: intstr.FromInt32(int32(port))},
			want: success, warning: true, output: "Probe terminated redirects"},
		{name: "redirect loop: failure", action: v1.HTTPGetAction{Path: "/loop", Port: intstr.FromInt32(int32(port))}, want: failure, output: "stopped after 10 redirects"},
		{name: "headers and Host", action: v1.HTTPGetAction{Path: "/headers", Port: intstr.FromInt32(int32(port)),
			HTTPHeaders: []v1.HTTPHeader{{Name: "X-Test", Value: "yes"}, {Name: "Host", Value: "custom.example"}}}, want: success},
		{name: "headers replace the defaults", action: v1.HTTPGetAction{Path: "/agent", Port: intstr.FromInt32(int32(port)),
			HTTPHeaders: []v1.HTTPHeader{{Name: "User-Agent", Value: "mine"}, {Name: "Accept", Value: ""}}}, want: success},
		{name: "explicit host", action: v1.HTTPGetAction{Host: host, Path: "/ok", Port: intstr.FromInt32(int32(port))}, want: success},
		{name: "HTTPS without certificate checks", action: v1.HTTPGetAction{Scheme: v1.URISchemeHTTPS, Path: "/ok", Port: intstr.FromInt32(int32(tlsPort))}, want: success},
		{name: "refused: failure", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(closed))}, want: failure, output: "refused"},
	}
	pr := newTestProber(nil)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			a := r.action
			o, err := pr.run(context.Background(), &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &a}},
				target{containerID: "c1", container: named, podIP: "127.0.0.1"}, 5*time.Second)
			if r.err {
				if err == nil {
					t.Fatalf("no error; outcome %+v", o)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.result != r.want || o.warning != r.warning || !strings.Contains(o.output, r.output) {
				t.Errorf("got %+v, want result %v warning %v output ~%q", o, r.want, r.warning, r.output)
			}
			if strings.Contains(o.output, "secret body") {
				t.Errorf("failure message quotes the body: %q", o.output)
			}
		})
	}
}

// closedPort returns a local port with nothing listening.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port := hostPort(t, l.Addr().String())
	l.Close()
	return port
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, open := hostPort(t, l.Addr().String())
	pr := newTestProber(nil)
	c := &v1.Container{Name: "app", Ports: []v1.ContainerPort{{Name: "db", ContainerPort: int32(open)}}}
	for _, r := range []struct {
		name string
		port intstr.IntOrString
		want result
	}{
		{"open", intstr.FromInt32(int32(open)), success},
		{"named", intstr.FromString("db"), success},
		{"closed", intstr.FromInt32(int32(closedPort(t))), failure},
	} {
		t.Run(r.name, func(t *testing.T) {
			o, err := pr.run(context.Background(), &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: r.port}}},
				target{container: c, podIP: "127.0.0.1"}, 5*time.Second)
			if err != nil || o.result != r.want {
				t.Errorf("got %+v, %v; want %v", o, err, r.want)
			}
		})
	}
}

func TestGRPCProbe(t *testing.T) {
	serve := func(withHealth bool) int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		if withHealth {
			h := health.NewServer()
			h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			h.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
			healthpb.RegisterHealthServer(s, h)
		}
		go s.Serve(l)
		t.Cleanup(s.Stop)
		_, port := hostPort(t, l.Addr().String())
		return port
	}
	healthy, bare := serve(true), serve(false)
	svc := func(s string) *string { return &s }
	pr := newTestProber(nil)
	for _, r := range []struct {
		name    string
		port    int
		service *string
		want    result
		output  string
	}{
		{"serving", healthy, nil, success, "service healthy"},
		{"not serving", healthy, svc("down"), failure, `service unhealthy (responded with "NOT_SERVING")`},
		{"unknown service", healthy, svc("nope"), failure, "error: health rpc probe failed"},
		{"no health service", bare, nil, failure, "does not implement the grpc health protocol"},
		{"refused", closedPort(t), nil, failure, "error: health rpc probe failed"},
	} {
		t.Run(r.name, func(t *testing.T) {
			a := &v1.GRPCAction{Port: int32(r.port), Service: r.service}
			o, err := pr.run(context.Background(), &v1.Probe{ProbeHandler: v1.ProbeHandler{GRPC: a}},
				target{container: &v1.Container{Name: "app"}, podIP: "127.0.0.1"}, 5*time.Second)
			if err != nil || o.result != r.want || !strings.Contains(o.output, r.output) {
				t.Errorf("got %+v, %v; want %v ~%q", o, err, r.want, r.output)
			}
		})
	}
}

// fakeExec answers ExecSync from a function and records the calls.
type fakeExec struct {
	fn    func(id string, cmd []string) (out string, code int32, err error)
	calls []string // "<id>: <cmd>"
	last  time.Duration
}

func (f *fakeExec) ExecSync(_ context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, int32, error) {
	f.calls = append(f.calls, id+": "+strings.Join(cmd, " "))
	f.last = timeout
	out, code, err := f.fn(id, cmd)
	return []byte(out), []byte("!"), code, err
}

func TestExecProbe(t *testing.T) {
	c := &v1.Container{Name: "app", Env: []v1.EnvVar{
		{Name: "FILE", Value: "/tmp/healthy"},
		{Name: "SECRET", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{Key: "k"}}},
	}}
	probe := &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"cat", "$(FILE)", "$(SECRET)", "$$(FILE)"}}}}
	rows := []struct {
		name   string
		code   int32
		err    error
		want   result
		output string
		isErr  bool
	}{
		{name: "exit 0", want: success, output: "ok!"},
		{name: "exit 1: failure with both streams", code: 1, want: failure, output: "ok!"},
		{name: "timed out (cri-client)", err: fmt.Errorf("%w: after 1s", remote.ErrCommandTimedOut), want: failure, output: "timed out after 3s"},
		{name: "timed out (context)", err: context.DeadlineExceeded, want: failure, output: "timed out"},
		{name: "runtime error: no result", err: errors.New("container not found"), isErr: true},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			fe := &fakeExec{fn: func(string, []string) (string, int32, error) { return "ok", r.code, r.err }}
			o, err := newTestProber(fe).run(context.Background(), probe, target{containerID: "c1", container: c}, 3*time.Second)
			if want := []string{"c1: cat /tmp/healthy $(SECRET) $(FILE)"}; !reflect.DeepEqual(fe.calls, want) || fe.last != 3*time.Second {
				t.Errorf("calls %q timeout %v, want %q 3s", fe.calls, fe.last, want)
			}
			if r.isErr != (err != nil) {
				t.Fatalf("error %v", err)
			}
			if !r.isErr && (o.result != r.want || !strings.Contains(o.output, r.output)) {
				t.Errorf("got %+v, want %v ~%q", o, r.want, r.output)
			}
		})
	}
}

func TestNoHandlerIsAnError(t *testing.T) {
	if _, err := newTestProber(nil).run(context.Background(), &v1.Probe{}, target{container: &v1.Container{}}, time.Second); err == nil {
		t.Error("no error for a probe without handler")
	}
}

type criFunc func() ([]byte, []byte, error)

func (f criFunc) ExecSync(context.Context, string, []string, time.Duration) ([]byte, []byte, error) {
	return f()
}

func TestExecFromCRI(t *testing.T) {
	rows := []struct {
		name string
		err  error
		code int32
		fail bool
	}{
		{"exit 0", nil, 0, false},
		{"exit 2 as cri-client reports it", utilexec.CodeExitError{Err: errors.New("command 'x' exited with 2"), Code: 2}, 2, false},
		{"timeout stays an error", fmt.Errorf("%w: x", remote.ErrCommandTimedOut), 0, true},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			e := ExecFromCRI(criFunc(func() ([]byte, []byte, error) { return []byte("o"), nil, r.err }))
			out, _, code, err := e.ExecSync(context.Background(), "c1", nil, time.Second)
			if code != r.code || (err != nil) != r.fail || string(out) != "o" {
				t.Errorf("got %q %d %v", out, code, err)
			}
		})
	}
}
