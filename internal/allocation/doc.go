// Package allocation keeps, for every admitted pod, the resources the node
// has allocated to its containers and those actually applied to them, as
// upstream's allocation manager and actuated state
// (pkg/kubelet/allocation): both are checkpointed under the root
// directory in upstream's files and format (allocated_pods_state,
// actuated_pods_state), so that a restarted berth neither re-admits a pod
// with resources it was never granted nor forgets a resize half done.
//
// The desired pod (spec) may ask for other resources than allocated: an
// in-place resize. Whether it is allocated is decided by admission with
// the other pods at their allocated resources (the pod workers decide,
// Manager records); the pod workers then run the allocated pod, and the
// runtime records what it applied (SetActuated). The resize conditions
// (PodResizePending, PodResizeInProgress) are kept here too, for the
// status computation.
package allocation
