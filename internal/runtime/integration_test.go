package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/record"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
	"github.com/berth-dev/berth/internal/runtime"
)

// These tests run a pod through a real runtime. They need BERTH_CRI_ENDPOINT
// (e.g. unix:///tmp/x/containerd.sock from `hack/containerd.sh up /tmp/x`)
// with the images registry.k8s.io/pause:3.10 and berth.local/busybox:1.0.

const busybox = "berth.local/busybox:1.0"

func endpoint(t *testing.T) string {
	ep := os.Getenv("BERTH_CRI_ENDPOINT")
	if ep == "" {
		t.Skip("BERTH_CRI_ENDPOINT is not set")
	}
	if !strings.Contains(ep, "://") {
		ep = "unix://" + ep
	}
	return ep
}

type harness struct {
	t   *testing.T
	m   *runtime.Manager
	rs  internalapi.RuntimeService // for exec and checks behind the manager's back
	rec *record.FakeRecorder
	opt runtime.Options
}

func newHarness(t *testing.T) *harness {
	return newHarnessWith(t, nil)
}

// newHarnessWith lets the test change the options before the Manager is made.
func newHarnessWith(t *testing.T, change func(*runtime.Options)) *harness {
	ep := endpoint(t)
	ctx := context.Background()
	rec := record.NewFakeRecorder(1000)
	opts := runtime.Options{
		RuntimeEndpoint: ep,
		RequestTimeout:  30 * time.Second,
		RootDir:         t.TempDir(),
		PodLogsDir:      t.TempDir(),
		NodeName:        "berth-test",
		NodeIP:          "10.0.0.1",
		ClusterDNS:      []string{"10.96.0.10"},
		ClusterDomain:   "cluster.local",
		Recorder:        rec,
	}
	if change != nil {
		change(&opts)
	}
	m, err := runtime.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(ep).WithConnectionTimeout(30 * time.Second).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, m: m, rs: rs, rec: rec, opt: opts}
}

