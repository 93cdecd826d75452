package nodestatus

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// errNetworkUnknown is the network's state until the runtime has answered
// a Status call, as upstream's ErrNetworkUnknown: the node is not Ready
// before berth knows the pod network works.
var errNetworkUnknown = errors.New("network state unknown")

// runtimeState is what the node status takes from the runtime's CRI
// Status, as upstream's runtimeState keeps it: why the runtime and the pod
// network are not ready (nil when they are), and the handlers and features
// the runtime reports. Handlers and features change only while the runtime
// is ready, as upstream.
type runtimeState struct {
	runtimeErr error
	networkErr error
	// handlers, sorted by name; nil when the runtime reports none
	// (containerd 1.x), so the Node has no runtimeHandlers.
	handlers []v1.NodeRuntimeHandler
	// features is nil while the runtime has not reported any: the Node's
	// status.features is then left as it is, as upstream.
	features *v1.NodeFeatures
}

func newRuntimeState() runtimeState { return runtimeState{networkErr: errNetworkUnknown} }

// nextRuntimeState folds one CRI Status answer into the state, as
// upstream's updateRuntimeUp: NetworkReady and RuntimeReady must both be
// reported true; the messages name the condition as upstream prints it
// ("NetworkReady=false reason:NetworkPluginNotReady message:...").
func nextRuntimeState(prev runtimeState, resp *runtimeapi.StatusResponse) runtimeState {
	next := prev
	network := findCondition(resp, runtimeapi.NetworkReady)
	if network == nil || !network.GetStatus() {
		next.networkErr = fmt.Errorf("container runtime network not ready: %s", conditionString(network))
	} else {
		next.networkErr = nil
	}
	rt := findCondition(resp, runtimeapi.RuntimeReady)
	if rt == nil || !rt.GetStatus() {
		next.runtimeErr = fmt.Errorf("container runtime not ready: %s", conditionString(rt))
		return next
	}
	next.runtimeErr = nil
	next.handlers = nodeRuntimeHandlers(resp.GetRuntimeHandlers())
	next.features = nil
	if f := resp.GetFeatures(); f != nil {
		next.features = &v1.NodeFeatures{SupplementalGroupsPolicy: ptrTo(f.GetSupplementalGroupsPolicy())}
	}
	return next
}

func findCondition(resp *runtimeapi.StatusResponse, typ string) *runtimeapi.RuntimeCondition {
	for _, c := range resp.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

// conditionString prints a condition as upstream's RuntimeCondition.String
// does, and a missing one as Go prints a nil pointer.
func conditionString(c *runtimeapi.RuntimeCondition) string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s=%t reason:%s message:%s", c.GetType(), c.GetStatus(), c.GetReason(), c.GetMessage())
}

// nodeRuntimeHandlers are the Node's status.runtimeHandlers, sorted by
// name so that their order never makes a status update.
func nodeRuntimeHandlers(hs []*runtimeapi.RuntimeHandler) []v1.NodeRuntimeHandler {
	if len(hs) == 0 {
		return nil
	}
	out := make([]v1.NodeRuntimeHandler, len(hs))
	for i, h := range hs {
		out[i] = v1.NodeRuntimeHandler{
			Name: h.GetName(),
			Features: &v1.NodeRuntimeHandlerFeatures{
				RecursiveReadOnlyMounts: ptrTo(h.GetFeatures().GetRecursiveReadOnlyMounts()),
				UserNamespaces:          ptrTo(h.GetFeatures().GetUserNamespaces()),
			},
		}
	}
	slices.SortFunc(out, func(a, b v1.NodeRuntimeHandler) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func ptrTo[T any](v T) *T { return &v }
