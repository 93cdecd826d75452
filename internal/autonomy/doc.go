// Package autonomy is berth's node autonomy (berth's own; upstream's
// kubelet has none): with --node-autonomy, the API pods bound to the node,
// the ConfigMaps and Secrets they reference, the Services of their
// namespaces (for the service link variables) and their service-account
// tokens are checkpointed under <root-dir>/autonomy, so that a node that
// restarts while the API server cannot be reached runs its pods again.
//
// Nothing here polls the API. The Checkpointer writes what berth's informers
// already deliver: the API pod source's snapshots (Source wraps it), the
// objects manager's changes (it is an objects.Subscriber), the Service
// informer's changes, the tokens the volume manager obtains and the
// terminal phases the pod workers reach. Its writes run on its own
// goroutine, never on a pod's start path.
//
// On disk (every file 0600, directories 0700, each written to a temporary
// file, fsynced, renamed over the old one, and the directory fsynced):
//
//	autonomy/key                              32 random bytes, created once
//	autonomy/pods/<uid>/pod.json              the pod as its source gave it
//	autonomy/pods/<uid>/token-<volume>-<i>    TokenRequest, sealed
//	autonomy/configmaps/<ns>/<name>.json      ConfigMap
//	autonomy/secrets/<ns>/<name>              Secret, sealed
//	autonomy/services/<ns>.json               the namespace's Services
//
// Sealed files are AES-256-GCM with a random nonce; the additional data is
// the file's path under autonomy/, so a sealed file moved to another name
// does not open.
//
// At start-up Source runs the API pod source and waits up to Wait for its
// first list. When the list comes first, everything is as without autonomy.
// When Wait passes first, the API server counts as unreachable: Source
// sends the checkpointed pods as the API source's snapshot (same UIDs, so
// the pod workers run them as they would have) and Offline turns true
// until the API server lists: then ConfigMaps, Secrets, Services and
// tokens come from the checkpoint (tokens as they are, expired or not:
// nothing is refreshed offline). The API's first list replaces that
// snapshot: pods deleted or changed meanwhile are stopped or updated by
// the usual diff. Until it came, the source does not count as complete
// (podworker.Source.Complete), so no pod, volume or checkpoint the API may
// still want is removed as an orphan.
package autonomy
