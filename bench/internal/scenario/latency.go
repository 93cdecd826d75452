package scenario

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
)

// SingleStarts creates n pods one at a time. Each is timed from appearing
// in the watch to Running and to Ready, then deleted — alternately with
// grace 0 (series delete0.*) and gracefully (deletegrace.*; the container
// exits at once on SIGTERM) — and timed until its containers are stopped
// in the runtime and its object is gone. prefix ("" or "scale.") names
// the series.
func (s *Session) SingleStarts(ctx context.Context, n int, prefix string) error {
	for i := range n {
		p := StartPod(s.name("start"), s.Node)
		if _, err := s.createAll(ctx, []*v1.Pod{p}); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		t, err := s.Tracker.Wait(wctx, p.Name, IsReady)
		cancel()
		if err != nil {
			return err
		}
		s.add(prefix+"start.running", since(t.Added, t.Running))
		s.add(prefix+"start.ready", since(t.Added, t.Ready))

		mode, grace := "delete0", int64(0)
		if i%2 == 1 {
			mode, grace = "deletegrace", 30
		}
		if err := s.timeDeletion(ctx, p.Name, t.UID, grace, prefix+mode); err != nil {
			return err
		}
		// Let the agent finish its bookkeeping before the next pod.
		time.Sleep(300 * time.Millisecond)
	}
	return nil
}

// timeDeletion deletes one pod and records when the runtime shows it
// stopped (series.stopped) and when the object is gone (series.gone).
func (s *Session) timeDeletion(ctx context.Context, name, uid string, grace int64, series string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	if err := s.deleteAll(ctx, []string{name}, grace); err != nil {
		return err
	}
	stoppedc := make(chan error, 1)
	go func() {
		at, err := s.waitStopped(ctx, []string{uid}, 10*time.Millisecond)
		if err == nil {
			s.add(series+".stopped", since(start, at[uid]))
		}
		stoppedc <- err
	}()
	t, err := s.Tracker.Wait(ctx, name, IsDeleted)
	if err != nil {
		return err
	}
	s.add(series+".gone", since(start, t.Deleted))
	return <-stoppedc
}

// Exits starts n pods whose container exits after 2 s and a bit (spread
// so that the exits fall at different points of a relist period) and
// records, per pod, the time from the container's exit (as the runtime
// timed it) to the watch showing it terminated.
func (s *Session) Exits(ctx context.Context, n int, prefix string) error {
	pods := make([]*v1.Pod, n)
	for i := range pods {
		pods[i] = ExitPod(s.name("exit"), s.Node, 2+0.23*float64(i))
	}
	if _, err := s.createAll(ctx, pods); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	seen, err := s.Tracker.WaitAll(wctx, names(pods), IsTerminated)
	if err != nil {
		return err
	}
	for _, p := range pods {
		t := seen[p.Name]
		c, err := s.CRI.PodContainer(ctx, t.UID, "c")
		if err != nil {
			return fmt.Errorf("exit pod %s: %w", p.Name, err)
		}
		if c.FinishedAt == 0 {
			return fmt.Errorf("exit pod %s: the runtime has no finish time for %s", p.Name, c.ID)
		}
		s.add(prefix+"exit.detect", since(time.Unix(0, c.FinishedAt), t.Terminated))
	}
	return s.cleanup(ctx, names(pods))
}

// Burst creates n pods at once and records the time from the first create
// to the last pod Running (burstN.last), each pod's time from appearing in
// the watch to Running (burstN.pod), and, after deleting them all with
// grace 0, the time until the runtime has stopped them all
// (burstN.delete).
func (s *Session) Burst(ctx context.Context, n int) error {
	pods := make([]*v1.Pod, n)
	for i := range pods {
		pods[i] = SleepPod(s.name(fmt.Sprintf("burst%d", n)), s.Node, "burst")
	}
	series := fmt.Sprintf("burst%d", n)
	last, err := s.startAll(ctx, pods, series)
	if err != nil {
		return err
	}
	s.Logf("%s round %d: %d pods Running %.2fs after the first create", s.Agent, s.Round, n, last.Seconds())

	uids := s.uids(names(pods))
	start := time.Now()
	if err := s.deleteAll(ctx, names(pods), 0); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	at, err := s.waitStopped(wctx, uids, 50*time.Millisecond)
	if err != nil {
		return err
	}
	var lastStop time.Time
	for _, t := range at {
		if t.After(lastStop) {
			lastStop = t
		}
	}
	s.add(series+".delete", since(start, lastStop))
	_, err = s.Tracker.WaitAll(wctx, names(pods), IsDeleted)
	return err
}

// startAll creates pods at once, waits until all are Running and records
// series.last, series.pod, and the CPU seconds the agent, the runtime, the
// API server with etcd, and the whole machine used meanwhile
// (series.cpu.{agent,runtime,api,node}).
func (s *Session) startAll(ctx context.Context, pods []*v1.Pod, series string) (time.Duration, error) {
	cpu := StartCPU(append([]int{s.Pid, s.RuntimePid}, s.ControlPlanePids...)...)
	t0, err := s.createAll(ctx, pods)
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	seen, err := s.Tracker.WaitAll(wctx, names(pods), IsRunning)
	if err != nil {
		return 0, err
	}
	used, node := cpu.Stop()
	s.add(series+".cpu.agent", used[0])
	s.add(series+".cpu.runtime", used[1])
	s.add(series+".cpu.api", sum(used[2:]))
	s.add(series+".cpu.node", node)
	var last time.Time
	for _, t := range seen {
		s.add(series+".pod", since(t.Added, t.Running))
		if t.Running.After(last) {
			last = t.Running
		}
	}
	s.add(series+".last", since(t0, last))
	return last.Sub(t0), nil
}

func sum(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}
