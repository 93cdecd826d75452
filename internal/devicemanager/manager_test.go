package devicemanager

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	testclock "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/devicemanager/checkpoint"
	"github.com/berth-dev/berth/internal/runtime"
)

// waitLimit only keeps a broken test from hanging; nothing is timed.
const waitLimit = 30 * time.Second

const res = "example.com/resource"

// plugin is a real device plugin gRPC server on a unix socket, as the
// sample device plugin serves it; it records the calls it gets.
type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	opts      *pluginapi.DevicePluginOptions
	updates   chan []*pluginapi.Device
	allocs    chan []string
	prestarts chan []string
	preferred []string
	server    *grpc.Server
	socket    string

	mu      sync.Mutex
	devices []*pluginapi.Device
}

func startPlugin(t *testing.T, dir, name string, opts *pluginapi.DevicePluginOptions, devices ...*pluginapi.Device) *plugin {
	t.Helper()
	p := &plugin{
		opts: opts, devices: devices, socket: filepath.Join(dir, name),
		updates: make(chan []*pluginapi.Device, 4), allocs: make(chan []string, 8), prestarts: make(chan []string, 8),
		server: grpc.NewServer(),
	}
	l, err := net.Listen("unix", p.socket)
	if err != nil {
		t.Fatal(err)
	}
	pluginapi.RegisterDevicePluginServer(p.server, p)
	go func() { _ = p.server.Serve(l) }()
	t.Cleanup(p.server.Stop)
	return p
}

// register registers the plugin at kubelet.sock as a device plugin does.
func (p *plugin) register(dir, resource string) error {
	conn, err := grpc.NewClient("unix:"+filepath.Join(dir, KubeletSocket), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version: pluginapi.Version, Endpoint: filepath.Base(p.socket), ResourceName: resource, Options: p.opts,
	}, grpc.WaitForReady(true))
	return err
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	if p.opts == nil {
		return &pluginapi.DevicePluginOptions{}, nil
	}
	return p.opts, nil
}

func (p *plugin) ListAndWatch(_ *pluginapi.Empty, s pluginapi.DevicePlugin_ListAndWatchServer) error {
	p.mu.Lock()
	devs := p.devices
	p.mu.Unlock()
	if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: devs}); err != nil {
		return err
	}
	for {
		select {
		case devs := <-p.updates:
			if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: devs}); err != nil {
				return err
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

func (p *plugin) Allocate(_ context.Context, r *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, cr := range r.ContainerRequests {
		p.allocs <- cr.DevicesIds
		car := &pluginapi.ContainerAllocateResponse{Envs: map[string]string{"DEVICES": cr.DevicesIds[0]}}
		for _, id := range cr.DevicesIds {
			car.Mounts = append(car.Mounts, &pluginapi.Mount{ContainerPath: "/tmp/" + id, HostPath: "/tmp/" + id})
		}
		resp.ContainerResponses = append(resp.ContainerResponses, car)
	}
	return resp, nil
}

func (p *plugin) GetPreferredAllocation(context.Context, *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	return &pluginapi.PreferredAllocationResponse{ContainerResponses: []*pluginapi.ContainerPreferredAllocationResponse{{DeviceIDs: p.preferred}}}, nil
}

func (p *plugin) PreStartContainer(_ context.Context, r *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	p.prestarts <- r.DevicesIds
	return &pluginapi.PreStartContainerResponse{}, nil
}

func healthy(ids ...string) []*pluginapi.Device {
	var out []*pluginapi.Device
	for _, id := range ids {
		out = append(out, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
	}
	return out
}

// runManager runs a manager on dir until stop or the test's end.
func runManager(t *testing.T, dir string, clk *testclock.FakeClock, sourcesReady bool) (*Manager, func()) {
	t.Helper()
	m, err := New(klog.Background(), Options{Dir: dir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, func() bool { return sourcesReady }) }()
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(dir, KubeletSocket)); return err == nil })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return m, stop
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCapacity waits for the manager's capacity and allocatable of res.
func waitCapacity(t *testing.T, m *Manager, capacity, allocatable int64) {
	t.Helper()
	waitFor(t, func() bool {
		c, a, _ := m.Capacity()
		cq, aq := c[res], a[res]
		_, has := c[res]
		return has && cq.Value() == capacity && aq.Value() == allocatable
	})
}

func podAsking(uid string, n int64) *v1.Pod {
	q := *resource.NewQuantity(n, resource.DecimalSI)
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p-" + uid, Namespace: "default", UID: types.UID(uid)},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name:      "app",
			Resources: v1.ResourceRequirements{Limits: v1.ResourceList{res: q}, Requests: v1.ResourceList{res: q}},
		}}},
	}
}