// waitFor polls the runtime (a real one: there is nothing to wait on).
func (h *harness) waitFor(what string, uid types.UID, cond func(*container.PodStatus) bool) *container.PodStatus {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := h.m.GetPodStatus(context.Background(), uid, "", "")
		if err != nil {
			h.t.Fatalf("GetPodStatus: %v", err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; status %s", what, dump(st))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func dump(st *container.PodStatus) string {
	var b strings.Builder
	for _, sb := range st.Sandboxes {
		fmt.Fprintf(&b, "\n  sandbox %.12s %s attempt=%d ips=%v", sb.ID, sb.State, sb.Attempt, sb.IPs)
	}
	for _, c := range st.Containers {
		fmt.Fprintf(&b, "\n  container %s %.12s %s exit=%d reason=%q msg=%q restarts=%d", c.Name, c.ID, c.State, c.ExitCode, c.Reason, c.Message, c.RestartCount)
	}
	return b.String()
}

func (h *harness) exec(id string, cmd ...string) string {
	h.t.Helper()
	out, errOut, err := h.rs.ExecSync(context.Background(), id, cmd, 10*time.Second)
	if err != nil {
		h.t.Fatalf("exec %v: %v (%s)", cmd, err, errOut)
	}
	return string(out)
}

func (h *harness) cleanup(st *container.PodStatus) {
	zero := int64(0)
	ctx := context.Background()
	if err := h.m.KillPod(ctx, nil, st, &zero); err != nil {
		h.t.Logf("cleanup kill: %v", err)
	}
	if err := h.m.RemovePod(ctx, st); err != nil {
		h.t.Logf("cleanup remove: %v", err)
	}
}

func testPod(name string) *v1.Pod {
	grace := int64(5)
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default", UID: uuid.NewUUID(),
			Labels: map[string]string{"app": "it"}, Annotations: map[string]string{"note": "x"},
		},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Subdomain:                     "sub",
			InitContainers: []v1.Container{{
				Name: "init", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
				Command: []string{"sh", "-c", "echo init done"},
			}},
			Containers: []v1.Container{
				{
					Name: "main", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
					Command: []string{"sh", "-c", "trap 'exit 0' TERM; echo '$(GREETING)'; sleep 3600 & wait"},
					Env: []v1.EnvVar{
						{Name: "WHO", Value: "world"},
						{Name: "GREETING", Value: "hello $(WHO) $$(WHO)"},
						{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
						{Name: "HOST_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
						{Name: "APP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
					},
				},
				{
					Name: "crasher", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
					Command:                []string{"sh", "-c", "echo boom > /dev/termination-log; exit 3"},
					TerminationMessagePath: "/dev/termination-log",
				},
			},
		},
	}
}

func TestIntegrationPodLifecycle(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	pod := testPod("it-lifecycle")
	st := &container.PodStatus{UID: pod.UID, Name: pod.Name, Namespace: pod.Namespace}
	defer func() { h.cleanup(st) }()

	name, version, err := h.m.Version(ctx)
	if err != nil || name == "" || version == "" {
		t.Fatalf("Version = %q %q %v", name, version, err)
	}
	t.Logf("runtime %s %s", name, version)

	// 1. New sandbox, first init container.
	res := h.m.SyncPod(ctx, pod, st, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
	if res.Err != nil || len(res.Waiting) > 0 {
		t.Fatalf("SyncPod (sandbox + init) = %+v", res)
	}
	st = h.waitFor("init to finish", pod.UID, func(st *container.PodStatus) bool {
		c := st.FindContainer("init")
		return c != nil && c.State == container.StateExited
	})
	sb := st.LatestSandbox()
	if sb == nil || sb.State != container.SandboxReady || len(sb.IPs) == 0 || sb.HostNetwork {
		t.Fatalf("sandbox = %+v, want ready with an IP", sb)
	}
	if init := st.FindContainer("init"); init.ExitCode != 0 || init.Hash != container.HashContainer(&pod.Spec.InitContainers[0]) {
		t.Fatalf("init = %+v", init)
	}

	// 2. Regular containers.
	res = h.m.SyncPod(ctx, pod, st, plan.PodActions{SandboxID: sb.ID, NextInitContainer: plan.NoInit, ContainersToStart: []int{0, 1}})
	if res.Err != nil || len(res.Waiting) > 0 {
		t.Fatalf("SyncPod (containers) = %+v", res)
	}
	st = h.waitFor("main running and crasher exited", pod.UID, func(st *container.PodStatus) bool {
		m, c := st.FindContainer("main"), st.FindContainer("crasher")
		return m != nil && m.State == container.StateRunning && c != nil && c.State == container.StateExited
	})
	main, crasher := st.FindContainer("main"), st.FindContainer("crasher")
	if crasher.ExitCode != 3 || !strings.Contains(crasher.Message, "boom") || crasher.FinishedAt.IsZero() || crasher.RestartCount != 0 {
		t.Errorf("crasher = %+v, want exit 3 with message boom", crasher)
	}
	wantLog := filepath.Join(h.opt.PodLogsDir, "default_it-lifecycle_"+string(pod.UID), "main", "0.log")
	if main.LogPath != wantLog || main.Hash != container.HashContainer(&pod.Spec.Containers[0]) || main.SandboxID != sb.ID {
		t.Errorf("main = %+v, want log %s", main, wantLog)
	}

	env := h.exec(main.ID, "env")
	for _, want := range []string{"GREETING=hello world $(WHO)", "POD_NAME=it-lifecycle", "POD_IP=" + sb.IPs[0], "HOST_IP=10.0.0.1", "APP=it"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	hosts := h.exec(main.ID, "cat", "/etc/hosts")
	if want := sb.IPs[0] + "\tit-lifecycle.sub.default.svc.cluster.local\tit-lifecycle\n"; !strings.Contains(hosts, want) {
		t.Errorf("/etc/hosts lacks %q:\n%s", want, hosts)
	}
	if resolv := h.exec(main.ID, "cat", "/etc/resolv.conf"); !strings.Contains(resolv, "nameserver 10.96.0.10") || !strings.Contains(resolv, "search default.svc.cluster.local svc.cluster.local cluster.local") {
		t.Errorf("/etc/resolv.conf:\n%s", resolv)
	}
	if hn := strings.TrimSpace(h.exec(main.ID, "hostname")); hn != "it-lifecycle" {
		t.Errorf("hostname = %q", hn)
	}
	if logData, err := os.ReadFile(wantLog); err != nil || !strings.Contains(string(logData), "hello world $(WHO)") {
		t.Errorf("log %s = %q, %v", wantLog, logData, err)
	}

	// 3. The crasher restarts once at once, then backs off.
	res = h.m.SyncPod(ctx, pod, st, plan.PodActions{SandboxID: sb.ID, NextInitContainer: plan.NoInit, ContainersToStart: []int{1}})
	if res.Err != nil || len(res.Waiting) > 0 {
		t.Fatalf("SyncPod (restart) = %+v", res)
	}
	st = h.waitFor("crasher to exit again", pod.UID, func(st *container.PodStatus) bool {
		c := st.FindContainer("crasher")
		return c.RestartCount == 1 && c.State == container.StateExited
	})
	res = h.m.SyncPod(ctx, pod, st, plan.PodActions{SandboxID: sb.ID, NextInitContainer: plan.NoInit, ContainersToStart: []int{1}})
	w, ok := res.Waiting["crasher"]
	if !ok || w.Reason != "CrashLoopBackOff" || !strings.HasPrefix(w.Message, "back-off 10s restarting failed container=crasher pod=it-lifecycle_default(") || res.RequeueAfter <= 0 || res.RequeueAfter > 10*time.Second {
		t.Errorf("SyncPod in back-off = %+v", res)
	}

	// 4. The relist sees the same pod.
	pods, err := h.m.ListPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := pods[pod.UID]
	if listed == nil || len(listed.Sandboxes) != 1 || len(listed.Containers) != 4 || listed.Name != pod.Name {
		t.Fatalf("ListPods[%s] = %s", pod.UID, dump(listed))
	}
	if lm := listed.FindContainer("main"); lm.ID != main.ID || lm.State != container.StateRunning || lm.Hash != main.Hash {
		t.Errorf("listed main = %+v", lm)
	}

	// 5. GC keeps the newest exited crasher and drops the older one.
	if err := h.m.GarbageCollect(ctx, pod, st); err != nil {
		t.Fatal(err)
	}
	st, _ = h.m.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace)
	if got := st.ContainersNamed("crasher"); len(got) != 1 || got[0].RestartCount != 1 {
		t.Errorf("after GC crasher instances = %s", dump(st))
	}

	// 6. Kill: every container stops, the sandbox too.
	start := time.Now()
	if err := h.m.KillPod(ctx, pod, st, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("KillPod took %v; main traps TERM and should stop at once", d)
	}
	st, _ = h.m.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace)
	if st.IsRunning() {
		t.Fatalf("after KillPod: %s", dump(st))
	}

	// 7. Remove: nothing left, files gone.
	if err := h.m.RemovePod(ctx, st); err != nil {
		t.Fatal(err)
	}
	pods, _ = h.m.ListPods(ctx)
	if _, ok := pods[pod.UID]; ok {
		t.Errorf("pod still listed after RemovePod: %s", dump(pods[pod.UID]))
	}
	for _, dir := range []string{filepath.Join(h.opt.RootDir, "pods", string(pod.UID)), filepath.Dir(filepath.Dir(wantLog))} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists (%v)", dir, err)
		}
	}

	events := drainEvents(h.rec)
	for _, want := range []string{
		`Normal Pulled Container image "berth.local/busybox:1.0" already present on machine`,
		"Normal Created Container created",
		"Normal Started Container started",
		"Warning BackOff Back-off restarting failed container crasher in pod it-lifecycle_default(",
		"Normal Killing Stopping container main",
	} {
		if !containsPrefix(events, want) {
			t.Errorf("no event %q in\n%s", want, strings.Join(events, "\n"))
		}
	}
}

