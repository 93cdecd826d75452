package volume

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fakediscovery "k8s.io/client-go/discovery/fake"
)

func selfSigned(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func trustBundle(name, signer, pemData string, labels map[string]string) *certificatesv1.ClusterTrustBundle {
	return &certificatesv1.ClusterTrustBundle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: pemData},
	}
}

func TestClusterTrustBundles(t *testing.T) {
	a, b := selfSigned(t, "a"), selfSigned(t, "b")
	h := newHarness(t,
		trustBundle("one", "", a, nil),
		trustBundle("signer-1", "example.com/s", a+b, map[string]string{"env": "prod"}),
		trustBundle("signer-2", "example.com/s", b, map[string]string{"env": "prod"}),
		trustBundle("signer-3", "example.com/s", selfSigned(t, "c"), map[string]string{"env": "dev"}),
	)
	h.client.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "certificates.k8s.io/v1",
		APIResources: []metav1.APIResource{{Name: "clustertrustbundles"}},
	}}
	ctx := context.Background()
	signer := "example.com/s"
	prod := &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}

	got, err := h.m.trustAnchors(ctx, &v1.ClusterTrustBundleProjection{Name: ptr("one"), Path: "ca.pem"})
	if err != nil || string(got) != a {
		t.Fatalf("by name = %q, %v; want the one certificate", got, err)
	}
	got, err = h.m.trustAnchors(ctx, &v1.ClusterTrustBundleProjection{SignerName: &signer, LabelSelector: prod, Path: "ca.pem"})
	if err != nil || strings.Count(string(got), "BEGIN CERTIFICATE") != 2 {
		t.Fatalf("by signer = %q, %v; want a and b once each", got, err)
	}
	if _, err := h.m.trustAnchors(ctx, &v1.ClusterTrustBundleProjection{SignerName: &signer, Path: "ca.pem"}); err == nil || !strings.Contains(err.Error(), "matched zero ClusterTrustBundles") {
		t.Fatalf("unset selector = %v; want no match", err)
	}
	if got, err := h.m.trustAnchors(ctx, &v1.ClusterTrustBundleProjection{Name: ptr("missing"), Optional: ptr(true), Path: "ca.pem"}); err != nil || len(got) != 0 {
		t.Fatalf("optional missing = %q, %v; want empty", got, err)
	}
	if _, err := h.m.trustAnchors(ctx, &v1.ClusterTrustBundleProjection{Name: ptr("missing"), Path: "ca.pem"}); err == nil || !strings.Contains(err.Error(), "while getting ClusterTrustBundle") {
		t.Fatalf("missing = %v", err)
	}
}

func TestClusterTrustBundlesNotServed(t *testing.T) {
	h := newHarness(t)
	vol := v1.Volume{Name: "ca", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
		{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{Name: ptr("x"), Path: "ca.pem"}},
	}}}}
	err := h.m.SetUp(context.Background(), newPod("u1", vol))
	if err == nil || !strings.Contains(err.Error(), "ClusterTrustBundle projection is not supported: the API server does not serve clustertrustbundles") {
		t.Fatalf("SetUp = %v", err)
	}
}
