package metrics

import (
	"context"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// InstrumentRuntimeService returns rs with every call counted and timed in
// kubelet_runtime_operations_total, _errors_total and _duration_seconds,
// under upstream's operation_type names.
func InstrumentRuntimeService(rs internalapi.RuntimeService, m *Metrics) internalapi.RuntimeService {
	return &instrumentedRuntime{rs: rs, m: m}
}

// InstrumentImageService does the same for the CRI image service.
func InstrumentImageService(is internalapi.ImageManagerService, m *Metrics) internalapi.ImageManagerService {
	return &instrumentedImages{is: is, m: m}
}

// record counts one call that started at start and ended with err.
func (m *Metrics) record(operation string, start time.Time, err error) {
	m.RuntimeOperations.WithLabelValues(operation).Inc()
	m.RuntimeOperationsDuration.WithLabelValues(operation).Observe(time.Since(start).Seconds())
	if err != nil {
		m.RuntimeOperationsErrors.WithLabelValues(operation).Inc()
	}
}

// call1 and call2 time a CRI call returning an error, or a value and an error.
func call1(m *Metrics, op string, f func() error) error {
	start := time.Now()
	err := f()
	m.record(op, start, err)
	return err
}

func call2[T any](m *Metrics, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	out, err := f()
	m.record(op, start, err)
	return out, err
}

type instrumentedRuntime struct {
	rs internalapi.RuntimeService
	m  *Metrics
}

var _ internalapi.RuntimeService = (*instrumentedRuntime)(nil)

func (in *instrumentedRuntime) Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error) {
	return call2(in.m, "version", func() (*runtimeapi.VersionResponse, error) { return in.rs.Version(ctx, apiVersion) })
}

func (in *instrumentedRuntime) Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error) {
	return call2(in.m, "status", func() (*runtimeapi.StatusResponse, error) { return in.rs.Status(ctx, verbose) })
}

func (in *instrumentedRuntime) CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	return call2(in.m, "create_container", func() (string, error) {
		return in.rs.CreateContainer(ctx, podSandboxID, config, sandboxConfig)
	})
}

func (in *instrumentedRuntime) StartContainer(ctx context.Context, containerID string) error {
	return call1(in.m, "start_container", func() error { return in.rs.StartContainer(ctx, containerID) })
}

func (in *instrumentedRuntime) StopContainer(ctx context.Context, containerID string, timeout int64) error {
	return call1(in.m, "stop_container", func() error { return in.rs.StopContainer(ctx, containerID, timeout) })
}

func (in *instrumentedRuntime) RemoveContainer(ctx context.Context, containerID string) error {
	return call1(in.m, "remove_container", func() error { return in.rs.RemoveContainer(ctx, containerID) })
}

func (in *instrumentedRuntime) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	return call2(in.m, "list_containers", func() ([]*runtimeapi.Container, error) { return in.rs.ListContainers(ctx, filter) })
}

func (in *instrumentedRuntime) ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	return call2(in.m, "container_status", func() (*runtimeapi.ContainerStatusResponse, error) {
		return in.rs.ContainerStatus(ctx, containerID, verbose)
	})
}

func (in *instrumentedRuntime) UpdateContainerResources(ctx context.Context, containerID string, resources *runtimeapi.ContainerResources) error {
	return call1(in.m, "update_container", func() error { return in.rs.UpdateContainerResources(ctx, containerID, resources) })
}

func (in *instrumentedRuntime) ReopenContainerLog(ctx context.Context, containerID string) error {
	return call1(in.m, "reopen_container_log", func() error { return in.rs.ReopenContainerLog(ctx, containerID) })
}

func (in *instrumentedRuntime) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	start := time.Now()
	stdout, stderr, err := in.rs.ExecSync(ctx, containerID, cmd, timeout)
	in.m.record("exec_sync", start, err)
	return stdout, stderr, err
}

func (in *instrumentedRuntime) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return call2(in.m, "exec", func() (*runtimeapi.ExecResponse, error) { return in.rs.Exec(ctx, req) })
}

func (in *instrumentedRuntime) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return call2(in.m, "attach", func() (*runtimeapi.AttachResponse, error) { return in.rs.Attach(ctx, req) })
}

func (in *instrumentedRuntime) CheckpointContainer(ctx context.Context, options *runtimeapi.CheckpointContainerRequest) error {
	return call1(in.m, "checkpoint_container", func() error { return in.rs.CheckpointContainer(ctx, options) })
}

func (in *instrumentedRuntime) GetContainerEvents(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse, established func(runtimeapi.RuntimeService_GetContainerEventsClient)) error {
	return call1(in.m, "get_container_events", func() error { return in.rs.GetContainerEvents(ctx, ch, established) })
}

func (in *instrumentedRuntime) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error) {
	return call2(in.m, "run_podsandbox", func() (string, error) { return in.rs.RunPodSandbox(ctx, config, runtimeHandler) })
}

func (in *instrumentedRuntime) StopPodSandbox(ctx context.Context, podSandboxID string) error {
	return call1(in.m, "stop_podsandbox", func() error { return in.rs.StopPodSandbox(ctx, podSandboxID) })
}

