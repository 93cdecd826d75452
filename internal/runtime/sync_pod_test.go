package runtime

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

func TestSyncPodStartsAPod(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pod := fakePod()

	// A new pod: sandbox, then the init container.
	res := e.m.SyncPod(ctx, pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
	if res.Err != nil || len(res.Waiting) != 0 || res.RequeueAfter != 0 {
		t.Fatalf("SyncPod = %+v", res)
	}
	if got, want := e.calls(), []string{"RunPodSandbox", "PodSandboxStatus", "CreateContainer", "StartContainer"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %v, want %v", got, want)
	}
	if got, want := e.events(), []string{
		`Normal Pulled Container image "busybox:1.0" already present on machine`,
		"Normal Created Container created",
		"Normal Started Container started",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	st := e.status(pod)
	sb := st.LatestSandbox()
	if len(st.Sandboxes) != 1 || sb.State != container.SandboxReady || !reflect.DeepEqual(sb.IPs, []string{"192.168.192.168"}) || sb.Attempt != 0 {
		t.Fatalf("sandboxes = %+v", st.Sandboxes)
	}
	init := st.FindContainer("init")
	if init == nil || init.State != container.StateRunning || init.SandboxID != sb.ID || init.Hash != container.HashContainer(&pod.Spec.InitContainers[0]) || init.RestartCount != 0 {
		t.Fatalf("init = %+v", init)
	}
	hosts, err := os.ReadFile(filepath.Join(e.podDir(pod), "etc-hosts"))
	if err != nil || !strings.Contains(string(hosts), "192.168.192.168\tweb\n") {
		t.Errorf("etc-hosts = %q, %v", hosts, err)
	}
	if !e.exists(filepath.Join(e.m.opts.PodLogsDir, "default_web_uid-1", "init")) {
		t.Error("container log directory not created")
	}

	// Init done: the regular containers, in the existing sandbox.
	e.exit(init.ID, 0)
	st = e.status(pod)
	res = e.m.SyncPod(ctx, pod, st, plan.PodActions{SandboxID: sb.ID, NextInitContainer: plan.NoInit, ContainersToStart: []int{0, 1}})
	if res.Err != nil || len(res.Waiting) != 0 {
		t.Fatalf("SyncPod = %+v", res)
	}
	st = e.status(pod)
	for _, name := range []string{"app", "side"} {
		if c := st.FindContainer(name); c == nil || c.State != container.StateRunning || c.SandboxID != sb.ID {
			t.Errorf("%s = %+v", name, c)
		}
	}
	// app has a termination message file, mounted where it asked.
	e.rs.Lock()
	var mounted bool
	for _, c := range e.rs.Containers {
		if c.Metadata.Name == "app" {
			files, _ := os.ReadDir(filepath.Join(e.podDir(pod), "containers", "app"))
			mounted = len(files) == 1
		}
	}
	e.rs.Unlock()
	if !mounted {
		t.Error("no termination message file for app")
	}

	// Nothing to do is nothing done.
	e.calls()
	res = e.m.SyncPod(ctx, pod, st, plan.PodActions{SandboxID: sb.ID, NextInitContainer: plan.NoInit})
	if res.Err != nil || len(e.calls()) != 0 {
		t.Errorf("empty plan made calls: %+v", res)
	}
}

func TestSyncPodCrashLoopBackOff(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pod := fakePod()
	pod.Spec.InitContainers = nil
	start := plan.PodActions{NextInitContainer: plan.NoInit, ContainersToStart: []int{0}}

	res := e.m.SyncPod(ctx, pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
	if res.Err != nil || len(res.Waiting) != 0 {
		t.Fatalf("first start: %+v", res)
	}
	start.SandboxID = e.status(pod).LatestSandbox().ID
	e.exit(e.newest(pod, "app"), 1)
	e.events()

	type step struct {
		advance     time.Duration
		runFor      time.Duration // how long a restarted container runs
		changeImage bool
		wantDelay   string // "" means the container starts
		wantRequeue time.Duration
	}
	steps := []step{
		{}, // first exit: restart at once, next delay 10s
		{wantDelay: "10s", wantRequeue: 10 * time.Second}, // exited again right away
		{advance: 4 * time.Second, wantDelay: "10s", wantRequeue: 6 * time.Second},
		{advance: 6 * time.Second}, // 10s passed: restart, next delay 20s
		{wantDelay: "20s", wantRequeue: 20 * time.Second},
		{advance: 20 * time.Second}, // next 40s
		{advance: time.Second, wantDelay: "40s", wantRequeue: 39 * time.Second},
		// Ten minutes of running since the restart are not enough...
		{advance: 39 * time.Second, runFor: 600 * time.Second},
		{wantDelay: "1m20s", wantRequeue: 80 * time.Second},
		// ... more are: the next exit restarts at once, and afresh.
		{advance: 80 * time.Second, runFor: 601 * time.Second},
		{},
		{wantDelay: "10s", wantRequeue: 10 * time.Second},
		{changeImage: true}, // a new spec starts afresh
	}
	restarts := 0
	for i, s := range steps {
		e.clock.Step(s.advance)
		if s.changeImage {
			e.is.SetFakeImages([]string{"busybox:1.0", "busybox:2.0"})
			pod.Spec.Containers[0].Image = "busybox:2.0"
		}
		res := e.m.SyncPod(ctx, pod, e.status(pod), start)
		if res.Err != nil {
			t.Fatalf("step %d: %v", i, res.Err)
		}
		w, waiting := res.Waiting["app"]
		if s.wantDelay == "" {
			if waiting {
				t.Fatalf("step %d: waiting %+v, want a restart", i, w)
			}
			restarts++
			id := e.newest(pod, "app")
			if got := e.status(pod).FindContainer("app"); got.RestartCount != restarts {
				t.Errorf("step %d: restart count %d, want %d", i, got.RestartCount, restarts)
			}
			e.clock.Step(s.runFor)
			e.exit(id, 1)
			e.events()
			continue
		}
		wantMsg := "back-off " + s.wantDelay + " restarting failed container=app pod=web_default(uid-1)"
		if !waiting || w.Reason != "CrashLoopBackOff" || w.Message != wantMsg || res.RequeueAfter != s.wantRequeue {
			t.Errorf("step %d: waiting %+v requeue %v; want CrashLoopBackOff %q requeue %v", i, w, res.RequeueAfter, wantMsg, s.wantRequeue)
		}
		if got := e.events(); !reflect.DeepEqual(got, []string{"Warning BackOff Back-off restarting failed container app in pod web_default(uid-1)"}) {
			t.Errorf("step %d: events %q", i, got)
		}
	}
}

func TestSyncPodContainerFailures(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(e *env, pod *v1.Pod)
		wantWaiting container.Waiting
		wantRequeue time.Duration
		wantEvent   string
	}{
		{
			name: "image never pulled",
			setup: func(e *env, pod *v1.Pod) {
				pod.Spec.Containers[0].Image, pod.Spec.Containers[0].ImagePullPolicy = "absent:1", v1.PullNever
			},
			wantWaiting: container.Waiting{Reason: "ErrImageNeverPull", Message: `Container image "absent:1" is not present with pull policy of Never`},
			wantEvent:   "Warning Failed Error: ErrImageNeverPull",
		},
		{
			name: "pull fails",
			setup: func(e *env, pod *v1.Pod) {
				pod.Spec.Containers[0].Image = "absent:1"
				e.is.InjectError("PullImage", status.Error(codes.NotFound, "manifest unknown"))
			},
			wantWaiting: container.Waiting{Reason: "ErrImagePull", Message: "rpc error: code = NotFound desc = manifest unknown"},
			// Soon, to report ImagePullBackOff; the pull waits out its back-off.
			wantRequeue: time.Second,
			wantEvent:   "Warning Failed Error: ErrImagePull",
		},
		{
			name: "volume not set up",
			setup: func(e *env, pod *v1.Pod) {
				pod.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
				pod.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
			},
			wantWaiting: container.Waiting{Reason: "CreateContainerConfigError", Message: `cannot find volume "data" to mount into container "app"`},
			wantRequeue: 10 * time.Second,
			wantEvent:   `Warning Failed Error: cannot find volume "data" to mount into container "app"`,
		},
		{
			name: "secret env without an API server",
			setup: func(e *env, pod *v1.Pod) {
				pod.Spec.Containers[0].Env = []v1.EnvVar{{Name: "PW", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "s"}, Key: "pw"}}}}
			},
			wantWaiting: container.Waiting{Reason: "CreateContainerConfigError", Message: `couldn't get secret default/s, no kubeClient defined`},
			wantRequeue: 10 * time.Second,
			wantEvent:   `Warning Failed Error: couldn't get secret default/s, no kubeClient defined`,
		},
		{
			name: "missing configmap",
			setup: func(e *env, pod *v1.Pod) {
				e.m.opts.Objects = fakeObjects{}
				pod.Spec.Containers[0].EnvFrom = []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "x"}}}}
			},
			wantWaiting: container.Waiting{Reason: "CreateContainerConfigError", Message: `configmap "x" not found`},
			wantRequeue: 10 * time.Second,
			wantEvent:   `Warning Failed Error: configmap "x" not found`,
		},
		{
			name: "missing key",
			setup: func(e *env, pod *v1.Pod) {
				e.m.opts.Objects = fakeObjects{"x": &v1.ConfigMap{Data: map[string]string{"j": "v"}}}
				pod.Spec.Containers[0].Env = []v1.EnvVar{{Name: "K", ValueFrom: cmKey("x", "k", false)}}
			},
			wantWaiting: container.Waiting{Reason: "CreateContainerConfigError", Message: `couldn't find key k in ConfigMap default/x`},
			wantRequeue: 10 * time.Second,
			wantEvent:   `Warning Failed Error: couldn't find key k in ConfigMap default/x`,
		},
		{
			name: "bad subPath",
			setup: func(e *env, pod *v1.Pod) {
				e.m.opts.Volumes = fakeVolumes{"data": e.t.TempDir()}
				pod.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
				pod.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data", SubPath: "../x"}}
			},
			wantWaiting: container.Waiting{Reason: "CreateContainerConfigError", Message: "unable to provision SubPath `../x`: must not contain '..'"},
			wantRequeue: 10 * time.Second,
			wantEvent:   "Warning Failed Error: unable to provision SubPath `../x`: must not contain '..'",
		},
		{
			name: "create fails",
			setup: func(e *env, pod *v1.Pod) {
				e.rs.InjectError("CreateContainer", status.Error(codes.Unknown, "no space left"))
			},
			wantWaiting: container.Waiting{Reason: "CreateContainerError", Message: "no space left"},
			wantRequeue: 10 * time.Second,
			wantEvent:   "Warning Failed Error: no space left",
		},
		{
			name: "start fails",
			setup: func(e *env, pod *v1.Pod) {
				e.rs.InjectError("StartContainer", status.Error(codes.Unknown, `exec: "nope": not found`))
			},
			wantWaiting: container.Waiting{Reason: "RunContainerError", Message: `exec: "nope": not found`},
			wantRequeue: 10 * time.Second,
			wantEvent:   `Warning Failed Error: exec: "nope": not found`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			pod := fakePod()
			tt.setup(e, pod)
			res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0, 1}})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if got := res.Waiting["app"]; got != tt.wantWaiting {
				t.Errorf("waiting = %+v, want %+v", got, tt.wantWaiting)
			}
			if _, ok := res.Waiting["side"]; ok {
				t.Error("a failure of app held back side")
			}
			if res.RequeueAfter != tt.wantRequeue {
				t.Errorf("RequeueAfter = %v, want %v", res.RequeueAfter, tt.wantRequeue)
			}
			found := false
			for _, ev := range e.events() {
				found = found || ev == tt.wantEvent
			}
			if !found {
				t.Errorf("no event %q", tt.wantEvent)
			}
		})
	}
}

