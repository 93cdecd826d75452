package volume

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// trustBundleAPI records which version of certificates.k8s.io serves
// ClusterTrustBundles: "v1", "v1beta1", or "" for none.
type trustBundleAPI struct{ version string }

// bundle is the part of a ClusterTrustBundle of any version berth reads.
type bundle struct{ signerName, trustBundle string }

// trustAnchors returns the PEM certificates a clusterTrustBundle source
// selects — one bundle by name, or every bundle of a signer that matches
// the label selector — deduplicated and sorted. A server that does not
// serve ClusterTrustBundles fails the volume with a clear message.
func (m *Manager) trustAnchors(ctx context.Context, src *v1.ClusterTrustBundleProjection) ([]byte, error) {
	if m.client == nil {
		return nil, errors.New("ClusterTrustBundle projection is not supported in standalone mode")
	}
	version, err := m.trustBundleVersion(ctx)
	if err != nil {
		return nil, err
	}
	if version == "" {
		return nil, errors.New("ClusterTrustBundle projection is not supported: the API server does not serve clustertrustbundles (certificates.k8s.io)")
	}
	optional := src.Optional != nil && *src.Optional
	switch {
	case src.Name != nil:
		b, err := m.getBundle(ctx, version, *src.Name)
		if apierrors.IsNotFound(err) && optional {
			return []byte{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("while getting ClusterTrustBundle: %w", err)
		}
		return normalizeAnchors([]bundle{b}), nil
	case src.SignerName != nil:
		// An unset selector matches nothing, an empty one everything.
		var bundles []bundle
		if src.LabelSelector != nil {
			selector, err := metav1.LabelSelectorAsSelector(src.LabelSelector)
			if err != nil {
				return nil, fmt.Errorf("while parsing label selector: %w", err)
			}
			if bundles, err = m.listBundles(ctx, version, *src.SignerName, selector.String()); err != nil {
				return nil, fmt.Errorf("while listing ClusterTrustBundles matching label selector %v: %w", src.LabelSelector, err)
			}
		}
		if len(bundles) == 0 {
			if optional {
				return []byte{}, nil
			}
			return nil, errors.New("combination of signerName and labelSelector matched zero ClusterTrustBundles")
		}
		return normalizeAnchors(bundles), nil
	}
	return nil, errors.New("ClusterTrustBundle projection requires either name or signerName to be set")
}

// trustBundleVersion asks discovery once which version serves
// clustertrustbundles; a failed discovery is asked again next time.
func (m *Manager) trustBundleVersion(ctx context.Context) (string, error) {
	m.mu.Lock()
	known := m.trustBundles
	m.mu.Unlock()
	if known != nil {
		return known.version, nil
	}
	found := ""
	for _, version := range []string{"v1", "v1beta1"} {
		list, err := m.client.Discovery().ServerResourcesForGroupVersion("certificates.k8s.io/" + version)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("discover ClusterTrustBundle API: %w", err)
		}
		for _, r := range list.APIResources {
			if r.Name == "clustertrustbundles" {
				found = version
				break
			}
		}
		if found != "" {
			break
		}
	}
	m.mu.Lock()
	m.trustBundles = &trustBundleAPI{version: found}
	m.mu.Unlock()
	return found, nil
}

func (m *Manager) getBundle(ctx context.Context, version, name string) (bundle, error) {
	if version == "v1beta1" {
		b, err := m.client.CertificatesV1beta1().ClusterTrustBundles().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return bundle{}, err
		}
		return bundle{b.Spec.SignerName, b.Spec.TrustBundle}, nil
	}
	b, err := m.client.CertificatesV1().ClusterTrustBundles().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return bundle{}, err
	}
	return bundle{b.Spec.SignerName, b.Spec.TrustBundle}, nil
}

func (m *Manager) listBundles(ctx context.Context, version, signer, selector string) ([]bundle, error) {
	opts := metav1.ListOptions{LabelSelector: selector, FieldSelector: fields.OneTermEqualSelector("spec.signerName", signer).String()}
	var all []bundle
	if version == "v1beta1" {
		list, err := m.client.CertificatesV1beta1().ClusterTrustBundles().List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, b := range list.Items {
			all = append(all, bundle{b.Spec.SignerName, b.Spec.TrustBundle})
		}
	} else {
		list, err := m.client.CertificatesV1().ClusterTrustBundles().List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, b := range list.Items {
			all = append(all, bundle{b.Spec.SignerName, b.Spec.TrustBundle})
		}
	}
	// The field selector is a hint some servers (and fakes) ignore.
	var out []bundle
	for _, b := range all {
		if b.signerName == signer {
			out = append(out, b)
		}
	}
	return out, nil
}

// normalizeAnchors re-encodes the certificates of the bundles as PEM,
// without duplicates, in a stable order. (Upstream shuffles the order on
// every kubelet start; a stable one keeps files from changing needlessly.)
func normalizeAnchors(bundles []bundle) []byte {
	seen := make(map[string]bool)
	var ders []string
	for _, b := range bundles {
		rest := []byte(b.trustBundle)
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if !seen[string(block.Bytes)] {
				seen[string(block.Bytes)] = true
				ders = append(ders, string(block.Bytes))
			}
		}
	}
	sort.Strings(ders)
	out := []byte{}
	for _, der := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(der)})...)
	}
	return out
}
