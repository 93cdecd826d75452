package certificate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/keyutil"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// selfSigned returns a PEM certificate and key valid from notBefore to notAfter.
func selfSigned(t *testing.T, cn string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM
}

func TestNeedsBootstrap(t *testing.T) {
	for _, tc := range []struct {
		state     kubeconfigState
		bootstrap string
		want      bool
	}{
		{kubeconfigMissing, "", false},
		{kubeconfigMissing, "/b", true},
		{kubeconfigUnusable, "/b", true},
		{kubeconfigUnusable, "", false},
		{kubeconfigValid, "/b", false},
	} {
		if got := needsBootstrap(tc.state, tc.bootstrap); got != tc.want {
			t.Errorf("needsBootstrap(%v, %q) = %v, want %v", tc.state, tc.bootstrap, got, tc.want)
		}
	}
}

func TestCertsState(t *testing.T) {
	valid := &x509.Certificate{NotAfter: t0.Add(time.Hour)}
	expired := &x509.Certificate{NotAfter: t0.Add(-time.Second)}
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		want  kubeconfigState
	}{
		{"none", nil, kubeconfigUnusable},
		{"valid", []*x509.Certificate{valid}, kubeconfigValid},
		{"expired", []*x509.Certificate{expired}, kubeconfigUnusable},
		{"one of the chain expired", []*x509.Certificate{valid, expired}, kubeconfigUnusable},
	} {
		if got := certsState(tc.certs, t0); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// writeKubeconfig writes a kubeconfig with the client certificate and key
// in pemPath, as TLS bootstrap does.
func writeKubeconfig(t *testing.T, path, pemPath string, caPEM []byte) {
	t.Helper()
	if err := writeBootstrappedKubeconfig(&rest.Config{Host: "https://127.0.0.1:6443", TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}}, path, pemPath); err != nil {
		t.Fatal(err)
	}
}

func TestReadKubeconfigState(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	validCert, validKey := selfSigned(t, "valid", now.Add(-time.Hour), now.Add(time.Hour))
	oldCert, oldKey := selfSigned(t, "old", now.Add(-2*time.Hour), now.Add(-time.Hour))
	writePEM := func(name string, cert, key []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, append(append([]byte{}, cert...), key...), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid := filepath.Join(dir, "valid.kubeconfig")
	writeKubeconfig(t, valid, writePEM("valid.pem", validCert, validKey), validCert)
	expired := filepath.Join(dir, "expired.kubeconfig")
	writeKubeconfig(t, expired, writePEM("old.pem", oldCert, oldKey), validCert)
	danglingLink := filepath.Join(dir, "dangling.kubeconfig")
	writeKubeconfig(t, danglingLink, filepath.Join(dir, "kubelet-client-current.pem"), validCert)
	garbage := filepath.Join(dir, "garbage.kubeconfig")
	if err := os.WriteFile(garbage, []byte("{not yaml"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		path string
		want kubeconfigState
	}{
		{filepath.Join(dir, "missing"), kubeconfigMissing},
		{valid, kubeconfigValid},
		{expired, kubeconfigUnusable},
		{danglingLink, kubeconfigUnusable},
		{garbage, kubeconfigUnusable},
	} {
		got, why, err := readKubeconfigState(tc.path, now)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %v (%s), want %v", filepath.Base(tc.path), got, why, tc.want)
		}
	}
}

func TestBootstrappedKubeconfig(t *testing.T) {
	pemPath := "/var/lib/kubelet/pki/kubelet-client-current.pem"
	for _, tc := range []struct {
		name       string
		bootstrap  *rest.Config
		wantCAFile string
		wantCAData []byte
	}{
		{"CA file", &rest.Config{Host: "https://10.0.0.1:6443", TLSClientConfig: rest.TLSClientConfig{CAFile: "/etc/kubernetes/pki/ca.crt", CAData: []byte("ignored")}}, "/etc/kubernetes/pki/ca.crt", nil},
		{"CA data", &rest.Config{Host: "https://10.0.0.1:6443", TLSClientConfig: rest.TLSClientConfig{CAData: []byte("ca")}}, "", []byte("ca")},
	} {
		kc := bootstrappedKubeconfig(tc.bootstrap, pemPath)
		ctx := kc.Contexts[kc.CurrentContext]
		if ctx == nil {
			t.Fatalf("%s: no current context", tc.name)
		}
		cluster, auth := kc.Clusters[ctx.Cluster], kc.AuthInfos[ctx.AuthInfo]
		if cluster.Server != "https://10.0.0.1:6443" || cluster.CertificateAuthority != tc.wantCAFile || !reflect.DeepEqual(cluster.CertificateAuthorityData, tc.wantCAData) {
			t.Errorf("%s: cluster %+v", tc.name, cluster)
		}
		if auth.ClientCertificate != pemPath || auth.ClientKey != pemPath || auth.Token != "" {
			t.Errorf("%s: auth %+v, want both in %s", tc.name, auth, pemPath)
		}
	}
	// The file, written where no directory was, loads back with the same
	// meaning.
	dir := t.TempDir()
	cert, key := selfSigned(t, "n1", time.Now(), time.Now().Add(time.Hour))
	pemPath = filepath.Join(dir, "kubelet-client-current.pem")
	if err := os.WriteFile(pemPath, append(cert, key...), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sub", "kubelet.conf")
	writeKubeconfig(t, path, pemPath, cert)
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.CertFile != pemPath || cfg.KeyFile != pemPath || string(cfg.CAData) != string(cert) {
		t.Errorf("loaded %+v", cfg)
	}
}

func TestCredentialsFor(t *testing.T) {
	for _, tc := range []struct {
		haveCert, haveBootstrap bool
		want                    credentials
	}{
		{true, true, useCurrent},
		{true, false, useCurrent},
		{false, true, useBootstrap},
		{false, false, useStartup},
	} {
		if got := credentialsFor(tc.haveCert, tc.haveBootstrap); got != tc.want {
			t.Errorf("credentialsFor(%v, %v) = %v, want %v", tc.haveCert, tc.haveBootstrap, got, tc.want)
		}
	}
}

func TestRotationWatch(t *testing.T) {
	a, b := &tls.Certificate{}, &tls.Certificate{}
	start := rotationWatch{last: a, lastAvailable: t0}
	later := t0.Add(noCertificateLimit + time.Second)
	for _, tc := range []struct {
		name          string
		w             rotationWatch
		cur           *tls.Certificate
		now           time.Time
		healthy, boot bool
		want          rotationAction
		wantLast      *tls.Certificate
	}{
		{"same certificate", start, a, later, true, false, keepConnections, a},
		{"rotated", start, b, t0, true, false, closeConnections, b},
		{"first certificate", rotationWatch{lastAvailable: t0}, a, t0, false, true, closeConnections, a},
		{"none yet, within the limit", start, nil, t0.Add(time.Minute), true, false, keepConnections, a},
		{"none for too long, server answers", start, nil, later, true, false, giveUp, a},
		{"none for too long, server silent", start, nil, later, false, false, keepConnections, a},
		{"none for too long, bootstrap kubeconfig at hand", start, nil, later, true, true, keepConnections, a},
	} {
		w, act := tc.w.next(tc.cur, tc.now, tc.healthy, tc.boot)
		if act != tc.want || w.last != tc.wantLast {
			t.Errorf("%s: action %v last changed %v, want %v %v", tc.name, act, w.last != tc.w.last, tc.want, tc.wantLast != tc.w.last)
		}
		if tc.cur != nil && !w.lastAvailable.Equal(tc.now) {
			t.Errorf("%s: lastAvailable %v, want %v", tc.name, w.lastAvailable, tc.now)
		}
	}
}

func TestServingSANs(t *testing.T) {
	addrs := []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: "10.0.0.5"},
		{Type: v1.NodeHostName, Address: "node-a"},
		{Type: v1.NodeExternalIP, Address: "203.0.113.7"},
		{Type: v1.NodeInternalIP, Address: "10.0.0.5"}, // duplicate
		{Type: v1.NodeHostName, Address: "192.0.2.1"},  // a hostname that is an IP
		{Type: v1.NodeInternalDNS, Address: "node-a.internal"},
		{Type: v1.NodeExternalDNS, Address: "node-a.example.com"},
		{Type: v1.NodeInternalIP, Address: "not-an-ip"}, // dropped
		{Type: v1.NodeInternalIP, Address: ""},
		{Type: v1.NodeInternalIP, Address: "fd00::1"},
	}
	names, ips := servingSANs(addrs)
	if want := []string{"node-a", "node-a.example.com", "node-a.internal"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	var got []string
	for _, ip := range ips {
		got = append(got, ip.String())
	}
	if want := []string{"10.0.0.5", "192.0.2.1", "203.0.113.7", "fd00::1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ips %v, want %v", got, want)
	}
}

