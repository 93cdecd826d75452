package objects

import (
	v1 "k8s.io/api/core/v1"
)

// Kinds of objects the manager watches, as passed to Options.OnChange.
const (
	KindConfigMap = "ConfigMap"
	KindSecret    = "Secret"
)

// ref names one object a pod reads; the namespace is the pod's.
type ref struct {
	kind string
	name string
}

// references lists the ConfigMaps and Secrets a pod reads: its volumes
// (configMap, secret and the sources of projected volumes), the env and
// envFrom of every container, and its imagePullSecrets. Each appears once.
func references(pod *v1.Pod) []ref {
	seen := make(map[ref]bool)
	var out []ref
	add := func(kind, name string) {
		r := ref{kind, name}
		if name == "" || seen[r] {
			return
		}
		seen[r] = true
		out = append(out, r)
	}
	for _, s := range pod.Spec.ImagePullSecrets {
		add(KindSecret, s.Name)
	}
	for _, vol := range pod.Spec.Volumes {
		switch {
		case vol.ConfigMap != nil:
			add(KindConfigMap, vol.ConfigMap.Name)
		case vol.Secret != nil:
			add(KindSecret, vol.Secret.SecretName)
		case vol.Projected != nil:
			for _, src := range vol.Projected.Sources {
				if src.ConfigMap != nil {
					add(KindConfigMap, src.ConfigMap.Name)
				}
				if src.Secret != nil {
					add(KindSecret, src.Secret.Name)
				}
			}
		}
	}
	envRefs := func(env []v1.EnvVar, envFrom []v1.EnvFromSource) {
		for _, e := range envFrom {
			if e.ConfigMapRef != nil {
				add(KindConfigMap, e.ConfigMapRef.Name)
			}
			if e.SecretRef != nil {
				add(KindSecret, e.SecretRef.Name)
			}
		}
		for _, e := range env {
			if e.ValueFrom == nil {
				continue
			}
			if e.ValueFrom.ConfigMapKeyRef != nil {
				add(KindConfigMap, e.ValueFrom.ConfigMapKeyRef.Name)
			}
			if e.ValueFrom.SecretKeyRef != nil {
				add(KindSecret, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		envRefs(pod.Spec.InitContainers[i].Env, pod.Spec.InitContainers[i].EnvFrom)
	}
	for i := range pod.Spec.Containers {
		envRefs(pod.Spec.Containers[i].Env, pod.Spec.Containers[i].EnvFrom)
	}
	for i := range pod.Spec.EphemeralContainers {
		envRefs(pod.Spec.EphemeralContainers[i].Env, pod.Spec.EphemeralContainers[i].EnvFrom)
	}
	return out
}

// Ref names one ConfigMap or Secret (Kind is KindConfigMap or KindSecret)
// in the namespace of the pod that reads it.
type Ref struct{ Kind, Name string }

// References lists the ConfigMaps and Secrets a pod reads, each once: what
// RegisterPod watches for it.
func References(pod *v1.Pod) []Ref {
	refs := references(pod)
	out := make([]Ref, len(refs))
	for i, r := range refs {
		out[i] = Ref{Kind: r.kind, Name: r.name}
	}
	return out
}
