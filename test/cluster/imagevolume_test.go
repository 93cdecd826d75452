package cluster

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// TestImageVolumeRefused: the suite's containerd (1.6) cannot mount image
// volumes, so a pod with one is not started: its container waits with
// CreateContainerError and a message that says why, and an event says so,
// rather than the runtime's own failure on an empty host path.
func TestImageVolumeRefused(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	const want = `image volume "tools": the container runtime (containerd `
	env.createPod(t, ns, sleeper("image-volume", func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "tools", VolumeSource: v1.VolumeSource{
			Image: &v1.ImageVolumeSource{Reference: busybox, PullPolicy: v1.PullNever},
		}})
		p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, v1.VolumeMount{Name: "tools", MountPath: "/tools"})
	}))
	p, took := env.waitPod(t, ns, "image-volume", 30*time.Second, func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		ok := cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerError" &&
			strings.HasPrefix(cs.State.Waiting.Message, want) && strings.Contains(cs.State.Waiting.Message, "cannot mount images")
		return ok, describePod(p)
	})
	t.Logf("refused after %s: %s", took.Round(time.Millisecond), containerStatus(p, "main").State.Waiting.Message)
	env.noPullContainers(t, p)
	env.eventually(t, 10*time.Second, func() (bool, string) {
		events, err := env.events(ns, p.Name)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range events {
			if e.Type == v1.EventTypeWarning && e.Reason == "Failed" && strings.HasPrefix(e.Message, "Error: "+want) {
				return true, ""
			}
			seen = append(seen, describeEvent(e))
		}
		return false, "no Failed event naming the image volume: " + strings.Join(seen, "; ")
	})
}
