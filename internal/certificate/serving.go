package certificate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/certificate"
	netutils "k8s.io/utils/net"
)

// ServingOptions configure the kubelet API's certificate from the
// certificates API (serverTLSBootstrap).
type ServingOptions struct {
	Client   kubernetes.Interface // the node's API client
	NodeName string
	CertDir  string // kubelet-server-*.pem
	// CertFile and KeyFile (tlsCertFile, tlsPrivateKeyFile), when set, are
	// served until the first certificate is issued, as upstream's store
	// falls back to them.
	CertFile, KeyFile string
	// Addresses are the Node's status addresses, the certificate's SANs;
	// nothing is requested while they hold no IP address.
	Addresses func() []v1.NodeAddress
	// RenewErrors and RotationAge, if set, count failed requests and
	// record how long a certificate lived before it was replaced.
	RenewErrors Counter
	RotationAge Histogram
}

// Serving is the kubelet API's certificate from the certificates API.
type Serving struct {
	manager certificate.Manager
}

// NewServing reads the current serving certificate, if any; requests start
// with Run.
func NewServing(ctx context.Context, o ServingOptions) (*Serving, error) {
	store, err := certificate.NewFileStore(servingPrefix, o.CertDir, o.CertDir, o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate store in %s: %w", o.CertDir, err)
	}
	client := o.Client
	cfg := &certificate.Config{
		Ctx:              &ctx,
		ClientsetFn:      func(*tls.Certificate) (kubernetes.Interface, error) { return client, nil },
		GetTemplate:      func() *x509.CertificateRequest { return servingTemplate(o.NodeName, o.Addresses()) },
		SignerName:       certificatesv1.KubeletServingSignerName,
		GetUsages:        certificate.DefaultKubeletServingGetUsages,
		CertificateStore: store,
		Name:             servingPrefix,
	}
	if o.RenewErrors != nil {
		cfg.CertificateRenewFailure = o.RenewErrors
	}
	if o.RotationAge != nil {
		cfg.CertificateRotation = o.RotationAge
	}
	m, err := certificate.NewManager(cfg)
	if err != nil {
		return nil, fmt.Errorf("serving certificate manager: %w", err)
	}
	return &Serving{manager: m}, nil
}

// Current is the certificate to serve, nil until one is issued (or when it
// has expired).
func (s *Serving) Current() *tls.Certificate { return s.manager.Current() }

// Run requests and renews the serving certificate until ctx ends: when
// there is none, at 70-90 % of its lifetime, and when the Node's addresses
// are no longer all in it.
func (s *Serving) Run(ctx context.Context) {
	s.manager.Start()
	<-ctx.Done()
	s.manager.Stop()
}

// servingTemplate is the request for a serving certificate: the node's
// subject and its addresses as SANs; nil (request nothing yet) while the
// addresses have no IP, as upstream without AllowDNSOnlyNodeCSR.
func servingTemplate(nodeName string, addrs []v1.NodeAddress) *x509.CertificateRequest {
	names, ips := servingSANs(addrs)
	if len(ips) == 0 {
		return nil
	}
	return &x509.CertificateRequest{Subject: nodeSubject(nodeName), DNSNames: names, IPAddresses: ips}
}

// servingSANs are the DNS names and IPs of a Node's addresses, sorted and
// without duplicates, as upstream: a Hostname that is an IP counts as an IP;
// InternalIP and ExternalIP only when they parse; InternalDNS and
// ExternalDNS as names.
func servingSANs(addrs []v1.NodeAddress) ([]string, []net.IP) {
	var names, ipStrings []string
	for _, a := range addrs {
		if a.Address == "" {
			continue
		}
		ip := netutils.ParseIPSloppy(a.Address)
		switch a.Type {
		case v1.NodeHostName:
			if ip != nil {
				ipStrings = append(ipStrings, ip.String())
			} else {
				names = append(names, a.Address)
			}
		case v1.NodeInternalIP, v1.NodeExternalIP:
			if ip != nil {
				ipStrings = append(ipStrings, ip.String())
			}
		case v1.NodeInternalDNS, v1.NodeExternalDNS:
			names = append(names, a.Address)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	slices.Sort(ipStrings)
	ipStrings = slices.Compact(ipStrings)
	var ips []net.IP
	for _, s := range ipStrings {
		ips = append(ips, netutils.ParseIPSloppy(s))
	}
	return names, ips
}
