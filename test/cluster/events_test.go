package cluster

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEvents(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	missing := env.createPod(t, ns, sleeper("missing", withImage("berth.local/missing:1")))
	normal := env.createPod(t, ns, sleeper("normal"))

	env.eventually(t, 30*time.Second, env.eventReasons(ns, missing.Name, "ErrImageNeverPull"))
	env.eventually(t, 10*time.Second, func() (bool, string) {
		p, err := env.getPod(ns, missing.Name)
		if err != nil || p == nil {
			return false, fmt.Sprintf("get pod: %v", err)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && w.Reason == "ErrImageNeverPull" {
				return true, ""
			}
		}
		return false, "want container waiting with reason ErrImageNeverPull: " + describePod(p)
	})

	// What `kubectl get events` shows for a pod that starts.
	env.waitReady(t, ns, "normal", 1, 30*time.Second)
	env.eventually(t, 10*time.Second, env.eventReasons(ns, normal.Name, "Scheduled", "Pulled", "Created", "Started"))
	events, err := env.events(ns, normal.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		t.Logf("event %s", describeEvent(e))
		switch e.Reason {
		case "Pulled", "Created", "Started":
			if e.Type != v1.EventTypeNormal || e.Source.Component != "kubelet" || e.Source.Host != nodeName ||
				e.InvolvedObject.FieldPath != "spec.containers{main}" {
				t.Errorf("event %s: want Normal, from kubelet/%s, about spec.containers{main}", describeEvent(e), nodeName)
			}
		}
	}
}

// TestNodeAllocatableEvent: berth limits kubepods to node allocatable at
// start and says so on the Node, as upstream's container manager.
func TestNodeAllocatableEvent(t *testing.T) {
	env := requireSuite(t)
	env.eventually(t, 30*time.Second, func() (bool, string) {
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
			if e.Reason == "SuccessfulNodeAllocatableEnforcement" && e.Type == v1.EventTypeNormal &&
				e.Message == "Updated Node Allocatable limit across pods" && e.Source.Component == "kubelet" {
				return true, ""
			}
		}
		return false, "no SuccessfulNodeAllocatableEnforcement event on the node; have " + fmt.Sprint(seen)
	})
}
