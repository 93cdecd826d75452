package objects

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Services is a cache of every Service in the cluster that has a cluster
// IP, as upstream's kubelet keeps one for the service link environment
// variables of containers (headless Services give none, so they are not
// watched: upstream issue 122394).
type Services struct {
	informer cache.SharedIndexInformer
	lister   corelisters.ServiceLister
}

// NewServices returns the cache; nothing is read until Run.
func NewServices(client kubernetes.Interface) *Services {
	selector := fields.OneTermNotEqualSelector("spec.clusterIP", v1.ClusterIPNone).String()
	informer := coreinformers.NewFilteredServiceInformer(client, metav1.NamespaceAll, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		func(o *metav1.ListOptions) { o.FieldSelector = selector })
	_ = informer.SetTransform(func(obj any) (any, error) {
		if s, ok := obj.(*v1.Service); ok {
			s.ManagedFields = nil
		}
		return obj, nil
	})
	return &Services{informer: informer, lister: corelisters.NewServiceLister(informer.GetIndexer())}
}

// OnChange calls f after every Service added, changed or deleted (on the
// informer's goroutine: it must not block). Call it before Run.
func (s *Services) OnChange(f func()) {
	_, _ = s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { f() },
		UpdateFunc: func(any, any) { f() },
		DeleteFunc: func(any) { f() },
	})
}

// Run lists and watches Services until ctx ends.
func (s *Services) Run(ctx context.Context) { s.informer.RunWithContext(ctx) }

// HasSynced reports whether every Service has been read at least once.
func (s *Services) HasSynced() bool { return s.informer.HasSynced() }

// List returns the Services of a namespace.
func (s *Services) List(namespace string) ([]*v1.Service, error) {
	return s.lister.Services(namespace).List(labels.Everything())
}
