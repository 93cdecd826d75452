package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// A cert that expires sooner than this is replaced; `up` runs certs every
	// time, so a long-lived state dir renews its certs by itself.
	minRemaining = 24 * time.Hour
	// Certs start an hour early: a clock slightly behind ours still accepts them.
	backdate = time.Hour
)

type subject struct {
	CN string
	O  []string
}

// leafSpec describes one cert signed by the CA.
type leafSpec struct {
	stem    string
	subject subject
	server  bool // a serving cert; otherwise a client cert
	dns     []string
	ips     []net.IP
}

type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func paths(dir, stem string) (crt, key string) {
	return filepath.Join(dir, stem+".crt"), filepath.Join(dir, stem+".key")
}

// ensureCA loads the CA, or makes a new one when it is missing, broken or
// about to expire. Leaves signed by an old CA then fail ensureLeaf's
// signature check and are replaced as well.
func ensureCA(dir string, now time.Time) (authority, error) {
	crtPath, keyPath := paths(dir, "ca")
	if cert, key, err := loadPair(crtPath, keyPath); err == nil && cert.IsCA && fresh(cert, now) {
		return authority{cert: cert, key: key}, nil
	}
	key, err := newKey()
	if err != nil {
		return authority{}, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "berth-dev-ca"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return authority{}, fmt.Errorf("CA: %w", err)
	}
	if err := writePair(crtPath, keyPath, cert, key); err != nil {
		return authority{}, err
	}
	return authority{cert: cert, key: key}, nil
}

// ensureLeaf keeps the cert at dir/stem.crt if it still fits spec, and
// otherwise replaces it and its key.
func ensureLeaf(dir string, ca authority, spec leafSpec, now time.Time) error {
	crtPath, keyPath := paths(dir, spec.stem)
	if cert, _, err := loadPair(crtPath, keyPath); err == nil &&
		cert.CheckSignatureFrom(ca.cert) == nil && fresh(cert, now) && matches(cert, spec) {
		return nil
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	usage := x509.ExtKeyUsageClientAuth
	if spec.server {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: spec.subject.CN, Organization: spec.subject.O},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(leafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames:    spec.dns,
		IPAddresses: spec.ips,
	}
	cert, err := sign(tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return err
	}
	return writePair(crtPath, keyPath, cert, key)
}

// ensureKeyPair keeps a private key and its PEM public key, or makes both.
func ensureKeyPair(keyPath, pubPath string) error {
	if key, err := loadKey(keyPath); err == nil {
		if pub, err := loadPublicKey(pubPath); err == nil && key.Public().(*ecdsa.PublicKey).Equal(pub) {
			return nil
		}
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

func fresh(cert *x509.Certificate, now time.Time) bool {
	return !now.Before(cert.NotBefore) && now.Add(minRemaining).Before(cert.NotAfter)
}

func matches(cert *x509.Certificate, spec leafSpec) bool {
	wantUsage := x509.ExtKeyUsageClientAuth
	if spec.server {
		wantUsage = x509.ExtKeyUsageServerAuth
	}
	ips := func(l []net.IP) []string {
		s := make([]string, len(l))
		for i, ip := range l {
			s[i] = ip.String()
		}
		slices.Sort(s)
		return s
	}
	return cert.Subject.CommonName == spec.subject.CN &&
		slices.Equal(sorted(cert.Subject.Organization), sorted(spec.subject.O)) &&
		slices.Equal(sorted(cert.DNSNames), sorted(spec.dns)) &&
		slices.Equal(ips(cert.IPAddresses), ips(spec.ips)) &&
		slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{wantUsage})
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// loadPair reads a cert and its key and checks that they belong together.
func loadPair(crtPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cert, err := loadCert(crtPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		return nil, nil, fmt.Errorf("%s does not match %s", keyPath, crtPath)
	}
	return cert, key, nil
}

func loadCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	der, err := readPEM(path, "EC PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	return x509.ParseECPrivateKey(der)
}

func loadPublicKey(path string) (*ecdsa.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", path)
	}
	return ec, nil
}

func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("%s: no %s PEM block", path, typ)
	}
	return block.Bytes, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// writePair writes the key before the cert: a crash between the two leaves a
// cert that does not match its key, which loadPair rejects next time.
func writePair(crtPath, keyPath string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// writeFile replaces path atomically, so a reader never sees half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
