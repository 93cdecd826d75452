package nodestatus

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// Lease renewal timing, as upstream's kubelet and lease controller.
const (
	leaseRenewFraction = 0.25 // of the lease duration
	leaseRetryInitial  = 200 * time.Millisecond
	leaseRetryMax      = 7 * time.Second
)

// leaseLoop keeps the node's Lease in kube-node-lease renewed, the
// heartbeat the node lifecycle controller watches. It starts once the Node
// exists, so that the Lease is created with its owner reference (upstream
// does not create it before it can set one either) and is removed with
// the Node.
func (c *Controller) leaseLoop(ctx context.Context) {
	select {
	case <-c.registered:
	case <-ctx.Done():
		return
	}
	logger := klog.FromContext(ctx)
	o := outage{what: "Node lease renewal"}
	interval := time.Duration(float64(time.Duration(c.opts.LeaseDurationSeconds)*time.Second) * leaseRenewFraction)
	var lease *coordinationv1.Lease // the last one written, to update without a read
	var retry time.Duration
	for {
		next := interval
		renewed, err := c.renewLease(ctx, lease)
		switch {
		case err == nil:
			lease, retry = renewed, 0
			o.ok(logger, c.clock.Now())
			c.traceEvent("lease")
		case ctx.Err() != nil:
			return
		default:
			retry = min(max(2*retry, leaseRetryInitial), leaseRetryMax)
			next = retry
			o.failed(logger, c.clock.Now(), err)
		}
		if !c.wait(ctx, next, "lease") {
			return
		}
	}
}

// renewLease writes a fresh renewTime. It updates last, the Lease it wrote
// before, without reading it; when that conflicts or the Lease is gone it
// reads the Lease, creating it if it does not exist.
func (c *Controller) renewLease(ctx context.Context, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	leases := c.client.CoordinationV1().Leases(v1.NamespaceNodeLease)
	if last != nil {
		updated, err := leases.Update(ctx, c.newLease(last), metav1.UpdateOptions{})
		if err == nil {
			return updated, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("renew lease: %w", err)
		}
	}
	cur, err := leases.Get(ctx, c.cfg.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		created, err := leases.Create(ctx, c.newLease(nil), metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("create lease: %w", err)
		}
		return created, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get lease: %w", err)
	}
	updated, err := leases.Update(ctx, c.newLease(cur), metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("renew lease: %w", err)
	}
	return updated, nil
}

// newLease returns base renewed now (a new Lease when base is nil), owned
// by the current Node object: after the Node was deleted and registered
// again the owner reference follows the new UID.
func (c *Controller) newLease(base *coordinationv1.Lease) *coordinationv1.Lease {
	var l *coordinationv1.Lease
	if base == nil {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: c.cfg.name, Namespace: v1.NamespaceNodeLease},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(c.cfg.name)},
		}
	} else {
		l = base.DeepCopy()
	}
	l.Spec.LeaseDurationSeconds = ptr.To(c.opts.LeaseDurationSeconds)
	l.Spec.RenewTime = &metav1.MicroTime{Time: c.clock.Now()}
	if uid, ok := c.nodeUID(); ok {
		l.OwnerReferences = withNodeOwner(l.OwnerReferences, c.cfg.name, uid)
	}
	return l
}

// withNodeOwner returns refs with the reference to the Node (and no stale
// one to an earlier Node of that name); other owners are kept.
func withNodeOwner(refs []metav1.OwnerReference, name string, uid types.UID) []metav1.OwnerReference {
	want := metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: name, UID: uid}
	out := []metav1.OwnerReference{want}
	for _, r := range refs {
		if r.APIVersion == "v1" && r.Kind == "Node" && r.Name == name {
			continue
		}
		out = append(out, r)
	}
	return out
}

// nodeUID returns the UID of the latest Node.
func (c *Controller) nodeUID() (types.UID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node == nil {
		return "", false
	}
	return c.node.UID, true
}
