package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func privileged() podOption {
	return func(p *v1.Pod) {
		yes := true
		p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: &yes}
	}
}

// TestStaticPodSecurity runs berth with --static-pod-security=baseline: a
// privileged static pod is refused with the violated check named (a
// warning event on the Node, a Failed mirror pod), a compliant one runs,
// and an update of it to a privileged version leaves the running version
// in place. With --pod-security-floor=baseline a privileged API pod is
// rejected too.
func TestStaticPodSecurity(t *testing.T) {
	env := requireSuite(t)
	env.restartBerthWith(t, "", "--static-pod-security=baseline", "--pod-security-floor=baseline")
	env.eventually(t, 60*time.Second, env.nodeReady)
	ns := env.namespace(t)
	const violation = `violates PodSecurity "baseline:latest": privileged (container "main" must not set securityContext.privileged=true)`

	// Refused: nothing runs; the mirror pod and the Node say why.
	env.writeManifest(t, inNamespace(ns, sleeper("pss-priv", privileged())))
	privName := "pss-priv-" + nodeName
	env.eventually(t, 30*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, privName)
		if err != nil || p == nil {
			return false, fmt.Sprintf("mirror pod %s: %v", privName, err)
		}
		st := p.Status
		return st.Phase == v1.PodFailed && st.Reason == "PodSecurity" && st.Message == "Pod was rejected: "+violation,
			"want Failed, reason PodSecurity, message naming the check: " + describePod(p) + " " + st.Message
	})
	env.eventually(t, 10*time.Second, env.nodeEvent("PodSecurity", "pss-priv-"+nodeName, violation))
	if cs, err := env.listContainers(map[string]string{labelPodNamespace: ns, labelPodName: privName}); err != nil || len(cs) != 0 {
		t.Errorf("refused static pod has containers: %s (%v)", describeContainers(cs), err)
	}

	// An API pod below the floor is rejected at admission, as any pod the
	// node cannot run.
	env.createPod(t, ns, sleeper("api-priv", privileged(), onNode()))
	env.waitPod(t, ns, "api-priv", 30*time.Second, func(p *v1.Pod) (bool, string) {
		return p.Status.Phase == v1.PodFailed && p.Status.Reason == "PodSecurity" && p.Status.Message == "Pod was rejected: "+violation,
			"want Failed, reason PodSecurity: " + describePod(p) + " " + p.Status.Message
	})

	// Compliant: runs.
	webName := "pss-web-" + nodeName
	path := env.writeManifest(t, inNamespace(ns, sleeper("pss-web")))
	var mirror *v1.Pod
	env.eventually(t, 30*time.Second, env.mirrorRunning(ns, webName, "", &mirror))
	running := env.runningContainers(t, ns, webName)

	// Updated to a privileged version: refused, the running version stays.
	if got := env.writeManifest(t, inNamespace(ns, sleeper("pss-web", privileged()))); got != path {
		t.Fatalf("manifest written to %s, want %s", got, path)
	}
	env.eventually(t, 10*time.Second, env.nodeEvent("PodSecurity", webName, "the previous version keeps running: "+violation))
	// The refusal is decided when the manifest is read; give a wrong
	// decision the time to show before checking that nothing moved.
	time.Sleep(3 * time.Second)
	if now := env.runningContainers(t, ns, webName); len(now) != 1 || now[0] != running[0] {
		t.Errorf("after the refused update the running containers are %v, want %v", now, running)
	}
	p, err := env.getPod(ns, webName)
	if err != nil || p == nil {
		t.Fatalf("mirror pod %s: %v", webName, err)
	}
	if p.UID != mirror.UID || p.Annotations[mirrorAnnotation] != mirror.Annotations[mirrorAnnotation] || p.Status.Phase != v1.PodRunning {
		t.Errorf("mirror pod after the refused update: uid %s (was %s), hash %s (was %s), %s",
			p.UID, mirror.UID, p.Annotations[mirrorAnnotation], mirror.Annotations[mirrorAnnotation], describePod(p))
	}

	// berth restarts with the refused version on disk: the allowed one,
	// kept under the root directory, still runs (its container adopted).
	offset := env.berth.logSize()
	if err := env.berth.stop(); err != nil {
		t.Fatal(err)
	}
	if err := env.berth.start(); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, 60*time.Second, env.nodeReady)
	env.eventually(t, 30*time.Second, func() (bool, string) {
		log := env.berth.logTail(offset, 100000)
		return strings.Contains(log, "Static pod manifest refused; the previous version keeps running") && strings.Contains(log, "pss-web"),
			"berth's log since the restart does not report the refused manifest"
	})
	time.Sleep(3 * time.Second)
	if now := env.runningContainers(t, ns, webName); len(now) != 1 || now[0] != running[0] {
		t.Errorf("after a restart the running containers are %v, want %v", now, running)
	}
}

func inNamespace(ns string, p *v1.Pod) *v1.Pod {
	p.Namespace = ns
	return p
}

// runningContainers returns the IDs of the running containers of pod
// ns/name, once there is exactly one.
func (env *environment) runningContainers(t *testing.T, ns, name string) []string {
	t.Helper()
	var running []string
	env.eventually(t, 10*time.Second, func() (bool, string) {
		cs, err := env.listContainers(map[string]string{labelPodNamespace: ns, labelPodName: name})
		if err != nil {
			return false, err.Error()
		}
		running = nil
		for _, c := range runningOnly(cs) {
			running = append(running, c.Id)
		}
		return len(running) == 1, "containers: " + describeContainers(cs)
	})
	return running
}

// nodeEvent is a condition: an event about berth's Node has reason and a
// message containing every one of subs.
func (env *environment) nodeEvent(reason string, subs ...string) func() (bool, string) {
	return func() (bool, string) {
		ctx, cancel := apiContext()
		defer cancel()
		list, err := env.kube.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.InvolvedObject.Kind != "Node" || e.InvolvedObject.Name != nodeName {
				continue
			}
			seen = append(seen, describeEvent(e))
			if e.Reason != reason || e.Type != v1.EventTypeWarning {
				continue
			}
			all := true
			for _, s := range subs {
				all = all && strings.Contains(e.Message, s)
			}
			if all {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no %s event on node %s with %q; have [%s]", reason, nodeName, subs, strings.Join(seen, "; "))
	}
}
