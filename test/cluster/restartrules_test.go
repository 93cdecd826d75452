package cluster

import (
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// withContainerRestart gives container "main" its own restartPolicy and
// restartPolicyRules.
func withContainerRestart(policy v1.ContainerRestartPolicy, rules ...v1.ContainerRestartRule) podOption {
	return withMain(func(c *v1.Container) {
		c.RestartPolicy = &policy
		c.RestartPolicyRules = rules
	})
}

// Container-level restartPolicy and restartPolicyRules override the pod's
// restartPolicy, as upstream's "Container Restart Rules" specs check: a
// rule matching the exit code restarts the container of a Never pod, a
// container Always restarts in a Never pod, a container Never does not in
// an Always pod, which then fails.
func TestContainerRestartRules(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	never, always := v1.RestartPolicyNever, v1.RestartPolicyAlways
	rule42 := v1.ContainerRestartRule{
		Action:    v1.ContainerRestartRuleActionRestart,
		ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}},
	}
	env.createPod(t, ns, shellPod("rule-match", "exit 42", withGrace(1), withRestartPolicy(never),
		withContainerRestart(v1.ContainerRestartPolicyNever, rule42)))
	env.createPod(t, ns, shellPod("rule-mismatch", "exit 1", withGrace(1), withRestartPolicy(never),
		withContainerRestart(v1.ContainerRestartPolicyNever, rule42)))
	env.createPod(t, ns, shellPod("container-always", "exit 1", withGrace(1), withRestartPolicy(never),
		withContainerRestart(v1.ContainerRestartPolicyAlways)))
	env.createPod(t, ns, shellPod("container-never", "exit 1", withGrace(1), withRestartPolicy(always),
		withContainerRestart(v1.ContainerRestartPolicyNever)))

	restarted := func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		if p.Status.Phase == v1.PodFailed || p.Status.Phase == v1.PodSucceeded {
			return false, "the pod ended; want its container restarted"
		}
		return cs != nil && cs.RestartCount > 0, "want restartCount > 0"
	}
	for _, name := range []string{"rule-match", "container-always"} {
		p, took := env.waitPod(t, ns, name, 60*time.Second, restarted)
		t.Logf("%s: restarted %s after creation; phase %s", name, took.Round(time.Millisecond), p.Status.Phase)
		if p.Status.Phase != v1.PodRunning && p.Status.Phase != v1.PodPending {
			t.Errorf("%s: phase %s while its container restarts", name, p.Status.Phase)
		}
	}

	ended := func(p *v1.Pod) (bool, string) {
		return p.Status.Phase == v1.PodFailed, "want phase Failed"
	}
	for _, name := range []string{"rule-mismatch", "container-never"} {
		p, took := env.waitPod(t, ns, name, 60*time.Second, ended)
		cs := containerStatus(p, "main")
		if cs == nil || cs.RestartCount != 0 || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 1 {
			t.Errorf("%s: container status %+v; want terminated with exit 1, never restarted", name, cs)
		}
		t.Logf("%s: Failed %s after creation", name, took.Round(time.Millisecond))
	}
	// Failed is final: the container is not started again later.
	time.Sleep(3 * time.Second)
	for _, name := range []string{"rule-mismatch", "container-never"} {
		p, err := env.getPod(ns, name)
		if err != nil {
			t.Fatal(err)
		}
		if cs := containerStatus(p, "main"); p.Status.Phase != v1.PodFailed || cs == nil || cs.RestartCount != 0 {
			t.Errorf("%s later: %s", name, describePod(p))
		}
	}
}

