package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/container"
)

func newTestMetrics(t *testing.T) (*prometheus.Registry, *Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return reg, New(reg, Options{NodeName: "node-a", Build: version.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2-berth"}, NoProcessMetrics: true})
}

func TestNewRegistersUpstreamNames(t *testing.T) {
	reg, m := newTestMetrics(t)
	// Vectors only appear once they have a series.
	m.PodWorkerDuration.WithLabelValues("sync").Observe(0.1)
	m.StartedContainers.WithLabelValues("container").Inc()
	m.StartedContainersErrors.WithLabelValues("container", "unknown").Inc()
	m.RuntimeOperations.WithLabelValues("version").Inc()
	m.RuntimeOperationsErrors.WithLabelValues("version").Inc()
	m.RuntimeOperationsDuration.WithLabelValues("version").Observe(1)
	m.HTTPRequests.WithLabelValues("GET", "pods", "readwrite", "false").Inc()
	m.HTTPRequestsDuration.WithLabelValues("GET", "pods", "readwrite", "false").Observe(1)
	m.HTTPInflightRequests.WithLabelValues("GET", "pods", "readwrite", "false").Inc()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, name := range []string{
		"kubelet_pod_start_duration_seconds", "kubelet_pod_start_sli_duration_seconds", "kubelet_pod_start_total_duration_seconds",
		"kubelet_pod_worker_duration_seconds", "kubelet_pleg_relist_duration_seconds", "kubelet_pleg_relist_interval_seconds",
		"kubelet_pleg_last_seen_seconds", "kubelet_runtime_operations_total", "kubelet_runtime_operations_errors_total",
		"kubelet_runtime_operations_duration_seconds", "kubelet_started_pods_total", "kubelet_started_pods_errors_total",
		"kubelet_started_containers_total", "kubelet_started_containers_errors_total", "kubelet_node_name",
		"kubernetes_build_info", "kubelet_http_requests_total", "kubelet_http_requests_duration_seconds", "kubelet_http_inflight_requests",
	} {
		if !got[name] {
			t.Errorf("%s not registered", name)
		}
	}
	want := `
# HELP kubelet_node_name [ALPHA] The node's name. The count is always 1.
# TYPE kubelet_node_name gauge
kubelet_node_name{node="node-a"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubelet_node_name"); err != nil {
		t.Error(err)
	}
}

func TestInstrumentRuntimeService(t *testing.T) {
	reg, m := newTestMetrics(t)
	fake := critesting.NewFakeRuntimeService()
	rs := InstrumentRuntimeService(fake, m)
	ctx := context.Background()
	if _, err := rs.Version(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.ListPodSandbox(ctx, nil); err != nil {
		t.Fatal(err)
	}
	fake.InjectError("StopContainer", errors.New("boom"))
	if err := rs.StopContainer(ctx, "c", 0); err == nil {
		t.Fatal("injected error lost")
	}
	want := `
# HELP kubelet_runtime_operations_errors_total [ALPHA] Cumulative number of runtime operation errors by operation type.
# TYPE kubelet_runtime_operations_errors_total counter
kubelet_runtime_operations_errors_total{operation_type="stop_container"} 1
# HELP kubelet_runtime_operations_total [ALPHA] Cumulative number of runtime operations by operation type.
# TYPE kubelet_runtime_operations_total counter
kubelet_runtime_operations_total{operation_type="list_podsandbox"} 1
kubelet_runtime_operations_total{operation_type="stop_container"} 1
kubelet_runtime_operations_total{operation_type="version"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubelet_runtime_operations_total", "kubelet_runtime_operations_errors_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.RuntimeOperationsDuration); n != 3 {
		t.Errorf("%d duration series, want 3", n)
	}

	is := InstrumentImageService(critesting.NewFakeImageService(), m)
	if _, err := is.ListImages(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(m.RuntimeOperations.WithLabelValues("list_images")); v != 1 {
		t.Errorf("list_images counted %v times", v)
	}
}

func TestRuntimeCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	pods := map[types.UID]*container.PodStatus{
		"a": {
			Sandboxes:  []*container.SandboxStatus{{State: container.SandboxReady}, {State: container.SandboxNotReady}},
			Containers: []*container.ContainerStatus{{State: container.StateRunning}, {State: container.StateExited}},
		},
		"b": {
			Sandboxes:  []*container.SandboxStatus{{State: container.SandboxReady}},
			Containers: []*container.ContainerStatus{{State: container.StateRunning}, {State: container.StateCreated}},
		},
	}
	if err := RegisterRuntimeCounts(reg, func() map[types.UID]*container.PodStatus { return pods }); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP kubelet_running_containers [ALPHA] Number of containers currently running
# TYPE kubelet_running_containers gauge
kubelet_running_containers{container_state="created"} 1
kubelet_running_containers{container_state="exited"} 1
kubelet_running_containers{container_state="running"} 2
kubelet_running_containers{container_state="unknown"} 0
# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox
# TYPE kubelet_running_pods gauge
kubelet_running_pods 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

type fixedLister struct{ err error }

func (f fixedLister) ListPods(context.Context) (map[types.UID]*container.PodStatus, error) {
	return nil, f.err
}

func TestInstrumentRelist(t *testing.T) {
	_, m := newTestMetrics(t)
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	l := m.InstrumentRelist(fixedLister{}, clk)
	l.ListPods(context.Background())
	clk.Step(2 * time.Second)
	l.ListPods(context.Background())
	if n := testutil.CollectAndCount(m.PLEGRelistDuration); n != 1 {
		t.Fatalf("relist duration series %d", n)
	}
	if v := testutil.ToFloat64(m.PLEGLastSeen); v != 1002 {
		t.Errorf("last seen %v, want 1002", v)
	}
	checkHistogram(t, m.PLEGRelistInterval, 1, 2)
}

func TestPodStartTracker(t *testing.T) {
	_, m := newTestMetrics(t)
	created := time.Unix(1000, 0)
	clk := clocktesting.NewFakeClock(created.Add(time.Second))
	tr := m.NewPodStartTracker(clk)
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "p", CreationTimestamp: metav1.NewTime(created)},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}

	tr.Seen(pod) // first seen at +1s
	tr.ImagePullStarted("p")
	clk.Step(3 * time.Second)
	tr.ImagePullFinished("p") // 3s pulling
	clk.Step(time.Second)
	running := v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{{
		Name: "c", State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(clk.Now())}},
	}}}
	tr.StatusComputed(pod, v1.PodPending, &running) // running at +5s: start duration 4s
	clk.Step(time.Second)
	watched := pod.DeepCopy()
	watched.Status = running
	tr.Seen(watched) // watch shows it at +6s: total 6s, SLI 3s
	tr.Seen(watched) // recorded once only

	checkHistogram(t, m.PodStartDuration, 1, 4)
	checkHistogram(t, m.PodStartTotalDuration, 1, 6)
	checkHistogram(t, m.PodStartSLIDuration, 1, 3)

	// A pod that had started before berth saw it is not an SLI sample.
	old := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "old", CreationTimestamp: metav1.NewTime(created)},
		Status: v1.PodStatus{StartTime: &metav1.Time{Time: created}}}
	tr.Seen(old)
	tr.StatusComputed(old, "", &running)
	old.Status = running
	tr.Seen(old)
	checkHistogram(t, m.PodStartSLIDuration, 1, 3)
}

