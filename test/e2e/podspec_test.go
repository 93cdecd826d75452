package e2e

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// busyboxImage is imported into containerd by hack/containerd.sh up.
const busyboxImage = "berth.local/busybox:1.0"

// shellPod is a one-container pod (container "main") running script with
// busybox sh, with imagePullPolicy Never, restartPolicy Always and a short
// grace period; opts change it further.
func shellPod(name, script string, opts ...func(*v1.Pod)) *v1.Pod {
	grace := int64(2)
	pod := &v1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{
			RestartPolicy:                 v1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
			Containers:                    []v1.Container{shellContainer("main", script)},
		},
	}
	for _, o := range opts {
		o(pod)
	}
	return pod
}

func shellContainer(name, script string) v1.Container {
	return v1.Container{
		Name:            name,
		Image:           busyboxImage,
		ImagePullPolicy: v1.PullNever,
		Command:         []string{"sh", "-c", script},
	}
}

func withRestartPolicy(p v1.RestartPolicy) func(*v1.Pod) {
	return func(pod *v1.Pod) { pod.Spec.RestartPolicy = p }
}

func withGrace(seconds int64) func(*v1.Pod) {
	return func(pod *v1.Pod) { pod.Spec.TerminationGracePeriodSeconds = &seconds }
}

func withInit(cs ...v1.Container) func(*v1.Pod) {
	return func(pod *v1.Pod) { pod.Spec.InitContainers = append(pod.Spec.InitContainers, cs...) }
}

// withImage sets the image and pull policy of container "main".
func withImage(image string, policy v1.PullPolicy) func(*v1.Pod) {
	return func(pod *v1.Pod) {
		pod.Spec.Containers[0].Image = image
		pod.Spec.Containers[0].ImagePullPolicy = policy
	}
}

func podYAML(t *testing.T, pod *v1.Pod) []byte {
	t.Helper()
	data, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// --- status checks on a /pods entry ---

func containerStatus(p *v1.Pod, name string) *v1.ContainerStatus {
	for _, list := range [][]v1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func condition(p *v1.Pod, t v1.PodConditionType) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// describePod is a one-line summary of a pod's status for failure messages.
func describePod(p *v1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "uid %s phase %q", p.UID, p.Status.Phase)
	if p.Status.Reason != "" {
		fmt.Fprintf(&b, " reason %q", p.Status.Reason)
	}
	var conds []string
	for _, c := range p.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	fmt.Fprintf(&b, " conditions [%s]", strings.Join(conds, " "))
	for _, group := range []struct {
		kind string
		list []v1.ContainerStatus
	}{{"init", p.Status.InitContainerStatuses}, {"container", p.Status.ContainerStatuses}} {
		for _, cs := range group.list {
			fmt.Fprintf(&b, "; %s %s: restarts %d state %s last %s ready %v", group.kind, cs.Name, cs.RestartCount, describeState(cs.State), describeState(cs.LastTerminationState), cs.Ready)
		}
	}
	return b.String()
}

func describeState(s v1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Waiting != nil:
		return fmt.Sprintf("waiting(%s: %s)", s.Waiting.Reason, s.Waiting.Message)
	case s.Terminated != nil:
		return fmt.Sprintf("terminated(exit %d, %s)", s.Terminated.ExitCode, s.Terminated.Reason)
	}
	return "none"
}
