package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// logMentions is a condition: berth's log contains every string in want.
func (b *berth) logMentions(want ...string) func() (bool, string) {
	return func() (bool, string) {
		log := b.log()
		var missing []string
		for _, w := range want {
			if !strings.Contains(log, w) {
				missing = append(missing, w)
			}
		}
		return len(missing) == 0, fmt.Sprintf("berth's log does not mention %q", missing)
	}
}

func TestMalformedManifestIsolated(t *testing.T) {
	b := startBerth(t)
	good1 := shellPod("good-one", "sleep 3600")
	good2 := shellPod("good-two", "sleep 3600")
	bad := shellPod("bad-name", "sleep 3600")
	bad.Spec.Containers[0].Name = "Not_A_DNS_Label"

	b.writePod(good1)
	b.writePod(good2)
	b.writeManifest("broken.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\nspec:\n  containers: [\n    - name: x\n"))
	b.writePod(bad)

	c1 := b.runningContainer("good-one", "main", 15*time.Second)
	b.runningContainer("good-two", "main", 15*time.Second)
	b.eventually(10*time.Second, b.podCond("good-one", podRunning))
	b.eventually(10*time.Second, b.podCond("good-two", podRunning))
	b.eventually(10*time.Second, b.logMentions("broken.yaml", "bad-name.yaml"))
	for _, name := range []string{"broken", "bad-name"} {
		cs, err := b.env.containers(name)
		if err != nil {
			t.Fatal(err)
		}
		sbs, err := b.env.sandboxes(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs)+len(sbs) > 0 {
			t.Errorf("invalid manifest %s was run: %s; %s", name, describeContainers(cs), describeSandboxes(sbs))
		}
		if p, err := b.pod(name); err != nil || p != nil {
			t.Errorf("invalid manifest %s is in /pods (err %v)", name, err)
		}
	}

	// Break a good file: berth keeps running the last good version.
	logBefore := len(b.log())
	b.writeManifest("good-one.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: good-one\nspec: [}\n"))
	b.eventually(10*time.Second, func() (bool, string) {
		return strings.Contains(b.log()[logBefore:], "good-one.yaml"), "berth's log does not mention the broken good-one.yaml"
	})
	// Nothing may happen to the pod: let a few rescans (fileCheckFrequency 1 s) pass.
	time.Sleep(3 * time.Second)
	stillOne := func(when string) {
		t.Helper()
		cs, err := b.env.containers("good-one")
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Id != c1.Id || len(running(cs)) != 1 {
			t.Errorf("%s: want the original container %s still running alone, have %s", when, shortID(c1.Id), describeContainers(cs))
		}
		p, err := b.pod("good-one")
		if err != nil || p == nil {
			t.Fatalf("%s: good-one gone from /pods (err %v)", when, err)
		}
		if ok, msg := podRunning(p); !ok {
			t.Errorf("%s: good-one not Running: %s", when, msg)
		}
	}
	stillOne("after good-one.yaml was broken")

	// Fix it (the same content as before): the same pod goes on.
	b.writePod(good1)
	time.Sleep(3 * time.Second)
	stillOne("after good-one.yaml was fixed")
	cs, err := b.env.containers("good-two")
	if err != nil {
		t.Fatal(err)
	}
	if len(running(cs)) != 1 || len(cs) != 1 {
		t.Errorf("good-two disturbed: %s", describeContainers(cs))
	}
}
