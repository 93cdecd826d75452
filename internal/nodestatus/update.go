package nodestatus

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

const (
	// statusUpdateRetries bounds the attempts of one update that keeps
	// conflicting with other writers (upstream's nodeStatusUpdateRetry).
	statusUpdateRetries = 5
	// runtimeQueryTimeout bounds the runtime calls of one update, so that
	// a hung runtime cannot stop the heartbeat (Health reports it).
	runtimeQueryTimeout = 5 * time.Second
)

// statusLoop registers the Node, then every UpdateFrequency computes its
// status and posts it when it changed or when ReportFrequency has passed
// since the last post. If the Node is deleted, berth registers it again.
func (c *Controller) statusLoop(ctx context.Context) {
	logger := klog.FromContext(ctx)
	o := outage{what: "Node status update"}
	for {
		if !c.register(ctx) {
			return
		}
		c.registeredOnce.Do(func() { close(c.registered) })
		c.traceEvent("registered")
		for {
			err := c.syncStatus(ctx)
			if apierrors.IsNotFound(err) {
				// Upstream waits for a restart; berth re-registers.
				logger.Info("Node object was deleted; registering it again")
				break
			}
			switch {
			case err == nil:
				o.ok(logger, c.clock.Now())
			case ctx.Err() == nil:
				o.failed(logger, c.clock.Now(), err)
			}
			c.traceEvent("status")
			if !c.wait(ctx, c.opts.UpdateFrequency, "status") {
				return
			}
		}
	}
}

// syncStatus posts the node status if it changed (ignoring heartbeat
// times) or if ReportFrequency has passed since the last post. The Node is
// read fresh each time, so labels others set reach Node() and are never
// overwritten; a conflict with another writer is retried at once.
func (c *Controller) syncStatus(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	f := c.gatherFacts(ctx)
	nodes := c.client.CoreV1().Nodes()
	for range statusUpdateRetries {
		node, err := nodes.Get(ctx, c.cfg.name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node: %w", err)
		}
		c.setNode(node)
		cidrChanged := c.syncPodCIDR(ctx, node)
		if cidrChanged {
			// The runtime's network may be ready now that it has its
			// pod CIDR: post what it says at once rather than a period
			// later.
			f = c.gatherFacts(ctx)
		}
		want, changed := desiredNode(node, c.cfg, f)
		if !changed && !cidrChanged && c.clock.Since(c.lastReport) < c.opts.ReportFrequency {
			return nil
		}
		updated, err := nodes.UpdateStatus(ctx, want, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("update node status: %w", err)
		}
		if was, is := isReady(&node.Status), isReady(&updated.Status); was != is {
			logger.Info("Node readiness changed", "ready", is, "message", readyMessage(&updated.Status))
		}
		c.setNode(updated)
		c.lastReport = c.clock.Now()
		c.traceEvent("status-updated")
		return nil
	}
	return fmt.Errorf("update node status: still conflicting with other writers after %d attempts", statusUpdateRetries)
}

// gatherFacts observes the node: the machine (read at start), its
// address, the runtime's version, images and CRI Status (the last answer
// is kept while the runtime does not answer, so that a blip does not
// change the status) and berth's health.
func (c *Controller) gatherFacts(ctx context.Context) facts {
	f := facts{now: c.clock.Now(), machine: c.machine, nodeIP: c.opts.NodeIP}
	if f.nodeIP == "" {
		ip, err := c.detectIP()
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Cannot determine the node IP; keeping the reported addresses", "err", err)
		}
		f.nodeIP = ip
	}
	if c.opts.Runtime != nil {
		rctx, cancel := context.WithTimeout(ctx, runtimeQueryTimeout)
		if name, version, err := c.opts.Runtime.Version(rctx); err == nil {
			c.runtimeName, c.runtimeVersion = name, version
		}
		if images, err := c.opts.Runtime.ListImages(rctx); err == nil {
			c.images = images
		}
		// A runtime that does not answer keeps its last state, as
		// upstream; the health check reports it down.
		if st, err := c.opts.Runtime.Status(rctx); err == nil {
			c.rtState = nextRuntimeState(c.rtState, st)
		}
		cancel()
	} else {
		c.rtState = runtimeState{} // nothing to ask: nothing to wait for
	}
	f.runtimeName, f.runtimeVersion, f.images, f.runtime = c.runtimeName, c.runtimeVersion, c.images, c.rtState
	if c.opts.Health != nil {
		f.health = c.opts.Health()
	}
	if c.opts.ShuttingDown != nil {
		f.shutdown = c.opts.ShuttingDown()
	}
	if c.opts.Pressure != nil {
		f.pressure = c.opts.Pressure()
	}
	if c.opts.Devices != nil {
		f.devices.capacity, f.devices.allocatable, f.devices.removed = c.opts.Devices.Capacity()
	}
	return f
}