func TestServingTemplate(t *testing.T) {
	if tmpl := servingTemplate("n1", []v1.NodeAddress{{Type: v1.NodeHostName, Address: "n1"}}); tmpl != nil {
		t.Errorf("template without an IP: %+v, want none (nothing requested yet)", tmpl)
	}
	if tmpl := servingTemplate("n1", nil); tmpl != nil {
		t.Errorf("template without addresses: %+v", tmpl)
	}
	tmpl := servingTemplate("n1", []v1.NodeAddress{{Type: v1.NodeHostName, Address: "n1"}, {Type: v1.NodeInternalIP, Address: "127.0.0.1"}})
	if tmpl == nil {
		t.Fatal("no template")
	}
	if tmpl.Subject.CommonName != "system:node:n1" || !reflect.DeepEqual(tmpl.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject %+v", tmpl.Subject)
	}
	if !reflect.DeepEqual(tmpl.DNSNames, []string{"n1"}) || len(tmpl.IPAddresses) != 1 || !tmpl.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("SANs %v %v", tmpl.DNSNames, tmpl.IPAddresses)
	}
}

func TestCSRName(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	subject := nodeSubject("n1")
	usages := clientUsages(k1)
	name := func(k *ecdsa.PrivateKey, s pkix.Name, u []certificatesv1.KeyUsage) string {
		n, err := csrName(&k.PublicKey, s, u)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := name(k1, subject, usages)
	if len(first) <= len("node-csr-") || first[:len("node-csr-")] != "node-csr-" {
		t.Fatalf("name %q", first)
	}
	if again := name(k1, subject, usages); again != first {
		t.Errorf("same key and request: %q then %q", first, again)
	}
	for what, other := range map[string]string{
		"another key":     name(k2, subject, usages),
		"another node":    name(k1, nodeSubject("n2"), usages),
		"another usage":   name(k1, subject, append(clientUsages(k1), certificatesv1.UsageKeyEncipherment)),
		"CN/O boundaries": name(k1, pkix.Name{CommonName: "system:node:n1system:nodes"}, usages),
	} {
		if other == first {
			t.Errorf("%s gives the same name %q", what, first)
		}
	}
}

func TestClientUsages(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	want := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	if got := clientUsages(ec); !reflect.DeepEqual(got, want) {
		t.Errorf("ECDSA usages %v, want %v", got, want)
	}
}

func certPEMOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
