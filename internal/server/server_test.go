package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

func testServerOptions(t *testing.T, ca *testCA) Options {
	return Options{
		Address:        "127.0.0.1",
		HealthzAddress: "127.0.0.1",
		TLS: TLSOptions{
			CertDir:  filepath.Join(t.TempDir(), "pki"),
			Hostname: "node-a",
			IPs:      []net.IP{net.ParseIP("10.0.0.5")},
		},
		Auth: AuthOptions{
			NodeName: "node-a",
			Authentication: kubeletconfig.KubeletAuthentication{
				X509:      kubeletconfig.KubeletX509Authentication{ClientCAFile: ca.file(t, t.TempDir())},
				Anonymous: kubeletconfig.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
				Webhook:   kubeletconfig.KubeletWebhookAuthentication{Enabled: ptr.To(false)},
			},
			Authorization: kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeAlwaysAllow},
		},
		Handlers: Handlers{
			Pods:   podList{},
			Health: func() error { return nil },
			Config: &kubeletconfig.KubeletConfiguration{},
		},
	}
}

func TestServerTLSAndAuth(t *testing.T) {
	ca := newTestCA(t, "client-ca")
	opts := testServerOptions(t, ca)
	opts.HealthzPort = freePort(t) // Port 0: any free port
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}

	// A self-signed pair was written, naming the node and loopback.
	certPEM, err := os.ReadFile(filepath.Join(opts.TLS.CertDir, "kubelet.crt"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil || len(certs) != 2 {
		t.Fatalf("kubelet.crt holds %d certificates (%v), want the certificate and its CA", len(certs), err)
	}
	leaf, servingCA := certs[0], certs[1]
	if !slices.Contains(leaf.DNSNames, "node-a") || !slices.Contains(leaf.DNSNames, "localhost") {
		t.Errorf("DNS names %v", leaf.DNSNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	for _, want := range []string{"127.0.0.1", "10.0.0.5"} {
		if !slices.Contains(ips, want) {
			t.Errorf("IP SANs %v lack %s", ips, want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(servingCA)
	clientCert, clientKey := ca.client(t, "kube-apiserver-kubelet-client")
	withCert := tls.Certificate{Certificate: [][]byte{clientCert.Raw}, PrivateKey: clientKey}
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: certs}}}
	}
	url := "https://" + s.Addr().String()

	resp, err := client().Get(url + "/pods")
	if err != nil {
		t.Fatal(err) // also: the serving certificate verifies for "localhost"
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || string(body) != "Unauthorized" {
		t.Errorf("anonymous: %d %q", resp.StatusCode, body)
	}

	resp, err = client(withCert).Get(url + "/configz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"kubeletconfig"`)) {
		t.Errorf("client certificate: %d %q", resp.StatusCode, body)
	}

	resp, err = http.Get("http://" + s.HealthzAddr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("healthz port: %d %q", resp.StatusCode, body)
	}

	// A second server finds the pair and keeps it; its port is taken.
	opts2 := opts
	opts2.Port = int32(s.Addr().(*net.TCPAddr).Port)
	s2, err := New(opts2)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(opts.TLS.CertDir, "kubelet.crt"))
	if !bytes.Equal(again, certPEM) {
		t.Error("self-signed certificate regenerated")
	}
	if err := s2.Run(context.Background()); err == nil {
		t.Error("second server on a used port ran")
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

func TestNewServerErrors(t *testing.T) {
	ca := newTestCA(t, "client-ca")
	tests := map[string]func(o *Options){
		"cert without key":   func(o *Options) { o.TLS.CertFile = "/x.crt" },
		"unreadable cert":    func(o *Options) { o.TLS.CertFile, o.TLS.KeyFile = "/nonexistent.crt", "/nonexistent.key" },
		"bad tls version":    func(o *Options) { o.TLS.MinVersion = "VersionTLS99" },
		"bad cipher":         func(o *Options) { o.TLS.CipherSuites = []string{"TLS_NOPE"} },
		"no pods provider":   func(o *Options) { o.Handlers.Pods = nil },
		"webhook standalone": func(o *Options) { o.Auth.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeWebhook },
	}
	for name, mutate := range tests {
		opts := testServerOptions(t, ca)
		mutate(&opts)
		if _, err := New(opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// freePort returns a port that was free a moment ago (healthz port 0
// means disabled, so it cannot take any port).
func freePort(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// Every server berth runs has every limit set: none waits forever on a
// slow or idle client.
func TestServerLimits(t *testing.T) {
	for name, srv := range map[string]*http.Server{
		"api and read-only": newAPIServer(http.NotFoundHandler()),
		"healthz":           newHealthzServer(http.NotFoundHandler()),
	} {
		if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
			t.Errorf("%s: a limit is unset: header %s read %s write %s idle %s max header %d", name,
				srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
		}
	}
	if srv := newAPIServer(nil); srv.ReadTimeout != 4*time.Hour || srv.WriteTimeout != 4*time.Hour || srv.IdleTimeout != 90*time.Second {
		t.Errorf("kubelet API limits differ from upstream's: read %s write %s idle %s", srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
}
