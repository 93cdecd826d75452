// Package runtime is berth's CRI executor: it carries out the actions the
// planner (internal/plan) decides on, through a CRI runtime such as
// containerd, and reads back what the runtime holds, as the observed model
// of internal/container.
//
// The package has two halves:
//
//   - Pure conversions (convert_*.go) from a pod spec to CRI configs —
//     sandbox, DNS, cgroups and resources, security context, environment,
//     labels and annotations — and from CRI statuses back to the model.
//     They take a pod and a nodeConfig and do no IO, so they are
//     table-tested without a runtime.
//   - Operations (sync_pod.go, sandbox_run.go, container_start.go,
//     container_kill.go, container_remove.go, pod_status.go, pod_remove.go,
//     gc.go, events_watch.go), one per file, that make the CRI calls, write
//     the few files berth manages for a pod (RootDir/pods/<uid>) and record
//     events with the upstream kubelet's reasons and messages.
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