func TestSyncPodSandboxFailure(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	e.rs.InjectError("RunPodSandbox", status.Error(codes.Unknown, "cni down"))
	res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "cni down") || len(res.Waiting) != 0 {
		t.Errorf("SyncPod = %+v, want an error", res)
	}
	if got, want := e.calls(), []string{"RunPodSandbox"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %v, want %v", got, want)
	}
	if got := e.events(); !reflect.DeepEqual(got, []string{"Warning FailedCreatePodSandBox Failed to create pod sandbox: cni down"}) {
		t.Errorf("events = %q", got)
	}
}

// fakeRuntimeClasses maps class names to handlers.
type fakeRuntimeClasses map[string]string

func (f fakeRuntimeClasses) LookupRuntimeHandler(name *string) (string, error) {
	if name == nil || *name == "" {
		return "", nil
	}
	h, ok := f[*name]
	if !ok {
		return "", apierrors.NewNotFound(schema.GroupResource{Group: "node.k8s.io", Resource: "runtimeclass"}, *name)
	}
	return h, nil
}

// TestSyncPodRuntimeClass: the sandbox runs with the handler of the pod's
// RuntimeClass; a class that does not exist fails the sandbox with
// upstream's event, and so does a class standalone, where none can be
// read.
func TestSyncPodRuntimeClass(t *testing.T) {
	for _, tt := range []struct {
		name        string
		classes     RuntimeHandlers
		class       *string
		wantHandler string
		wantEvent   string
	}{
		{name: "no class", classes: fakeRuntimeClasses{}, wantHandler: ""},
		{name: "class", classes: fakeRuntimeClasses{"sandboxed": "test-handler"}, class: ptrTo("sandboxed"), wantHandler: "test-handler"},
		{name: "missing class", classes: fakeRuntimeClasses{}, class: ptrTo("kata"),
			wantEvent: `Warning FailedCreatePodSandBox Failed to create pod sandbox: runtimeclass.node.k8s.io "kata" not found`},
		{name: "standalone", class: ptrTo("kata"),
			wantEvent: `Warning FailedCreatePodSandBox Failed to create pod sandbox: runtimeClassName "kata": no API server to read RuntimeClass "kata" from`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.m.opts.RuntimeClasses = tt.classes
			pod := fakePod()
			pod.Spec.RuntimeClassName = tt.class
			res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
			if tt.wantEvent != "" {
				if res.Err == nil || len(e.rs.sandboxConfigs) != 0 {
					t.Errorf("SyncPod = %+v with %d sandboxes, want an error and none", res, len(e.rs.sandboxConfigs))
				}
				if got := e.events(); !reflect.DeepEqual(got, []string{tt.wantEvent}) {
					t.Errorf("events = %q, want %q", got, tt.wantEvent)
				}
				return
			}
			if res.Err != nil {
				t.Fatalf("SyncPod: %v", res.Err)
			}
			sandboxes, err := e.rs.ListPodSandbox(context.Background(), nil)
			if err != nil || len(sandboxes) != 1 || sandboxes[0].RuntimeHandler != tt.wantHandler {
				t.Errorf("sandboxes = %v, %v; want one with handler %q", sandboxes, err, tt.wantHandler)
			}
		})
	}
}

