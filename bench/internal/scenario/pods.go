// Package scenario runs the benchmark's scenarios against whichever agent
// is serving the node, through the API server, and records what the watch
// and the runtime show.
package scenario

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Image is the one image every pod runs; it is present on the node, so no
// pull is ever part of a figure.
const Image = "berth.local/busybox:1.0"

// LabelScenario marks every pod the benchmark makes.
const LabelScenario = "berthbench"

// podSpec is the base of every benchmark pod: one BestEffort container,
// bound to the node (no scheduler in the path), and the service account
// token volume the API server adds, as for any ordinary pod.
func basePod(name, node, scenario string, command ...string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelScenario: scenario}},
		Spec: v1.PodSpec{
			NodeName: node,
			Containers: []v1.Container{{
				Name:            "c",
				Image:           Image,
				ImagePullPolicy: v1.PullIfNotPresent,
				Command:         command,
			}},
		},
	}
}

// SleepPod runs `sleep 3600`, as the CRI floor's pods do.
func SleepPod(name, node, scenario string) *v1.Pod {
	return basePod(name, node, scenario, "sleep", "3600")
}

// StartPod is the pod of the single-start scenario: it exits at once on
// SIGTERM (so a graceful deletion measures the kubelet, not a grace
// period), and has an exec readiness probe, so that Ready is a figure of
// its own rather than the same status update as Running.
func StartPod(name, node string) *v1.Pod {
	p := basePod(name, node, "start", "sh", "-c", `trap "exit 0" TERM; sleep 3600 & wait`)
	p.Spec.Containers[0].ReadinessProbe = &v1.Probe{
		ProbeHandler:  v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}},
		PeriodSeconds: 1,
	}
	return p
}

// ExitPod's container exits with status 0 after the given seconds; the pod
// is not restarted.
func ExitPod(name, node string, after float64) *v1.Pod {
	p := basePod(name, node, "exit", "sleep", fmt.Sprintf("%.2f", after))
	p.Spec.RestartPolicy = v1.RestartPolicyNever
	return p
}

// ConfigMapPod mounts ConfigMap cm at /cfg.
func ConfigMapPod(name, node, cm string) *v1.Pod {
	p := SleepPod(name, node, "configmap")
	p.Spec.Volumes = []v1.Volume{{
		Name: "cfg",
		VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: cm},
			DefaultMode:          ptr.To[int32](0o644),
		}},
	}}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	return p
}
