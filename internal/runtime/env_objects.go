package runtime

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// envObjects are the ConfigMaps and Secrets a container's environment
// refers to, read before the (pure) conversion; a failed read is kept with
// its error, so that the conversion applies upstream's rules for optional
// references. A name it was not given reads as it does on a kubelet without
// an API server.
type envObjects struct {
	configMaps map[string]fetched[*v1.ConfigMap]
	secrets    map[string]fetched[*v1.Secret]
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

// fetchEnvObjects reads every ConfigMap and Secret container c's
// environment refers to, each once. Without an object source (standalone)
// it reads nothing.
func (m *Manager) fetchEnvObjects(ctx context.Context, pod *v1.Pod, c *v1.Container) envObjects {
	objs := envObjects{configMaps: map[string]fetched[*v1.ConfigMap]{}, secrets: map[string]fetched[*v1.Secret]{}}
	if m.opts.Objects == nil {
		return envObjects{}
	}
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
