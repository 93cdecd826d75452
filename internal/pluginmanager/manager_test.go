package pluginmanager

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
	testclock "k8s.io/utils/clock/testing"
)

// waitLimit only keeps a broken test from hanging; nothing is timed.
const waitLimit = 30 * time.Second

// call is one Handler call seen by fakeHandler.
type call struct{ method, name, endpoint string }

// fakeHandler records its calls; validateErr makes ValidatePlugin fail.
type fakeHandler struct {
	calls       chan call
	validateErr chan error // one value per ValidatePlugin call when set
}

func newFakeHandler() *fakeHandler { return &fakeHandler{calls: make(chan call, 16)} }

func (h *fakeHandler) ValidatePlugin(name, endpoint string, versions []string) error {
	h.calls <- call{"validate", name, endpoint}
	if h.validateErr != nil {
		return <-h.validateErr
	}
	return nil
}

func (h *fakeHandler) RegisterPlugin(name, endpoint string, versions []string) error {
	h.calls <- call{"register", name, endpoint}
	return nil
}

func (h *fakeHandler) DeRegisterPlugin(name, endpoint string) {
	h.calls <- call{"deregister", name, endpoint}
}

func (h *fakeHandler) expect(t *testing.T, want ...call) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-h.calls:
			if got != w {
				t.Fatalf("handler call = %+v, want %+v", got, w)
			}
		case <-time.After(waitLimit):
			t.Fatalf("no handler call, want %+v", w)
		}
	}
}

// plugin is a real registration server on a unix socket, as a CSI
// driver's node-driver-registrar or a DRA driver serves it.
type plugin struct {
	registerapi.UnimplementedRegistrationServer
	info     *registerapi.PluginInfo
	statuses chan *registerapi.RegistrationStatus
	server   *grpc.Server
}

func startPlugin(t *testing.T, socket string, info *registerapi.PluginInfo) *plugin {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		t.Fatal(err)
	}
	// Listening before the socket appears where the manager looks, so
	// that its first connection is not refused (that would be retried
	// after a back-off the tests do not wait for).
	staging := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", staging)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Rename(staging, socket); err != nil {
		t.Fatal(err)
	}
	p := &plugin{info: info, statuses: make(chan *registerapi.RegistrationStatus, 8), server: grpc.NewServer()}
	registerapi.RegisterRegistrationServer(p.server, p)
	go func() { _ = p.server.Serve(l) }()
	t.Cleanup(p.server.Stop)
	return p
}

func (p *plugin) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return p.info, nil
}

func (p *plugin) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	p.statuses <- st
	return &registerapi.RegistrationStatusResponse{}, nil
}

func (p *plugin) expectStatus(t *testing.T, registered bool, errContains string) {
	t.Helper()
	select {
	case st := <-p.statuses:
		if st.PluginRegistered != registered || !strings.Contains(st.Error, errContains) || (errContains == "" && st.Error != "") {
			t.Fatalf("status = %+v, want registered %v, error containing %q", st, registered, errContains)
		}
	case <-time.After(waitLimit):
		t.Fatal("plugin was not notified")
	}
}

