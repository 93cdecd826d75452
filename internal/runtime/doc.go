// Package runtime is berth's CRI executor: it carries out the actions the
// planner (internal/plan) decides on, through a CRI runtime such as
// containerd, and reads back what the runtime holds, as the observed model
// of internal/container.
//
// The package has two halves:
//
//   - Pure conversions (convert_*.go) from a pod spec to CRI configs —
//     sandbox, DNS, cgroups and resources, security context, environment,
//     stop signal, labels and annotations — and from CRI statuses back to
//     the model. They take a pod and a nodeConfig and do no IO, so they are
//     table-tested without a runtime. The environment's ConfigMaps and
//     Secrets are read beforehand (env_objects.go) and handed in as a
//     snapshot; volume mounts (volume_mounts.go) touch the file system only
//     to check and create subPaths inside a volume and bind each one, from
//     an fd opened without following symlinks, under the pod's
//     volume-subpaths directory (subpath_bind.go). A pod with hostUsers:
//     false gets its user namespace from Options.UserNamespaces, only on a
//     runtime that supports them (userns.go).
//   - Operations (sync_pod.go, sandbox_run.go, container_start.go,
//     container_kill.go, container_remove.go, pod_status.go, pod_remove.go,
//     gc.go, events_watch.go), one per file, that make the CRI calls, write
//     the few files berth manages for a pod (RootDir/pods/<uid>) and record
//     events with the upstream kubelet's reasons and messages.
//
// Lifecycle hooks (lifecycle_hooks.go) run as upstream runs them: postStart
// right after the start, killing the container when it fails; preStop
// within the grace period before StopContainer, which gets what is left
// (at least 2 s). When a pod is killed its containers stop at once, except
// sidecars, which wait for the app containers and then stop in reverse
// order (kill_order.go), each within the same grace period.
//
// Volumes are set up by the volume manager; the Manager only asks it where
// each volume is (Options.Volumes) and mounts it. API objects come through
// Options.Objects, which also gives image pulls the pod's imagePullSecrets.
//
// State: the Manager keeps only the crash loop back-off (and, through
// internal/image, the image pull back-off). Everything else it needs to
// manage a container later — spec hash, restart count, grace period — is
// stored on the container as the upstream kubelet's labels and annotations,
// so berth adopts its containers after a restart.
//
// The Manager connects to the runtime on first use and keeps retrying, so
// berth starts and keeps running while the runtime is down; calls then
// fail at once with an error wrapping ErrUnreachable.
package runtime
