package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/bench/internal/agent"
	"github.com/berth-dev/berth/bench/internal/scenario"
)

// session runs one agent for one round: start it, wait until it serves
// the node, run the scenarios, stop it and empty the runtime.
func (b *bench) session(ctx context.Context, name string, round int) (err error) {
	last := round == b.o.rounds
	logf("round %d: starting %s", round, name)
	cfg := b.agents[name]
	cfg.LogFile = filepath.Join(b.o.out, "logs", fmt.Sprintf("%s-r%d.log", name, round))
	proc, err := agent.Start(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			logf("%s log (last lines):\n%s", name, proc.LogTail(30))
		}
		proc.Stop(context.WithoutCancel(ctx), 5*time.Second)
		if cerr := b.clean(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()
	api, err := agent.NewAPIClient(cfg.Port, filepath.Join(b.o.state, "pki", "apiserver-kubelet-client.crt"),
		filepath.Join(b.o.state, "pki", "apiserver-kubelet-client.key"))
	if err != nil {
		return err
	}
	s := &scenario.Session{Env: b.env, Agent: name, Round: round, Pid: proc.Pid(), API: api}
	ready := time.Now()
	if err := s.WaitReady(ctx, proc.Started(), proc.Exited()); err != nil {
		return err
	}
	logf("round %d: %s serves the node (ready and warmed up in %.1fs)", round, name, time.Since(ready).Seconds())

	opsBefore, _ := api.Histograms(ctx, "kubelet_runtime_operations_duration_seconds", "operation_type")
	defer func() {
		if err != nil {
			return
		}
		if after, herr := api.Histograms(ctx, "kubelet_runtime_operations_duration_seconds", "operation_type"); herr == nil {
			b.ops[name] = add(b.ops[name], after.Sub(opsBefore))
		}
	}()

	if last && b.o.idle > 0 {
		time.Sleep(2 * time.Second)
		if _, err := s.Idle(ctx, b.o.idle, "idle0"); err != nil {
			return err
		}
	}
	var profile <-chan error
	if round == 1 && b.o.profileDir != "" {
		profile = b.profile(ctx, api, name+"-latency", b.o.profileSecs)
	}
	if err := s.SingleStarts(ctx, b.o.single, ""); err != nil {
		return err
	}
	if err := s.Exits(ctx, b.o.exits, ""); err != nil {
		return err
	}
	if err := s.Burst(ctx, 30); err != nil {
		return err
	}
	if round <= b.o.burstRounds {
		if err := s.Burst(ctx, 100); err != nil {
			return err
		}
	}
	if profile != nil {
		if err := <-profile; err != nil {
			logf("%s: CPU profile: %v", name, err)
		}
	}
	if last && b.o.idle > 0 {
		return b.footprint(ctx, s, api, name)
	}
	return nil
}

// footprint is the last round's tail: idle with pods, the cost of
// /stats/summary, ConfigMap propagation, and the scale part.
func (b *bench) footprint(ctx context.Context, s *scenario.Session, api *agent.APIClient, name string) error {
	_, cms, cmPods, err := s.FootprintSet(ctx, b.o.footprintN, b.o.configMaps)
	if err != nil {
		return err
	}
	time.Sleep(5 * time.Second)
	// The ConfigMaps change as the idle window opens: berth's propagation
	// costs it next to nothing, upstream's happens at its periodic resync,
	// within the window or after it.
	prop, err := s.StartPropagation(ctx, cms, cmPods, b.o.propTimeout)
	if err != nil {
		return err
	}
	var profile <-chan error
	if b.o.profileDir != "" {
		profile = b.profile(ctx, api, name+"-idle", int(b.o.idle.Seconds()))
	}
	rate, err := s.Idle(ctx, b.o.idle, "idle100")
	if err != nil {
		return err
	}
	if profile != nil {
		if err := <-profile; err != nil {
			logf("%s: CPU profile: %v", name, err)
		}
		// What the agent's memory holds with the pods running.
		for file, path := range map[string]string{name + "-heap.pprof": "/debug/pprof/heap", name + "-heap.txt": "/debug/pprof/heap?debug=1"} {
			if body, _, err := api.Get(ctx, path); err == nil {
				_ = os.WriteFile(filepath.Join(b.o.profileDir, file), body, 0o644)
			} else {
				logf("%s: heap profile: %v", name, err)
			}
		}
	}
	if err := s.SummaryCost(ctx, b.o.summaryReqs, rate, b.o.footprintN); err != nil {
		logf("%s: /stats/summary: %v", name, err)
	}
	if b.o.scale > b.o.footprintN {
		if _, err := s.ScaleUp(ctx, b.o.scale-b.o.footprintN); err != nil {
			return err
		}
		time.Sleep(5 * time.Second)
		if err := s.SingleStarts(ctx, b.o.scaleChecks, "scale."); err != nil {
			return err
		}
		for range b.o.scaleChecks {
			if err := s.Exits(ctx, 1, "scale."); err != nil {
				return err
			}
		}
		if _, err := s.Idle(ctx, b.o.idleScale, "idlescale"); err != nil {
			return err
		}
		if err := s.Freshness(ctx); err != nil {
			return err
		}
	}
	// The pods are left to clean, after the agent is stopped: deleting
	// 250 pods through an agent would add a minute per agent to the run.
	prop.Wait()
	return nil
}

// profile fetches a CPU profile of secs seconds from the agent in the
// background.
func (b *bench) profile(ctx context.Context, api *agent.APIClient, name string, secs int) <-chan error {
	done := make(chan error, 1)
	go func() {
		body, _, err := api.Get(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs))
		if err == nil {
			err = os.WriteFile(filepath.Join(b.o.profileDir, name+".pprof"), body, 0o644)
		}
		done <- err
	}()
	return done
}

func add(a, b agent.OpStats) agent.OpStats {
	out := agent.OpStats{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		s := out[k]
		s.Sum += v.Sum
		s.Count += v.Count
		out[k] = s
	}
	return out
}
