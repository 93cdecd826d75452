package eviction

import (
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// state is what the manager remembers from one round to the next.
// Thresholds are named by their index in Config.Thresholds.
type state struct {
	// firstMet: when each threshold that is met now was first seen met.
	firstMet map[int]time.Time
	// conditionSeen: when each pressure condition was last seen.
	conditionSeen map[v1.NodeConditionType]time.Time
	// met: the thresholds met past their grace period and not yet resolved
	// by their minimum reclaim.
	met []int
	// last are the observations of the previous round.
	last observations
}

// verdict is what one round decided.
type verdict struct {
	// conditions are the node's pressure conditions, in upstream's order
	// (memory, disk, PID).
	conditions []v1.NodeConditionType
	// act are the thresholds to act on now: met past their grace period
	// and measured again since the last round, memory first.
	act []int
}

// step is one round of upstream's synchronize up to the choice of what to
// reclaim: which thresholds are met (a threshold met earlier stays met
// until its minimum reclaim is also satisfied), how long they have been,
// which conditions that gives (each held for the pressure transition
// period after it was last seen), and which thresholds are to be acted on.
// It is pure.
func step(cfg Config, prev state, obs observations, now time.Time) (state, verdict) {
	metNow := thresholdsMet(cfg.Thresholds, allIndexes(len(cfg.Thresholds)), obs, false)
	for _, i := range thresholdsMet(cfg.Thresholds, prev.met, obs, true) {
		if !slices.Contains(metNow, i) {
			metNow = append(metNow, i)
		}
	}
	next := state{firstMet: map[int]time.Time{}, conditionSeen: map[v1.NodeConditionType]time.Time{}, last: obs}
	for _, i := range metNow {
		at, ok := prev.firstMet[i]
		if !ok {
			at = now
		}
		next.firstMet[i] = at
	}
	for c, at := range prev.conditionSeen {
		next.conditionSeen[c] = at
	}
	for _, i := range metNow {
		next.conditionSeen[signalCondition(cfg.Thresholds[i].Signal)] = now
	}
	var v verdict
	for _, c := range []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure, v1.NodePIDPressure} {
		if at, ok := next.conditionSeen[c]; ok && now.Sub(at) < cfg.PressureTransitionPeriod {
			v.conditions = append(v.conditions, c)
		}
	}
	for _, i := range metNow {
		if now.Sub(next.firstMet[i]) >= cfg.Thresholds[i].GracePeriod {
			next.met = append(next.met, i)
		}
	}
	slices.Sort(next.met)
	// Act only on what was measured again: a threshold met on stale stats
	// must not evict a second pod for the same shortage.
	for _, i := range next.met {
		o, ok := obs[cfg.Thresholds[i].Signal]
		if !ok {
			continue
		}
		last, seen := prev.last[cfg.Thresholds[i].Signal]
		if !seen || o.time.IsZero() || o.time.After(last.time) {
			v.act = append(v.act, i)
		}
	}
	slices.SortStableFunc(v.act, func(a, b int) int {
		return boolRank(isMemory(cfg.Thresholds[a].Signal), isMemory(cfg.Thresholds[b].Signal))
	})
	return next, v
}

func isMemory(s Signal) bool {
	return s == SignalMemoryAvailable || s == SignalAllocatableMemoryAvailable
}

// thresholdsMet returns those of the thresholds named by idx whose signal
// is below them; with enforceMinReclaim, below them plus their minimum
// reclaim. Thresholds without an observation are not met.
func thresholdsMet(ts []Threshold, idx []int, obs observations, enforceMinReclaim bool) []int {
	var out []int
	for _, i := range idx {
		t := ts[i]
		o, ok := obs[t.Signal]
		if !ok {
			continue
		}
		q := t.Value.quantity(o.capacity)
		if enforceMinReclaim && t.MinReclaim != nil {
			q.Add(*t.MinReclaim.quantity(o.capacity))
		}
		if q.Cmp(*resource.NewQuantity(o.available, resource.BinarySI)) > 0 {
			out = append(out, i)
		}
	}
	return out
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// boolRank orders true before false.
func boolRank(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}