func TestIntegrationContainerErrors(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "it-errors", Namespace: "default", UID: uuid.NewUUID()},
		Spec: v1.PodSpec{
			Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
			Containers: []v1.Container{
				{Name: "novol", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}}},
				{Name: "never", Image: "berth.local/absent:1.0", ImagePullPolicy: v1.PullNever},
				{Name: "pullfail", Image: "127.0.0.1:1/absent:1.0", ImagePullPolicy: v1.PullIfNotPresent},
				{Name: "badcmd", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"/no/such/binary"}},
			},
		},
	}
	st := &container.PodStatus{UID: pod.UID, Name: pod.Name, Namespace: pod.Namespace}
	defer func() { h.cleanup(st) }()

	res := h.m.SyncPod(ctx, pod, st, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0, 1, 2, 3}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	want := map[string]string{
		"novol":    `CreateContainerConfigError: cannot find volume "data" to mount into container "novol"`,
		"never":    `ErrImageNeverPull: Container image "berth.local/absent:1.0" is not present with pull policy of Never`,
		"pullfail": "ErrImagePull: ",
		"badcmd":   "RunContainerError: ",
	}
	for name, w := range want {
		got := res.Waiting[name].Reason + ": " + res.Waiting[name].Message
		if !strings.HasPrefix(got, w) {
			t.Errorf("waiting[%s] = %q, want prefix %q", name, got, w)
		}
	}
	if res.RequeueAfter != 10*time.Second {
		t.Errorf("RequeueAfter = %v, want 10s", res.RequeueAfter)
	}
	st, _ = h.m.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace)

	// The failed pull backs off.
	res = h.m.SyncPod(ctx, pod, st, plan.PodActions{SandboxID: st.LatestSandbox().ID, NextInitContainer: plan.NoInit, ContainersToStart: []int{2}})
	if w := res.Waiting["pullfail"]; w.Reason != "ImagePullBackOff" || !strings.HasPrefix(w.Message, `Back-off pulling image "127.0.0.1:1/absent:1.0": ErrImagePull: `) {
		t.Errorf("second pull = %+v", w)
	}
}

