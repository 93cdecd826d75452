package podworker

import (
	"sort"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/source"
)

// PodSet is the node's set of pods: the one place that says which pods
// exist here and in what state. Only Workers change it; every other
// component reads it through the queries below (or a small interface of
// its own over them).
//
//	desired     the merged snapshots of the sources (source.Merger); pods
//	            that clash with another by name or UID are refused there
//	admitted    pods given to a worker: syncing, or terminating (with the
//	            grace period and the reason) until their containers and
//	            sandbox are gone; orphans (runtime pods no source wants)
//	            terminate here too, without a spec
//	parked      desired pods that do not run: rejected at admission,
//	            terminal when first seen, terminated on the node while
//	            their source still lists them (active deadline), or static
//	            pods waiting for an older static pod of the same name
//
// It is safe for concurrent use.
type PodSet struct {
	statuses StatusGetter
	merger   *source.Merger

	mu       sync.Mutex
	admitted map[types.UID]*member
	parked   map[types.UID]parkReason
}

// StatusGetter reads the latest status berth computed for a pod
// (status.Store).
type StatusGetter interface {
	Get(uid types.UID) (v1.PodStatus, bool)
}

// member is an admitted pod.
type member struct {
	pod *v1.Pod // latest spec the worker runs; nil for an orphan
	// terminal: the pod's last status has a terminal phase while its
	// worker still syncs it (it completed and nothing will restart).
	terminal    bool
	terminating *termination
}

// termination says why and how an admitted pod is being stopped.
type termination struct {
	grace  *int64 // overrides the spec's grace period when set
	reason string
}

// Reasons for a termination, as logged and shown in /pods' bookkeeping.
const (
	reasonDeleted  = "deleted"             // deletion requested through the API
	reasonRemoved  = "removed from source" // manifest removed, or API object gone
	reasonOrphan   = "orphan"              // in the runtime, wanted by no source
	reasonDeadline = "active deadline"     // spec.activeDeadlineSeconds passed
)

type parkReason string

const (
	parkRejected   parkReason = "rejected at admission"
	parkFinished   parkReason = "terminal when first seen"
	parkTerminated parkReason = "terminated on the node" // e.g. active deadline; stays until the source drops it
	// parkWaiting: a static pod whose namespace/name another static pod
	// still holds (a changed manifest gives a new UID): it starts once that
	// one is gone, as upstream's pod workers allow one static pod per name.
	parkWaiting parkReason = "waiting for a static pod of the same name"
)

// NewPodSet returns an empty pod set. statuses gives the latest status of
// each pod for Pods().
func NewPodSet(logger klog.Logger, statuses StatusGetter) *PodSet {
	return &PodSet{
		statuses: statuses,
		merger:   source.NewMerger(logger),
		admitted: map[types.UID]*member{},
		parked:   map[types.UID]parkReason{},
	}
}

// Desired returns the pod a source wants with this UID.
func (s *PodSet) Desired(uid types.UID) (*v1.Pod, bool) { return s.merger.Pod(uid) }

// StaticPods returns the desired pods that came from a source other than
// the API server, sorted by namespace and name: those that need mirror pods.
func (s *PodSet) StaticPods() []*v1.Pod {
	var out []*v1.Pod
	for _, p := range s.merger.Pods() {
		if source.IsStatic(p) {
			out = append(out, p)
		}
	}
	return out
}

// ActivePods returns the pods that hold node resources, for admission:
// every admitted pod until its containers are gone, terminating ones
// included, except a pod that completed and is not being terminated
// (upstream's filterOutInactivePods). Pods are shared: read-only.
func (s *PodSet) ActivePods() []*v1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*v1.Pod, 0, len(s.admitted))
	for _, m := range s.admitted {
		if m.pod == nil || (m.terminal && m.terminating == nil) {
			continue
		}
		out = append(out, m.pod)
	}
	sortPods(out)
	return out
}

