package compare

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	kubetypes "k8s.io/kubernetes/pkg/kubelet/types"

	"github.com/berth-dev/berth/internal/status"
)

// TestKubeletOwnsCondition: the condition types whose value is the
// kubelet's (berth's status computation and API merge keep no other copy).
func TestKubeletOwnsCondition(t *testing.T) {
	types := []v1.PodConditionType{
		v1.PodScheduled, v1.PodReady, v1.PodInitialized, v1.ContainersReady,
		v1.PodReadyToStartContainers, v1.PodResizeInProgress, v1.PodResizePending,
		v1.DisruptionTarget, v1.AllContainersRestarting,
		"example.com/ready-gate", "",
	}
	for _, ct := range types {
		if got, want := status.KubeletOwnsCondition(ct), kubetypes.PodConditionByKubelet(ct); got != want {
			t.Errorf("%q: berth owns %v, upstream %v", ct, got, want)
		}
	}
}
