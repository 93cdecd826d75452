// Package podworker runs one goroutine per pod that drives the pod's runtime
// state towards its spec and reports the resulting status.
//
// Each worker moves through three states, one way only:
//
//	 Update(pod)          Kill / KillOrphan           runtime emptied
//	──────────▶ syncing ─────────────────▶ terminating ───────────────▶ terminated
//	             │  ▲                        │                          (worker exits;
//	   plan+sync │  │ wake (PLEG, timer,     │ kill containers and      a later Update of
//	             ▼  │ new spec)              │ sandbox within the grace the same UID starts
//	           status                        │ period, final status,    a fresh worker)
//	                                         ▼ remove everything
//
// A worker keeps only the latest desired spec: updates that arrive while it
// is busy are coalesced. Every sync reads the pod's runtime state fresh from
// the runtime, asks the planner (internal/plan) what to change, has the
// runtime carry it out, and then computes the status from the runtime state
// again. Nothing here decides what to start or stop; it only sequences.
package podworker
