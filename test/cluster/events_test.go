package cluster

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
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
