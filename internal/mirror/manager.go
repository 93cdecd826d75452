package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// Options configure a Manager. All are required.
type Options struct {
	Client   kubernetes.Interface
	NodeName string
	// Node returns this node's API object (for the owner reference); false
	// while the node is not registered.
	Node func() (*v1.Node, bool)
}

// Manager creates and deletes mirror pods. Sync may be called from several
// goroutines; calls are serialized.
type Manager struct {
	opts Options

	// mu serializes Sync and guards reported.
	mu sync.Mutex
	// reported holds, by subject (a pod's namespace/name, or the node), the
	// failure last logged, so that a failure repeated at every Sync is
	// logged once, until it changes or clears.
	reported map[string]string
}

// New returns a Manager.
func New(opts Options) *Manager {
	return &Manager{opts: opts, reported: make(map[string]string)}
}

// Sync carries out Plan(static, mirrors): deletes first (grace period 0,
// precondition on the mirror's UID), then creates. Mirror pods bound to
// another node are never touched. A static pod whose stale mirror could not
// be deleted waits for the next Sync. No mirror is created while the node is
// unknown or being deleted.
//
// Sync logs each failure itself, once until it changes or clears (a mirror
// NodeRestriction refuses is refused at every attempt); the returned error
// joins this call's failures and is for the caller's retry decisions and
// tests, not for logging again. An AlreadyExists on create is no failure:
// the mirror appears in the caller's next view (or another pod holds the
// name, which is logged).
func (m *Manager) Sync(ctx context.Context, static []*v1.Pod, mirrors []*v1.Pod) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	logger := klog.FromContext(ctx)

	ours := make([]*v1.Pod, 0, len(mirrors))
	for _, p := range mirrors {
		if p.Spec.NodeName == m.opts.NodeName {
			ours = append(ours, p)
		}
	}
	create, del := Plan(static, ours)

	var errs []error
	blocked := make(map[string]bool)
	for _, p := range del {
		if err := m.delete(ctx, p); err != nil {
			errs = append(errs, err)
			blocked[fullName(p)] = true
			m.reportAPI(logger, fullName(p), err, "Failed to delete mirror pod", "pod", klog.KObj(p))
		} else {
			m.answered(fullName(p))
		}
	}

	if len(create) > 0 {
		node, err := m.node()
		if err != nil {
			m.reportOnce(logger, "node", err.Error(), err, "Mirror pods wait for the node")
			return errors.Join(append(errs, err)...)
		}
		delete(m.reported, "node")
		for _, s := range create {
			if blocked[fullName(s)] {
				continue
			}
			if err := m.create(ctx, NewMirrorPod(s, node)); err != nil {
				errs = append(errs, err)
				m.reportAPI(logger, fullName(s), err, "Failed to create mirror pod", "pod", klog.KObj(s))
				continue
			}
			m.answered(fullName(s))
		}
	}
	m.prune(static, ours)
	return errors.Join(errs...)
}

// node returns the node to own mirror pods.
func (m *Manager) node() (*v1.Node, error) {
	node, ok := m.opts.Node()
	switch {
	case !ok:
		return nil, fmt.Errorf("node %q is not registered yet", m.opts.NodeName)
	case node.DeletionTimestamp != nil:
		// Upstream too: mirrors owned by a node being deleted would be
		// garbage-collected with it.
		return nil, fmt.Errorf("node %q is being deleted", m.opts.NodeName)
	case node.UID == "":
		return nil, fmt.Errorf("node %q has no UID", m.opts.NodeName)
	}
	return node, nil
}

func (m *Manager) create(ctx context.Context, p *v1.Pod) error {
	_, err := m.opts.Client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
	switch {
	case err == nil:
		klog.FromContext(ctx).V(2).Info("Created mirror pod", "pod", klog.KObj(p), "hash", Hash(p))
		return nil
	case apierrors.IsAlreadyExists(err):
		// Our view lags (the mirror exists), or a pod that is no mirror holds
		// the name; the next Sync sees which.
		klog.FromContext(ctx).V(3).Info("Mirror pod already exists", "pod", klog.KObj(p))
		return nil
	}
	return fmt.Errorf("create mirror pod %s/%s: %w", p.Namespace, p.Name, err)
}

func (m *Manager) delete(ctx context.Context, p *v1.Pod) error {
	err := m.opts.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		// Never delete a mirror recreated meanwhile.
		Preconditions: metav1.NewUIDPreconditions(string(p.UID)),
	})
	switch {
	case err == nil:
		klog.FromContext(ctx).V(2).Info("Deleted mirror pod", "pod", klog.KObj(p), "podUID", p.UID)
		return nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return nil // gone already, or the name holds a newer pod
	}
	return fmt.Errorf("delete mirror pod %s/%s: %w", p.Namespace, p.Name, err)
}

// hint explains the refusals a kubelet meets when creating mirror pods.
func hint(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return "the API server's NodeRestriction admission refuses mirror pods that reference API objects (secrets, config maps, service accounts, claims) or lack a controller owner reference to this node"
	case apierrors.IsInvalid(err):
		return "the API server finds the static pod's spec invalid"
	}
	return ""
}

// reportAPI logs the failure of an API call about subject once. An
// unreachable API server is one subject for all pods: logged once per outage.
func (m *Manager) reportAPI(logger klog.Logger, subject string, err error, msg string, kv ...any) {
	if unreachable(err) {
		m.reportOnce(logger, "apiserver", "unreachable", err, "API server unreachable; mirror pods wait and retry")
		return
	}
	if h := hint(err); h != "" {
		kv = append(kv, "hint", h)
	}
	m.reportOnce(logger, subject, err.Error(), err, msg, kv...)
}

// reportOnce logs err unless key is the failure last logged for subject.
func (m *Manager) reportOnce(logger klog.Logger, subject, key string, err error, msg string, kv ...any) {
	if m.reported[subject] == key {
		return
	}
	m.reported[subject] = key
	logger.Error(err, msg, kv...)
}

// answered forgets the failure of subject, and any outage: the API server
// answered about it.
func (m *Manager) answered(subject string) {
	delete(m.reported, subject)
	delete(m.reported, "apiserver")
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

// prune forgets failures of pods that are gone, so reported stays small.
func (m *Manager) prune(static, mirrors []*v1.Pod) {
	live := make(map[string]bool, len(static)+len(mirrors)+2)
	live["node"], live["apiserver"] = true, true
	for _, p := range static {
		live[fullName(p)] = true
	}
	for _, p := range mirrors {
		live[fullName(p)] = true
	}
	for k := range m.reported {
		if !live[k] {
			delete(m.reported, k)
		}
	}
}
