package runtime

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// errNoUserNamespaces is upstream's refusal of `hostUsers: false` on a
// runtime handler without user namespace support: the sandbox is not
// created (FailedCreatePodSandBox), the pod stays pending, and nothing
// runs in the node's user namespace instead.
var errNoUserNamespaces = errors.New("can't set `spec.hostUsers: false`, runtime does not support user namespaces")

// UserNamespaces hands out pods' user namespaces (userns.Manager).
type UserNamespaces interface {
	// GetOrCreate returns the pod's user namespace mapping, the same
	// every time until Release.
	GetOrCreate(pod types.UID) (*runtimeapi.UserNamespace, error)
	Release(pod types.UID)
}

// userNamespace is the user namespace of a pod's sandbox and containers
// (upstream GetOrCreateUserNamespaceMappings): the node's unless the pod
// sets hostUsers: false, which needs a runtime handler that supports user
// namespaces and an ID range from ns.
func userNamespace(pod *v1.Pod, handlerSupports bool, ns UserNamespaces) (*runtimeapi.UserNamespace, error) {
	if pod.Spec.HostUsers == nil || *pod.Spec.HostUsers {
		return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}, nil
	}
	if !handlerSupports {
		return nil, errNoUserNamespaces
	}
	if ns == nil {
		return nil, errors.New("can't set `spec.hostUsers: false`: berth has no user namespace ID range")
	}
	return ns.GetOrCreate(pod.UID)
}

// withIDMappings maps every mount of a container in a user namespace of
// its pod's own to that namespace's IDs (an ID-mapped mount, made by the
// runtime), as upstream does, so that files keep their owners as the pod
// sees them.
func withIDMappings(mounts []*runtimeapi.Mount, userns *runtimeapi.UserNamespace) {
	if userns.GetMode() != runtimeapi.NamespaceMode_POD || len(userns.GetUids()) == 0 {
		return
	}
	for _, m := range mounts {
		m.UidMappings, m.GidMappings = userns.GetUids(), userns.GetGids()
	}
}

// handlerSupportsUserNamespaces asks the runtime whether the pod's
// handler ("" the default) supports user namespaces (upstream
// HandlerSupportsUserNamespaces): a runtime that lists no handlers (CRI
// before v1.30, containerd 1.x) does not.
func handlerSupportsUserNamespaces(ctx context.Context, rs internalapi.RuntimeService, handler string) (bool, error) {
	features, err := handlerFeatures(ctx, rs, handler)
	if err != nil {
		return false, err
	}
	return features.GetUserNamespaces(), nil
}

// handlerFeatures are the features the runtime reports for a handler; nil
// when it reports none for it.
func handlerFeatures(ctx context.Context, rs internalapi.RuntimeService, handler string) (*runtimeapi.RuntimeHandlerFeatures, error) {
	resp, err := rs.Status(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("runtime status: %w", err)
	}
	for _, h := range resp.GetRuntimeHandlers() {
		if h.GetName() == handler {
			return h.GetFeatures(), nil
		}
	}
	return nil, nil
}

// podUserNamespace is userNamespace, asking the runtime only for pods that
// want a user namespace of their own.
func (m *Manager) podUserNamespace(ctx context.Context, rs internalapi.RuntimeService, pod *v1.Pod, handler string) (*runtimeapi.UserNamespace, error) {
	supports := false
	if pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers {
		var err error
		if supports, err = handlerSupportsUserNamespaces(ctx, rs, handler); err != nil {
			return nil, fmt.Errorf("%w: %w", errNoUserNamespaces, err)
		}
	}
	return userNamespace(pod, supports, m.opts.UserNamespaces)
}
