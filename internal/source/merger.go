package source

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Merger combines the latest snapshot of every source into one set of
// desired pods and says what changed. It is safe for concurrent use.
//
// Two pods may not share a namespace/name or a UID. Within one snapshot the
// first pod wins; across sources a pod that is already desired keeps its
// place, and otherwise sources are taken in name order. A pod left out is
// logged once, when the conflict appears, and comes back by itself when the
// pod it clashed with goes away.
type Merger struct {
	logger klog.Logger

	mu       sync.Mutex
	sources  map[string][]*v1.Pod // latest snapshot per source, in the source's order
	merged   map[types.UID]*v1.Pod
	rejected map[string]bool // conflicts already logged, by rejectKey
}

// NewMerger returns a Merger that has seen no source yet.
func NewMerger(logger klog.Logger) *Merger {
	return &Merger{
		logger:   logger,
		sources:  map[string][]*v1.Pod{},
		merged:   map[types.UID]*v1.Pod{},
		rejected: map[string]bool{},
	}
}

// Set replaces the snapshot of one source and returns the resulting changes
// to the desired pods of all sources (see Diff for their order). The first
// Set of a source marks it seen, even with no pods. Set does not modify the
// given pods; the pods it returns and keeps must be treated as read-only.
func (m *Merger) Set(source string, pods []*v1.Pod) []Change {
	m.mu.Lock()
	defer m.mu.Unlock()

	snapshot := make([]*v1.Pod, 0, len(pods))
	for _, p := range pods {
		if p.Annotations[AnnotationConfigSource] != source {
			p = withAnnotation(p, AnnotationConfigSource, source)
		}
		snapshot = append(snapshot, p)
	}
	m.sources[source] = snapshot

	next := m.merge()
	changes := Diff(m.merged, next)
	m.merged = next
	return changes
}

// Seen reports whether source has delivered at least one snapshot.
func (m *Merger) Seen(source string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.sources[source]
	return ok
}

// SeenAllSources reports whether every named source has delivered at least
// one snapshot. Until then berth must not remove runtime pods it does not
// know: they may belong to a source that has not spoken yet.
func (m *Merger) SeenAllSources(names ...string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range names {
		if _, ok := m.sources[n]; !ok {
			return false
		}
	}
	return true
}

// Pods returns the desired pods of all sources, sorted by namespace/name.
func (m *Merger) Pods() []*v1.Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	pods := slices.Collect(maps.Values(m.merged))
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	return pods
}

// Pod returns the desired pod with the given UID, from whichever source.
func (m *Merger) Pod(uid types.UID) (*v1.Pod, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.merged[uid]
	return p, ok
}

type candidate struct {
	source string
	pod    *v1.Pod
}

// merge computes the desired pods from the stored snapshots. Called with mu
// held.
func (m *Merger) merge() map[types.UID]*v1.Pod {
	var cands []candidate
	for _, src := range slices.Sorted(maps.Keys(m.sources)) {
		for _, p := range m.sources[src] {
			cands = append(cands, candidate{source: src, pod: p})
		}
	}

	next := make(map[types.UID]*v1.Pod, len(cands))
	owner := map[string]candidate{} // by namespace/name
	considered := make([]bool, len(cands))
	rejected := map[string]bool{}

	take := func(i int) {
		considered[i] = true
		c := cands[i]
		key := c.pod.Namespace + "/" + c.pod.Name
		var clash candidate
		var what string
		if other, ok := owner[key]; ok {
			clash, what = other, "name"
		} else if other, ok := next[c.pod.UID]; ok {
			clash, what = candidate{source: other.Annotations[AnnotationConfigSource], pod: other}, "UID"
		}
		if clash.pod != nil {
			rk := rejectKey(c)
			rejected[rk] = true
			if !m.rejected[rk] {
				m.logger.Error(fmt.Errorf("duplicate pod %s", what), "Ignoring pod: another pod has the same "+what,
					"pod", klog.KObj(c.pod), "podUID", c.pod.UID, "source", c.source,
					"otherPod", klog.KObj(clash.pod), "otherUID", clash.pod.UID, "otherSource", clash.source)
			}
			return
		}
		p := c.pod
		// The first-seen time is berth's own: keep the one recorded when the
		// pod was first desired, whatever a later snapshot says.
		if old, ok := m.merged[p.UID]; ok {
			if seen, ok := old.Annotations[AnnotationConfigSeen]; ok && p.Annotations[AnnotationConfigSeen] != seen {
				p = withAnnotation(p, AnnotationConfigSeen, seen)
			}
		}
		next[p.UID] = p
		owner[key] = c
	}

	// Pods already desired keep their name, so a newcomer cannot displace a
	// running pod.
	for i, c := range cands {
		if old, ok := m.merged[c.pod.UID]; ok && old.Annotations[AnnotationConfigSource] == c.source &&
			old.Namespace == c.pod.Namespace && old.Name == c.pod.Name {
			take(i)
		}
	}
	for i := range cands {
		if !considered[i] {
			take(i)
		}
	}
	m.rejected = rejected
	return next
}

func rejectKey(c candidate) string {
	return c.source + "\x00" + string(c.pod.UID) + "\x00" + c.pod.Namespace + "/" + c.pod.Name
}

// withAnnotation returns a shallow copy of pod with one annotation set, so
// that a pod shared with its source is never written to.
func withAnnotation(pod *v1.Pod, key, value string) *v1.Pod {
	p := *pod
	p.Annotations = make(map[string]string, len(pod.Annotations)+1)
	maps.Copy(p.Annotations, pod.Annotations)
	p.Annotations[key] = value
	return &p
}
