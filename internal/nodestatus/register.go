package nodestatus

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Registration back-off, as upstream's registerWithAPIServer.
const (
	registerRetryInitial = 100 * time.Millisecond
	registerRetryMax     = 7 * time.Second
)

// register creates the Node, or reconciles the one that exists, retrying
// with back-off until it succeeds; false means ctx ended first.
func (c *Controller) register(ctx context.Context) bool {
	logger := klog.FromContext(ctx)
	o := outage{what: "Node registration"}
	step := registerRetryInitial
	for {
		err := c.tryRegister(ctx)
		if err == nil {
			o.ok(logger, c.clock.Now())
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		o.failed(logger, c.clock.Now(), err)
		if !c.wait(ctx, step, "register") {
			return false
		}
		step = min(2*step, registerRetryMax)
	}
}

// tryRegister makes one attempt, as upstream's tryRegisterWithAPIServer:
// create the Node with its labels, taints and status; if it exists
// already, update the labels berth owns on it and keep the rest (taints
// and the --node-labels apply only to a new Node).
func (c *Controller) tryRegister(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	node := initialNode(c.cfg, c.gatherFacts(ctx))
	nodes := c.client.CoreV1().Nodes()
	created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		c.setNode(created)
		c.lastReport = c.clock.Now() // the new Node carries the full status
		logger.Info("Registered node")
		return nil
	}
	// A node that may not create Nodes may still find its own.
	if !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("register node: %w", err)
	}
	existing, getErr := nodes.Get(ctx, c.cfg.name, metav1.GetOptions{})
	if getErr != nil {
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("register node: %w", err)
		}
		return fmt.Errorf("register node: get the existing node: %w", getErr)
	}
	want := existing.DeepCopy()
	changed := reconcileExisting(want, node)
	if changed {
		if existing, err = nodes.Update(ctx, want, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("register node: reconcile the existing node: %w", err)
		}
	}
	c.setNode(existing)
	logger.Info("Node was registered before; kept it", "updatedLabels", changed)
	return nil
}
