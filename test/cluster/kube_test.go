package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
)

// busybox is a local image (hack/images.sh) that every containerd of ours
// has imported: the tests never pull.
const busybox = "berth.local/busybox:1.0"

func apiContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// --- namespaces ---

// namespace creates a namespace for t and waits for its default
// ServiceAccount, without which the apiserver admits no pod. When t ends,
// every pod in it must be gone from the API and from the runtime.
func (env *environment) namespace(t *testing.T) string {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	prefix := strings.ToLower(strings.TrimPrefix(t.Name(), "Test"))
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	ns, err := env.kube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	name := ns.Name
	t.Cleanup(func() { env.removeNamespace(t, name) })
	env.eventually(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := apiContext()
		defer cancel()
		_, err := env.kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprintf("default ServiceAccount in %s: %v", name, err)
	})
	return name
}

// removeNamespace deletes what the tests create in ns and waits until
// berth has stopped every pod and deleted it from the API, so that the next
// test starts on an empty node. Failing that, it fails t and forces the
// pods out of the API and the runtime.
func (env *environment) removeNamespace(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	apps := env.kube.AppsV1()
	_ = apps.Deployments(ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &bg}, metav1.ListOptions{})
	_ = apps.ReplicaSets(ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &bg}, metav1.ListOptions{})
	one := int64(1)
	_, err := env.poll(45*time.Second, func() (bool, string) {
		pods, err := env.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		// Pods a controller created after the first round are deleted too.
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				_ = env.kube.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &one})
			}
		}
		cs, err := env.containersIn(ns)
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0 && len(cs) == 0,
			fmt.Sprintf("namespace %s: pods in the API: %s; containers in the runtime: %s", ns, describePods(pods.Items), describeContainers(cs))
	})
	if err != nil {
		t.Errorf("clean up namespace %s: %v", ns, err)
		zero := int64(0)
		_ = env.kube.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err := env.removeFromRuntime(ns); err != nil {
			t.Errorf("remove namespace %s from the runtime: %v", ns, err)
		}
	}
	if err := env.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete namespace %s: %v", ns, err)
	}
}

// --- pods ---

type podOption func(*v1.Pod)

// shellPod is a pod with one busybox container "main" running script, with
// a grace period of 5 s and the namespace's default ServiceAccount.
func shellPod(name, script string, opts ...podOption) *v1.Pod {
	grace := int64(5)
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []v1.Container{{
				Name:            "main",
				Image:           busybox,
				ImagePullPolicy: v1.PullNever,
				Command:         []string{"sh", "-c", script},
			}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// sleeper runs sleep 3600 as the container's init process, which ignores
// SIGTERM: stopping it takes the whole grace period.
func sleeper(name string, opts ...podOption) *v1.Pod {
	p := shellPod(name, "", opts...)
	p.Spec.Containers[0].Command = []string{"sleep", "3600"}
	return p
}

func withGrace(seconds int64) podOption {
	return func(p *v1.Pod) { p.Spec.TerminationGracePeriodSeconds = &seconds }
}

func withImage(image string) podOption {
	return func(p *v1.Pod) { p.Spec.Containers[0].Image = image }
}

// onNode binds the pod to berth's node at creation, past the scheduler.
func onNode() podOption {
	return func(p *v1.Pod) { p.Spec.NodeName = nodeName }
}

func withCPURequest(q string) podOption {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(q)}
	}
}

func (env *environment) createPod(t *testing.T, ns string, p *v1.Pod) *v1.Pod {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	created, err := env.kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, p.Name, err)
	}
	return created
}

// metaDeleteDefault is `kubectl delete` without flags: the pod's own grace
// period.
func metaDeleteDefault() metav1.DeleteOptions { return metav1.DeleteOptions{} }

func (env *environment) deletePod(t *testing.T, p *v1.Pod) {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	if err := env.kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metaDeleteDefault()); err != nil {
		t.Fatalf("delete pod %s: %v", p.Name, err)
	}
}

// deployment runs replicas copies of the pod template tmpl, selected by
// app=<name>.
func deployment(name string, replicas int32, tmpl *v1.Pod) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       tmpl.Spec,
			},
		},
	}
}

func (env *environment) createDeployment(t *testing.T, ns string, d *appsv1.Deployment) {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	if _, err := env.kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s/%s: %v", ns, d.Name, err)
	}
}

func (env *environment) scale(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	s, err := env.kube.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale of %s/%s: %v", ns, name, err)
	}
	s.Spec.Replicas = replicas
	if _, err := env.kube.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale %s/%s to %d: %v", ns, name, replicas, err)
	}
}

