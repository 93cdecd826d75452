package stats

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
)

// fakeDriverVolumes reports one claim and one inline volume of the test
// pod, and counts the calls.
type fakeDriverVolumes struct {
	mu    sync.Mutex
	calls int
	none  bool // no volumes published (yet)
}

func (f *fakeDriverVolumes) PodVolumeStats(_ context.Context, uid types.UID) []DriverVolume {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if uid != podUID || f.none {
		return nil
	}
	n := func(v uint64) *uint64 { return &v }
	return []DriverVolume{
		{Name: "data", PVCName: "claim", PVCNamespace: "default", Time: t0,
			CapacityBytes: n(1000), AvailableBytes: n(600), UsedBytes: n(400), Inodes: n(10), InodesFree: n(7), InodesUsed: n(3)},
		{Name: "inline", Time: t0, CapacityBytes: n(50), AvailableBytes: n(40), UsedBytes: n(10), Inodes: n(5), InodesFree: n(4), InodesUsed: n(1)},
	}
}

func TestDriverVolumes(t *testing.T) {
	e := newTestEnv(t)
	fd := &fakeDriverVolumes{}
	opts := e.options()
	opts.DriverVolumes = fd
	e.writeCgroups(t, false, 10e9)
	v1, err := newCgroupV1(e.cgRoot)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(opts, v1)
	// Before the volumes are published, every round asks.
	fd.none = true
	c.housekeep(testCtx(t))
	c.housekeep(testCtx(t))
	if fd.calls != 2 {
		t.Fatalf("no volumes yet: drivers asked %d times in two rounds, want 2", fd.calls)
	}
	fd.none, fd.calls = false, 0
	twoRounds(t, e, c, false)
	if fd.calls != 1 {
		t.Errorf("drivers asked %d times in two rounds within volumeStatsAggPeriod, want 1", fd.calls)
	}
	s, err := c.Summary(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Pods[0]
	byName := map[string]int{}
	for i, v := range p.VolumeStats {
		byName[v.Name] = i
	}
	d, i := p.VolumeStats[byName["data"]], p.VolumeStats[byName["inline"]]
	if d.PVCRef == nil || d.PVCRef.Name != "claim" || u64(d.UsedBytes) != 400 || u64(d.InodesFree) != 7 {
		t.Errorf("claim volume = %+v", d)
	}
	if i.PVCRef != nil || u64(i.CapacityBytes) != 50 {
		t.Errorf("inline volume = %+v", i)
	}
	// The inline volume counts in the pod's ephemeral storage, the claim
	// not: against the same pod without driver volumes, 10 bytes more.
	e2 := newTestEnv(t)
	c2 := collectorFor(t, e2, false)
	twoRounds(t, e2, c2, false)
	s2, err := c2.Summary(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got, base := u64(p.EphemeralStorage.UsedBytes), u64(s2.Pods[0].EphemeralStorage.UsedBytes); got != base+10 {
		t.Errorf("ephemeral storage used %d, want %d + 10 (the inline volume)", got, base)
	}

	if err := testutil.CollectAndCompare(c.VolumeStatsCollector(), strings.NewReader(`
# HELP kubelet_volume_stats_available_bytes [ALPHA] Number of available bytes in the volume
# TYPE kubelet_volume_stats_available_bytes gauge
kubelet_volume_stats_available_bytes{namespace="default",persistentvolumeclaim="claim"} 600
# HELP kubelet_volume_stats_capacity_bytes [ALPHA] Capacity in bytes of the volume
# TYPE kubelet_volume_stats_capacity_bytes gauge
kubelet_volume_stats_capacity_bytes{namespace="default",persistentvolumeclaim="claim"} 1000
# HELP kubelet_volume_stats_inodes [ALPHA] Maximum number of inodes in the volume
# TYPE kubelet_volume_stats_inodes gauge
kubelet_volume_stats_inodes{namespace="default",persistentvolumeclaim="claim"} 10
# HELP kubelet_volume_stats_inodes_free [ALPHA] Number of free inodes in the volume
# TYPE kubelet_volume_stats_inodes_free gauge
kubelet_volume_stats_inodes_free{namespace="default",persistentvolumeclaim="claim"} 7
# HELP kubelet_volume_stats_inodes_used [ALPHA] Number of used inodes in the volume
# TYPE kubelet_volume_stats_inodes_used gauge
kubelet_volume_stats_inodes_used{namespace="default",persistentvolumeclaim="claim"} 3
# HELP kubelet_volume_stats_used_bytes [ALPHA] Number of used bytes in the volume
# TYPE kubelet_volume_stats_used_bytes gauge
kubelet_volume_stats_used_bytes{namespace="default",persistentvolumeclaim="claim"} 400
`)); err != nil {
		t.Error(err)
	}

	// Asked again once the period has passed.
	e.clock.Step(time.Minute)
	c.housekeep(testCtx(t))
	if fd.calls != 2 {
		t.Errorf("drivers asked %d times after the period, want 2", fd.calls)
	}
}
