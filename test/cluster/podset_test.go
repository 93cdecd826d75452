package cluster

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// freeCPU is the node's allocatable CPU, in millicores, less what the
// active pods on the node request.
func (env *environment) freeCPU(t *testing.T) int64 {
	t.Helper()
	n, err := env.getNode()
	if err != nil {
		t.Fatal(err)
	}
	free := n.Status.Allocatable.Cpu().MilliValue()
	ctx, cancel := apiContext()
	defer cancel()
	pods, err := env.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + nodeName})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		for _, c := range p.Spec.Containers {
			free -= c.Resources.Requests.Cpu().MilliValue()
		}
	}
	return free
}

func withCPUMilli(m int64) podOption {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: *resource.NewMilliQuantity(m, resource.DecimalSI)}
	}
}

// kubeletPods is the kubelet API's /pods.
func (env *environment) kubeletPods(t *testing.T) []v1.Pod {
	t.Helper()
	crt, key := env.pkiPair("admin")
	var list v1.PodList
	if err := json.Unmarshal(kubeletGet(t, env.kubeletPort(t), credentials{certFile: crt, keyFile: key}, "/pods"), &list); err != nil {
		t.Fatalf("/pods: %v", err)
	}
	return list.Items
}

func listed(pods []v1.Pod, uid types.UID) *v1.Pod {
	for i := range pods {
		if pods[i].UID == uid {
			return &pods[i]
		}
	}
	return nil
}

// A pod in graceful termination keeps holding its resources: a pod bound
// to the node that only fits once it is gone is rejected at admission
// (OutOfcpu, as upstream's kubelet does: its active pods include pods
// whose termination has not finished), and the kubelet's /pods lists the
// terminating pod. Once it is gone, the same request fits.
func TestTerminatingPodHoldsResources(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	free := env.freeCPU(t)
	if free < 200 {
		t.Skipf("only %dm CPU free on the node", free)
	}
	// Each alone fits; both together do not.
	holdCPU, wantCPU := free*7/10, free*6/10
	// sleep as init process ignores SIGTERM: termination takes the whole
	// grace period.
	holder := env.createPod(t, ns, sleeper("holder", onNode(), withGrace(20), withCPUMilli(holdCPU)))
	env.waitReady(t, ns, "holder", 1, 30*time.Second)

	env.deletePod(t, holder)
	start := time.Now()
	// berth has seen the deletion once /pods shows the deletion timestamp;
	// the container still runs (grace 20 s).
	env.eventually(t, 10*time.Second, func() (bool, string) {
		p := listed(env.kubeletPods(t), holder.UID)
		if p == nil {
			return false, "terminating pod not listed in the kubelet's /pods"
		}
		return p.DeletionTimestamp != nil, "no deletion timestamp on the listed pod yet"
	})
	if ok, msg := env.noContainers(holder.UID, true)(); ok {
		t.Fatalf("holder stopped before the end of its grace period: %s", msg)
	}

	late := env.createPod(t, ns, sleeper("late", onNode(), withCPUMilli(wantCPU)))
	env.eventually(t, 15*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, late.Name)
		if err != nil || p == nil {
			return false, fmt.Sprintf("get pod: %v", err)
		}
		return p.Status.Phase == v1.PodFailed && p.Status.Reason == "OutOfcpu", "want Failed/OutOfcpu: " + describePod(p)
	})
	if time.Since(start) > 18*time.Second {
		t.Fatalf("the check ran past the holder's grace period (%s); it proves nothing", since(start))
	}
	if cs, err := env.podContainers(late.UID); err != nil || len(cs) > 0 {
		t.Errorf("rejected pod has containers: %s %v", describeContainers(cs), err)
	}
	if p := listed(env.kubeletPods(t), holder.UID); p == nil {
		t.Errorf("terminating pod left the kubelet's /pods before its containers stopped")
	}
	// /runningpods is the runtime's view: the pod runs until its grace
	// period ends.
	crt, key := env.pkiPair("admin")
	if body := kubeletGet(t, env.kubeletPort(t), credentials{certFile: crt, keyFile: key}, "/runningpods/"); !strings.Contains(string(body), string(holder.UID)) {
		t.Errorf("/runningpods/ lacks the terminating pod %s: %s", holder.UID, truncate(body, 500))
	}

	env.eventually(t, 40*time.Second, env.podGone(ns, holder.Name))
	t.Logf("holder gone %s after its deletion", since(start))
	env.createPod(t, ns, sleeper("after", onNode(), withCPUMilli(wantCPU)))
	env.waitReady(t, ns, "after", 1, 30*time.Second)
}

// spec.activeDeadlineSeconds as upstream: past start time + deadline the
// pod is killed and Failed with reason DeadlineExceeded and upstream's
// message, with a DeadlineExceeded event; setting it on a running pod
// (conformance: "Pods should allow activeDeadlineSeconds to be updated")
// takes effect.
func TestActiveDeadlineSeconds(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	deadline := int64(5)
	withDeadline := func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = &deadline }
	env.createPod(t, ns, sleeper("bounded", withDeadline, withGrace(1)))
	updated := env.createPod(t, ns, sleeper("updated", withGrace(1)))
	env.waitReady(t, ns, "updated", 1, 30*time.Second)

	// Set it on the running pod, as the conformance test does.
	ctx, cancel := apiContext()
	p, err := env.kube.CoreV1().Pods(ns).Get(ctx, updated.Name, metav1.GetOptions{})
	if err == nil {
		p.Spec.ActiveDeadlineSeconds = &deadline
		_, err = env.kube.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
	}
	cancel()
	if err != nil {
		t.Fatalf("update activeDeadlineSeconds: %v", err)
	}

	for _, name := range []string{"bounded", "updated"} {
		d := env.eventually(t, 60*time.Second, func() (bool, string) {
			p, err := env.getPod(ns, name)
			if err != nil || p == nil {
				return false, fmt.Sprintf("get pod %s: %v", name, err)
			}
			return p.Status.Phase == v1.PodFailed && p.Status.Reason == "DeadlineExceeded" &&
					p.Status.Message == "Pod was active on the node longer than the specified deadline",
				"want Failed/DeadlineExceeded: " + describePod(p)
		})
		t.Logf("%s: Failed/DeadlineExceeded after %s of polling", name, d.Round(time.Millisecond))
		p, _ := env.getPod(ns, name)
		env.eventually(t, 30*time.Second, env.noContainers(p.UID, true))
		env.eventually(t, 10*time.Second, env.eventReasons(ns, name, "DeadlineExceeded"))
	}
}