// running starts the pod's sandbox and regular containers and returns its
// status.
func (e *env) running(pod *v1.Pod) *container.PodStatus {
	e.t.Helper()
	res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0, 1}})
	if res.Err != nil || len(res.Waiting) > 0 {
		e.t.Fatalf("start pod: %+v", res)
	}
	e.settle()
	e.calls()
	e.events()
	return e.status(pod)
}

func TestSyncPodKills(t *testing.T) {
	t.Run("kill the pod", func(t *testing.T) {
		e := newEnv(t)
		pod := fakePod()
		st := e.running(pod)
		res := e.m.SyncPod(context.Background(), pod, st, plan.PodActions{KillPod: true, NextInitContainer: plan.NoInit})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		after := e.status(pod)
		if after.IsRunning() {
			t.Errorf("still running: %+v", after)
		}
		for _, c := range st.Containers {
			if got := e.rs.stopTimeouts[c.ID]; got != 7 {
				t.Errorf("%s stopped with %ds, want the pod's 7s", c.Name, got)
			}
		}
		if got := e.events(); len(got) != 2 || !strings.HasPrefix(got[0], "Normal Killing Stopping container ") {
			t.Errorf("events = %q", got)
		}
	})

	t.Run("kill one container for a probe", func(t *testing.T) {
		e := newEnv(t)
		pod := fakePod()
		pod.Spec.Containers[0].LivenessProbe = &v1.Probe{TerminationGracePeriodSeconds: ptrTo(int64(3))}
		st := e.running(pod)
		app := st.FindContainer("app")
		res := e.m.SyncPod(context.Background(), pod, st, plan.PodActions{
			SandboxID:         st.LatestSandbox().ID,
			NextInitContainer: plan.NoInit,
			ContainersToKill:  map[string]plan.KillInfo{app.ID: {Name: "app", Reason: KillReasonLivenessProbe, Message: "Container app failed liveness probe, will be restarted"}},
			ContainersToStart: []int{0},
		})
		if res.Err != nil || len(res.Waiting) != 0 {
			t.Fatal(res)
		}
		if got := e.rs.stopTimeouts[app.ID]; got != 3 {
			t.Errorf("stopped with %ds, want the probe's 3s", got)
		}
		e.settle()
		after := e.status(pod)
		if got := after.ContainersNamed("app"); len(got) != 2 || got[0].State != container.StateRunning || got[0].RestartCount != 1 || got[1].State != container.StateExited {
			t.Errorf("app instances = %+v", got)
		}
		if got := e.events(); len(got) == 0 || got[0] != "Normal Killing Container app failed liveness probe, will be restarted" {
			t.Errorf("events = %q", got)
		}
	})

	t.Run("sandbox changed", func(t *testing.T) {
		e := newEnv(t)
		pod := fakePod()
		res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		e.exit(e.newest(pod, "init"), 0)
		st := e.status(pod)
		old := st.LatestSandbox()
		e.events()
		res = e.m.SyncPod(context.Background(), pod, st, plan.PodActions{KillPod: true, CreateSandbox: true, Attempt: 1, NextInitContainer: 0})
		if res.Err != nil || len(res.Waiting) != 0 {
			t.Fatal(res)
		}
		e.settle()
		after := e.status(pod)
		if len(after.Sandboxes) != 2 || after.LatestSandbox().Attempt != 1 || after.LatestSandbox().State != container.SandboxReady {
			t.Fatalf("sandboxes = %+v", after.Sandboxes)
		}
		inits := after.ContainersNamed("init")
		if len(inits) != 1 || inits[0].SandboxID == old.ID || inits[0].State != container.StateRunning {
			t.Errorf("init instances = %+v; the old one must be purged", inits)
		}
		if got := e.events(); len(got) == 0 || got[0] != "Normal SandboxChanged Pod sandbox changed, it will be killed and re-created." {
			t.Errorf("events = %q", got)
		}
	})
}

