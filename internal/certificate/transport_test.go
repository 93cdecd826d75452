package certificate

import (
	"crypto/ecdsa"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/keyutil"
)

// TestRotatingConfigPresentsNewCertificateAfterClose shows why connections
// are closed on rotation: a kept-alive connection goes on presenting the
// old certificate; once closed, the next request presents the new one.
func TestRotatingConfigPresentsNewCertificateAfterClose(t *testing.T) {
	now := time.Now()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			w.Write([]byte("anonymous"))
			return
		}
		w.Write([]byte(r.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	caPEM := certPEMOf(srv.Certificate().Raw)

	pair := func(cn string) *tls.Certificate {
		c, k := selfSigned(t, cn, now.Add(-time.Minute), now.Add(time.Hour))
		tc, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &tc
	}
	var current atomic.Pointer[tls.Certificate]
	base := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}}
	cfg, dialer, err := rotatingConfig(base, current.Load)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transport == nil || len(cfg.CAData) != 0 || cfg.CertFile != "" {
		t.Fatalf("config keeps TLS fields beside its transport: %+v", cfg.TLSClientConfig)
	}
	client := &http.Client{Transport: cfg.Transport}
	get := func() string {
		t.Helper()
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b [64]byte
		n, _ := resp.Body.Read(b[:])
		return string(b[:n])
	}

	if got := get(); got != "anonymous" {
		t.Errorf("before any certificate: %q", got)
	}
	current.Store(pair("first"))
	dialer.CloseAll()
	if got := get(); got != "first" {
		t.Errorf("after the first certificate: %q", got)
	}
	current.Store(pair("second"))
	if got := get(); got != "first" {
		t.Errorf("kept-alive connection: %q, want the old certificate still", got)
	}
	dialer.CloseAll()
	if got := get(); got != "second" {
		t.Errorf("after closing the connections: %q, want the new certificate", got)
	}
}

func TestBootstrapKeyIsReusedUntilIssued(t *testing.T) {
	dir := t.TempDir()
	store, err := certificate.NewFileStore(clientPrefix, dir, dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	pending := filepath.Join(dir, pendingKeyFile)
	first, err := bootstrapKey(store, pending)
	if err != nil {
		t.Fatal(err)
	}
	again, err := bootstrapKey(store, pending)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(again) {
		t.Error("a second attempt (a restart mid-bootstrap) made a new key")
	}
	// Once the store holds a certificate, its key is the one to reuse
	// (upstream asks again with it when the certificate has expired).
	now := time.Now()
	cert, key := selfSigned(t, "n1", now.Add(-2*time.Hour), now.Add(-time.Hour))
	if _, err := store.Update(cert, key); err != nil {
		t.Fatal(err)
	}
	got, err := bootstrapKey(store, pending)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := keyutil.ParsePrivateKeyPEM(key)
	gotKey, err := keyutil.ParsePrivateKeyPEM(got)
	if err != nil {
		t.Fatal(err)
	}
	if !want.(*ecdsa.PrivateKey).Equal(gotKey) {
		t.Error("the stored certificate's key was not reused")
	}
}
