// Package nodeshutdown is graceful node shutdown as upstream's kubelet
// does it (shutdownGracePeriod, shutdownGracePeriodCriticalPods,
// shutdownGracePeriodByPodPriority): berth holds a systemd-logind "delay"
// inhibitor lock over D-Bus; when logind announces PrepareForShutdown(true)
// the node reports NotReady, new pods are refused, and the running pods
// are terminated in groups by priority, lowest first, each group within
// its own budget, before the lock is released and the shutdown goes on.
// PrepareForShutdown(false) (a cancelled shutdown) takes the lock again.
package nodeshutdown

import (
	"slices"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"

	"github.com/berth-dev/berth/internal/source"
)

// Status, admission and event texts, as upstream's.
const (
	// ReasonTerminated and MessageTerminated are a terminated pod's
	// status reason and message (and its DisruptionTarget condition's
	// message).
	ReasonTerminated  = "Terminated"
	MessageTerminated = "Pod was terminated in response to imminent node shutdown."
	// ReasonNotAdmitted and MessageNotAdmitted refuse a pod while the node
	// shuts down.
	ReasonNotAdmitted  = "NodeShutdown"
	MessageNotAdmitted = "Pod was rejected as the node is shutting down."
	// EventNodeShutdown is the Node's event reason.
	EventNodeShutdown = "NodeShutdown"
	// ShuttingDownMessage is why the node is not ready meanwhile.
	ShuttingDownMessage = "node is shutting down"
)

// defaultPriority is the priority of a pod without a priority class when
// no class is the default (upstream's
// scheduling.DefaultPriorityWhenNoDefaultClassExists).
const defaultPriority = 0

// Periods is the configured budget per priority, sorted from the lowest
// priority up: shutdownGracePeriodByPodPriority when set, else
// shutdownGracePeriod split into regular pods (its part beyond
// shutdownGracePeriodCriticalPods) and critical ones (upstream's
// migrateConfig). Empty means graceful shutdown is off.
func Periods(grace, critical time.Duration, byPriority []kubeletconfig.ShutdownGracePeriodByPodPriority) []kubeletconfig.ShutdownGracePeriodByPodPriority {
	periods := slices.Clone(byPriority)
	if len(periods) == 0 {
		if grace == 0 || grace-critical < 0 {
			return nil
		}
		periods = []kubeletconfig.ShutdownGracePeriodByPodPriority{
			{Priority: defaultPriority, ShutdownGracePeriodSeconds: int64((grace - critical) / time.Second)},
			{Priority: source.SystemCriticalPriority, ShutdownGracePeriodSeconds: int64(critical / time.Second)},
		}
	}
	sort.SliceStable(periods, func(i, j int) bool { return periods[i].Priority < periods[j].Priority })
	return periods
}

// Requested is the whole budget: the inhibit delay berth asks logind for.
func Requested(periods []kubeletconfig.ShutdownGracePeriodByPodPriority) time.Duration {
	var sum int64
	for _, p := range periods {
		sum += p.ShutdownGracePeriodSeconds
	}
	return time.Duration(sum) * time.Second
}

// Group is the pods terminated together, within Budget.
type Group struct {
	Priority int32
	Budget   time.Duration
	Pods     []*v1.Pod
}

// Groups puts each pod in the group of the highest configured priority
// not above its own (the lowest group for pods below every one), as
// upstream's groupByPriority; groups keep the order of periods.
func Groups(periods []kubeletconfig.ShutdownGracePeriodByPodPriority, pods []*v1.Pod) []Group {
	groups := make([]Group, len(periods))
	for i, p := range periods {
		groups[i] = Group{Priority: p.Priority, Budget: time.Duration(p.ShutdownGracePeriodSeconds) * time.Second}
	}
	if len(groups) == 0 {
		return nil
	}
	for _, pod := range pods {
		var priority int32
		if pod.Spec.Priority != nil {
			priority = *pod.Spec.Priority
		}
		i := sort.Search(len(groups), func(i int) bool { return groups[i].Priority >= priority })
		switch {
		case i == len(groups):
			i = len(groups) - 1
		case i > 0 && groups[i].Priority > priority:
			i--
		}
		groups[i].Pods = append(groups[i].Pods, pod)
	}
	return groups
}

// GracePeriod is the grace period a pod of g is killed with: the group's
// budget, or the pod's own terminationGracePeriodSeconds when shorter.
func (g Group) GracePeriod(pod *v1.Pod) int64 {
	grace := int64(g.Budget / time.Second)
	if t := pod.Spec.TerminationGracePeriodSeconds; t != nil && *t <= grace {
		grace = *t
	}
	return grace
}
