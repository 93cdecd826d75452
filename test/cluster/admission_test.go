package cluster

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

func TestAdmissionOutOfCPU(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	p := env.createPod(t, ns, sleeper("greedy", onNode(), withCPURequest("1000")))

	start := time.Now()
	env.eventually(t, 30*time.Second, func() (bool, string) {
		got, err := env.getPod(ns, p.Name)
		if err != nil || got == nil {
			return false, fmt.Sprintf("get pod: %v (exists %v)", err, got != nil)
		}
		p = got
		return p.Status.Phase == v1.PodFailed && p.Status.Reason == "OutOfcpu",
			"want phase Failed, reason OutOfcpu: " + describePod(p)
	})
	t.Logf("pod rejected in %s: %s", since(start), p.Status.Message)
	if p.Status.Message == "" {
		t.Errorf("rejected pod has no status message")
	}
	cs, err := env.podContainers(p.UID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) > 0 {
		t.Errorf("rejected pod has containers: %s", describeContainers(cs))
	}
	env.eventually(t, 10*time.Second, env.eventReasons(ns, p.Name, "OutOfcpu"))
}
