package runtime

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/container"
)

// fakeRuntime is the cri-api fake runtime, recording the grace periods of
// StopContainer and with a scriptable event stream.
type fakeRuntime struct {
	*critesting.FakeRuntimeService
	mu           sync.Mutex
	stopTimeouts map[string]int64
	stopped      []string // container names, in the order they were stopped
	events       func(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse) error
	// beforeStop, when set, runs before a container is stopped (to block it).
	beforeStop func(name string)
	// beforeRunSandbox, when set, runs before a sandbox is created (to block it).
	beforeRunSandbox func()
	// exec, when set, runs ExecSync.
	exec func(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error)
	// configs are the configs containers were created with, by ID.
	configs map[string]*runtimeapi.ContainerConfig
	// handlers are the runtime handlers Status reports (none by default,
	// as containerd 1.x).
	handlers []*runtimeapi.RuntimeHandler
	// sandboxConfigs are the configs sandboxes were run with, in order.
	sandboxConfigs []*runtimeapi.PodSandboxConfig
	// info is the verbose Status info (none by default).
	info map[string]string
	// version, when set, is what Version answers.
	version *runtimeapi.VersionResponse
}

func (f *fakeRuntime) Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error) {
	if f.version != nil {
		return f.version, nil
	}
	return f.FakeRuntimeService.Version(ctx, apiVersion)
}

func (f *fakeRuntime) Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error) {
	resp, err := f.FakeRuntimeService.Status(ctx, verbose)
	if err == nil {
		resp.RuntimeHandlers = f.handlers
		if verbose {
			resp.Info = f.info
		}
	}
	return resp, err
}

func (f *fakeRuntime) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, sandboxCfg *runtimeapi.PodSandboxConfig) (string, error) {
	id, err := f.FakeRuntimeService.CreateContainer(ctx, sandboxID, cfg, sandboxCfg)
	if err == nil {
		f.mu.Lock()
		f.configs[id] = cfg
		f.mu.Unlock()
	}
	return id, err
}

// config returns the config container id was created with.
func (f *fakeRuntime) config(id string) *runtimeapi.ContainerConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.configs[id]
}

func (f *fakeRuntime) StopContainer(ctx context.Context, id string, timeout int64) error {
	f.Lock()
	var name string
	if c, ok := f.Containers[id]; ok {
		name = c.Metadata.Name
	}
	f.Unlock()
	if f.beforeStop != nil {
		f.beforeStop(name)
	}
	f.mu.Lock()
	f.stopTimeouts[id] = timeout
	f.stopped = append(f.stopped, name)
	f.mu.Unlock()
	return f.FakeRuntimeService.StopContainer(ctx, id, timeout)
}

func (f *fakeRuntime) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	if f.beforeRunSandbox != nil {
		f.beforeRunSandbox()
	}
	f.mu.Lock()
	f.sandboxConfigs = append(f.sandboxConfigs, config)
	f.mu.Unlock()
	return f.FakeRuntimeService.RunPodSandbox(ctx, config, handler)
}

func (f *fakeRuntime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	if f.exec != nil {
		return f.exec(ctx, id, cmd, timeout)
	}
	return f.FakeRuntimeService.ExecSync(ctx, id, cmd, timeout)
}

func (f *fakeRuntime) stopTimeout(id string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopTimeouts[id]
}

func (f *fakeRuntime) GetContainerEvents(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse, _ func(runtimeapi.RuntimeService_GetContainerEventsClient)) error {
	return f.events(ctx, ch)
}

type env struct {
	t     *testing.T
	rs    *fakeRuntime
	is    *critesting.FakeImageService
	clock *clocktesting.FakeClock
	rec   *record.FakeRecorder
	m     *Manager
	// base and created hand out increasing creation times from base on, so
	// that the order of containers never depends on the fake's wall-clock
	// timestamps (which are all before base).
	base, created time.Time
}

func newEnv(t *testing.T) *env {
	rs := &fakeRuntime{FakeRuntimeService: critesting.NewFakeRuntimeService(), stopTimeouts: map[string]int64{}, configs: map[string]*runtimeapi.ContainerConfig{}}
	is := critesting.NewFakeImageService()
	is.SetFakeImages([]string{"busybox:1.0"})
	clk := clocktesting.NewFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rec := record.NewFakeRecorder(1000)
	m, err := NewForServices(Options{
		RootDir:       t.TempDir(),
		PodLogsDir:    t.TempDir(),
		NodeName:      "node-a",
		NodeIP:        "192.168.1.10",
		ClusterDNS:    []string{"10.96.0.10"},
		ClusterDomain: "cluster.local",
		Recorder:      rec,
		Clock:         clk,
	}, rs, is)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, rs: rs, is: is, clock: clk, rec: rec, m: m, base: clk.Now(), created: clk.Now()}
}

func (e *env) status(pod *v1.Pod) *container.PodStatus {
	e.t.Helper()
	st, err := e.m.GetPodStatus(context.Background(), pod.UID, pod.Name, pod.Namespace)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// settle gives every container of the fake an increasing creation time in
// the order they were made (their IDs end in the attempt).
func (e *env) settle() {
	e.rs.Lock()
	defer e.rs.Unlock()
	var ids []string
	for id, c := range e.rs.Containers {
		if c.CreatedAt < e.base.UnixNano() {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return e.rs.Containers[ids[i]].CreatedAt < e.rs.Containers[ids[j]].CreatedAt })
	for _, id := range ids {
		e.created = e.created.Add(time.Millisecond)
		e.rs.Containers[id].CreatedAt = e.created.UnixNano()
	}
}

// exit marks a container exited now (by the fake clock).
func (e *env) exit(id string, code int32) {
	e.rs.Lock()
	defer e.rs.Unlock()
	c := e.rs.Containers[id]
	c.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.ExitCode = code
	c.FinishedAt = e.clock.Now().UnixNano()
}

// newest returns the ID of the newest container with name.
func (e *env) newest(pod *v1.Pod, name string) string {
	e.t.Helper()
	e.settle()
	c := e.status(pod).FindContainer(name)
	if c == nil {
		e.t.Fatalf("no container %q", name)
	}
	return c.ID
}

func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func (e *env) calls() []string {
	e.rs.Lock()
	defer e.rs.Unlock()
	out := append([]string(nil), e.rs.Called...)
	e.rs.Called = nil
	return out
}

func (e *env) exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (e *env) podDir(pod *v1.Pod) string {
	return filepath.Join(e.m.opts.RootDir, "pods", string(pod.UID))
}

func fakePod() *v1.Pod {
	grace := int64(7)
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			InitContainers: []v1.Container{{
				Name: "init", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent,
			}},
			Containers: []v1.Container{
				{Name: "app", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent, TerminationMessagePath: "/dev/termination-log"},
				{Name: "side", Image: "busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent},
			},
		},
	}
}

// fakeObjects serves ConfigMaps and Secrets by name, in any namespace.
type fakeObjects map[string]any

func (f fakeObjects) GetConfigMap(_ context.Context, _, name string) (*v1.ConfigMap, error) {
	if cm, ok := f[name].(*v1.ConfigMap); ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("configmap"), name)
}

func (f fakeObjects) GetSecret(_ context.Context, _, name string) (*v1.Secret, error) {
	if s, ok := f[name].(*v1.Secret); ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("secret"), name)
}

// fakeVolumes has the host paths of volumes by name, for any pod.
type fakeVolumes map[string]string

func (f fakeVolumes) HostPath(_ types.UID, name string) (string, bool) {
	p, ok := f[name]
	return p, ok
}
