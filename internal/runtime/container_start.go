package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
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
	// handler is the runtime handler of the pod's RuntimeClass.
	handler string
	podIPs  []string
}

// startSpec is a container to start: one of the pod's containers or init
// containers, or an ephemeral container (as a v1.Container, plus the
// container whose process namespace it joins, if any).
type startSpec struct {
	c         *v1.Container
	pidTarget string // targetContainerName of an ephemeral container
}

func ephemeralStartSpec(ec *v1.EphemeralContainer) startSpec {
	return startSpec{c: (*v1.Container)(&ec.EphemeralContainerCommon), pidTarget: ec.TargetContainerName}
}

// startContainer starts one container of the pod: it waits out a crash
// back-off, makes sure the image is there, resolves the environment (with
// the ConfigMaps and Secrets it names) and the volume mounts, creates and
// starts the container, then runs its postStart hook. When the container
// cannot run yet it returns why, for its status, and when trying again
// makes sense (0: no particular time).
func (m *Manager) startContainer(ctx context.Context, t startTarget, id podIdentity, pod *v1.Pod, spec startSpec, st *container.PodStatus) (*container.Waiting, time.Duration) {
	logger := klog.FromContext(ctx)
	c := spec.c
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

	imageVolumes, w, retry := m.imageVolumes(ctx, t, id, pod, c)
	if w != nil {
		return w, retry
	}

	configErr := func(err error) (*container.Waiting, time.Duration) {
		msg := message(err)
		m.containerEvent(id, c.Name, "", v1.EventTypeWarning, eventFailed, "Error: "+msg)
		return &container.Waiting{Reason: ReasonCreateContainerConfigError, Message: msg}, startRetry
	}
	restartCount := m.nextRestartCount(pod, c, st)
	if prev := m.leftUnstarted(st, c.Name); prev != nil {
		// It never ran: replacing it restarts nothing, so the count stays
		// (its name, with that attempt, is free once it is removed).
		if err := t.rs.RemoveContainer(ctx, prev.ID); err != nil {
			msg := message(m.wrap(err))
			return &container.Waiting{Reason: ReasonCreateContainerError, Message: msg}, startRetry
		}
		logger.V(2).Info("Replacing a container created but never started before berth restarted", "pod", klog.KObj(pod),
			"container", c.Name, "containerID", prev.ID)
		restartCount = prev.RestartCount
	}
	var pidTargetID string
	if spec.pidTarget != "" {
		// The newest container by that name, whatever its state, as
		// upstream's getTargetID picks it.
		target := st.FindContainer(spec.pidTarget)
		if target == nil {
			return configErr(fmt.Errorf("unable to find target container %v", spec.pidTarget))
		}
		pidTargetID = target.ID
	}
	user, err := m.imageUser(ctx, t.is, imageRef)
	if err != nil {
		return configErr(err)
	}
	extras, err := m.containerExtras(ctx, pod, c)
	if err == nil {
		err = m.resolveCDI(ctx, t.rs, &extras)
	}
	if err != nil {
		return configErr(err)
	}
	env, notes, err := containerEnv(pod, c, t.podIPs, &m.node, m.fetchEnvObjects(ctx, pod, c))
	m.noteEvents(id, notes)
	if err != nil {
		return configErr(err)
	}
	if len(extras.Env) > 0 {
		env = append(extras.extraEnv(), env...)
	}
	mounts, err := volumeMounts(pod, c, mountParams{
		hostPath:    m.volumeHostPath(pod.UID),
		env:         env,
		supportsRRO: m.runtimeSupportsRRO(ctx, t.rs, t.handler, c),
		podDir:      podDir(m.node.rootDir, pod.UID),
		bindSubPath: bindSubPath,
		images:      imageVolumes,
	})
	if err != nil {
		return configErr(err)
	}
	managed, err := m.managedMounts(pod, c, t.podIPs)
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
		user:         user,
		userns:       t.sandboxConfig.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions(),
		env:          env,
		mounts:       append(append(extras.criMounts(), mounts...), managed...),
		pidTargetID:  pidTargetID,
		extras:       extras,
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
	if m.opts.OnContainerStarted != nil {
		m.opts.OnContainerStarted(pod.UID, containerID)
	}
	m.recordActuated(ctx, pod, c)
	if m.opts.OOM != nil {
		if err := m.opts.OOM.Watch(m.node.cgroups.Pod(pod.UID, container.PodQOS(pod)), containerID); err != nil {
			logger.V(2).Info("Not watching the container for OOM kills; the runtime's status reports them", "containerID", containerID, "err", err)
		}
	}
	m.containerEvent(id, c.Name, containerID, v1.EventTypeNormal, eventStarted, "Container started")
	logger.V(2).Info("Started container", "pod", klog.KObj(pod), "container", c.Name, "containerID", containerID, "restartCount", restartCount)

	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		return m.postStart(ctx, t, id, pod, c, containerID)
	}
	return nil, 0
}

