package runtime

import (
	"encoding/json"
	"strconv"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// podDeletionGraceAnnotation records the pod's deletion grace period on its
// containers, as upstream does, so an orphan is killed with it.
const podDeletionGraceAnnotation = "io.kubernetes.pod.deletionGracePeriod"

// preStopHandlerAnnotation records the container's preStop hook, as
// upstream does, so that an orphan still gets it when killed.
const preStopHandlerAnnotation = "io.kubernetes.container.preStopHandler"

// containerLabels identify a container's pod and spec name. Upstream puts
// only these four labels on containers (the pod's own labels go on the
// sandbox).
func containerLabels(pod *v1.Pod, c *v1.Container) map[string]string {
	return map[string]string{
		container.LabelPodName:       pod.Name,
		container.LabelPodNamespace:  pod.Namespace,
		container.LabelPodUID:        string(pod.UID),
		container.LabelContainerName: c.Name,
	}
}

// containerAnnotations store what berth needs to recognise and manage the
// container later without its spec: the spec hash and restart count, the
// termination message settings and the grace period.
func containerAnnotations(pod *v1.Pod, c *v1.Container, restartCount int) map[string]string {
	a := map[string]string{
		// Hex, as upstream writes it.
		container.AnnotationContainerHash:          strconv.FormatUint(container.HashContainer(c), 16),
		container.AnnotationContainerRestartCount:  strconv.Itoa(restartCount),
		container.AnnotationTerminationMessagePath: c.TerminationMessagePath,
		container.AnnotationTerminationMsgPolicy:   string(c.TerminationMessagePolicy),
	}
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		a[podDeletionGraceAnnotation] = strconv.FormatInt(*g, 10)
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		a[container.AnnotationPodTerminationGrace] = strconv.FormatInt(*g, 10)
	}
	if len(c.Ports) > 0 {
		if b, err := json.Marshal(c.Ports); err == nil {
			a[container.AnnotationContainerPorts] = string(b)
		}
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if b, err := json.Marshal(c.Lifecycle.PreStop); err == nil {
			a[preStopHandlerAnnotation] = string(b)
		}
	}
	return a
}

// annotatedInfo is what containerAnnotations stored, read back. Missing or
// malformed values read as zero: containers made by other tools or older
// versions must not break listing.
type annotatedInfo struct {
	hash                     uint64
	restartCount             int
	terminationMessagePath   string
	terminationMessagePolicy v1.TerminationMessagePolicy
	podTerminationGrace      *int64
	podDeletionGrace         *int64
	ports                    []v1.ContainerPort
	preStop                  *v1.LifecycleHandler
}

func parseAnnotations(a map[string]string) annotatedInfo {
	info := annotatedInfo{
		terminationMessagePath:   a[container.AnnotationTerminationMessagePath],
		terminationMessagePolicy: v1.TerminationMessagePolicy(a[container.AnnotationTerminationMsgPolicy]),
	}
	info.hash, _ = strconv.ParseUint(a[container.AnnotationContainerHash], 16, 64)
	info.restartCount, _ = strconv.Atoi(a[container.AnnotationContainerRestartCount])
	info.podTerminationGrace = parseInt64(a, container.AnnotationPodTerminationGrace)
	info.podDeletionGrace = parseInt64(a, podDeletionGraceAnnotation)
	if s, ok := a[container.AnnotationContainerPorts]; ok {
		_ = json.Unmarshal([]byte(s), &info.ports)
	}
	if s, ok := a[preStopHandlerAnnotation]; ok {
		var h v1.LifecycleHandler
		if json.Unmarshal([]byte(s), &h) == nil {
			info.preStop = &h
		}
	}
	return info
}

// containerSpec rebuilds as much of an orphan's spec as killing it needs:
// its name, ports (for a named httpGet port) and preStop hook.
func (info annotatedInfo) containerSpec(name string) *v1.Container {
	c := &v1.Container{Name: name, Ports: info.ports, TerminationMessagePath: info.terminationMessagePath}
	if info.preStop != nil {
		c.Lifecycle = &v1.Lifecycle{PreStop: info.preStop}
	}
	return c
}

func parseInt64(a map[string]string, key string) *int64 {
	s, ok := a[key]
	if !ok {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &v
}
