package cluster

import (
	"fmt"
	"testing"
	"time"
)

func TestDeploymentScale(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)

	start := time.Now()
	env.createDeployment(t, ns, deployment("web", 3, sleeper("web")))
	pods, _ := env.waitReady(t, ns, "web", 3, 30*time.Second)
	t.Logf("deployment created -> 3 pods Ready on %s: %s", nodeName, since(start))

	ids := containerIDs(pods)
	for _, p := range pods {
		if p.Status.HostIP != "127.0.0.1" || p.Status.PodIP == "" || p.Status.StartTime == nil {
			t.Errorf("pod %s: hostIP %q podIP %q startTime %v; want 127.0.0.1, an IP, a time", p.Name, p.Status.HostIP, p.Status.PodIP, p.Status.StartTime)
		}
		cs, err := env.podContainers(p.UID)
		if err != nil {
			t.Fatal(err)
		}
		r := runningOnly(cs)
		if len(ids[p.UID]) != 1 || len(r) != 1 || r[0].Id != ids[p.UID][0] {
			t.Errorf("pod %s: API container IDs %v, runtime has %s; want the one running container", p.Name, ids[p.UID], describeContainers(cs))
		}
	}

	// The pods run with the namespace's default ServiceAccount, its token
	// mounted where client libraries look for it.
	c := ids[pods[0].UID]
	if len(c) == 1 {
		const file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
		if out, err := env.exec(c[0], "cat", file); err != nil || out != ns {
			t.Errorf("pod %s: %s reads %q (err %v), want %q", pods[0].Name, file, out, err, ns)
		}
	}

	start = time.Now()
	env.scale(t, ns, "web", 0)
	took := env.eventually(t, 45*time.Second, func() (bool, string) {
		pods, err := env.pods(ns, "web")
		if err != nil {
			return false, err.Error()
		}
		cs, err := env.containersIn(ns)
		if err != nil {
			return false, err.Error()
		}
		return len(pods) == 0 && len(cs) == 0,
			fmt.Sprintf("after scaling to 0: API %s; runtime %s", describePods(pods), describeContainers(cs))
	})
	// The containers ignore SIGTERM: each takes its grace period (5 s).
	t.Logf("scaled to 0 -> pods gone from the API and containers from the runtime: %s", took.Round(time.Millisecond))
}
