package apistatus

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/internal/mirror"
	"github.com/berth-dev/berth/internal/source"
)

// errWait is returned when a pod's status cannot be written yet for a reason
// that resolves itself (a static pod's mirror pod does not exist yet). The
// pod is retried with back-off and nothing is logged.
var errWait = errors.New("no mirror pod yet")

// sync brings the API object of pod uid up to date with berth's latest
// status, and deletes it if the pod is finished and being deleted. nil means
// done (including "nothing to do any more"); any other error is retried.
func (s *Syncer) sync(ctx context.Context, uid types.UID) error {
	logger := klog.FromContext(ctx)
	pod, ok := s.desired.Desired(uid)
	if !ok {
		// A pod given to PodTerminated may have left the desired set before
		// its API object was deleted; it is still ours to delete.
		if pod, ok = s.finishedPod(uid); !ok {
			s.forget(uid)
			return nil
		}
	}
	ours, haveStatus := s.statuses.Get(uid)

	api, err := s.target(pod)
	if err != nil {
		if errors.Is(err, errWait) {
			return err
		}
		logger.V(3).Info("Pod status not written", "pod", klog.KObj(pod), "reason", err)
		s.forget(uid)
		return nil
	}
	api = s.latest(uid, api)

	if haveStatus {
		name := api.Name
		api, err = s.patch(ctx, uid, api, ours)
		if err != nil {
			if podGone(err, name) {
				logger.V(3).Info("Pod is gone from the API server; status dropped", "pod", klog.KObj(pod))
				s.forget(uid)
				return nil
			}
			return err
		}
	}

	if _, finished := s.finishedPod(uid); finished {
		return s.deleteIfDone(ctx, uid, api, haveStatus)
	}
	return nil
}

// target returns the API object that holds pod's status: the pod itself, or
// for a static pod its mirror pod. errWait: no (current) mirror pod yet. Any
// other error: the API object is gone or is another pod; nothing to write.
func (s *Syncer) target(pod *v1.Pod) (*v1.Pod, error) {
	api, ok := s.api.Pod(pod.Namespace, pod.Name)
	if isStatic(pod) {
		// A mirror of an older manifest, or one being deleted, is about to
		// be replaced by internal/mirror: wait for the new one.
		if !ok || !mirror.IsMirrorOf(api, pod) || api.DeletionTimestamp != nil {
			return nil, errWait
		}
		return api, nil
	}
	if !ok {
		return nil, fmt.Errorf("pod %s/%s not in the API server", pod.Namespace, pod.Name)
	}
	if api.UID != pod.UID {
		return nil, fmt.Errorf("pod %s/%s in the API server is another pod (UID %s)", pod.Namespace, pod.Name, api.UID)
	}
	return api, nil
}

// patch writes ours to api when they differ, and returns the freshest view
// of the API object.
func (s *Syncer) patch(ctx context.Context, uid types.UID, api *v1.Pod, ours v1.PodStatus) (*v1.Pod, error) {
	logger := klog.FromContext(ctx)
	merged, ok := merge(api, ours, metav1.NewTime(s.clock.Now()))
	if !ok {
		logger.V(2).Info("Pod is terminal in the API server; not reporting a non-terminal status",
			"pod", klog.KObj(api), "apiPhase", api.Status.Phase, "phase", ours.Phase)
		return api, nil
	}
	body, unchanged, err := statusPatch(api.UID, api.Status, merged)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", api.Namespace, api.Name, err)
	}
	if unchanged {
		return api, nil
	}
	updated, err := s.client.CoreV1().Pods(api.Namespace).Patch(ctx, api.Name,
		types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
	if err != nil {
		s.noteAPIError(ctx, err)
		return nil, fmt.Errorf("patch status of pod %s/%s: %w", api.Namespace, api.Name, err)
	}
	s.noteAPIAnswered(ctx)
	logger.V(3).Info("Patched pod status", "pod", klog.KObj(api), "patch", string(body))
	s.rememberWrite(uid, api, updated)
	if updated == nil {
		return api, nil
	}
	return updated, nil
}

