package scenario

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/bench/internal/agent"
	"github.com/berth-dev/berth/bench/internal/cri"
	"github.com/berth-dev/berth/bench/internal/result"
)

// Env is what every session shares.
type Env struct {
	Kube    kubernetes.Interface
	CRI     *cri.Client
	Tracker *Tracker
	Samples *result.Samples
	Node    string
	NS      string
	Logf    func(format string, args ...any)
	// RuntimePid is containerd's pid: the CPU time it spends during a
	// burst shows how much work an agent's calls cost the runtime.
	RuntimePid int
	// ControlPlanePids are the API server's and etcd's: the API traffic a
	// burst causes costs the same two cores.
	ControlPlanePids []int
}

// CPUMeter reads the CPU time of processes (an agent, the runtime) and of
// the whole machine.
type CPUMeter struct {
	pids      []int
	start     []float64
	nodeStart float64
}

// StartCPU starts measuring the CPU time of pids (0 entries are skipped).
func StartCPU(pids ...int) *CPUMeter {
	m := &CPUMeter{pids: pids, start: make([]float64, len(pids))}
	for i, p := range pids {
		if u, err := agent.ReadUsage(p); err == nil && p != 0 {
			m.start[i] = u.CPU
		}
	}
	m.nodeStart, _ = agent.NodeCPU()
	return m
}

// Stop returns the CPU seconds each pid used since StartCPU (0 for a pid
// that could not be read) and those the whole machine used.
func (m *CPUMeter) Stop() (pids []float64, node float64) {
	pids = make([]float64, len(m.pids))
	for i, p := range m.pids {
		if u, err := agent.ReadUsage(p); err == nil && p != 0 {
			pids[i] = u.CPU - m.start[i]
		}
	}
	if n, err := agent.NodeCPU(); err == nil {
		node = n - m.nodeStart
	}
	return pids, node
}

// Session is one agent serving the node for one round.
type Session struct {
	*Env
	Agent string // result.Berth or result.Upstream
	Round int
	Pid   int
	API   *agent.APIClient
	seq   int
}

func (s *Session) name(kind string) string {
	s.seq++
	return fmt.Sprintf("%s-%s-r%d-%d", kind, s.Agent, s.Round, s.seq)
}

func (s *Session) add(series string, v ...float64) { s.Samples.Add(s.Agent, series, v...) }

// createAll creates pods at once (one goroutine each) and returns when the
// first create was sent.
func (s *Session) createAll(ctx context.Context, pods []*v1.Pod) (time.Time, error) {
	start := time.Now()
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Kube.CoreV1().Pods(s.NS).Create(ctx, p, metav1.CreateOptions{})
		}()
	}
	wg.Wait()
	return start, errors.Join(errs...)
}

func names(pods []*v1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

func (s *Session) uids(names []string) []string {
	var out []string
	for _, n := range names {
		if p, ok := s.Tracker.Get(n); ok && p.UID != "" {
			out = append(out, p.UID)
		}
	}
	return out
}

// deleteAll deletes the named pods with grace seconds, at once.
func (s *Session) deleteAll(ctx context.Context, names []string, grace int64) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Kube.CoreV1().Pods(s.NS).Delete(ctx, n, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(grace)})
			if err != nil && !apierrors.IsNotFound(err) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitStopped polls the runtime every interval until none of the pods
// with uids has a running container or a ready sandbox, and returns when
// each was first seen so.
func (s *Session) waitStopped(ctx context.Context, uids []string, interval time.Duration) (map[string]time.Time, error) {
	done := map[string]time.Time{}
	for {
		// One pod: two filtered calls; many: two listings of everything.
		var busy map[string]bool
		if len(uids) > 2 {
			var err error
			if busy, err = s.CRI.BusyPods(ctx); err != nil {
				return done, err
			}
		}
		for _, u := range uids {
			if _, ok := done[u]; ok {
				continue
			}
			stopped := !busy[u]
			if busy == nil {
				var err error
				if stopped, err = s.CRI.PodStopped(ctx, u); err != nil {
					return done, err
				}
			}
			if stopped {
				done[u] = time.Now()
			}
		}
		if len(done) == len(uids) {
			return done, nil
		}
		select {
		case <-ctx.Done():
			return done, fmt.Errorf("%d of %d pods still running in the runtime: %w", len(uids)-len(done), len(uids), context.Cause(ctx))
		case <-time.After(interval):
		}
	}
}

// cleanup deletes the pods with grace 0 and waits until the runtime has
// stopped them, so that the next scenario starts from an idle node.
func (s *Session) cleanup(ctx context.Context, names []string) error {
	uids := s.uids(names)
	if err := s.deleteAll(ctx, names, 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if _, err := s.waitStopped(ctx, uids, 100*time.Millisecond); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	_, err := s.Tracker.WaitAll(ctx, names, IsDeleted)
	return err
}

func since(from, to time.Time) float64 { return to.Sub(from).Seconds() }

// WaitReady waits until the agent started at started renews the node's
// Lease (it reaches the API server as the node), then runs one pod to
// Running and removes it, so that no figure includes an agent's first-pod
// warm-up.
func (s *Session) WaitReady(ctx context.Context, started time.Time, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		l, err := s.Kube.CoordinationV1().Leases("kube-node-lease").Get(ctx, s.Node, metav1.GetOptions{})
		if err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(started) {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before renewing the node Lease", s.Agent)
		case <-ctx.Done():
			return fmt.Errorf("%s did not renew the node Lease: %w", s.Agent, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
	// A container that exits on SIGTERM: how long an agent takes to stop
	// a pod is measured elsewhere, not here.
	p := basePod(s.name("warmup"), s.Node, "warmup", "sh", "-c", `trap "exit 0" TERM; sleep 3600 & wait`)
	if _, err := s.createAll(ctx, []*v1.Pod{p}); err != nil {
		return err
	}
	if _, err := s.Tracker.Wait(ctx, p.Name, IsRunning); err != nil {
		return fmt.Errorf("warm-up pod: %w", err)
	}
	return s.cleanup(ctx, []string{p.Name})
}
