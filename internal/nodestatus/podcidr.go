package nodestatus

import (
	"context"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// wantedPodCIDR is what the runtime is to be told of the node's pod
// network: spec.podCIDRs joined by commas (primary first), as upstream
// passes them; "" when the Node has none, and then nothing is sent (a
// CIDR once handed over stays, as upstream).
func wantedPodCIDR(node *v1.Node) string {
	if node == nil {
		return ""
	}
	return strings.Join(node.Spec.PodCIDRs, ",")
}

// syncPodCIDR hands the Node's pod CIDRs to the runtime (CRI
// UpdateRuntimeConfig) when they differ from the last ones it accepted;
// true means they changed, so the status is posted now. A failure is
// logged and retried on the next update, as upstream's updatePodCIDR.
func (c *Controller) syncPodCIDR(ctx context.Context, node *v1.Node) bool {
	want := wantedPodCIDR(node)
	if want == "" || want == c.podCIDR || c.opts.Runtime == nil {
		return false
	}
	logger := klog.FromContext(ctx)
	rctx, cancel := context.WithTimeout(ctx, runtimeQueryTimeout)
	defer cancel()
	if err := c.opts.Runtime.UpdatePodCIDR(rctx, want); err != nil {
		logger.Error(err, "Error updating pod CIDR")
		return true
	}
	logger.Info("Updating Pod CIDR", "originalPodCIDR", c.podCIDR, "newPodCIDR", want)
	c.podCIDR = want
	return true
}