func expectCall(t *testing.T, ch chan []string, want []string) {
	t.Helper()
	select {
	case got := <-ch:
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("plugin call with %v, want %v", got, want)
		}
	case <-time.After(waitLimit):
		t.Fatalf("no plugin call, want one with %v", want)
	}
}

func TestDevicesToNodeAndPods(t *testing.T) {
	dir := t.TempDir()
	clk := testclock.NewFakeClock(time.Now())
	m, _ := runManager(t, dir, clk, true)

	// Not a device resource yet: nothing to allocate.
	if r := m.Admit(podAsking("early", 1), nil); !r.Admit {
		t.Fatalf("pod before any plugin: %+v", r)
	}

	p := startPlugin(t, dir, "dp.sock", nil, healthy("Dev-1", "Dev-2")...)
	if err := p.register(dir, res); err != nil {
		t.Fatal(err)
	}
	waitCapacity(t, m, 2, 2)
	select {
	case <-m.Changed():
	default:
		t.Error("Changed not signalled")
	}

	// One device for a, with the plugin's mount and env.
	a := podAsking("a", 1)
	if r := m.Admit(a, nil); !r.Admit {
		t.Fatalf("Admit(a) = %+v", r)
	}
	expectCall(t, p.allocs, []string{"Dev-1"})
	x, err := m.ContainerExtras(context.Background(), a, &a.Spec.Containers[0])
	if err != nil {
		t.Fatal(err)
	}
	want := runtime.ContainerExtras{
		Env:    []runtime.ExtraEnv{{Name: "DEVICES", Value: "Dev-1"}},
		Mounts: []runtime.ExtraMount{{ContainerPath: "/tmp/Dev-1", HostPath: "/tmp/Dev-1"}},
	}
	if !reflect.DeepEqual(x, want) {
		t.Errorf("extras = %+v, want %+v", x, want)
	}
	// Admitted again (as after a berth restart): it keeps its device.
	if r := m.Admit(a, []*v1.Pod{a}); !r.Admit {
		t.Fatalf("Admit(a) again = %+v", r)
	}

	// b asks for more than is left: upstream's reason and message.
	b := podAsking("b", 2)
	r := m.Admit(b, []*v1.Pod{a})
	if r.Admit || r.Reason != "UnexpectedAdmissionError" ||
		r.Message != "Allocate failed due to requested number of devices unavailable for example.com/resource. Requested: 2, Available: 1, which is unexpected" {
		t.Fatalf("Admit(b) = %+v", r)
	}

	// a terminates: its device is free, b fits.
	m.PodTerminated("a")
	if r := m.Admit(b, nil); !r.Admit {
		t.Fatalf("Admit(b) after a = %+v", r)
	}
	expectCall(t, p.allocs, []string{"Dev-1", "Dev-2"})

	// A device turns unhealthy: out of allocatable, still in capacity.
	p.updates <- []*pluginapi.Device{{ID: "Dev-1", Health: pluginapi.Healthy}, {ID: "Dev-2", Health: pluginapi.Unhealthy}}
	waitCapacity(t, m, 2, 1)

	// The plugin goes: every device unhealthy; after the grace period
	// the resource is reported removed (0 on the Node).
	p.server.Stop()
	waitCapacity(t, m, 2, 0)
	clk.Step(endpointGracePeriod)
	c, _, removed := m.Capacity()
	if _, has := c[res]; has || !reflect.DeepEqual(removed, []string{res}) {
		t.Errorf("after the grace period: capacity %v, removed %v", c, removed)
	}
}

func TestCheckpointKeptAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	clk := testclock.NewFakeClock(time.Now())
	m, stop := runManager(t, dir, clk, true)
	p := startPlugin(t, dir, "dp.sock", nil, healthy("Dev-1", "Dev-2")...)
	if err := p.register(dir, res); err != nil {
		t.Fatal(err)
	}
	waitCapacity(t, m, 2, 2)
	a := podAsking("a", 1)
	if r := m.Admit(a, nil); !r.Admit {
		t.Fatalf("Admit(a) = %+v", r)
	}
	stop()

	// The file is upstream's: its checkpoint package would read it.
	cp, err := checkpoint.Read(dir)
	if err != nil || len(cp.Entries()) != 1 || cp.Entries()[0].PodUID != "a" || !reflect.DeepEqual(cp.Registered(), map[string][]string{res: {"Dev-1", "Dev-2"}}) {
		t.Fatalf("checkpoint = %+v, %v", cp, err)
	}

	// berth restarts: the plugin's socket is removed (its signal to
	// register again), the checkpoint stays; a keeps its device and its
	// container gets the plugin's answer before the plugin is back.
	m, _ = runManager(t, dir, clk, false)
	if _, err := os.Stat(p.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plugin socket after restart: %v, want removed", err)
	}
	if r := m.Admit(a, nil); !r.Admit {
		t.Fatalf("Admit(a) after restart = %+v", r)
	}
	x, err := m.ContainerExtras(context.Background(), a, &a.Spec.Containers[0])
	if err != nil || len(x.Mounts) != 1 || x.Mounts[0].HostPath != "/tmp/Dev-1" {
		t.Fatalf("extras after restart = %+v, %v", x, err)
	}
	// The plugin registers again: b gets the other device, never a's.
	p = startPlugin(t, dir, "dp2.sock", nil, healthy("Dev-1", "Dev-2")...)
	if err := p.register(dir, res); err != nil {
		t.Fatal(err)
	}
	waitCapacity(t, m, 2, 2)
	if r := m.Admit(podAsking("b", 1), nil); !r.Admit {
		t.Fatalf("Admit(b) = %+v", r)
	}
	expectCall(t, p.allocs, []string{"Dev-2"})
}

func TestPreferredAllocationAndPreStart(t *testing.T) {
	dir := t.TempDir()
	m, _ := runManager(t, dir, testclock.NewFakeClock(time.Now()), true)
	p := startPlugin(t, dir, "dp.sock", &pluginapi.DevicePluginOptions{PreStartRequired: true, GetPreferredAllocationAvailable: true}, healthy("d1", "d2", "d3")...)
	p.preferred = []string{"d3"}
	if err := p.register(dir, res); err != nil {
		t.Fatal(err)
	}
	waitCapacity(t, m, 3, 3)
	a := podAsking("a", 1)
	if r := m.Admit(a, nil); !r.Admit {
		t.Fatalf("Admit = %+v", r)
	}
	expectCall(t, p.allocs, []string{"d3"})
	if _, err := m.ContainerExtras(context.Background(), a, &a.Spec.Containers[0]); err != nil {
		t.Fatal(err)
	}
	expectCall(t, p.prestarts, []string{"d3"})
}

func TestInitContainerDevicesReused(t *testing.T) {
	dir := t.TempDir()
	m, _ := runManager(t, dir, testclock.NewFakeClock(time.Now()), true)
	p := startPlugin(t, dir, "dp.sock", nil, healthy("d1", "d2")...)
	if err := p.register(dir, res); err != nil {
		t.Fatal(err)
	}
	waitCapacity(t, m, 2, 2)
	pod := podAsking("a", 1)
	pod.Spec.InitContainers = []v1.Container{{Name: "init", Resources: pod.Spec.Containers[0].Resources}}
	if r := m.Admit(pod, nil); !r.Admit {
		t.Fatalf("Admit = %+v", r)
	}
	// The app container gets the init container's device again.
	expectCall(t, p.allocs, []string{"d1"})
	expectCall(t, p.allocs, []string{"d1"})
}

func TestRegistrationRefused(t *testing.T) {
	dir := t.TempDir()
	runManager(t, dir, testclock.NewFakeClock(time.Now()), true)
	p := startPlugin(t, dir, "dp.sock", nil, healthy("d1")...)
	if err := p.register(dir, "cpu"); err == nil || err.Error() != `rpc error: code = Unknown desc = the ResourceName "cpu" is invalid` {
		t.Errorf("register cpu: %v", err)
	}
}

func TestPluginThroughRegistrationDirectory(t *testing.T) {
	dir := t.TempDir()
	m, _ := runManager(t, dir, testclock.NewFakeClock(time.Now()), true)
	p := startPlugin(t, dir, "dp.sock", nil, healthy("d1", "d2")...)
	h := m.WatcherHandler()
	if err := h.ValidatePlugin(res, p.socket, []string{"v1alpha1"}); err == nil {
		t.Error("ValidatePlugin accepted a plugin without v1beta1")
	}
	if err := h.ValidatePlugin("cpu", p.socket, []string{pluginapi.Version}); err == nil {
		t.Error("ValidatePlugin accepted resource cpu")
	}
	if err := h.ValidatePlugin(res, p.socket, []string{pluginapi.Version}); err != nil {
		t.Fatal(err)
	}
	if err := h.RegisterPlugin(res, p.socket, []string{pluginapi.Version}); err != nil {
		t.Fatal(err)
	}
	waitCapacity(t, m, 2, 2)
	// Its registration socket went: the devices are unhealthy.
	h.DeRegisterPlugin(res, p.socket)
	waitCapacity(t, m, 2, 0)
}
