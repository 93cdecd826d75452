package runtime

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

// A container left Created by a berth killed between CreateContainer and
// StartContainer never ran: it is replaced under the same restart count.
// One this berth created and failed to start counts as a restart, as
// upstream's.
func TestUnstartedContainerReplaced(t *testing.T) {
	for _, tt := range []struct {
		name             string
		byPredecessor    bool
		wantRestartCount int
		wantRemoved      bool
	}{
		{name: "created by the berth before", byPredecessor: true, wantRestartCount: 0, wantRemoved: true},
		{name: "created by this berth", byPredecessor: false, wantRestartCount: 1, wantRemoved: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			pod := fakePod()
			e.rs.InjectError("StartContainer", errors.New("killed before the start"))
			if res := e.m.SyncPod(ctx, pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0}); len(res.Waiting) != 1 {
				t.Fatalf("SyncPod = %+v, want the init container waiting", res)
			}
			e.settle()
			st := e.status(pod)
			left := st.FindContainer("init")
			if left == nil || left.State != container.StateCreated {
				t.Fatalf("init = %+v, want it created, not started", left)
			}
			if tt.byPredecessor {
				e.m.started = left.CreatedAt.Add(time.Second)
			}
			e.calls() // forget the first sync's calls
			res := e.m.SyncPod(ctx, pod, st, plan.PodActions{SandboxID: st.LatestSandbox().ID, NextInitContainer: 0})
			if res.Err != nil || len(res.Waiting) != 0 {
				t.Fatalf("SyncPod = %+v", res)
			}
			calls := e.calls()
			e.settle()
			now := e.status(pod).FindContainer("init")
			if now == nil || now.State != container.StateRunning || now.RestartCount != tt.wantRestartCount {
				t.Fatalf("init now %+v, want a running instance with restart count %d (the fake names containers by attempt)", now, tt.wantRestartCount)
			}
			if removed := slices.Contains(calls, "RemoveContainer"); removed != tt.wantRemoved {
				t.Errorf("calls %v: RemoveContainer %v, want %v", calls, removed, tt.wantRemoved)
			}
		})
	}
}
