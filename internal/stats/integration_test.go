package stats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2/ktesting"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/stats"
)

// This test measures a busy pod run by a real runtime. It needs
// BERTH_CRI_ENDPOINT (e.g. unix:///tmp/x/containerd.sock from
// `hack/containerd.sh up /tmp/x`) with berth.local/busybox:1.0, root, and
// the runtime on the cgroupfs driver.

const busybox = "berth.local/busybox:1.0"

// criRuntime is the adapter app wiring needs: ListPods from the runtime
// manager, the rest straight from CRI.
type criRuntime struct {
	*runtime.Manager
	rs internalapi.RuntimeService
	is internalapi.ImageManagerService
}

func (r criRuntime) ListContainerStats(ctx context.Context) ([]*runtimeapi.ContainerStats, error) {
	return r.rs.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{})
}

func (r criRuntime) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	return r.is.ImageFsInfo(ctx)
}

func TestIntegrationBusyPod(t *testing.T) {
	ep := os.Getenv("BERTH_CRI_ENDPOINT")
	if ep == "" {
		t.Skip("BERTH_CRI_ENDPOINT is not set")
	}
	if !strings.Contains(ep, "://") {
		ep = "unix://" + ep
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rootDir, logsDir := t.TempDir(), t.TempDir()
	m, err := runtime.New(ctx, runtime.Options{RuntimeEndpoint: ep, RootDir: rootDir, PodLogsDir: logsDir, NodeName: "stats-it"})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(ep).WithConnectionTimeout(30 * time.Second).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	is, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(ep).WithConnectionTimeout(30 * time.Second).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A container that spins a core and holds ~32 MiB.
	grace := int64(0)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy", Namespace: "stats-it", UID: uuid.NewUUID()},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []v1.Container{{
				Name: "spin", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
				Command: []string{"sh", "-c", `x=$(head -c 33554432 /dev/zero | tr '\0' a); while :; do :; done`},
			}},
		},
	}
	st := &container.PodStatus{UID: pod.UID, Name: pod.Name, Namespace: pod.Namespace}
	defer func() {
		zero := int64(0)
		_ = m.KillPod(context.Background(), nil, st, &zero)
		_ = m.RemovePod(context.Background(), st)
		// Nothing in berth removes pod-level cgroups yet; leave no trace.
		for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/blkio", "/sys/fs/cgroup/cpuset", "/sys/fs/cgroup/devices", "/sys/fs/cgroup/freezer", "/sys/fs/cgroup/systemd"} {
			_ = os.Remove(filepath.Join(root, "kubepods/besteffort/pod"+string(pod.UID)))
		}
	}()
	if res := m.SyncPod(ctx, pod, st, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}}); res.Err != nil {
		t.Fatalf("start pod: %v", res.Err)
	}
	if st, err = m.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace); err != nil {
		t.Fatal(err)
	}

	c := stats.New(stats.Options{
		Runtime: criRuntime{m, rs, is}, RootDir: rootDir, PodLogsDir: logsDir, NodeName: "stats-it",
		HousekeepingInterval: time.Second,
	})
	go c.Run(ctx)

	var ps *statsapi.PodStats
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps = findPod(t, c, string(pod.UID))
		if ps != nil && len(ps.Containers) == 1 && ps.Containers[0].CPU != nil && ps.Containers[0].CPU.UsageNanoCores != nil &&
			*ps.Containers[0].CPU.UsageNanoCores > 2e8 && *ps.Containers[0].Memory.WorkingSetBytes > 32<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no busy container in the summary: %s", dumpJSON(ps))
		}
		time.Sleep(500 * time.Millisecond)
	}
	ctr := ps.Containers[0]
	t.Logf("container: %.2f cores, %d MiB working set, rootfs %d B, logs %d B; pod: %.2f cores, network %s",
		float64(*ctr.CPU.UsageNanoCores)/1e9, *ctr.Memory.WorkingSetBytes>>20, deref(ctr.Rootfs.UsedBytes), deref(ctr.Logs.UsedBytes),
		float64(*ps.CPU.UsageNanoCores)/1e9, dumpJSON(ps.Network))
	if ps.Network == nil || ps.Network.Name != "eth0" {
		t.Errorf("pod network = %s, want eth0 of the pod's namespace", dumpJSON(ps.Network))
	}
	if ps.CPU == nil || ps.Memory == nil || ps.ProcessStats == nil || ps.EphemeralStorage == nil {
		t.Errorf("pod stats incomplete: %s", dumpJSON(ps))
	}

	// The reported working set matches the cgroup files (within 10%).
	s, err := c.Summary(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstCgroup(t, s, string(pod.UID), st.FindContainer("spin").ID)

	// /metrics/cadvisor parses as Prometheus text and has the container.
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.CadvisorCollector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if os.Getenv("BERTH_STATS_DUMP") != "" {
		t.Logf("/metrics/cadvisor:\n%s", buf.String())
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	parsed, err := parser.TextToMetricFamilies(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("parse /metrics/cadvisor: %v", err)
	}
	found := false
	for _, mt := range parsed["container_cpu_usage_seconds_total"].GetMetric() {
		for _, l := range mt.GetLabel() {
			if l.GetName() == "container" && l.GetValue() == "spin" {
				found = mt.GetCounter().GetValue() > 0
			}
		}
	}
	if !found {
		t.Errorf("container_cpu_usage_seconds_total has no spin series")
	}
}

func findPod(t *testing.T, c *stats.Collector, uid string) *statsapi.PodStats {
	s, err := c.Summary(context.Background(), false)
	if err != nil {
		return nil
	}
	for i := range s.Pods {
		if s.Pods[i].PodRef.UID == uid {
			return &s.Pods[i]
		}
	}
	return nil
}

// checkAgainstCgroup compares the node's and the container's working set
// with what the cgroup files say now (v1 or v2).
func checkAgainstCgroup(t *testing.T, s *statsapi.Summary, uid, id string) {
	t.Helper()
	var ctr *statsapi.ContainerStats
	for i := range s.Pods {
		if s.Pods[i].PodRef.UID == uid {
			ctr = &s.Pods[i].Containers[0]
		}
	}
	dir := "/kubepods/besteffort/pod" + uid + "/" + id
	var usage, inactive uint64
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		usage = readNum(t, filepath.Join("/sys/fs/cgroup", dir, "memory.current"))
		inactive = statField(t, filepath.Join("/sys/fs/cgroup", dir, "memory.stat"), "inactive_file")
	} else {
		usage = readNum(t, filepath.Join("/sys/fs/cgroup/memory", dir, "memory.usage_in_bytes"))
		inactive = statField(t, filepath.Join("/sys/fs/cgroup/memory", dir, "memory.stat"), "total_inactive_file")
	}
	want := float64(usage - inactive)
	got := float64(*ctr.Memory.WorkingSetBytes)
	if got < want*0.9 || got > want*1.1 {
		t.Errorf("container working set %v, cgroup says %v", got, want)
	}
	t.Logf("container working set %v B, cgroup %v B", got, want)

	// The node is the root cgroup on v1 (v2 has no memory.current at the
	// root; berth reads memory.stat there).
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.usage_in_bytes"); err == nil {
		want := float64(readNum(t, "/sys/fs/cgroup/memory/memory.usage_in_bytes") - statField(t, "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"))
		got := float64(*s.Node.Memory.WorkingSetBytes)
		if got < want*0.9 || got > want*1.1 {
			t.Errorf("node working set %v, root cgroup says %v", got, want)
		}
		wantCPU := float64(readNum(t, "/sys/fs/cgroup/cpuacct/cpuacct.usage"))
		gotCPU := float64(*s.Node.CPU.UsageCoreNanoSeconds)
		if gotCPU < wantCPU*0.9 || gotCPU > wantCPU {
			t.Errorf("node cpu %v ns, root cgroup says %v", gotCPU, wantCPU)
		}
		t.Logf("node working set %v B, root cgroup %v B; node cpu %v s, root cgroup %v s", got, want, gotCPU/1e9, wantCPU/1e9)
	}
	t.Logf("summary: %s", dumpJSON(s))
}

func readNum(t *testing.T, p string) uint64 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func statField(t *testing.T, p, key string) uint64 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func dumpJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}
