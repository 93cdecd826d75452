package cluster

import (
	"testing"
	"time"
)

func TestGracefulDeletion(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	// The container's init process ignores SIGTERM: only the SIGKILL at the
	// end of the grace period stops it.
	stubborn := env.createPod(t, ns, shellPod("stubborn", "trap '' TERM; sleep 3600", withGrace(4)))
	// This one exits on SIGTERM (`wait` returns at once for the trap).
	quick := env.createPod(t, ns, shellPod("quick", "trap 'exit 0' TERM; sleep 3600 & wait", withGrace(30)))
	env.waitReady(t, ns, "stubborn", 1, 30*time.Second)
	env.waitReady(t, ns, "quick", 1, 30*time.Second)

	start := time.Now()
	env.deletePod(t, stubborn)
	stopped := env.eventually(t, 15*time.Second, env.noContainers(stubborn.UID, true))
	t.Logf("stubborn (grace 4 s): deleted -> no container running after %s", stopped.Round(time.Millisecond))
	if stopped < 3*time.Second || stopped > 10*time.Second {
		t.Errorf("stubborn stopped %s after deletion, want within 3-10 s (grace period 4 s)", stopped.Round(time.Millisecond))
	}
	env.eventually(t, 10*time.Second, env.noContainers(stubborn.UID, false))
	env.eventually(t, 10*time.Second, env.podGone(ns, stubborn.Name))
	t.Logf("stubborn: containers removed and pod gone from the API %s after deletion", since(start))

	start = time.Now()
	env.deletePod(t, quick)
	stopped = env.eventually(t, 15*time.Second, env.noContainers(quick.UID, true))
	t.Logf("quick (grace 30 s, exits on TERM): deleted -> no container running after %s", stopped.Round(time.Millisecond))
	if stopped > 3*time.Second {
		t.Errorf("quick stopped %s after deletion, want at once (it exits on SIGTERM)", stopped.Round(time.Millisecond))
	}
	env.eventually(t, 10*time.Second, env.noContainers(quick.UID, false))
	env.eventually(t, 10*time.Second, env.podGone(ns, quick.Name))
	t.Logf("quick: containers removed and pod gone from the API %s after deletion", since(start))
}
