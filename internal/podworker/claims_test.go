package podworker

import (
	"context"
	"errors"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// flakyClaims fails the first Prepare calls, as while a claim is not yet
// reserved for the pod.
type flakyClaims struct {
	mu         sync.Mutex
	failsLeft  int
	prepares   int
	unprepared []types.UID
}

func (c *flakyClaims) Prepare(context.Context, *v1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prepares++
	if c.failsLeft > 0 {
		c.failsLeft--
		return errors.New("ResourceClaim gpu: not allocated")
	}
	return nil
}

func (c *flakyClaims) Unprepare(_ context.Context, uid types.UID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unprepared = append(c.unprepared, uid)
	return nil
}

func TestClaimsGateTheSandboxAndAreUnprepared(t *testing.T) {
	claims := &flakyClaims{failsLeft: 1}
	h := start(t, func(o *Options) { o.Claims = claims })
	h.w.update(testPod("u1", "busybox:1"))
	// The pod waits (Pending, no sandbox) while its claims are not ready.
	waitedThenSynced(t, h, "u1", "the claims were not prepared")
	waitStatus(t, h, "u1", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })
	h.w.kill("u1", nil, reasonRemoved)
	<-h.terminated
	claims.mu.Lock()
	defer claims.mu.Unlock()
	if claims.prepares != 2 {
		t.Errorf("Prepare called %d times, want 2 (once failing, then before the sandbox)", claims.prepares)
	}
	if len(claims.unprepared) != 1 || claims.unprepared[0] != "u1" {
		t.Fatalf("claims unprepared for %v, want [u1]", claims.unprepared)
	}
}
