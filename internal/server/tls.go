package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/utils/clock"
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
	// Certificates, when set, gives the serving certificate instead of the
	// files (serverTLSBootstrap: a certificate from the certificates API,
	// rotated by its owner). Until it has one, handshakes fail.
	Certificates CertificateSource
}

// CertificateSource is the current serving certificate; nil when there is
// none yet.
type CertificateSource interface {
	Current() *tls.Certificate
}

// errNoServingCertificate is upstream's message for a handshake before the
// serving certificate has been issued.
var errNoServingCertificate = errors.New("no serving certificate available for the kubelet")

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
	config *tls.Config
	// current is the serving certificate: from cert, the watched files, or
	// from TLSOptions.Certificates (then cert is nil).
	current func() *tls.Certificate
	cert    *watchedFiles[tls.Certificate]
	// base is the per-connection config without certificate and client
	// CAs; clientCAs returns the current client CA pool, nil without one.
	base      *tls.Config
	clientCAs func() *x509.CertPool
	// built is the per-connection config last built from base, kept
	// until the certificate or client CA pool changes.
	built atomic.Pointer[builtConfig]
}

type builtConfig struct {
	cert   *tls.Certificate
	pool   *x509.CertPool
	config *tls.Config
}

// loadKeyPair makes a serving certificate from its PEM certificate and key.
func loadKeyPair(contents [][]byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(contents[0], contents[1])
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

// newServingTLS loads the serving certificate (and, when clientCAs is not
// nil, asks clients for certificates, advertising the CAs it returns) and
// checks the TLS settings. Client certificates are requested but not
// required, nor verified in the handshake: the authenticator verifies
// them, so that token and anonymous requests still reach it.
func newServingTLS(opts TLSOptions, clientCAs func() *x509.CertPool) (*servingTLS, error) {
	return newServingTLSWithClock(opts, clientCAs, clock.RealClock{})
}

func newServingTLSWithClock(opts TLSOptions, clientCAs func() *x509.CertPool, clk clock.WithTicker) (*servingTLS, error) {
	minVersion, err := cliflag.TLSVersion(opts.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("tlsMinVersion: %w", err)
	}
	suites, err := cliflag.TLSCipherSuites(opts.CipherSuites)
	if err != nil {
		return nil, fmt.Errorf("tlsCipherSuites: %w", err)
	}
	s := &servingTLS{clientCAs: clientCAs}
	if opts.Certificates != nil {
		s.current = opts.Certificates.Current
	} else {
		certFile, keyFile, err := servingFiles(opts)
		if err != nil {
			return nil, err
		}
		if s.cert, err = newWatchedFiles("serving certificate", []string{certFile, keyFile}, loadKeyPair, clk); err != nil {
			return nil, err
		}
		s.current = s.cert.get
	}
	base := &tls.Config{
		MinVersion:   minVersion,
		CipherSuites: suites,
		// HTTP/1.1 only: exec, attach and port-forward upgrade the
		// connection, which HTTP/2 cannot.
		NextProtos: []string{"http/1.1"},
	}
	if clientCAs != nil {
		base.ClientAuth = tls.RequestClientCert
	}
	s.base = base
	s.config = &tls.Config{
		MinVersion:         minVersion,
		CipherSuites:       suites,
		NextProtos:         base.NextProtos,
		GetConfigForClient: s.configForClient,
	}
	return s, nil
}

// configForClient is the config for a new connection: base with the
// current certificate and client CAs.
func (s *servingTLS) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	cert := s.current()
	if cert == nil {
		return nil, errNoServingCertificate
	}
	var pool *x509.CertPool
	if s.clientCAs != nil {
		pool = s.clientCAs()
	}
	if b := s.built.Load(); b != nil && b.cert == cert && b.pool == pool {
		return b.config, nil
	}
	c := s.base.Clone()
	c.Certificates = []tls.Certificate{*cert}
	c.ClientCAs = pool
	s.built.Store(&builtConfig{cert: cert, pool: pool, config: c})
	return c, nil
}

// run follows the certificate files, if served from files, until ctx ends.
func (s *servingTLS) run(ctx context.Context) {
	if s.cert != nil {
		s.cert.run(ctx)
	}
}
