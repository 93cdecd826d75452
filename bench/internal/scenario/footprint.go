package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/bench/internal/agent"
	"github.com/berth-dev/berth/bench/internal/result"
)

// Idle samples the agent's footprint once a second for window and records
// the median RSS (rss.name, bytes; of which anonymous: rssanon.name) and
// the CPU time it used, scaled to 60 s
// (cpu.name, CPU seconds per minute). It returns the CPU rate in CPU
// seconds per second.
func (s *Session) Idle(ctx context.Context, window time.Duration, name string) (float64, error) {
	first, err := agent.ReadUsage(s.Pid)
	if err != nil {
		return 0, err
	}
	var rss, anon []float64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(window)
	last := first
loop:
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline:
			break loop
		case <-tick.C:
			u, err := agent.ReadUsage(s.Pid)
			if err != nil {
				return 0, err
			}
			rss = append(rss, u.RSS)
			anon = append(anon, u.RSSAnon)
			last = u
		}
	}
	if u, err := agent.ReadUsage(s.Pid); err == nil {
		last = u
	}
	rate := (last.CPU - first.CPU) / last.At.Sub(first.At).Seconds()
	s.add("rss."+name, result.Median(rss))
	s.add("rssanon."+name, result.Median(anon))
	s.add("cpu."+name, rate*60)
	s.Logf("%s idle %s: RSS %.1f MiB (anonymous %.1f MiB), CPU %.2f s per 60 s", s.Agent, name,
		result.Median(rss)/(1<<20), result.Median(anon)/(1<<20), rate*60)
	return rate, nil
}

// SummaryCost requests /stats/summary n times, one after another, and
// records each request's latency (summary.latency) and the agent's CPU
// time per request above its idle rate (summary.cpu).
func (s *Session) SummaryCost(ctx context.Context, n int, idleRate float64, wantPods int) error {
	before, err := agent.ReadUsage(s.Pid)
	if err != nil {
		return err
	}
	var size int
	for range n {
		body, took, err := s.API.Get(ctx, "/stats/summary")
		if err != nil {
			return err
		}
		s.add("summary.latency", took.Seconds())
		size = len(body)
		var sum struct {
			Pods []json.RawMessage `json:"pods"`
		}
		if err := json.Unmarshal(body, &sum); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		if len(sum.Pods) < wantPods {
			s.Logf("%s: /stats/summary lists %d pods, want %d", s.Agent, len(sum.Pods), wantPods)
		}
	}
	after, err := agent.ReadUsage(s.Pid)
	if err != nil {
		return err
	}
	cpu := (after.CPU - before.CPU - idleRate*after.At.Sub(before.At).Seconds()) / float64(n)
	s.add("summary.cpu", max(cpu, 0))
	s.Logf("%s /stats/summary: %d bytes, %.1f ms CPU per request", s.Agent, size, cpu*1000)
	return nil
}

// Propagation is a ConfigMap update in flight: each pod's mounted file is
// polled, through the container's own root, until it shows the new value.
type Propagation struct {
	wg sync.WaitGroup
}

// Wait blocks until every pod has the new value or timed out.
func (p *Propagation) Wait() { p.wg.Wait() }

