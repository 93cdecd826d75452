package nodestatus

import (
	"maps"
	goruntime "runtime"

	v1 "k8s.io/api/core/v1"
	kubeletapis "k8s.io/kubelet/pkg/apis"
)

// initialLabels are the labels berth registers the node with: upstream's
// defaults (host name, OS and architecture, the beta OS and architecture
// labels too, which upstream still sets), with the --node-labels over them.
func initialLabels(nodeName string, nodeLabels map[string]string) map[string]string {
	labels := map[string]string{
		v1.LabelHostname:      nodeName,
		v1.LabelOSStable:      goruntime.GOOS,
		v1.LabelArchStable:    goruntime.GOARCH,
		kubeletapis.LabelOS:   goruntime.GOOS,
		kubeletapis.LabelArch: goruntime.GOARCH,
	}
	maps.Copy(labels, nodeLabels)
	return labels
}

// ownedLabels are the labels a kubelet keeps up to date on a Node that
// already exists (upstream's updateDefaultLabels). Other labels, the
// --node-labels among them, are set only when the Node is created, so
// that labels an administrator changed later stay as they are.
func ownedLabels() []string {
	return []string{
		v1.LabelHostname,
		v1.LabelTopologyZone,
		v1.LabelTopologyRegion,
		v1.LabelFailureDomainBetaZone,
		v1.LabelFailureDomainBetaRegion,
		v1.LabelInstanceTypeStable,
		v1.LabelInstanceType,
		v1.LabelOSStable,
		v1.LabelArchStable,
		v1.LabelWindowsBuild,
		kubeletapis.LabelOS,
		kubeletapis.LabelArch,
	}
}

// reconcileExisting brings a Node that was already registered in line with
// the one berth would create, as upstream's tryRegisterWithAPIServer does:
// the owned labels that initial sets take its values (an empty value
// removes the label), and the controller-managed attach/detach annotation
// is set. It changes existing in place and reports whether it did.
func reconcileExisting(existing, initial *v1.Node) bool {
	changed := false
	if existing.Labels == nil {
		existing.Labels = map[string]string{}
	}
	for _, key := range ownedLabels() {
		want, ok := initial.Labels[key]
		if !ok {
			continue
		}
		if got, has := existing.Labels[key]; got != want || (want == "" && has) {
			changed = true
		}
		if want == "" {
			delete(existing.Labels, key)
		} else {
			existing.Labels[key] = want
		}
	}
	for key, want := range initial.Annotations {
		if got, ok := existing.Annotations[key]; !ok || got != want {
			if existing.Annotations == nil {
				existing.Annotations = map[string]string{}
			}
			existing.Annotations[key] = want
			changed = true
		}
	}
	return changed
}

// ensureOSLabels restores the OS and architecture labels if they are
// missing or wrong, as upstream checks on every status update; schedulers
// and DaemonSets select nodes by them.
func ensureOSLabels(node *v1.Node) bool {
	changed := false
	for key, want := range map[string]string{v1.LabelOSStable: goruntime.GOOS, v1.LabelArchStable: goruntime.GOARCH} {
		if node.Labels[key] == want {
			continue
		}
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		node.Labels[key] = want
		changed = true
	}
	return changed
}