// Pods returns every pod on the node as /pods lists it: the desired pods
// (parked ones included) and the pods still terminating after their
// source dropped them, each a copy with its latest status, sorted by
// namespace and name.
func (s *PodSet) Pods() []*v1.Pod {
	pods := s.merger.Pods()
	s.mu.Lock()
	if len(s.admitted) > 0 {
		desired := make(map[types.UID]bool, len(pods))
		for _, p := range pods {
			desired[p.UID] = true
		}
		for uid, m := range s.admitted {
			if !desired[uid] && m.pod != nil {
				pods = append(pods, m.pod)
			}
		}
	}
	s.mu.Unlock()
	for i, p := range pods {
		cp := p.DeepCopy()
		if st, ok := s.statuses.Get(p.UID); ok {
			cp.Status = st
		}
		pods[i] = cp
	}
	sortPods(pods)
	return pods
}

// Admitted reports whether uid has a worker (syncing or terminating).
func (s *PodSet) Admitted(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.admitted[uid]
	return ok
}

// Terminating reports whether uid is being terminated, and why.
func (s *PodSet) Terminating(uid types.UID) (reason string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, found := s.admitted[uid]; found && m.terminating != nil {
		return m.terminating.reason, true
	}
	return "", false
}

// The mutations below are Workers' alone.

func (s *PodSet) admit(pod *v1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.admitted[pod.UID]; ok {
		if m.terminating == nil {
			m.pod = pod
		}
		return
	}
	s.admitted[pod.UID] = &member{pod: pod}
}

// terminate marks uid terminating; pod, if not nil, becomes its spec (it
// carries the deletion request). The first reason and grace period stay.
func (s *PodSet) terminate(uid types.UID, pod *v1.Pod, grace *int64, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.admitted[uid]
	if !ok {
		m = &member{pod: pod}
		s.admitted[uid] = m
	}
	if pod != nil {
		m.pod = pod
	}
	if m.terminating == nil {
		m.terminating = &termination{grace: grace, reason: reason}
	}
}

// revive makes a terminated member sync again with pod.
func (s *PodSet) revive(pod *v1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitted[pod.UID] = &member{pod: pod}
}

// setTerminal records whether the admitted pod's latest status is terminal.
func (s *PodSet) setTerminal(uid types.UID, terminal bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.admitted[uid]; ok {
		m.terminal = terminal
	}
}

// finished removes a terminated pod. A pod its source still wants is
// parked: it ran here and ended, and must not start again when the source
// next mentions it. It reports whether the pod's last status should stay:
// for a pod that ended on its own (active deadline) and stays listed, yes;
// for a pod being deleted, no — the status syncer then deletes its API
// object without writing a final status (berth has no equivalent of
// upstream's TerminatePod, which would mark a pod deleted while Pending
// as Failed first).
func (s *PodSet) finished(uid types.UID) (keepStatus bool) {
	s.mu.Lock()
	delete(s.admitted, uid)
	s.mu.Unlock()
	pod, ok := s.merger.Pod(uid)
	if !ok {
		return false
	}
	s.park(uid, parkTerminated)
	return pod.DeletionTimestamp == nil
}

func (s *PodSet) park(uid types.UID, why parkReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parked[uid] = why
}

func (s *PodSet) isParked(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.parked[uid]
	return ok
}

func (s *PodSet) unpark(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.parked[uid]
	delete(s.parked, uid)
	return ok
}

// staticNameTaken reports whether an admitted static pod other than pod
// holds pod's namespace/name (it runs, or terminates).
func (s *PodSet) staticNameTaken(pod *v1.Pod) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, m := range s.admitted {
		if uid != pod.UID && m.pod != nil && source.IsStatic(m.pod) &&
			m.pod.Namespace == pod.Namespace && m.pod.Name == pod.Name {
			return true
		}
	}
	return false
}

// waiting returns the parked static pods waiting for their name, still
// desired.
func (s *PodSet) waiting() []*v1.Pod {
	s.mu.Lock()
	var uids []types.UID
	for uid, why := range s.parked {
		if why == parkWaiting {
			uids = append(uids, uid)
		}
	}
	s.mu.Unlock()
	var out []*v1.Pod
	for _, uid := range uids {
		if p, ok := s.merger.Pod(uid); ok {
			out = append(out, p)
		}
	}
	sortPods(out)
	return out
}

func sortPods(pods []*v1.Pod) {
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
}