func (in *instrumentedRuntime) RemovePodSandbox(ctx context.Context, podSandboxID string) error {
	return call1(in.m, "remove_podsandbox", func() error { return in.rs.RemovePodSandbox(ctx, podSandboxID) })
}

func (in *instrumentedRuntime) PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	return call2(in.m, "podsandbox_status", func() (*runtimeapi.PodSandboxStatusResponse, error) {
		return in.rs.PodSandboxStatus(ctx, podSandboxID, verbose)
	})
}

func (in *instrumentedRuntime) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	return call2(in.m, "list_podsandbox", func() ([]*runtimeapi.PodSandbox, error) { return in.rs.ListPodSandbox(ctx, filter) })
}

func (in *instrumentedRuntime) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return call2(in.m, "port_forward", func() (*runtimeapi.PortForwardResponse, error) { return in.rs.PortForward(ctx, req) })
}

func (in *instrumentedRuntime) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	return call2(in.m, "update_podsandbox_resources", func() (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
		return in.rs.UpdatePodSandboxResources(ctx, req)
	})
}

func (in *instrumentedRuntime) CheckpointPod(ctx context.Context, options *runtimeapi.CheckpointPodRequest) error {
	return call1(in.m, "checkpoint_pod", func() error { return in.rs.CheckpointPod(ctx, options) })
}

func (in *instrumentedRuntime) RestorePod(ctx context.Context, options *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return call2(in.m, "restore_pod", func() (*runtimeapi.RestorePodResponse, error) { return in.rs.RestorePod(ctx, options) })
}

func (in *instrumentedRuntime) ContainerStats(ctx context.Context, containerID string) (*runtimeapi.ContainerStats, error) {
	return call2(in.m, "container_stats", func() (*runtimeapi.ContainerStats, error) { return in.rs.ContainerStats(ctx, containerID) })
}

func (in *instrumentedRuntime) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	return call2(in.m, "list_container_stats", func() ([]*runtimeapi.ContainerStats, error) {
		return in.rs.ListContainerStats(ctx, filter)
	})
}

func (in *instrumentedRuntime) PodSandboxStats(ctx context.Context, podSandboxID string) (*runtimeapi.PodSandboxStats, error) {
	return call2(in.m, "podsandbox_stats", func() (*runtimeapi.PodSandboxStats, error) { return in.rs.PodSandboxStats(ctx, podSandboxID) })
}

func (in *instrumentedRuntime) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	return call2(in.m, "list_podsandbox_stats", func() ([]*runtimeapi.PodSandboxStats, error) {
		return in.rs.ListPodSandboxStats(ctx, filter)
	})
}

func (in *instrumentedRuntime) ListMetricDescriptors(ctx context.Context) ([]*runtimeapi.MetricDescriptor, error) {
	return call2(in.m, "list_metric_descriptors", func() ([]*runtimeapi.MetricDescriptor, error) { return in.rs.ListMetricDescriptors(ctx) })
}

func (in *instrumentedRuntime) ListPodSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	return call2(in.m, "list_podsandbox_metrics", func() ([]*runtimeapi.PodSandboxMetrics, error) { return in.rs.ListPodSandboxMetrics(ctx) })
}

func (in *instrumentedRuntime) UpdateRuntimeConfig(ctx context.Context, runtimeConfig *runtimeapi.RuntimeConfig) error {
	return call1(in.m, "update_runtime_config", func() error { return in.rs.UpdateRuntimeConfig(ctx, runtimeConfig) })
}

func (in *instrumentedRuntime) RuntimeConfig(ctx context.Context) (*runtimeapi.RuntimeConfigResponse, error) {
	return call2(in.m, "runtime_config", func() (*runtimeapi.RuntimeConfigResponse, error) { return in.rs.RuntimeConfig(ctx) })
}

func (in *instrumentedRuntime) Close(ctx context.Context) error {
	return call1(in.m, "close", func() error { return in.rs.Close(ctx) })
}

type instrumentedImages struct {
	is internalapi.ImageManagerService
	m  *Metrics
}

var _ internalapi.ImageManagerService = (*instrumentedImages)(nil)

func (in *instrumentedImages) ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	return call2(in.m, "list_images", func() ([]*runtimeapi.Image, error) { return in.is.ListImages(ctx, filter) })
}

func (in *instrumentedImages) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	return call2(in.m, "image_status", func() (*runtimeapi.ImageStatusResponse, error) { return in.is.ImageStatus(ctx, image, verbose) })
}

func (in *instrumentedImages) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	return call2(in.m, "pull_image", func() (string, error) { return in.is.PullImage(ctx, image, auth, podSandboxConfig) })
}

func (in *instrumentedImages) RemoveImage(ctx context.Context, image *runtimeapi.ImageSpec) error {
	return call1(in.m, "remove_image", func() error { return in.is.RemoveImage(ctx, image) })
}

func (in *instrumentedImages) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	return call2(in.m, "image_fs_info", func() (*runtimeapi.ImageFsInfoResponse, error) { return in.is.ImageFsInfo(ctx) })
}

func (in *instrumentedImages) Close(ctx context.Context) error {
	return call1(in.m, "close", func() error { return in.is.Close(ctx) })
}
