package file

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
	"github.com/berth-dev/berth/internal/status"
)

// FuzzParseManifest: any static pod manifest is parsed into a pod berth
// can run or refused with an error, never a panic. A pod that parses is a
// static pod of the node with a UID, and its first sync's pure steps
// (plan, status) take it without panicking either.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(yamlPod))
	f.Add([]byte(jsonPod))
	f.Fuzz(func(t *testing.T, data []byte) {
		pod, err := ParseManifest(data, "/etc/kubernetes/manifests/pod.yaml", nodeName)
		if err != nil {
			return
		}
		if pod == nil || pod.UID == "" || pod.Spec.NodeName != nodeName || pod.Namespace == "" {
			t.Fatalf("parsed pod is not a static pod of the node: %+v", pod)
		}
		st := &container.PodStatus{UID: pod.UID, Name: pod.Name, Namespace: pod.Namespace}
		actions := plan.ComputePodActions(pod, st, nil)
		if !actions.CreateSandbox {
			t.Fatalf("a new pod's first plan creates no sandbox: %+v", actions)
		}
		status.Compute(status.Input{Pod: pod, Old: pod.Status, Runtime: st, Now: metav1.NewTime(time.Unix(1000, 0))})
	})
}
