package autonomy

import (
	"crypto/sha256"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/objects"
	"github.com/berth-dev/berth/internal/source"
)

// objectKey names a checkpointed ConfigMap or Secret.
type objectKey struct{ kind, namespace, name string }

// digest identifies what was written for a pod, so that an unchanged pod
// is not written again.
type digest [sha256.Size]byte

// podWrite is one pod checkpoint to write.
type podWrite struct {
	uid  types.UID
	data []byte
	sum  digest
}

// planPods decides which pod checkpoints to write and which to remove so
// that the checkpoint holds exactly the pods of the API's latest snapshot:
// a pod whose checkpoint would not change is not written; a checkpoint of
// a pod the API no longer lists is removed. terminal holds the terminal
// phase berth reached for a pod: the snapshot's status may be older (a
// status-only update sends no snapshot), and a pod that completed must not
// run again after a restart.
func planPods(snapshot []*v1.Pod, terminal map[types.UID]v1.PodPhase, written map[types.UID]digest) (writes []podWrite, removes []types.UID, err error) {
	listed := make(map[types.UID]bool, len(snapshot))
	for _, pod := range snapshot {
		listed[pod.UID] = true
		data, err := podBytes(checkpointPod(pod, terminal[pod.UID]))
		if err != nil {
			return nil, nil, err
		}
		sum := sha256.Sum256(data)
		if have, ok := written[pod.UID]; ok && have == sum {
			continue
		}
		writes = append(writes, podWrite{uid: pod.UID, data: data, sum: sum})
	}
	for uid := range written {
		if !listed[uid] {
			removes = append(removes, uid)
		}
	}
	slices.Sort(removes)
	return writes, removes, nil
}

// checkpointPod is the pod as checkpointed: its metadata and spec, and of
// its status only a terminal phase (the API's, or the one berth reached).
// What changes without changing what berth runs is left out — the
// resourceVersion, the first-seen time berth stamps, the rest of the
// status — so that a status update does not rewrite the checkpoint.
func checkpointPod(pod *v1.Pod, phase v1.PodPhase) *v1.Pod {
	p := &v1.Pod{TypeMeta: pod.TypeMeta, ObjectMeta: *pod.ObjectMeta.DeepCopy(), Spec: pod.Spec}
	p.ResourceVersion = ""
	p.ManagedFields = nil
	if _, ok := p.Annotations[source.AnnotationConfigSeen]; ok {
		delete(p.Annotations, source.AnnotationConfigSeen)
	}
	switch {
	case isTerminal(pod.Status.Phase):
		p.Status.Phase = pod.Status.Phase
	case isTerminal(phase):
		p.Status.Phase = phase
	}
	return p
}

func isTerminal(phase v1.PodPhase) bool {
	return phase == v1.PodSucceeded || phase == v1.PodFailed
}

// referencedObjects are the ConfigMaps and Secrets the pods read.
func referencedObjects(pods []*v1.Pod) map[objectKey]bool {
	out := map[objectKey]bool{}
	for _, pod := range pods {
		for _, r := range objects.References(pod) {
			out[objectKey{r.Kind, pod.Namespace, r.Name}] = true
		}
	}
	return out
}

// serviceNamespaces are the namespaces whose Services the pods' service
// link variables come from: theirs, and default (the kubernetes Service,
// which every container gets).
func serviceNamespaces(pods []*v1.Pod) map[string]bool {
	out := map[string]bool{"default": true}
	for _, pod := range pods {
		out[pod.Namespace] = true
	}
	return out
}

// servicesVersion identifies a namespace's Services: their names and
// resourceVersions.
func servicesVersion(svcs []*v1.Service) string {
	parts := make([]string, 0, len(svcs))
	for _, s := range svcs {
		parts = append(parts, s.Name+"@"+s.ResourceVersion)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
