package file

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// checkNoAPIReferences rejects a static pod that names an API object (a
// secret, config map, service account, claim...): a static pod must run with
// no API server, and its mirror pod could otherwise read objects the node was
// never granted (upstream's podutil.HasAPIObjectReference). The error names
// the first offending field.
func checkNoAPIReferences(pod *v1.Pod) error {
	if err := findAPIReference(pod); err != nil {
		return fmt.Errorf("invalid pod: %w", err)
	}
	return nil
}

func forbid(p *field.Path, what string) *field.Error {
	return field.Forbidden(p, "static pods may not reference "+what)
}

func findAPIReference(pod *v1.Pod) *field.Error {
	spec := &pod.Spec
	sp := field.NewPath("spec")
	if spec.ServiceAccountName != "" {
		return forbid(sp.Child("serviceAccountName"), "serviceaccounts")
	}
	for i, s := range spec.ImagePullSecrets {
		if s.Name != "" {
			return forbid(sp.Child("imagePullSecrets").Index(i), "secrets")
		}
	}
	if len(spec.ResourceClaims) > 0 {
		return forbid(sp.Child("resourceClaims"), "resourceclaims")
	}
	for i := range spec.InitContainers {
		if err := containerAPIReference(&spec.InitContainers[i], sp.Child("initContainers").Index(i)); err != nil {
			return err
		}
	}
	for i := range spec.Containers {
		if err := containerAPIReference(&spec.Containers[i], sp.Child("containers").Index(i)); err != nil {
			return err
		}
	}
	for i := range spec.Volumes {
		if err := volumeAPIReference(&spec.Volumes[i].VolumeSource, sp.Child("volumes").Index(i)); err != nil {
			return err
		}
	}
	return nil
}

func containerAPIReference(c *v1.Container, p *field.Path) *field.Error {
	for i, e := range c.EnvFrom {
		ep := p.Child("envFrom").Index(i)
		if e.ConfigMapRef != nil {
			return forbid(ep.Child("configMapRef"), "configmaps")
		}
		if e.SecretRef != nil {
			return forbid(ep.Child("secretRef"), "secrets")
		}
	}
	for i, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		vp := p.Child("env").Index(i).Child("valueFrom")
		if e.ValueFrom.ConfigMapKeyRef != nil {
			return forbid(vp.Child("configMapKeyRef"), "configmaps")
		}
		if e.ValueFrom.SecretKeyRef != nil {
			return forbid(vp.Child("secretKeyRef"), "secrets")
		}
	}
	return nil
}

// volumeAPIReference follows upstream's list: volume types served from the
// node alone are allowed (even if berth cannot mount them, which fails later
// with its own message); those backed by API objects are not.
func volumeAPIReference(v *v1.VolumeSource, p *field.Path) *field.Error {
	secretRef := func(ref *v1.LocalObjectReference, child string) *field.Error {
		if ref != nil && ref.Name != "" {
			return forbid(p.Child(child, "secretRef"), "secrets")
		}
		return nil
	}
	switch {
	case v.ConfigMap != nil:
		return forbid(p.Child("configMap"), "configmaps")
	case v.Secret != nil:
		return forbid(p.Child("secret"), "secrets")
	case v.PersistentVolumeClaim != nil:
		return forbid(p.Child("persistentVolumeClaim"), "persistentvolumeclaims")
	case v.Ephemeral != nil:
		return forbid(p.Child("ephemeral"), "persistentvolumeclaims")
	case v.CSI != nil:
		return forbid(p.Child("csi"), "csidrivers")
	case v.Glusterfs != nil:
		return forbid(p.Child("glusterfs"), "endpoints")
	case v.AzureFile != nil:
		return forbid(p.Child("azureFile"), "secrets")
	case v.Projected != nil:
		for i, s := range v.Projected.Sources {
			sp := p.Child("projected", "sources").Index(i)
			switch {
			case s.ConfigMap != nil:
				return forbid(sp.Child("configMap"), "configmaps")
			case s.Secret != nil:
				return forbid(sp.Child("secret"), "secrets")
			case s.ServiceAccountToken != nil:
				return forbid(sp.Child("serviceAccountToken"), "serviceaccounts")
			case s.ClusterTrustBundle != nil:
				return forbid(sp.Child("clusterTrustBundle"), "clustertrustbundles")
			case s.PodCertificate != nil:
				return forbid(sp.Child("podCertificate"), "podcertificates")
			case s.DownwardAPI != nil:
			default:
				return field.Invalid(sp, "", "unknown projected volume source")
			}
		}
	case v.CephFS != nil:
		return secretRef(v.CephFS.SecretRef, "cephfs")
	case v.Cinder != nil:
		return secretRef(v.Cinder.SecretRef, "cinder")
	case v.FlexVolume != nil:
		return secretRef(v.FlexVolume.SecretRef, "flexVolume")
	case v.RBD != nil:
		return secretRef(v.RBD.SecretRef, "rbd")
	case v.ScaleIO != nil:
		return secretRef(v.ScaleIO.SecretRef, "scaleIO")
	case v.ISCSI != nil:
		return secretRef(v.ISCSI.SecretRef, "iscsi")
	case v.StorageOS != nil:
		if v.StorageOS.SecretRef != nil && v.StorageOS.SecretRef.Name != "" {
			return forbid(p.Child("storageos", "secretRef"), "secrets")
		}
	}
	return nil
}