func TestIntegrationHostNetworkGuaranteed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	res := v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("64Mi")}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "it-hostnet", Namespace: "kube-system", UID: uuid.NewUUID()},
		Spec: v1.PodSpec{
			HostNetwork: true,
			Containers: []v1.Container{{
				Name: "main", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
				Command:   []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"},
				Resources: v1.ResourceRequirements{Requests: res, Limits: res},
			}},
		},
	}
	st := &container.PodStatus{UID: pod.UID, Name: pod.Name, Namespace: pod.Namespace}
	defer func() { h.cleanup(st) }()
	r := h.m.SyncPod(ctx, pod, st, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
	if r.Err != nil || len(r.Waiting) > 0 {
		t.Fatalf("SyncPod = %+v", r)
	}
	st = h.waitFor("main running", pod.UID, func(st *container.PodStatus) bool {
		c := st.FindContainer("main")
		return c != nil && c.State == container.StateRunning
	})
	if sb := st.LatestSandbox(); !sb.HostNetwork || len(sb.IPs) != 0 {
		t.Errorf("sandbox = %+v, want host network", sb)
	}
	id := st.FindContainer("main").ID
	nodeHost, _ := os.Hostname()
	if hn := strings.TrimSpace(h.exec(id, "hostname")); hn != nodeHost {
		t.Errorf("hostname = %q, want the node's %q", hn, nodeHost)
	}
	// Guaranteed asks for -997; berth cannot go below its own value.
	own, _ := os.ReadFile("/proc/self/oom_score_adj")
	if adj := strings.TrimSpace(h.exec(id, "cat", "/proc/1/oom_score_adj")); adj != strings.TrimSpace(string(own)) && adj != "-997" {
		t.Errorf("oom_score_adj = %s, want -997 or berth's own %s", adj, own)
	}
	if cg := h.exec(id, "cat", "/proc/1/cgroup"); !strings.Contains(cg, "/kubepods/pod"+string(pod.UID)+"/") {
		t.Errorf("cgroup = %s, want under /kubepods/pod%s", cg, pod.UID)
	}
	if q := strings.TrimSpace(h.exec(id, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")); q != "10000" {
		t.Logf("cpu.cfs_quota_us = %q (cgroup v1 cpu controller not visible?)", q)
	}
	// Default DNS without a resolv.conf: a resolver on the node.
	if resolv := h.exec(id, "cat", "/etc/resolv.conf"); !strings.Contains(resolv, "nameserver 127.0.0.1") {
		t.Errorf("/etc/resolv.conf:\n%s", resolv)
	}
}

func TestIntegrationEventsAndUnreachable(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	err := h.m.WatchContainerEvents(ctx, func(types.UID) {})
	if !errors.Is(err, runtime.ErrEventsUnsupported) {
		// containerd 1.7+ streams events: then the call blocks; not this test's case.
		t.Logf("WatchContainerEvents = %v (runtime streams events?)", err)
	}

	m, err := runtime.New(ctx, runtime.Options{RuntimeEndpoint: "unix:///nonexistent/containerd.sock"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = m.Version(ctx)
	if !errors.Is(err, runtime.ErrUnreachable) || !strings.Contains(err.Error(), "unreachable at unix:///nonexistent/containerd.sock") {
		t.Errorf("Version with no runtime = %v", err)
	}
	if _, err := m.ListPods(ctx); !errors.Is(err, runtime.ErrUnreachable) {
		t.Errorf("ListPods with no runtime = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("failing took %v, want fast", d)
	}
}

func drainEvents(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