// berth does not restart a whole pod in place (RestartAllContainers) and
// declares no node features, so the scheduler keeps a pod with such a rule
// off its node: it stays Pending, Unschedulable.
func TestRestartAllContainersNotScheduled(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	rule := v1.ContainerRestartRule{
		Action:    v1.ContainerRestartRuleActionRestartAllContainers,
		ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}},
	}
	env.createPod(t, ns, shellPod("restart-all", "exit 42", withGrace(1), withRestartPolicy(v1.RestartPolicyNever),
		withContainerRestart(v1.ContainerRestartPolicyNever, rule)))
	p, _ := env.waitPod(t, ns, "restart-all", 30*time.Second, func(p *v1.Pod) (bool, string) {
		c := podCondition(p, v1.PodScheduled)
		return c != nil && c.Status == v1.ConditionFalse, "want PodScheduled False"
	})
	if c := podCondition(p, v1.PodScheduled); p.Spec.NodeName != "" || c.Reason != v1.PodReasonUnschedulable {
		t.Errorf("pod with a RestartAllContainers rule: node %q, PodScheduled %+v; want unscheduled, Unschedulable", p.Spec.NodeName, c)
	}
	t.Logf("scheduler: %s", podCondition(p, v1.PodScheduled).Message)
}

// A Job whose pods never restart but whose container restarts on failure
// completes, and its pod failure policy (fail the Job on exit 1) is not
// triggered by the container's failed first run: upstream's "[sig-apps]
// Job containers restarted by container restart policy should not trigger
// PodFailurePolicy".
func TestJobContainerRestartPolicy(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	onFailure := v1.ContainerRestartPolicyOnFailure
	// Fails the first time, succeeds the second (the emptyDir outlives
	// the container).
	pod := shellPod("fail-once", "if [ -f /data/ran ]; then exit 0; fi; touch /data/ran; exit 1",
		withGrace(1), withRestartPolicy(v1.RestartPolicyNever),
		withVolume(emptyDirVolume("data"), v1.VolumeMount{MountPath: "/data"}),
		withContainerRestart(onFailure))
	one := int32(1)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "fail-once"},
		Spec: batchv1.JobSpec{
			Parallelism:  &one,
			Completions:  &one,
			BackoffLimit: &one,
			Template:     v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"job": "fail-once"}}, Spec: pod.Spec},
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptrTo("main"),
					Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
					Values:        []int32{1},
				},
			}}},
		},
	}
	ctx, cancel := apiContext()
	defer cancel()
	if _, err := env.kube.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create job: %v", err)
	}

	var last *batchv1.Job
	took := env.eventually(t, 90*time.Second, func() (bool, string) {
		ctx, cancel := apiContext()
		defer cancel()
		j, err := env.kube.BatchV1().Jobs(ns).Get(ctx, "fail-once", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		last = j
		for _, c := range j.Status.Conditions {
			if c.Status != v1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				return true, ""
			case batchv1.JobFailed:
				return true, fmt.Sprintf("job failed: %s: %s", c.Reason, c.Message)
			}
		}
		return false, fmt.Sprintf("job conditions %+v, active %d, failed %d", j.Status.Conditions, j.Status.Active, j.Status.Failed)
	})
	complete := false
	for _, c := range last.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == v1.ConditionTrue {
			complete = true
		}
	}
	if !complete || last.Status.Failed != 0 || last.Status.Succeeded != 1 {
		t.Fatalf("job: conditions %+v, succeeded %d, failed %d; want Complete, 1 succeeded, none failed",
			last.Status.Conditions, last.Status.Succeeded, last.Status.Failed)
	}
	t.Logf("job complete %s after creation", took.Round(time.Millisecond))

	ctx2, cancel2 := apiContext()
	defer cancel2()
	pods, err := env.kube.CoreV1().Pods(ns).List(ctx2, metav1.ListOptions{LabelSelector: "job=fail-once"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("job pods: %s; want exactly one", describePods(pods.Items))
	}
	p := &pods.Items[0]
	cs := containerStatus(p, "main")
	if p.Status.Phase != v1.PodSucceeded || cs == nil || cs.RestartCount != 1 ||
		cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("job pod: %s; want Succeeded after one restart of main from exit 1", describePod(p))
	}
}
