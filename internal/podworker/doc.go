// Package podworker keeps the node's pod set and runs one goroutine per
// pod that drives the pod's runtime state towards its spec.
//
// The pod set (PodSet) is the one answer to "which pods are on this node":
// the desired pods of every source (merged by source.Merger), the pods
// admitted to a worker — syncing, or terminating with their grace period
// and reason until their containers and sandbox are gone — and the pods
// parked because they must not run (rejected at admission, terminal when
// first seen, ended on the node while their source still lists them). Only
// Workers change it; admission, /pods, the status syncer, mirror pods and
// the pod start tracker read it.
//
// Workers.Run takes every source's snapshots, one at a time, and turns
// each change into a verdict (decide, pure): admit a new pod (node
// admission against PodSet.ActivePods, which counts terminating pods until
// they are gone, as upstream's filterOutInactivePods), update a worker,
// terminate a pod being deleted, kill a removed one, park a pod that must
// not run. Runtime pods that no source wants are killed as orphans once
// every source has spoken.
//
// Each worker moves through three states, one way only:
//
//	 update(pod)          kill / deadline / orphan    runtime emptied
//	──────────▶ syncing ─────────────────▶ terminating ───────────────▶ terminated
//	             │  ▲                        │                          (worker exits;
//	   plan+sync │  │ wake (PLEG, prober,    │ kill containers and      a later update of
//	             ▼  │ volumes, timer, spec)  │ sandbox within the grace the same UID starts
//	           status                        │ period, final status,    a fresh worker)
//	                                         ▼ remove everything
//
// A worker keeps only the latest desired spec: updates that arrive while it
// is busy are coalesced. Every sync reads the pod's runtime state fresh from
// the runtime, asks the planner (internal/plan) what to change, has the
// runtime carry it out, and then computes the status from the runtime state
// again. Nothing here decides what to start or stop; it only sequences. A
// pod past spec.activeDeadlineSeconds is failed (DeadlineExceeded) and
// terminated by its worker, which sets its timer to the deadline.
//
// The components the workers call (PLEG, prober, volume manager) are built
// before them and wake pods through a Wakeups queue that Workers.Run
// drains; the PLEG also hands it each runtime relist, for the orphans.
package podworker
