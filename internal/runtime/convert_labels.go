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
	return info
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
