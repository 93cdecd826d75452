package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// replaceFile writes data to path by rename, as certificate rotation
// does.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// loadText loads a file's content as is; "bad" does not load.
func loadText(contents [][]byte) (*string, error) {
	s := string(contents[0])
	if s == "bad" {
		return nil, errors.New("bad content")
	}
	return &s, nil
}

func TestWatchedFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	f, err := newWatchedFiles("test file", []string{path}, loadText, clk)
	if err != nil {
		t.Fatal(err)
	}
	logger := klog.Background()
	steps := []struct {
		name    string
		change  func()
		advance time.Duration
		changed bool
		want    string
	}{
		{"nothing changed", nil, fileCheckInterval, false, "one"},
		{"replaced", func() { replaceFile(t, path, []byte("two")) }, 0, true, "two"},
		{"broken", func() { replaceFile(t, path, []byte("bad")) }, 0, false, "two"},
		{"still broken", nil, 0, false, "two"},
		{"fixed", func() { replaceFile(t, path, []byte("three")) }, 0, true, "three"},
		{"same content again", func() { replaceFile(t, path, []byte("three")) }, 0, false, "three"},
		{"removed", func() { os.Remove(path) }, 0, false, "three"},
		{"back", func() { replaceFile(t, path, []byte("four")) }, 0, true, "four"},
		{"empty", func() { replaceFile(t, path, nil) }, 0, false, "four"},
		{"back again", func() { replaceFile(t, path, []byte("four")) }, 0, false, "four"},
		// Rewritten in place, same size, mtime put back: stat cannot
		// tell; the periodic re-read does.
		{"in place, unseen", func() { rewriteKeepingStat(t, path, []byte("five")) }, fileResyncInterval - time.Second, false, "four"},
		{"in place, resync", nil, time.Second, true, "five"},
	}
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		clk.Step(s.advance)
		if changed := f.check(logger); changed != s.changed || *f.get() != s.want {
			t.Errorf("%s: changed=%v value %q, want %v %q", s.name, changed, *f.get(), s.changed, s.want)
		}
	}
}

// rewriteKeepingStat overwrites path in place and restores its mtime.
func rewriteKeepingStat(t *testing.T, path string, data []byte) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

func TestWatchedFilesRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	f, err := newWatchedFiles("test file", []string{path}, loadText, clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.run(ctx); close(done) }()
	for !clk.HasWaiters() { // the ticker is set
		runtimeGosched()
	}
	replaceFile(t, path, []byte("two"))
	clk.Step(fileCheckInterval)
	for *f.get() != "two" {
		runtimeGosched()
	}
	cancel()
	<-done
}

func TestNewWatchedFilesErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("bad"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	clk := clocktesting.NewFakeClock(time.Now())
	for _, p := range []string{filepath.Join(dir, "missing"), bad, empty} {
		if _, err := newWatchedFiles("test file", []string{p}, loadText, clk); err == nil {
			t.Errorf("%s: no error", p)
		}
	}
}

func TestClientCAReload(t *testing.T) {
	dir := t.TempDir()
	first, second := newTestCA(t, "first-ca"), newTestCA(t, "second-ca")
	caFile := first.file(t, dir)
	clk := clocktesting.NewFakeClock(time.Now())
	a, err := newAuth(AuthOptions{
		NodeName: "node-a",
		Authentication: kubeletconfig.KubeletAuthentication{
			X509:      kubeletconfig.KubeletX509Authentication{ClientCAFile: caFile},
			Anonymous: kubeletconfig.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
			Webhook:   kubeletconfig.KubeletWebhookAuthentication{Enabled: ptr.To(false)},
		},
		Authorization: kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeAlwaysAllow},
	}, clk, noWait)
	if err != nil {
		t.Fatal(err)
	}
	h := a.Filter(okHandler(t))
	oldClient, _ := first.client(t, "old-client")
	newClient, _ := second.client(t, "new-client")
	pool := a.ClientCA()
	before := pool()
	if rec := serveFiltered(h, "GET", "/pods", "", oldClient); rec.Code != 200 {
		t.Errorf("first CA's client: %d", rec.Code)
	}
	if rec := serveFiltered(h, "GET", "/pods", "", newClient); rec.Code != 401 {
		t.Errorf("second CA's client before the reload: %d", rec.Code)
	}

	replaceFile(t, caFile, second.pem)
	clk.Step(fileCheckInterval)
	if !a.clientCA.check(klog.Background()) {
		t.Fatal("CA file change not seen")
	}
	if pool() == before {
		t.Error("the TLS handshake still sees the old pool")
	}
	if rec := serveFiltered(h, "GET", "/pods", "", newClient); rec.Code != 200 {
		t.Errorf("second CA's client after the reload: %d", rec.Code)
	}
	if rec := serveFiltered(h, "GET", "/pods", "", oldClient); rec.Code != 401 {
		t.Errorf("first CA's client after the reload: %d", rec.Code)
	}
}

func TestServingTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	newPair := func(host string) (cert, key []byte) {
		cert, key, err := certutil.GenerateSelfSignedCertKey(host, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	cert, key := newPair("first")
	replaceFile(t, keyFile, key)
	replaceFile(t, certFile, cert)
	ca := newTestCA(t, "client-ca")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	clk := clocktesting.NewFakeClock(time.Now())
	st, err := newServingTLSWithClock(TLSOptions{CertFile: certFile, KeyFile: keyFile, MinVersion: "VersionTLS12"},
		func() *x509.CertPool { return pool }, clk)
	if err != nil {
		t.Fatal(err)
	}
	servedName := func() (string, *tls.Config) {
		t.Helper()
		c, err := st.config.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName, c
	}
	name, c1 := servedName()
	if name == "" || c1.ClientAuth != tls.RequestClientCert || c1.ClientCAs != pool || c1.MinVersion != tls.VersionTLS12 || len(c1.NextProtos) != 1 || c1.NextProtos[0] != "http/1.1" {
		t.Fatalf("config %q: client auth %v, CAs %p, min version %x, protos %v", name, c1.ClientAuth, c1.ClientCAs, c1.MinVersion, c1.NextProtos)
	}
	if _, c2 := servedName(); c2 != c1 {
		t.Error("config rebuilt for an unchanged certificate")
	}

	// Rotation: the new key first. A check in between sees a pair that
	// does not match and keeps serving the old one.
	cert, key = newPair("second")
	replaceFile(t, keyFile, key)
	clk.Step(fileCheckInterval)
	if st.cert.check(klog.Background()) {
		t.Fatal("mismatched certificate and key loaded")
	}
	if name2, _ := servedName(); name2 != name {
		t.Fatalf("serving %q while the pair is mismatched", name2)
	}
	replaceFile(t, certFile, cert)
	clk.Step(fileCheckInterval)
	if !st.cert.check(klog.Background()) {
		t.Fatal("certificate change not seen")
	}
	if name2, _ := servedName(); name2 == name {
		t.Errorf("still serving %q", name2)
	}

	// A new client CA pool shows in the next handshake.
	pool = x509.NewCertPool()
	if _, c3 := servedName(); c3.ClientCAs != pool {
		t.Error("new client CA pool not advertised")
	}
}

func TestServingTLSWithoutClientCA(t *testing.T) {
	st, err := newServingTLS(TLSOptions{CertDir: t.TempDir(), Hostname: "node-a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.config.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	// No client CA: no certificates asked for, as upstream.
	if c.ClientAuth != tls.NoClientCert || c.ClientCAs != nil || len(c.Certificates) != 1 {
		t.Errorf("client auth %v, CAs %v, %d certificates", c.ClientAuth, c.ClientCAs, len(c.Certificates))
	}
}

// certSource is a CertificateSource a test sets.
type certSource struct {
	cert atomic.Pointer[tls.Certificate]
}

func (s *certSource) Current() *tls.Certificate { return s.cert.Load() }

func TestServingTLSFromCertificateSource(t *testing.T) {
	dir := t.TempDir()
	src := &certSource{}
	st, err := newServingTLS(TLSOptions{Certificates: src, CertDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing issued yet: the handshake fails, and no self-signed pair is
	// made in its place.
	if _, err := st.config.GetConfigForClient(&tls.ClientHelloInfo{}); !errors.Is(err, errNoServingCertificate) {
		t.Errorf("before a certificate: %v, want %v", err, errNoServingCertificate)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("cert dir has %d files; a certificate source needs none", len(entries))
	}
	served := func() string {
		t.Helper()
		c, err := st.config.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	for _, host := range []string{"issued", "rotated"} {
		certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		src.cert.Store(&pair)
		if got := served(); !strings.HasPrefix(got, host) {
			t.Errorf("serving %q, want the source's current %q", got, host)
		}
	}
}
