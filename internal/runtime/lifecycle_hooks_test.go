package runtime

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

func TestHookRequest(t *testing.T) {
	c := &v1.Container{Ports: []v1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	tests := []struct {
		name       string
		action     v1.HTTPGetAction
		host       string
		wantURL    string
		wantHost   string
		wantHeader http.Header
		wantErr    string
	}{
		{
			name:       "defaults",
			action:     v1.HTTPGetAction{Path: "/pre", Port: intstr.FromInt32(80)},
			host:       "10.0.0.5",
			wantURL:    "http://10.0.0.5:80/pre",
			wantHeader: http.Header{"User-Agent": {"kube-lifecycle/1.37"}, "Accept": {"*/*"}},
		},
		{
			name: "named port, https, query, headers",
			action: v1.HTTPGetAction{Path: "/hook?drain=1", Port: intstr.FromString("http"), Scheme: v1.URISchemeHTTPS,
				HTTPHeaders: []v1.HTTPHeader{{Name: "X-Token", Value: "a"}, {Name: "X-Token", Value: "b"}, {Name: "Host", Value: "svc.local"}, {Name: "User-Agent", Value: "me"}}},
			host:       "fd00::5",
			wantURL:    "https://[fd00::5]:8080/hook?drain=1",
			wantHost:   "svc.local",
			wantHeader: http.Header{"X-Token": {"a", "b"}, "Host": {"svc.local"}, "User-Agent": {"me"}, "Accept": {"*/*"}},
		},
		{
			name:       "an empty Accept is dropped",
			action:     v1.HTTPGetAction{Port: intstr.FromInt32(80), HTTPHeaders: []v1.HTTPHeader{{Name: "Accept", Value: ""}}},
			host:       "10.0.0.5",
			wantURL:    "http://10.0.0.5:80",
			wantHeader: http.Header{"User-Agent": {"kube-lifecycle/1.37"}},
		},
		{name: "unknown port name", action: v1.HTTPGetAction{Port: intstr.FromString("grpc")}, wantErr: `port "grpc" not found`},
		{name: "port out of range", action: v1.HTTPGetAction{Port: intstr.FromInt32(70000)}, wantErr: "invalid port number: 70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := hookRequest(context.Background(), &tt.action, c, tt.host)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodGet || req.URL.String() != tt.wantURL || req.Host != tt.wantHost || !reflect.DeepEqual(req.Header, tt.wantHeader) {
				t.Errorf("request %s %s host %q headers %v; want %s host %q headers %v", req.Method, req.URL, req.Host, req.Header, tt.wantURL, tt.wantHost, tt.wantHeader)
			}
		})
	}
}

// hookServer records the requests it gets and answers with code.
type hookServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	code int
}