func TestKillPod(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	st := e.running(pod)
	zero := int64(0)

	// An orphan: the grace period comes from the container.
	if err := e.m.KillPod(context.Background(), nil, st, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Containers {
		if got := e.rs.stopTimeouts[c.ID]; got != 7 {
			t.Errorf("orphan %s stopped with %ds, want the stored 7s", c.Name, got)
		}
	}
	if e.status(pod).IsRunning() {
		t.Error("orphan still running")
	}
	if got := e.events(); len(got) != 2 || !strings.HasPrefix(got[0], "Normal Killing Stopping container ") {
		t.Errorf("events = %q", got)
	}

	// An override; never below 2 seconds.
	e2 := newEnv(t)
	st = e2.running(pod)
	if err := e2.m.KillPod(context.Background(), pod, st, &zero); err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Containers {
		if got := e2.rs.stopTimeouts[c.ID]; got != 2 {
			t.Errorf("%s stopped with %ds, want the minimum 2s", c.Name, got)
		}
	}

	// Failures are all reported.
	e3 := newEnv(t)
	st = e3.running(pod)
	e3.rs.InjectError("StopPodSandbox", status.Error(codes.Internal, "stuck"))
	if err := e3.m.KillPod(context.Background(), pod, st, nil); err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("KillPod = %v, want the sandbox failure", err)
	}
}