// pods lists the pods of ns with the label app=app (every pod when app is
// empty), sorted by name.
func (env *environment) pods(ns, app string) ([]v1.Pod, error) {
	ctx, cancel := apiContext()
	defer cancel()
	opts := metav1.ListOptions{}
	if app != "" {
		opts.LabelSelector = "app=" + app
	}
	list, err := env.kube.CoreV1().Pods(ns).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// getPod returns the pod, nil when it does not exist.
func (env *environment) getPod(ns, name string) (*v1.Pod, error) {
	ctx, cancel := apiContext()
	defer cancel()
	p, err := env.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return p, err
}

// waitReady waits until exactly n pods with app=<app> exist in ns, none of
// them being deleted, all Ready on berth's node, and returns them.
func (env *environment) waitReady(t *testing.T, ns, app string, n int, timeout time.Duration) ([]v1.Pod, time.Duration) {
	t.Helper()
	var ready []v1.Pod
	took := env.eventually(t, timeout, func() (bool, string) {
		pods, err := env.pods(ns, app)
		if err != nil {
			return false, err.Error()
		}
		ok := len(pods) == n
		for i := range pods {
			p := &pods[i]
			if p.DeletionTimestamp != nil || p.Spec.NodeName != nodeName || !podReady(p) {
				ok = false
			}
		}
		ready = pods
		return ok, fmt.Sprintf("want %d Ready pods app=%s on %s, have %s", n, app, nodeName, describePods(pods))
	})
	return ready, took
}

// podGone is a condition: the pod no longer exists in the API.
func (env *environment) podGone(ns, name string) func() (bool, string) {
	return func() (bool, string) {
		p, err := env.getPod(ns, name)
		if err != nil {
			return false, err.Error()
		}
		if p == nil {
			return true, ""
		}
		return false, fmt.Sprintf("pod %s/%s still exists: %s", ns, name, describePod(p))
	}
}

func podReady(p *v1.Pod) bool {
	c := podCondition(p, v1.PodReady)
	return p.Status.Phase == v1.PodRunning && c != nil && c.Status == v1.ConditionTrue
}

func podCondition(p *v1.Pod, typ v1.PodConditionType) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// containerIDs maps each pod's UID to its containers' IDs as the API
// reports them (without the runtime:// prefix).
func containerIDs(pods []v1.Pod) map[types.UID][]string {
	out := map[types.UID][]string{}
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			_, id, _ := strings.Cut(cs.ContainerID, "://")
			out[p.UID] = append(out[p.UID], id)
		}
	}
	return out
}

// --- events ---

// events lists the events about the object named name in ns.
func (env *environment) events(ns, name string) ([]v1.Event, error) {
	ctx, cancel := apiContext()
	defer cancel()
	list, err := env.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
	})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// eventReasons is a condition: the events about the object named name in
// ns include every reason in want. The last message lists what is there.
func (env *environment) eventReasons(ns, name string, want ...string) func() (bool, string) {
	return func() (bool, string) {
		events, err := env.events(ns, name)
		if err != nil {
			return false, err.Error()
		}
		have := map[string]bool{}
		var seen []string
		for _, e := range events {
			have[e.Reason] = true
			seen = append(seen, describeEvent(e))
		}
		var missing []string
		for _, w := range want {
			if !have[w] {
				missing = append(missing, w)
			}
		}
		return len(missing) == 0, fmt.Sprintf("events of %s/%s lack %v; have [%s]", ns, name, missing, strings.Join(seen, "; "))
	}
}

func describeEvent(e v1.Event) string {
	return fmt.Sprintf("%s %s (%s/%s, %s): %s", e.Type, e.Reason, e.Source.Component, e.Source.Host, e.InvolvedObject.FieldPath, e.Message)
}

// --- descriptions for failure messages ---

func describePods(pods []v1.Pod) string {
	if len(pods) == 0 {
		return "no pods"
	}
	var parts []string
	for i := range pods {
		parts = append(parts, describePod(&pods[i]))
	}
	return strings.Join(parts, " | ")
}

func describePod(p *v1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (uid %s, node %q) phase %q", p.Name, p.UID, p.Spec.NodeName, p.Status.Phase)
	if p.Status.Reason != "" {
		fmt.Fprintf(&b, " reason %q message %q", p.Status.Reason, p.Status.Message)
	}
	if p.DeletionTimestamp != nil {
		fmt.Fprintf(&b, " deleting since %s", p.DeletionTimestamp.Format(time.TimeOnly))
	}
	var conds []string
	for _, c := range p.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	fmt.Fprintf(&b, " conditions [%s]", strings.Join(conds, " "))
	for _, cs := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, "; container %s: restarts %d state %s ready %v", cs.Name, cs.RestartCount, describeState(cs.State), cs.Ready)
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
		return fmt.Sprintf("terminated(%s, exit %d)", s.Terminated.Reason, s.Terminated.ExitCode)
	}
	return "none"
}