// deleteIfDone deletes the finished pod's API object once the API asks for
// it (deletionTimestamp) and holds its final status, as upstream's
// canBeDeleted: controllers must see the terminal phase before the object
// goes. A pod berth has no status for has no final status to wait for.
func (s *Syncer) deleteIfDone(ctx context.Context, uid types.UID, api *v1.Pod, haveStatus bool) error {
	logger := klog.FromContext(ctx)
	if api.DeletionTimestamp == nil {
		return nil // not asked to; a later update of the pod brings us back
	}
	if haveStatus && !isTerminal(api.Status.Phase) {
		logger.V(3).Info("Delaying pod deletion until its terminal phase is in the API server",
			"pod", klog.KObj(api), "phase", api.Status.Phase)
		return nil // the terminal status will change the store and bring us back
	}
	err := s.client.CoreV1().Pods(api.Namespace).Delete(ctx, api.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		// Never delete a pod recreated with the same name.
		Preconditions: metav1.NewUIDPreconditions(string(api.UID)),
	})
	switch {
	case err == nil:
		s.noteAPIAnswered(ctx)
		logger.V(2).Info("Deleted terminated pod from the API server", "pod", klog.KObj(api))
	case podGone(err, api.Name), apierrors.IsConflict(err):
		// Gone already, or the name now belongs to another pod.
		logger.V(3).Info("Pod already deleted from the API server", "pod", klog.KObj(api), "reason", err)
	default:
		s.noteAPIError(ctx, err)
		return fmt.Errorf("delete pod %s/%s: %w", api.Namespace, api.Name, err)
	}
	s.doneDeleting(uid)
	return nil
}

// podGone reports an answer that the pod itself does not exist. A 404
// without the pod's name in its details is not one: an API server that is
// starting answers 404 for handlers it has not installed yet, and taking
// that for the pod's deletion would drop the pod's final status and
// leave its API object behind for good.
func podGone(err error, name string) bool {
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Name == name && d.Kind == "pods"
}

// report logs a sync failure: an API server outage once until it answers
// again, a conflict quietly (the retry reads the newer object), any other
// failure once per pod until it changes or clears.
func (s *Syncer) report(logger klog.Logger, uid types.UID, err error) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	switch {
	case down && unreachable(err):
		// The outage is logged once, by noteAPIError.
	case apierrors.IsConflict(err):
		logger.V(3).Info("Conflict writing pod status; retrying", "err", err)
	default:
		s.mu.Lock()
		seen := s.failing[uid] == err.Error()
		s.failing[uid] = err.Error()
		s.mu.Unlock()
		if !seen {
			logger.Error(err, "Failed to write pod status to the API server; retrying")
		}
	}
}

// noteAPIError logs the start of an API server outage once.
func (s *Syncer) noteAPIError(ctx context.Context, err error) {
	if !unreachable(err) || ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	first := !s.down
	s.down = true
	s.mu.Unlock()
	if first {
		klog.FromContext(ctx).Error(err, "API server unreachable; pod status updates wait and retry")
	}
}

// noteAPIAnswered logs the end of an outage.
func (s *Syncer) noteAPIAnswered(ctx context.Context) {
	s.mu.Lock()
	was := s.down
	s.down = false
	s.mu.Unlock()
	if was {
		klog.FromContext(ctx).Info("API server reachable again; pod status updates resume")
		// Every pod now, not when its back-off (up to 30 s) ends: the
		// statuses of the outage catch up at once.
		s.requeueAll()
	}
}

// unreachable reports errors that say the API server did not handle the
// request (no answer, overloaded, timed out) rather than refused it.
func unreachable(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err)
}

// isStatic reports a pod berth runs from a file: its status goes to its
// mirror pod.
func isStatic(pod *v1.Pod) bool { return source.IsStatic(pod) }
