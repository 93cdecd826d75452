package objects

import (
	"context"
	"fmt"

	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	nodeinformers "k8s.io/client-go/informers/node/v1"
	"k8s.io/client-go/kubernetes"
	nodelisters "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/cache"
)

// RuntimeClasses is a cache of the cluster's RuntimeClass objects, as
// upstream's runtimeclass manager keeps one: a pod's runtimeClassName is
// resolved through it to the CRI handler its sandbox runs with.
type RuntimeClasses struct {
	informer cache.SharedIndexInformer
	lister   nodelisters.RuntimeClassLister
}

// NewRuntimeClasses returns the cache; nothing is read until Run.
func NewRuntimeClasses(client kubernetes.Interface) *RuntimeClasses {
	informer := nodeinformers.NewRuntimeClassInformer(client, 0, cache.Indexers{})
	_ = informer.SetTransform(func(obj any) (any, error) {
		if rc, ok := obj.(*nodev1.RuntimeClass); ok {
			rc.ManagedFields = nil
		}
		return obj, nil
	})
	return &RuntimeClasses{informer: informer, lister: nodelisters.NewRuntimeClassLister(informer.GetIndexer())}
}

// Run lists and watches RuntimeClasses until ctx ends.
func (r *RuntimeClasses) Run(ctx context.Context) { r.informer.RunWithContext(ctx) }

// LookupRuntimeHandler returns the handler of the named RuntimeClass ("" for
// none), as upstream's LookupRuntimeHandler: a class that does not exist
// gives the lister's NotFound error (`runtimeclass.node.k8s.io "x" not
// found`), which the pod's sandbox creation reports. Before the first list
// has arrived nothing is known, and that is an error too rather than a
// NotFound: the pod's next sync asks again.
func (r *RuntimeClasses) LookupRuntimeHandler(runtimeClassName *string) (string, error) {
	if runtimeClassName == nil || *runtimeClassName == "" {
		return "", nil
	}
	name := *runtimeClassName
	if !r.informer.HasSynced() {
		return "", fmt.Errorf("failed to lookup RuntimeClass %s: RuntimeClasses not read from the API server yet", name)
	}
	rc, err := r.lister.Get(name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", err
		}
		return "", fmt.Errorf("failed to lookup RuntimeClass %s: %w", name, err)
	}
	return rc.Handler, nil
}
