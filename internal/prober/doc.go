// Package prober runs the liveness, readiness and startup probes of a
// node's containers and keeps their latest results, as the upstream
// kubelet's prober manager does.
//
// The pod worker drives it and reads it; nothing here decides what to do
// with a result:
//
//	pod worker ── Sync(pod, status) ──▶ Manager: one worker per probe of each
//	    ▲          RemovePod(uid)        running container (by container ID)
//	    │                                    │ Run: probes fall due (clock),
//	    │ OnChange(uid)                      │ run in their own goroutine
//	    └────────────────────────────────────┘ (exec, HTTP, TCP, gRPC)
//	plan.ComputePodActions ◀── Liveness, Startup   (kill and restart)
//	status.Compute         ◀── Readiness, Startup  (ready, started)
//
// A worker (worker.go) is a small pure state machine: when its next probe
// is due, and what a run of outcomes does to its result given the probe's
// thresholds. The Manager schedules workers with one timer; a probe's IO
// happens outside its lock. Results belong to a container instance: a
// restarted container gets fresh workers, and the old results go.
//
// Semantics, as upstream: readiness is false until a probe passes;
// liveness is healthy until failureThreshold failures in a row, after which
// the container is held (not probed again) until it is replaced; a startup
// probe holds the other two back until it passes, and is then done; the
// first probe of a worker waits initialDelaySeconds from the container's
// start; for containers that were already running when berth started (all
// of whose workers appear at once) it also waits a random part of its
// period, so that they don't probe together.
package prober