func newHookServer(t *testing.T) *hookServer {
	s := &hookServer{code: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		code := s.code
		s.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *hookServer) port(t *testing.T) int32 {
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func (s *hookServer) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func TestRunHook(t *testing.T) {
	e := newEnv(t)
	srv := newHookServer(t)
	pod := fakePod()
	c := &pod.Spec.Containers[0]
	c.Ports = []v1.ContainerPort{{Name: "web", ContainerPort: srv.port(t)}}
	host := func(context.Context) (string, error) { return "127.0.0.1", nil }
	call := func(h *v1.LifecycleHandler) hookCall {
		return hookCall{id: identityOf(pod), pod: pod, spec: c, containerID: "cid", handler: h, exec: e.rs, host: host}
	}
	ctx := context.Background()

	// httpGet: a response is success, whatever its code (as upstream).
	srv.code = http.StatusInternalServerError
	get := &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/drain", Port: intstr.FromString("web"), HTTPHeaders: []v1.HTTPHeader{{Name: "X-A", Value: "1"}}}}
	if msg, err := e.m.runHook(ctx, call(get)); err != nil || msg != "" {
		t.Errorf("httpGet = %q, %v", msg, err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 || reqs[0].URL.Path != "/drain" || reqs[0].Header.Get("X-A") != "1" || reqs[0].Header.Get("User-Agent") != "kube-lifecycle/1.37" {
		t.Errorf("requests = %v", reqs)
	}

	// HTTPS to a plain server: retried in HTTP, with an event.
	tls := &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/x", Port: intstr.FromString("web"), Scheme: v1.URISchemeHTTPS,
		HTTPHeaders: []v1.HTTPHeader{{Name: "Authorization", Value: "secret"}}}}
	if msg, err := e.m.runHook(ctx, call(tls)); err != nil || msg != "" {
		t.Errorf("https fallback = %q, %v", msg, err)
	}
	if reqs = srv.requests(); len(reqs) != 2 || reqs[1].Header.Get("Authorization") != "" {
		t.Errorf("fallback request = %v, want one without Authorization", reqs[len(reqs)-1].Header)
	}
	wantEvent := "Warning LifecycleHTTPFallback request to HTTPS lifecycle hook 127.0.0.1:" + strconv.Itoa(int(srv.port(t))) + " got HTTP response, retry with HTTP succeeded"
	if got := e.events(); !reflect.DeepEqual(got, []string{wantEvent}) {
		t.Errorf("events = %q, want %q", got, wantEvent)
	}

	// No answer: the upstream message.
	srv.Close()
	msg, err := e.m.runHook(ctx, call(get))
	if err == nil || !strings.HasPrefix(msg, `HTTP lifecycle hook (/drain) for Container "app" in Pod "web_default(uid-1)" failed - error: Get "http://127.0.0.1:`) {
		t.Errorf("closed server = %q, %v", msg, err)
	}

	// exec: the command, its output, the error.
	var gotTimeout time.Duration
	e.rs.exec = func(_ context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
		gotTimeout = timeout
		if cmd[0] == "fail" {
			return []byte("out "), []byte("err"), errors.New("command 'fail' exited with 1")
		}
		return nil, nil, nil
	}
	h := call(&v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"ok"}}})
	h.timeout = 5 * time.Second
	if msg, err := e.m.runHook(ctx, h); err != nil || msg != "" || gotTimeout != 5*time.Second {
		t.Errorf("exec = %q, %v (timeout %v)", msg, err, gotTimeout)
	}
	msg, err = e.m.runHook(ctx, call(&v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"fail", "now"}}}))
	if want := `Exec lifecycle hook ([fail now]) for Container "app" in Pod "web_default(uid-1)" failed - error: command 'fail' exited with 1, message: "out err"`; err == nil || msg != want {
		t.Errorf("failing exec = %q, %v; want %q", msg, err, want)
	}

	// sleep: on the clock; cut short by the context.
	done := make(chan error, 1)
	go func() {
		_, err := e.m.runHook(ctx, call(&v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 3}}))
		done <- err
	}()
	waitForWaiters(e)
	e.clock.Step(3 * time.Second)
	if err := <-done; err != nil {
		t.Errorf("sleep = %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	msg, err = e.m.runHook(cctx, call(&v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 3}}))
	if want := `Sleep lifecycle hook (3) for Container "app" in Pod "web_default(uid-1)" failed - error: container terminated before sleep hook finished`; err == nil || msg != want {
		t.Errorf("cancelled sleep = %q, %v", msg, err)
	}

	if msg, err := e.m.runHook(ctx, call(&v1.LifecycleHandler{})); err == nil || !strings.HasPrefix(msg, "Cannot run handler: invalid handler") {
		t.Errorf("empty handler = %q, %v", msg, err)
	}
}

// waitForWaiters waits until something waits on the fake clock.
func waitForWaiters(e *env) {
	for !e.clock.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
}

func TestHookHost(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	ctx := context.Background()
	check := func(name string, sb *container.SandboxStatus, hostNetwork bool, want, wantErr string) {
		t.Helper()
		got, err := e.m.hookHost(e.rs, pod.UID, sb, hostNetwork)(ctx)
		if got != want || (err == nil) != (wantErr == "") || (err != nil && err.Error() != wantErr) {
			t.Errorf("%s: %q, %v; want %q, %q", name, got, err, want, wantErr)
		}
	}
	check("known", &container.SandboxStatus{IPs: []string{"10.0.0.5", "fd00::5"}}, false, "10.0.0.5", "")
	check("host network", nil, true, "192.168.1.10", "")
	check("no sandbox", nil, false, "", "failed to find networking container")
	e.running(pod)
	check("looked up", nil, false, "192.168.192.168", "")
}

// hookPod is fakePod with hooks on app, and a sandbox with running
// containers in the fake runtime.
func (e *env) hookPod(lc *v1.Lifecycle) (*v1.Pod, *container.PodStatus) {
	pod := fakePod()
	pod.Spec.InitContainers = nil
	pod.Spec.Containers[0].Lifecycle = lc
	return pod, e.running(pod)
}

func TestPostStartHook(t *testing.T) {
	e := newEnv(t)
	var execs []string
	e.rs.exec = func(_ context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
		execs = append(execs, strings.Join(cmd, " "))
		if timeout != 0 {
			t.Errorf("postStart exec timeout %v, want none", timeout)
		}
		if cmd[0] == "fail" {
			return []byte("no config"), nil, errors.New("command 'fail' exited with 2")
		}
		return nil, nil, nil
	}

	// Success: the container runs.
	pod, st := e.hookPod(&v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"setup"}}}})
	if app := st.FindContainer("app"); app == nil || app.State != container.StateRunning || !reflect.DeepEqual(execs, []string{"setup"}) {
		t.Fatalf("app = %+v, execs %v", app, execs)
	}

	// Failure: killed, waiting with the hook's message; the event does not
	// carry it.
	pod.Spec.Containers[0].Lifecycle.PostStart.Exec.Command = []string{"fail"}
	res := e.m.SyncPod(context.Background(), pod, st, plan.PodActions{SandboxID: st.LatestSandbox().ID, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	want := container.Waiting{Reason: "PostStartHookError",
		Message: `Exec lifecycle hook ([fail]) for Container "app" in Pod "web_default(uid-1)" failed - error: command 'fail' exited with 2, message: "no config"`}
	if got := res.Waiting["app"]; got != want || res.RequeueAfter != 10*time.Second {
		t.Errorf("waiting = %+v (requeue %v), want %+v", got, res.RequeueAfter, want)
	}
	e.settle()
	newest := e.status(pod).FindContainer("app")
	if newest.RestartCount != 1 || e.rs.stopTimeout(newest.ID) != 7 {
		t.Errorf("new app = %+v, stopped with %d", newest, e.rs.stopTimeout(newest.ID))
	}
	events := e.events()
	for _, want := range []string{
		"Warning FailedPostStartHook PostStartHook failed",
		"Normal Killing FailedPostStartHook",
	} {
		found := false
		for _, ev := range events {
			found = found || ev == want
		}
		if !found {
			t.Errorf("events %q lack %q", events, want)
		}
	}
}

func TestPreStopHook(t *testing.T) {
	exec := func(cmd ...string) *v1.Lifecycle {
		return &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: cmd}}}
	}

	t.Run("the stop gets what the hook left", func(t *testing.T) {
		e := newEnv(t)
		pod, st := e.hookPod(exec("drain"))
		app := st.FindContainer("app")
		var gotTimeout time.Duration
		e.rs.exec = func(_ context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
			if id != app.ID || cmd[0] != "drain" {
				t.Errorf("exec %v in %s", cmd, id)
			}
			gotTimeout = timeout
			if e.rs.stopTimeout(app.ID) != 0 {
				t.Error("app stopped before its preStop hook ran")
			}
			e.clock.Step(3 * time.Second)
			return nil, nil, nil
		}
		if err := e.m.KillPod(context.Background(), pod, st, nil); err != nil {
			t.Fatal(err)
		}
		if gotTimeout != 7*time.Second {
			t.Errorf("exec timeout %v, want the grace period 7s", gotTimeout)
		}
		if got := e.rs.stopTimeout(app.ID); got != 4 {
			t.Errorf("app stopped with %ds, want 7-3", got)
		}
		for _, ev := range e.events() {
			if strings.Contains(ev, "PreStop") {
				t.Errorf("event %q", ev)
			}
		}
	})

	t.Run("a hook that outlives the grace period", func(t *testing.T) {
		e := newEnv(t)
		pod, st := e.hookPod(exec("hang"))
		app := st.FindContainer("app")
		entered := make(chan struct{})
		e.rs.exec = func(ctx context.Context, _ string, _ []string, _ time.Duration) ([]byte, []byte, error) {
			close(entered)
			<-ctx.Done()
			return nil, nil, ctx.Err()
		}
		done := make(chan error)
		go func() { done <- e.m.KillPod(context.Background(), pod, st, nil) }()
		<-entered
		e.clock.Step(7 * time.Second)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := e.rs.stopTimeout(app.ID); got != 2 {
			t.Errorf("app stopped with %ds, want the minimum 2s", got)
		}
		for _, ev := range e.events() {
			if strings.Contains(ev, "FailedPreStopHook") {
				t.Errorf("a hook cut short is no failure: %q", ev)
			}
		}
	})

	t.Run("a failing hook", func(t *testing.T) {
		e := newEnv(t)
		pod, st := e.hookPod(exec("fail"))
		e.rs.exec = func(context.Context, string, []string, time.Duration) ([]byte, []byte, error) {
			return []byte("password=hunter2"), nil, errors.New("exit 1")
		}
		if err := e.m.KillPod(context.Background(), pod, st, nil); err != nil {
			t.Fatal(err)
		}
		if got := e.rs.stopTimeout(st.FindContainer("app").ID); got != 7 {
			t.Errorf("app stopped with %ds, want 7", got)
		}
		found := false
		for _, ev := range e.events() {
			found = found || ev == "Warning FailedPreStopHook PreStopHook failed"
		}
		if !found {
			t.Error("no FailedPreStopHook event")
		}
	})

	t.Run("no grace period, no hook", func(t *testing.T) {
		e := newEnv(t)
		pod, st := e.hookPod(exec("drain"))
		e.rs.exec = func(context.Context, string, []string, time.Duration) ([]byte, []byte, error) {
			t.Error("preStop ran with a zero grace period")
			return nil, nil, nil
		}
		zero := int64(0)
		if err := e.m.KillPod(context.Background(), pod, st, &zero); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an orphan's hook comes from its annotations", func(t *testing.T) {
		e := newEnv(t)
		_, st := e.hookPod(exec("drain", "orphan"))
		var ran []string
		e.rs.exec = func(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
			ran = append(ran, strings.Join(cmd, " "))
			return nil, nil, nil
		}
		if err := e.m.KillPod(context.Background(), nil, st, nil); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ran, []string{"drain orphan"}) {
			t.Errorf("ran %q", ran)
		}
	})

	t.Run("httpGet to the pod's IP by port name", func(t *testing.T) {
		e := newEnv(t)
		srv := newHookServer(t)
		// The fake sandbox's IP is not this host's: send it to the server.
		e.m.hooks.http = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if !strings.HasPrefix(addr, "192.168.192.168:") {
				return nil, errors.New("unexpected address " + addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		}}}
		pod := fakePod()
		pod.Spec.InitContainers = nil
		pod.Spec.Containers[0].Ports = []v1.ContainerPort{{Name: "admin", ContainerPort: 9000}}
		pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/quit", Port: intstr.FromString("admin")}}}
		st := e.running(pod)
		if err := e.m.KillPod(context.Background(), pod, st, nil); err != nil {
			t.Fatal(err)
		}
		if reqs := srv.requests(); len(reqs) != 1 || reqs[0].URL.Path != "/quit" || reqs[0].Host != "192.168.192.168:9000" {
			t.Errorf("requests = %v", reqs)
		}
	})
}
