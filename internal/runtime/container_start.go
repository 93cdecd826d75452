package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/image"
)

// Waiting reasons for containers that could not be started (upstream
// kuberuntime and kubecontainer errors).
const (
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	ReasonCreateContainerError       = "CreateContainerError"
	ReasonRunContainerError          = "RunContainerError"
)

// startRetry is when to try again after a container failed to be created
// or started: upstream's pod sync back-off period.
const startRetry = 10 * time.Second

// startTarget is where containers of one sync are started.
type startTarget struct {
	rs            internalapi.RuntimeService
	is            internalapi.ImageManagerService
	sandboxID     string
	sandboxConfig *runtimeapi.PodSandboxConfig
	podIPs        []string
}

// startContainer starts one container of the pod: it waits out a crash
// back-off, makes sure the image is there, then creates and starts the
// container. When the container cannot run yet it returns why, for its
// status, and when trying again makes sense (0: no particular time).
func (m *Manager) startContainer(ctx context.Context, t startTarget, id podIdentity, pod *v1.Pod, c *v1.Container, st *container.PodStatus) (*container.Waiting, time.Duration) {
	logger := klog.FromContext(ctx)
	if w, retry := m.crashBackOff(id, pod, c, st); w != nil {
		logger.V(4).Info("Back-off restarting failed container", "pod", klog.KObj(pod), "container", c.Name, "retryAfter", retry)
		return w, retry
	}

	imageRef, w, err := m.images.EnsureImage(ctx, pod, c, t.sandboxConfig)
	if err != nil {
		m.containerEvent(id, c.Name, "", v1.EventTypeWarning, eventFailed, "Error: "+w.Reason)
		var pe *image.PullError
		if errors.As(err, &pe) {
			return w, pe.RetryAfter
		}
		return w, startRetry
	}

	configErr := func(err error) (*container.Waiting, time.Duration) {
		msg := message(err)
		m.containerEvent(id, c.Name, "", v1.EventTypeWarning, eventFailed, "Error: "+msg)
		return &container.Waiting{Reason: ReasonCreateContainerConfigError, Message: msg}, startRetry
	}
	restartCount := m.nextRestartCount(pod, c, st)
	if err := checkVolumes(pod, c); err != nil {
		return configErr(err)
	}
	user, err := m.imageUser(ctx, t.is, imageRef)
	if err != nil {
		return configErr(err)
	}
	mounts, err := m.managedMounts(pod, c, t.podIPs)
	if err != nil {
		return configErr(err)
	}
	logDir := filepath.Join(t.sandboxConfig.GetLogDirectory(), c.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return configErr(fmt.Errorf("create container log directory for container %s failed: %w", c.Name, err))
	}
	cfg, err := containerConfig(containerParams{
		pod:          pod,
		c:            c,
		restartCount: restartCount,
		imageRef:     imageRef,
		podIPs:       t.podIPs,
		user:         user,
		mounts:       mounts,
	}, &m.node)
	if err != nil {
		return configErr(err)
	}

	containerID, err := t.rs.CreateContainer(ctx, t.sandboxID, cfg, t.sandboxConfig)
	if err != nil {
		msg := message(m.wrap(err))
		m.containerEvent(id, c.Name, containerID, v1.EventTypeWarning, eventFailed, "Error: "+msg)
		return &container.Waiting{Reason: ReasonCreateContainerError, Message: msg}, startRetry
	}
	m.containerEvent(id, c.Name, containerID, v1.EventTypeNormal, eventCreated, "Container created")

	if err := t.rs.StartContainer(ctx, containerID); err != nil {
		msg := message(m.wrap(err))
		m.containerEvent(id, c.Name, containerID, v1.EventTypeWarning, eventFailed, "Error: "+msg)
		return &container.Waiting{Reason: ReasonRunContainerError, Message: msg}, startRetry
	}
	m.containerEvent(id, c.Name, containerID, v1.EventTypeNormal, eventStarted, "Container started")
	logger.V(2).Info("Started container", "pod", klog.KObj(pod), "container", c.Name, "containerID", containerID, "restartCount", restartCount)
	return nil, 0
}

// nextRestartCount is one more than the newest instance's. With no
// instance left (garbage collected, or the runtime lost its state in a
// reboot) the log directory still tells: <n>.log files are kept, and
// reusing a number would append to an old log.
func (m *Manager) nextRestartCount(pod *v1.Pod, c *v1.Container, st *container.PodStatus) int {
	if prev := st.FindContainer(c.Name); prev != nil {
		return prev.RestartCount + 1
	}
	dir := filepath.Join(podLogsDir(m.node.podLogsDir, pod.Namespace, pod.Name, pod.UID), c.Name)
	return restartCountFromLogDir(dir)
}

var restartLogRE = regexp.MustCompile(`^(\d+)\.log(\..*)?$`)

func restartCountFromLogDir(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	next := 0
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		match := restartLogRE.FindStringSubmatch(e.Name())
		if match == nil {
			continue
		}
		if n, err := strconv.Atoi(match[1]); err == nil && n+1 > next {
			next = n + 1
		}
	}
	return next
}

// imageUser asks the runtime which user the image runs as.
func (m *Manager) imageUser(ctx context.Context, is internalapi.ImageManagerService, imageRef string) (imageUser, error) {
	resp, err := is.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: imageRef}, false)
	if err != nil {
		return imageUser{}, fmt.Errorf("image status of %s: %w", imageRef, wrapUnavailable(m.opts.ImageEndpoint, err))
	}
	return imageUserOf(resp.GetImage()), nil
}

// message is an error's text for a status or event: the gRPC message
// alone when the error came straight from the runtime (a wrapped one keeps
// its whole text).
func message(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}
