package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/klog/v2"
)

// TLSOptions configures the serving certificate of the kubelet API.
type TLSOptions struct {
	// CertFile and KeyFile are tlsCertFile and tlsPrivateKeyFile. When both
	// are empty, berth uses CertDir/kubelet.crt and kubelet.key, creating a
	// self-signed pair there if they cannot be read, as upstream does.
	CertFile, KeyFile string
	// CertDir is where the self-signed pair lives (upstream's
	// --cert-dir, default <root-dir>/pki).
	CertDir string
	// Hostname and IPs name the server in a self-signed certificate;
	// localhost and 127.0.0.1 are always added.
	Hostname string
	IPs      []net.IP
	// MinVersion and CipherSuites are tlsMinVersion and tlsCipherSuites
	// (e.g. "VersionTLS12", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"); empty
	// means Go's defaults.
	MinVersion   string
	CipherSuites []string
}

// servingFiles returns the certificate and key files to serve with,
// writing a self-signed pair first if needed.
func servingFiles(opts TLSOptions) (certFile, keyFile string, err error) {
	switch {
	case opts.CertFile != "" && opts.KeyFile != "":
		return opts.CertFile, opts.KeyFile, nil
	case opts.CertFile != "" || opts.KeyFile != "":
		return "", "", errors.New("tlsCertFile and tlsPrivateKeyFile must be given together")
	case opts.CertDir == "":
		return "", "", errors.New("no serving certificate and no directory to create one in")
	}
	certFile = filepath.Join(opts.CertDir, "kubelet.crt")
	keyFile = filepath.Join(opts.CertDir, "kubelet.key")
	ok, err := certutil.CanReadCertAndKey(certFile, keyFile)
	if err != nil {
		return "", "", err
	}
	if ok {
		return certFile, keyFile, nil
	}
	host := opts.Hostname
	if host == "" {
		host = "localhost"
	}
	ips := append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, opts.IPs...)
	cert, key, err := certutil.GenerateSelfSignedCertKey(host, ips, []string{"localhost"})
	if err != nil {
		return "", "", fmt.Errorf("generate self-signed serving certificate: %w", err)
	}
	// The key first: a crash in between leaves no certificate, so the next
	// start generates a new pair rather than failing on a mismatch.
	if err := keyutil.WriteKey(keyFile, key); err != nil {
		return "", "", fmt.Errorf("write serving key: %w", err)
	}
	if err := certutil.WriteCert(certFile, cert); err != nil {
		return "", "", fmt.Errorf("write serving certificate: %w", err)
	}
	return certFile, keyFile, nil
}

// servingTLS is the TLS side of the server: a config whose certificate and
// client CA follow their files.
type servingTLS struct {
	config     *tls.Config
	cert       *dynamiccertificates.DynamicCertKeyPairContent
	controller *dynamiccertificates.DynamicServingCertificateController
}

// newServingTLS loads the serving certificate (and, when clientCA is not
// nil, asks clients for certificates signed by it) and checks the TLS
// settings. Client certificates are requested but not required: they are
// verified by the authenticator, so that token and anonymous requests
// still reach it.
func newServingTLS(opts TLSOptions, clientCA dynamiccertificates.CAContentProvider) (*servingTLS, error) {
	certFile, keyFile, err := servingFiles(opts)
	if err != nil {
		return nil, err
	}
	minVersion, err := cliflag.TLSVersion(opts.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("tlsMinVersion: %w", err)
	}
	suites, err := cliflag.TLSCipherSuites(opts.CipherSuites)
	if err != nil {
		return nil, fmt.Errorf("tlsCipherSuites: %w", err)
	}
	cert, err := dynamiccertificates.NewDynamicServingContentFromFiles("serving-cert", certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	base := &tls.Config{
		MinVersion:   minVersion,
		CipherSuites: suites,
		// HTTP/1.1 only: exec, attach and port-forward upgrade the
		// connection, which HTTP/2 cannot.
		NextProtos: []string{"http/1.1"},
	}
	if clientCA != nil {
		base.ClientAuth = tls.RequestClientCert
	}
	ctrl := dynamiccertificates.NewDynamicServingCertificateController(base, clientCA, cert, nil, nil)
	if err := ctrl.RunOnce(); err != nil {
		return nil, fmt.Errorf("serving certificate %s: %w", certFile, err)
	}
	cert.AddListener(ctrl)
	if l, ok := clientCA.(interface {
		AddListener(dynamiccertificates.Listener)
	}); ok {
		l.AddListener(ctrl)
	}
	return &servingTLS{
		config:     &tls.Config{GetConfigForClient: ctrl.GetConfigForClient, NextProtos: base.NextProtos},
		cert:       cert,
		controller: ctrl,
	}, nil
}

// run follows the certificate files until ctx ends.
func (s *servingTLS) run(ctx context.Context) {
	klog.FromContext(ctx).V(2).Info("Watching the serving certificate for changes", "cert", s.cert.Name())
	done := make(chan struct{})
	go func() { s.cert.Run(ctx, 1); close(done) }()
	s.controller.Run(1, ctx.Done())
	<-done
}
