// Package cm owns the node's cgroup tree, as upstream's container manager
// (pkg/kubelet/cm) does: the node allocatable cgroup ("kubepods"), the
// burstable and besteffort QoS cgroups under it, and one cgroup per pod,
// created with the pod's limits before its sandbox exists. It also watches
// for OOM kills: system OOMs in the kernel log, and container OOMs through
// cgroup memory events.
//
// Deciding is kept apart from doing:
//
//   - Layout names the cgroups (cgroupRoot, cgroupsPerQOS, the driver's
//     naming), used by the runtime for a sandbox's cgroup parent and by
//     stats to find pods.
//   - ForPod, ForNode and ForQOS compute what a cgroup should hold, from
//     pods and node resources alone; cluster/compare checks ForPod against
//     upstream's ResourceConfigForPod.
//   - files turns a ResourceConfig into the file writes of cgroup v1 or v2.
//   - cgroupFS does the writes (plain open/write, no exec); Manager
//     sequences them.
//
// Berth writes the cgroup files itself with either driver. With the
// systemd driver it writes at the slice paths systemd would use
// (kubepods.slice/kubepods-burstable.slice/...) rather than asking systemd
// over D-Bus to create them, as upstream does.
package cm
