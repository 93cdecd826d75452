package app

import (
	"context"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/dra"
	"github.com/berth-dev/berth/internal/podworker"
	"github.com/berth-dev/berth/internal/runtime"
)

// newClaims builds the DRA manager: nil without an API server (claims and
// their allocation live there).
func newClaims(logger klog.Logger, opts Options, clients *apiClients, recorder record.EventRecorder) (*dra.Manager, error) {
	client := clients.podClient()
	if client == nil {
		return nil, nil
	}
	return dra.New(dra.Options{
		StateDir: opts.RootDir,
		Claims:   claimClient{client},
		Slices:   sliceWiper{client: client, node: opts.NodeName},
		Recorder: recorder,
		Logger:   logger.WithName("dra"),
	})
}

// workerClaims is m for the pod workers; a nil interface when there is none.
func workerClaims(m *dra.Manager) podworker.Claims {
	if m == nil {
		return nil
	}
	return m
}

type claimClient struct{ client kubernetes.Interface }

func (c claimClient) GetResourceClaim(ctx context.Context, namespace, name string) (*resourceapi.ResourceClaim, error) {
	return c.client.ResourceV1().ResourceClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

// sliceWiper deletes the node's ResourceSlices of a driver, as upstream's
// kubelet does for drivers gone from the node (the node authorizer lets a
// node delete its own).
type sliceWiper struct {
	client kubernetes.Interface
	node   string
}

func (w sliceWiper) WipeResourceSlices(ctx context.Context, driver string) error {
	sel := fields.Set{resourceapi.ResourceSliceSelectorNodeName: w.node}
	if driver != "" {
		sel[resourceapi.ResourceSliceSelectorDriver] = driver
	}
	return w.client.ResourceV1().ResourceSlices().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{FieldSelector: sel.String()})
}

// claimExtras gives containers the CDI devices of their claims.
type claimExtras struct{ m *dra.Manager }

func (x claimExtras) ContainerExtras(_ context.Context, pod *v1.Pod, c *v1.Container) (runtime.ContainerExtras, error) {
	ids, err := x.m.CDIDevices(pod, c)
	return runtime.ContainerExtras{CDIDevices: ids}, err
}

// containerExtras are the runtime's extras sources, in upstream's order:
// the DRA claims' CDI devices (when there is an API server), then the
// device plugins'.
func containerExtras(claims *dra.Manager, devices runtime.ContainerExtrasSource) []runtime.ContainerExtrasSource {
	if claims == nil {
		return []runtime.ContainerExtrasSource{devices}
	}
	return []runtime.ContainerExtrasSource{claimExtras{claims}, devices}
}