// postStart runs the container's postStart hook, as upstream does right
// after the start and before anything else of the pod. When it fails, the
// container is killed: it waits with PostStartHookError and the hook's
// message, and restarts by its restart policy.
func (m *Manager) postStart(ctx context.Context, t startTarget, id podIdentity, pod *v1.Pod, c *v1.Container, containerID string) (*container.Waiting, time.Duration) {
	logger := klog.FromContext(ctx)
	msg, err := m.runHook(ctx, hookCall{
		id: id, pod: pod, spec: c, containerID: containerID,
		handler: c.Lifecycle.PostStart, exec: t.rs,
		host: m.hookHost(t.rs, pod.UID, &container.SandboxStatus{ID: t.sandboxID, IPs: t.podIPs}, pod.Spec.HostNetwork),
	})
	if err == nil {
		return nil, 0
	}
	logger.Info("PostStart hook failed", "pod", klog.KObj(pod), "container", c.Name, "containerID", containerID, "err", err)
	// The message may hold secrets: it goes into the status, not the event.
	m.containerEvent(id, c.Name, containerID, v1.EventTypeWarning, eventFailedPostStartHook, "PostStartHook failed")
	if err := m.killContainer(ctx, t.rs, killRequest{
		id: id, pod: pod, containerID: containerID, name: c.Name,
		message: killReasonFailedPostStartHook, reason: killReasonFailedPostStartHook,
	}); err != nil {
		logger.Info("Failed to kill container after its postStart hook failed", "pod", klog.KObj(pod), "container", c.Name, "containerID", containerID, "err", err)
	}
	return &container.Waiting{Reason: ReasonPostStartHookError, Message: msg}, startRetry
}

// volumeHostPath looks the pod's volumes up in the volume manager.
func (m *Manager) volumeHostPath(uid types.UID) func(string) (string, bool) {
	if m.opts.Volumes == nil {
		return nil
	}
	return func(name string) (string, bool) { return m.opts.Volumes.HostPath(uid, name) }
}

// runtimeSupportsRRO asks the runtime, only when container c wants a
// recursively read-only mount, whether the pod's handler can make one.
func (m *Manager) runtimeSupportsRRO(ctx context.Context, rs internalapi.RuntimeService, handler string, c *v1.Container) bool {
	wanted := slices.ContainsFunc(c.VolumeMounts, func(vm v1.VolumeMount) bool {
		return vm.RecursiveReadOnly != nil && *vm.RecursiveReadOnly != v1.RecursiveReadOnlyDisabled
	})
	if !wanted {
		return false
	}
	features, err := handlerFeatures(ctx, rs, handler)
	return err == nil && features.GetRecursiveReadOnlyMounts()
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

// leftUnstarted returns the newest instance of the named container when
// it was created before this berth started and never started: the berth
// before was killed between CreateContainer and StartContainer. A
// container this berth created and failed to start is not one: retrying
// it counts as a restart, as upstream.
func (m *Manager) leftUnstarted(st *container.PodStatus, name string) *container.ContainerStatus {
	prev := st.FindContainer(name)
	if prev == nil || prev.State != container.StateCreated || !prev.CreatedAt.Before(m.started) {
		return nil
	}
	return prev
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
