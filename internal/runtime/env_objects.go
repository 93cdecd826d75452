package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/berth-dev/berth/internal/source"
)

// envObjects are the ConfigMaps and Secrets a container's environment
// refers to, read before the (pure) conversion; a failed read is kept with
// its error, so that the conversion applies upstream's rules for optional
// references. A name it was not given reads as it does on a kubelet without
// an API server.
type envObjects struct {
	configMaps map[string]fetched[*v1.ConfigMap]
	secrets    map[string]fetched[*v1.Secret]
	// services are the service link variables (enableServiceLinks);
	// servicesErr says why they could not be read.
	services    map[string]string
	servicesErr error
	// allocatable is the Node's, for limits a container does not set; nil
	// means the node's capacity.
	allocatable v1.ResourceList
}

type fetched[T any] struct {
	obj T
	err error
}

func (o envObjects) configMap(namespace, name string) (*v1.ConfigMap, error) {
	if f, ok := o.configMaps[name]; ok {
		return f.obj, f.err
	}
	return nil, fmt.Errorf("couldn't get configMap %v/%v, no kubeClient defined", namespace, name)
}

func (o envObjects) secret(namespace, name string) (*v1.Secret, error) {
	if f, ok := o.secrets[name]; ok {
		return f.obj, f.err
	}
	return nil, fmt.Errorf("couldn't get secret %v/%v, no kubeClient defined", namespace, name)
}

// fetchEnvObjects reads the Services and every ConfigMap and Secret
// container c's environment refers to, each once. Without an object source
// (standalone) it reads no ConfigMap or Secret.
func (m *Manager) fetchEnvObjects(ctx context.Context, pod *v1.Pod, c *v1.Container) envObjects {
	var objs envObjects
	objs.services, objs.servicesErr = m.fetchServiceEnv(ctx, pod)
	if m.opts.NodeAllocatable != nil {
		objs.allocatable = m.opts.NodeAllocatable()
	}
	if m.opts.Objects == nil {
		return objs
	}
	objs.configMaps, objs.secrets = map[string]fetched[*v1.ConfigMap]{}, map[string]fetched[*v1.Secret]{}
	configMap := func(name string) {
		if _, ok := objs.configMaps[name]; !ok {
			cm, err := m.opts.Objects.GetConfigMap(ctx, pod.Namespace, name)
			if cm == nil && err == nil {
				err = apierrors.NewNotFound(v1.Resource("configmap"), name)
			}
			objs.configMaps[name] = fetched[*v1.ConfigMap]{cm, err}
		}
	}
	secret := func(name string) {
		if _, ok := objs.secrets[name]; !ok {
			s, err := m.opts.Objects.GetSecret(ctx, pod.Namespace, name)
			if s == nil && err == nil {
				err = apierrors.NewNotFound(v1.Resource("secret"), name)
			}
			objs.secrets[name] = fetched[*v1.Secret]{s, err}
		}
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			configMap(from.ConfigMapRef.Name)
		case from.SecretRef != nil:
			secret(from.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.ConfigMapKeyRef != nil:
			configMap(e.ValueFrom.ConfigMapKeyRef.Name)
		case e.ValueFrom.SecretKeyRef != nil:
			secret(e.ValueFrom.SecretKeyRef.Name)
		}
	}
	return objs
}

// errServicesNotRead keeps API pods from starting with an environment that
// lacks KUBERNETES_SERVICE_HOST because berth has just started (upstream's
// message).
var errServicesNotRead = errors.New("services have not yet been read at least once, cannot construct envvars")

// servicesFirstListWait is how long a container start waits for the first
// list of Services, which berth starts together with the pod source: long
// enough that the first pods after a restart do not fail (and wait out the
// start retry) for a list that is a moment away.
const servicesFirstListWait = 5 * time.Second

// fetchServiceEnv reads the Services a pod's environment comes from.
// Without a Service lister (standalone) there are none. A static pod does
// not wait for the Services to be read: it may be what serves the API.
func (m *Manager) fetchServiceEnv(ctx context.Context, pod *v1.Pod) (map[string]string, error) {
	l := m.opts.Services
	if l == nil {
		return nil, nil
	}
	if !source.IsStatic(pod) && !l.HasSynced() {
		synced := func(context.Context) (bool, error) { return l.HasSynced(), nil }
		if wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, servicesFirstListWait, true, synced) != nil {
			return nil, errServicesNotRead
		}
	}
	services, err := l.List(metav1.NamespaceDefault)
	if err == nil && pod.Namespace != metav1.NamespaceDefault {
		var own []*v1.Service
		own, err = l.List(pod.Namespace)
		services = append(services, own...)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
	}
	// A pod that leaves enableServiceLinks unset (only a static pod berth
	// did not default) gets the links, as the API's default.
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	return serviceEnv(services, pod.Namespace, links), nil
}
