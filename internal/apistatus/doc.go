// Package apistatus writes berth's pod statuses to the API server. It is the
// only writer of pod status there (upstream: the status manager's syncPod).
//
// It owns no status: status.Store holds berth's latest status of every pod,
// and the Syncer reads it afresh at every sync, so a retry always sends the
// newest status and no update is lost however many arrive while one is in
// flight. The flow:
//
//	status.Store.Set ──onChange──▶ Syncer.Enqueue(uid) ──▶ workqueue (one entry per pod,
//	pod worker done ──▶ Syncer.PodTerminated(pod) ──┘       rate-limited retries)
//	every 10 s: every known pod again ─────────────┘              │
//	                                                               ▼
//	sync(uid): Desired(uid) → API object (static pod: its mirror) → merge → patch? → delete?
//
// One sync of a pod:
//
//  1. The pod berth runs (PodGetter) names the API object: the pod itself,
//     which must still have the same UID, or for a static pod the mirror pod
//     of its current manifest (annotation kubernetes.io/config.mirror equal
//     to the static pod's kubernetes.io/config.hash). No mirror yet: retry
//     quietly with back-off; internal/mirror creates it.
//  2. merge: berth's status replaces the fields and conditions the kubelet
//     owns; conditions others own (readiness gates, DisruptionTarget set by
//     a controller, anything unknown) and the resource-claim statuses stay
//     as the API has them. Ready is re-evaluated against the API's readiness
//     gates. The start time and transition times of unchanged conditions stay
//     as the API has them. A terminal phase in the API is never replaced by a
//     non-terminal one (nothing is written then), nor by the other terminal
//     phase.
//  3. When the merged status differs from the API's, a strategic-merge patch
//     of the status subresource is sent carrying metadata.uid, so the API
//     server rejects it (409) if the name now belongs to another pod.
//  4. After PodTerminated, once the API object has a deletionTimestamp and
//     its terminal phase is in the API, it is deleted with grace period 0 and
//     a UID precondition (upstream's canBeDeleted). Static pods never are.
//
// Errors: NotFound drops the pod (nothing left to write to); a conflict is
// retried quietly with back-off, reading the newer object; an unreachable API
// server is logged once per outage and retried with back-off (200 ms doubling
// to 30 s per pod); any other failure is logged once per pod and retried.
//
// The API object comes from the caller's informer cache (APIPods). The cache
// may lag behind berth's own patch; the object the patch returned is used
// until the cache has moved past the version the patch was made from, so a
// quick second change is diffed against what the API really holds.
//
// The caller should Enqueue a pod whenever its API object (or mirror pod)
// changes, so that changes made by others — a readiness gate turning True,
// a deletion request, a status overwritten — are answered at once rather
// than at the next resync.
package apistatus