func TestKillGracePeriod(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	spec := &v1.Container{
		Name:          "app",
		LivenessProbe: &v1.Probe{TerminationGracePeriodSeconds: i(4)},
		StartupProbe:  &v1.Probe{},
	}
	pod := func(term, del *int64) *v1.Pod {
		p := &v1.Pod{Spec: v1.PodSpec{TerminationGracePeriodSeconds: term}}
		p.DeletionGracePeriodSeconds = del
		return p
	}
	tests := []struct {
		name     string
		pod      *v1.Pod
		reason   string
		stored   annotatedInfo
		override *int64
		want     int64
	}{
		{name: "pod", pod: pod(i(30), nil), want: 30},
		{name: "deletion wins", pod: pod(i(30), i(10)), want: 10},
		{name: "liveness probe", pod: pod(i(30), nil), reason: KillReasonLivenessProbe, want: 4},
		{name: "startup probe without its own", pod: pod(i(30), nil), reason: KillReasonStartupProbe, want: 30},
		{name: "override", pod: pod(i(30), i(10)), override: i(5), want: 5},
		{name: "zero (the stop still gets 2s)", pod: pod(i(0), nil), want: 0},
		{name: "nothing set", pod: pod(nil, nil), want: 2},
		{name: "orphan", stored: annotatedInfo{podTerminationGrace: i(20)}, want: 20},
		{name: "orphan being deleted", stored: annotatedInfo{podTerminationGrace: i(20), podDeletionGrace: i(3)}, want: 3},
		{name: "orphan without annotations", want: 2},
	}
	for _, tt := range tests {
		var s *v1.Container
		if tt.pod != nil {
			s = spec
		}
		if got := killGracePeriod(tt.pod, s, tt.reason, tt.stored, tt.override); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}
