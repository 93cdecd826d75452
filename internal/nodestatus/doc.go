// Package nodestatus registers berth's Node with the API server and keeps
// its status and its Lease fresh, as the upstream kubelet does
// (kubelet_node_status.go, nodestatus/setters.go and the node lease
// controller).
//
// The decisions are pure functions of the configuration and of facts
// observed at one moment (status.go, capacity.go, conditions.go,
// labels.go): the Node to register, the status to report, and whether it
// changed. The loops do the IO around them:
//
//	Run ─ read machine facts once (CPUs, MemTotal, root dir file system,
//	  │   huge pages, machine/system/boot IDs, kernel, OS image)
//	  ├─ status loop ─ register: Create, or on AlreadyExists reconcile the
//	  │      │         owned labels (back-off 100 ms doubling to 7 s)
//	  │      │         → Registered() closes
//	  │      └─ every UpdateFrequency: gather facts (address, runtime
//	  │         version, images and CRI Status, Health) → GET Node →
//	  │         desiredNode →
//	  │         UpdateStatus if changed or ReportFrequency passed
//	  │         (conflict: read again, up to 5 times; Node deleted:
//	  │         register again)
//	  └─ lease loop ─ after registration, every LeaseDurationSeconds/4:
//	                 update kube-node-lease/<node> (renewTime), owned by
//	                 the Node; create it when missing; back-off 200 ms to
//	                 7 s on errors
//
// The Ready condition is True (KubeletReady) only when Health is nil and
// the runtime's CRI Status reports both RuntimeReady and NetworkReady, as
// upstream's updateRuntimeUp and ReadyCondition decide it; otherwise it is
// KubeletNotReady with upstream's messages, e.g. "container runtime
// network not ready: NetworkReady=false reason:NetworkPluginNotReady
// message:Network plugin returns error: cni plugin not initialized" while
// the CNI has no configuration, so no pod is scheduled onto a node without
// a pod network. Until the runtime has answered, the network state is
// unknown ("network state unknown"). The same Status gives
// status.runtimeHandlers (sorted by name; none from containerd 1.x, which
// does not report handlers) and status.features (left as they are while
// the runtime reports no features, as upstream). Ready changing is a
// status change, so it is posted at the next UpdateFrequency tick. The
// pressure conditions follow the eviction manager's verdict (pressure.go).
//
// The API server may be away for minutes: every loop retries forever and
// logs once when it starts failing and once when it recovers.
//
// berth talks to the API server as system:node:<name>, so the NodeRestriction
// admission plugin applies: it changes only its own Node and Lease, sets
// taints only at creation, and never touches ownerReferences of the Node.
package nodestatus
