package result

import (
	"slices"
	"sync"
)

// The agents a run compares. Floor is the same pods made directly through
// CRI, with no kubelet at all. Baseline is an earlier berth (make bench
// BASELINE=<rev>), measured in the same run so that a change's before and
// after share the machine's speed of the day.
const (
	Berth    = "berth"
	Upstream = "upstream"
	Baseline = "baseline"
	Floor    = "floor"
)

// Samples collects measured values by agent and series (a series is one
// quantity, such as "start.running": seconds from a pod appearing in the
// watch to phase Running). Safe for concurrent use.
type Samples struct {
	mu sync.Mutex
	m  map[string]map[string][]float64
}

// NewSamples returns an empty collection.
func NewSamples() *Samples {
	return &Samples{m: map[string]map[string][]float64{}}
}

// Add appends values to agent's series.
func (s *Samples) Add(agent, series string, v ...float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[agent] == nil {
		s.m[agent] = map[string][]float64{}
	}
	s.m[agent][series] = append(s.m[agent][series], v...)
}

// Get returns a copy of agent's series.
func (s *Samples) Get(agent, series string) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.m[agent][series])
}

// Snapshot returns a deep copy of everything collected, for the JSON file.
func (s *Samples) Snapshot() map[string]map[string][]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string][]float64, len(s.m))
	for a, series := range s.m {
		out[a] = make(map[string][]float64, len(series))
		for k, v := range series {
			out[a][k] = slices.Clone(v)
		}
	}
	return out
}