// stop ends the server and removes its socket, as a plugin going away does.
func (p *plugin) stop(t *testing.T, socket string) {
	// Graceful: a registration status sent is answered.
	p.server.GracefulStop()
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// runManager runs a manager on dir until the test ends or stop is called.
func runManager(t *testing.T, dir string, clk *testclock.FakeClock, handlers map[string]Handler) (stop func()) {
	t.Helper()
	m := New(Options{Dir: dir, Clock: clk})
	for typ, h := range handlers {
		m.AddHandler(typ, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func info(typ, name, endpoint string) *registerapi.PluginInfo {
	return &registerapi.PluginInfo{Type: typ, Name: name, Endpoint: endpoint, SupportedVersions: []string{"1.0.0"}}
}

func TestRegisterDeregisterReregister(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plugins_registry")
	h := newFakeHandler()
	runManager(t, dir, testclock.NewFakeClock(time.Now()), map[string]Handler{registerapi.CSIPlugin: h})

	// The directory is created by the manager; a plugin appears in it.
	socket := filepath.Join(dir, "csi.example.com-reg.sock")
	waitFor(t, func() bool { _, err := os.Stat(dir); return err == nil })
	p := startPlugin(t, socket, info(registerapi.CSIPlugin, "csi.example.com", "/var/lib/kubelet/plugins/csi.example.com/csi.sock"))
	h.expect(t,
		call{"validate", "csi.example.com", "/var/lib/kubelet/plugins/csi.example.com/csi.sock"},
		call{"register", "csi.example.com", "/var/lib/kubelet/plugins/csi.example.com/csi.sock"})
	p.expectStatus(t, true, "")

	// The plugin restarts: its socket is created again.
	p.stop(t, socket)
	h.expect(t, call{"deregister", "csi.example.com", "/var/lib/kubelet/plugins/csi.example.com/csi.sock"})
	p = startPlugin(t, socket, info(registerapi.CSIPlugin, "csi.example.com", ""))
	// Without an endpoint, the registration socket is the endpoint.
	h.expect(t, call{"validate", "csi.example.com", socket}, call{"register", "csi.example.com", socket})
	p.expectStatus(t, true, "")

	// It goes for good.
	p.stop(t, socket)
	h.expect(t, call{"deregister", "csi.example.com", socket})
}

func TestPluginsRegisteredAgainAfterRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plugins_registry")
	h := newFakeHandler()
	clk := testclock.NewFakeClock(time.Now())

	// Plugins already there before the manager starts, one in a
	// subdirectory, and a dot file that is ignored.
	a := startPlugin(t, filepath.Join(dir, "a.sock"), info(registerapi.DRAPlugin, "a.example.com", ""))
	b := startPlugin(t, filepath.Join(dir, "sub", "b.sock"), info(registerapi.DRAPlugin, "b.example.com", ""))
	startPlugin(t, filepath.Join(dir, ".hidden.sock"), info(registerapi.DRAPlugin, "hidden.example.com", ""))
	stop := runManager(t, dir, clk, map[string]Handler{registerapi.DRAPlugin: h})
	seen := collect(t, h, 4)
	for _, want := range []call{
		{"validate", "a.example.com", filepath.Join(dir, "a.sock")},
		{"register", "a.example.com", filepath.Join(dir, "a.sock")},
		{"validate", "b.example.com", filepath.Join(dir, "sub", "b.sock")},
		{"register", "b.example.com", filepath.Join(dir, "sub", "b.sock")},
	} {
		if !seen[want] {
			t.Errorf("missing call %+v in %v", want, seen)
		}
	}
	a.expectStatus(t, true, "")
	b.expectStatus(t, true, "")

	// berth restarts: the manager stops (deregistering nothing) and a
	// new one registers the same plugins again.
	stop()
	runManager(t, dir, clk, map[string]Handler{registerapi.DRAPlugin: h})
	if got := collect(t, h, 4); len(got) != 4 || got[call{"deregister", "a.example.com", filepath.Join(dir, "a.sock")}] {
		t.Errorf("calls after restart = %v, want the two plugins validated and registered", got)
	}
	a.expectStatus(t, true, "")
	b.expectStatus(t, true, "")

	// A socket in a directory created later is found too.
	c := startPlugin(t, filepath.Join(dir, "later", "deeper", "c.sock"), info(registerapi.DRAPlugin, "c.example.com", ""))
	c.expectStatus(t, true, "")
	collect(t, h, 2)
	select {
	case got := <-h.calls:
		t.Errorf("unexpected call %+v (the dot file?)", got)
	default:
	}
}

func TestNoHandlerForType(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plugins_registry")
	runManager(t, dir, testclock.NewFakeClock(time.Now()), map[string]Handler{registerapi.DRAPlugin: newFakeHandler()})
	waitFor(t, func() bool { _, err := os.Stat(dir); return err == nil })

	odd := startPlugin(t, filepath.Join(dir, "odd.sock"), info("OddPlugin", "odd", ""))
	odd.expectStatus(t, false, "RegisterPlugin error -- no handler registered for plugin type: OddPlugin at socket "+filepath.Join(dir, "odd.sock"))
}

func TestValidationFailsThenRetried(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plugins_registry")
	h := newFakeHandler()
	h.validateErr = make(chan error, 2)
	clk := testclock.NewFakeClock(time.Now())
	runManager(t, dir, clk, map[string]Handler{registerapi.DRAPlugin: h})
	waitFor(t, func() bool { _, err := os.Stat(dir); return err == nil })

	// Validation fails: the plugin is told, and it is retried after the
	// back-off; the second try succeeds.
	h.validateErr <- errors.New("version 0.1 not supported")
	p := startPlugin(t, filepath.Join(dir, "p.sock"), info(registerapi.DRAPlugin, "p", ""))
	h.expect(t, call{"validate", "p", filepath.Join(dir, "p.sock")})
	p.expectStatus(t, false, "RegisterPlugin error -- plugin validation failed with err: version 0.1 not supported")
	h.validateErr <- nil
	// The retry waits for the clock: step it once its timer is set.
	waitFor(t, clk.HasWaiters)
	clk.Step(maxRetryDelay)
	h.expect(t, call{"validate", "p", filepath.Join(dir, "p.sock")}, call{"register", "p", filepath.Join(dir, "p.sock")})
	p.expectStatus(t, true, "")
}

// collect takes n handler calls.
func collect(t *testing.T, h *fakeHandler, n int) map[call]bool {
	t.Helper()
	seen := map[call]bool{}
	for range n {
		select {
		case c := <-h.calls:
			seen[c] = true
		case <-time.After(waitLimit):
			t.Fatalf("only %d handler calls: %v", len(seen), seen)
		}
	}
	return seen
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
