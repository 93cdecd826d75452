package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/bench/internal/cri"
	"github.com/berth-dev/berth/bench/internal/result"
	"github.com/berth-dev/berth/bench/internal/scenario"
)

// floor measures the same pods made directly through CRI, with no agent
// running: single pods one at a time, then the bursts.
func (b *bench) floor(ctx context.Context, round int) error {
	logf("round %d: CRI floor", round)
	f := cri.NewFloor(b.env.CRI, cri.FloorOptions{
		Image: scenario.Image, Dir: filepath.Join(b.o.out, "floor"),
		CgroupParent: filepath.Join(b.o.cgroupRoot, "floor"), Namespace: b.o.namespace,
	})
	var made []cri.FloorPod
	defer func() { _ = f.Remove(context.WithoutCancel(ctx), made) }()
	// The first pod of a run pays for cold caches; it is not counted.
	for i := range b.o.floorSingle + 1 {
		p, err := f.Run(ctx, fmt.Sprintf("floor-r%d-%d", round, i))
		made = append(made, p)
		if err != nil {
			return err
		}
		if i > 0 {
			b.env.Samples.Add(result.Floor, "start.running", p.Took.Seconds())
		}
		if err := f.Remove(ctx, []cri.FloorPod{p}); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
	sizes := []int{30}
	if round <= b.o.burstRounds {
		sizes = append(sizes, 100)
	}
	for _, n := range sizes {
		cpu := scenario.StartCPU(append([]int{b.env.RuntimePid}, b.env.ControlPlanePids...)...)
		pods, took, err := f.Burst(ctx, fmt.Sprintf("floor%d-r%d", n, round), n)
		made = append(made, pods...)
		if err != nil {
			return err
		}
		series := fmt.Sprintf("burst%d", n)
		used, node := cpu.Stop()
		b.env.Samples.Add(result.Floor, series+".cpu.runtime", used[0])
		b.env.Samples.Add(result.Floor, series+".cpu.api", sumCPU(used[1:]))
		b.env.Samples.Add(result.Floor, series+".cpu.node", node)
		b.env.Samples.Add(result.Floor, series+".last", took.Seconds())
		for _, p := range pods {
			b.env.Samples.Add(result.Floor, series+".pod", p.Took.Seconds())
		}
		logf("round %d: CRI floor: %d pods running after %.2fs", round, n, took.Seconds())
		start := time.Now()
		if err := f.Remove(ctx, pods); err != nil {
			return err
		}
		logf("round %d: CRI floor: %d pods removed in %.2fs", round, n, time.Since(start).Seconds())
		time.Sleep(time.Second)
	}
	return nil
}