// StartPropagation updates ConfigMap cms[i] (mounted at /cfg in pod
// pods[i]) and records, per pod, the time from the update to the file in
// the running container showing the new value (propagation), polling
// every 20 ms for up to timeout.
func (s *Session) StartPropagation(ctx context.Context, cms, pods []string, timeout time.Duration) (*Propagation, error) {
	files := make([]string, len(pods))
	for i, name := range pods {
		t, ok := s.Tracker.Get(name)
		if !ok {
			return nil, fmt.Errorf("pod %s not seen", name)
		}
		c, err := s.CRI.PodContainer(ctx, t.UID, "c")
		if err != nil {
			return nil, err
		}
		if c.Pid == 0 {
			return nil, fmt.Errorf("pod %s: no pid for container %s", name, c.ID)
		}
		files[i] = fmt.Sprintf("/proc/%d/root/cfg/value", c.Pid)
		if b, err := os.ReadFile(files[i]); err != nil || string(b) != "v0" {
			return nil, fmt.Errorf("pod %s: %s holds %q (%v), want v0", name, files[i], b, err)
		}
	}
	p := &Propagation{}
	for i, cm := range cms {
		value := fmt.Sprintf("v1-%d", time.Now().UnixNano())
		start := time.Now()
		_, err := s.Kube.CoreV1().ConfigMaps(s.NS).Update(ctx, configMap(cm, value), metav1.UpdateOptions{})
		if err != nil {
			return nil, fmt.Errorf("update ConfigMap %s: %w", cm, err)
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			deadline := start.Add(timeout)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if b, err := os.ReadFile(files[i]); err == nil && strings.TrimSpace(string(b)) == value {
					took := time.Since(start)
					s.add("propagation", took.Seconds())
					s.Logf("%s: ConfigMap %s visible in pod %s after %.2fs", s.Agent, cm, pods[i], took.Seconds())
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			s.Logf("%s: ConfigMap %s not visible in pod %s after %s", s.Agent, cm, pods[i], timeout)
		}()
	}
	return p, nil
}

func configMap(name, value string) *v1.ConfigMap {
	return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"value": value}}
}

// FootprintSet creates the pods of the idle-with-pods measurement at once:
// n pods, the first cms of which mount a ConfigMap of their own (for the
// propagation figure). It returns every pod's name and the ConfigMap and
// pod names of the propagation pairs.
func (s *Session) FootprintSet(ctx context.Context, n, cms int) (all, cmNames, cmPods []string, err error) {
	var pods []*v1.Pod
	for i := range n {
		if i < cms {
			cm := fmt.Sprintf("cm-%s-%d", s.Agent, i)
			_ = s.Kube.CoreV1().ConfigMaps(s.NS).Delete(ctx, cm, metav1.DeleteOptions{})
			if _, err := s.Kube.CoreV1().ConfigMaps(s.NS).Create(ctx, configMap(cm, "v0"), metav1.CreateOptions{}); err != nil {
				return nil, nil, nil, err
			}
			p := ConfigMapPod(s.name("cm"), s.Node, cm)
			pods = append(pods, p)
			cmNames, cmPods = append(cmNames, cm), append(cmPods, p.Name)
			continue
		}
		pods = append(pods, SleepPod(s.name("idle"), s.Node, "idle"))
	}
	last, err := s.startAll(ctx, pods, fmt.Sprintf("set%d", n))
	if err != nil {
		return nil, nil, nil, err
	}
	s.Logf("%s: %d pods Running %.2fs after the first create", s.Agent, n, last.Seconds())
	return names(pods), cmNames, cmPods, nil
}

// ScaleUp adds n sleep pods at once (scale.last, scale.pod).
func (s *Session) ScaleUp(ctx context.Context, n int) ([]string, error) {
	pods := make([]*v1.Pod, n)
	for i := range pods {
		pods[i] = SleepPod(s.name("scale"), s.Node, "scale")
	}
	last, err := s.startAll(ctx, pods, "scale")
	if err != nil {
		return nil, err
	}
	s.Logf("%s: %d more pods Running %.2fs after the first create", s.Agent, n, last.Seconds())
	return names(pods), nil
}

// Freshness records how old the node's Lease is (scale.lease_age) and
// whether the node is Ready.
func (s *Session) Freshness(ctx context.Context) error {
	l, err := s.Kube.CoordinationV1().Leases("kube-node-lease").Get(ctx, s.Node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if l.Spec.RenewTime != nil {
		s.add("scale.lease_age", time.Since(l.Spec.RenewTime.Time).Seconds())
	}
	n, err := s.Kube.CoreV1().Nodes().Get(ctx, s.Node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			s.Logf("%s: node Ready=%s", s.Agent, c.Status)
		}
	}
	return nil
}