func TestPullTimeOverlaps(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	got := pullTime([]pull{{at(0), at(4)}, {at(2), at(6)}, {at(3), at(5)}, {at(10), at(11)}})
	if got != 7*time.Second {
		t.Errorf("pull time %v, want 7s", got)
	}
}

func TestInstrumentHandler(t *testing.T) {
	tests := []struct{ path, bucket string }{
		{"/pods", "pods"},
		{"/metrics/cadvisor", "metrics/cadvisor"},
		{"/metrics", "metrics"},
		{"/exec/ns/pod/c", "exec"},
		{"/portForward/ns/pod", "portForward"},
		{"/stats/summary", "stats"},
		{"/whatever/x", "other"},
	}
	for _, tt := range tests {
		if got := httpPathBucket(tt.path); got != tt.bucket {
			t.Errorf("bucket of %s = %s, want %s", tt.path, got, tt.bucket)
		}
	}
	_, m := newTestMetrics(t)
	var hijackable bool
	h := m.InstrumentHandler("readwrite", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, hijackable = w.(http.Hijacker)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/exec/ns/pod/c")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !hijackable {
		t.Error("instrumented handler hid the Hijacker")
	}
	if v := testutil.ToFloat64(m.HTTPRequests.WithLabelValues("GET", "exec", "readwrite", "true")); v != 1 {
		t.Errorf("requests %v", v)
	}
	if v := testutil.ToFloat64(m.HTTPInflightRequests.WithLabelValues("GET", "exec", "readwrite", "true")); v != 0 {
		t.Errorf("inflight %v after the request", v)
	}
}
