package eviction

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/berth-dev/berth/internal/admission"
)

// Reason is the status reason and event reason of an evicted pod.
const Reason = admission.ReasonEvicted

// Upstream's messages (pkg/kubelet/eviction/helpers.go), word for word.
const (
	nodeLowMessageFmt                   = "The node was low on resource: %v. "
	thresholdMetMessageFmt              = "Threshold quantity: %v, available: %v. "
	containerMessageFmt                 = "Container %s was using %s, request is %s, has larger consumption of %v. "
	podMessageFmt                       = "Pod %s was using %s, request is %s, has larger consumption of %v. "
	containerEphemeralStorageMessageFmt = "Container %s exceeded its local ephemeral storage limit %q. "
	podEphemeralStorageMessageFmt       = "Pod ephemeral local storage usage exceeds the total limit of containers %s. "
	emptyDirMessageFmt                  = "Usage of EmptyDir volume %q exceeds the limit %q. "
)

// Annotations of the Evicted event, as upstream's.
const (
	offendingContainersKey      = "offending_containers"
	offendingContainersUsageKey = "offending_containers_usage"
	offendingPodKey             = "offending_pod"
	offendingPodUsageKey        = "offending_pod_usage"
	starvedResourceKey          = "starved_resource"
)

// evictionMessage says why pod is evicted to reclaim res, as upstream's:
// the resource, the threshold met and what is available, then each
// container (and with pod-level requests the pod) using more than it
// requested. It also returns the event's annotations.
func evictionMessage(res v1.ResourceName, pod *v1.Pod, stats podStats, ts []Threshold, met []int, obs observations) (string, map[string]string) {
	msg := fmt.Sprintf(nodeLowMessageFmt, res)
	for _, i := range met {
		t := ts[i]
		if r, _ := signalResource(t.Signal); r != res {
			continue
		}
		if o, ok := obs[t.Signal]; ok {
			msg += fmt.Sprintf(thresholdMetMessageFmt, t.Value.quantity(o.capacity), quantity(o.available, res))
			break
		}
	}
	ann := map[string]string{}
	st, ok := stats(pod)
	if !ok {
		return msg, ann
	}
	if res == v1.ResourceMemory && resourcehelper.IsPodLevelResourcesSet(pod) {
		if req, ok := pod.Spec.Resources.Requests[res]; ok && st.Memory != nil {
			use := quantity(memoryOf(pod, st), res)
			msg += fmt.Sprintf(podMessageFmt, pod.Name, use, req.String(), res)
			ann[offendingPodKey], ann[offendingPodUsageKey] = pod.Name, use.String()
		}
	}
	containers := append(append([]v1.Container{}, pod.Spec.Containers...), pod.Spec.InitContainers...)
	var names, usages []string
	for _, cs := range st.Containers {
		for _, c := range containers {
			if c.Name != cs.Name {
				continue
			}
			req := c.Resources.Requests[res]
			var use int64 = -1
			switch res {
			case v1.ResourceEphemeralStorage:
				if cs.Rootfs != nil && cs.Rootfs.UsedBytes != nil && cs.Logs != nil && cs.Logs.UsedBytes != nil {
					use = int64(*cs.Rootfs.UsedBytes + *cs.Logs.UsedBytes)
				}
			case v1.ResourceMemory:
				if cs.Memory != nil && cs.Memory.WorkingSetBytes != nil {
					use = int64(*cs.Memory.WorkingSetBytes)
				}
			}
			if use >= 0 && use > req.Value() {
				q := quantity(use, res)
				msg += fmt.Sprintf(containerMessageFmt, c.Name, q, req.String(), res)
				names, usages = append(names, c.Name), append(usages, q.String())
			}
			break
		}
	}
	ann[offendingContainersKey] = strings.Join(names, ",")
	ann[offendingContainersUsageKey] = strings.Join(usages, ",")
	ann[starvedResourceKey] = string(res)
	return msg, ann
}

// The signals upstream's kubelet_evictions counts local storage evictions by.
const (
	signalEmptyDirFsLimit           = "emptydirfs.limit"
	signalEphemeralPodFsLimit       = "ephemeralpodfs.limit"
	signalEphemeralContainerFsLimit = "ephemeralcontainerfs.limit"
)

// storageViolation is the first local storage limit a pod exceeds, with
// upstream's message and signal; "" when it exceeds none. As upstream: an emptyDir
// over its sizeLimit, then the pod's total over the sum of its limits,
// then a container's logs (and writable layer, unless the image file
// system is separate) over its limit.
func storageViolation(pod *v1.Pod, st statsapi.PodStats, dedicatedImageFs bool) (signal, msg string) {
	used := map[string]uint64{}
	for _, v := range st.VolumeStats {
		if v.UsedBytes != nil {
			used[v.Name] = *v.UsedBytes
		}
	}
	for _, v := range pod.Spec.Volumes {
		ed := v.EmptyDir
		if ed == nil || ed.SizeLimit == nil || ed.SizeLimit.Sign() <= 0 {
			continue
		}
		if u, ok := used[v.Name]; ok && int64(u) > ed.SizeLimit.Value() {
			return signalEmptyDirFsLimit, fmt.Sprintf(emptyDirMessageFmt, v.Name, ed.SizeLimit.String())
		}
	}
	if limit, ok := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})[v1.ResourceEphemeralStorage]; ok {
		var total int64
		if es := st.EphemeralStorage; es != nil && es.UsedBytes != nil {
			total = int64(*es.UsedBytes)
		}
		if total > limit.Value() {
			return signalEphemeralPodFsLimit, fmt.Sprintf(podEphemeralStorageMessageFmt, limit.String())
		}
	}
	limits := map[string]int64{}
	var shown = map[string]string{}
	addLimit := func(c *v1.Container) {
		if l, ok := c.Resources.Limits[v1.ResourceEphemeralStorage]; ok && l.Value() != 0 {
			limits[c.Name], shown[c.Name] = l.Value(), l.String()
		}
	}
	for i := range pod.Spec.Containers {
		addLimit(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			addLimit(c)
		}
	}
	for _, cs := range st.Containers {
		limit, ok := limits[cs.Name]
		if !ok {
			continue
		}
		var u uint64
		if cs.Logs != nil && cs.Logs.UsedBytes != nil {
			u += *cs.Logs.UsedBytes
		}
		if !dedicatedImageFs && cs.Rootfs != nil && cs.Rootfs.UsedBytes != nil {
			u += *cs.Rootfs.UsedBytes
		}
		if int64(u) > limit {
			return signalEphemeralContainerFsLimit, fmt.Sprintf(containerEphemeralStorageMessageFmt, cs.Name, shown[cs.Name])
		}
	}
	return "", ""
}
