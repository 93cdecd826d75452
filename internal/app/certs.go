package app

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/berth-dev/berth/internal/certificate"
	"github.com/berth-dev/berth/internal/metrics"
	"github.com/berth-dev/berth/internal/nodestatus"
)

// nodeCredentials sets up the node's API credentials (TLS bootstrap,
// client certificate rotation) and returns the REST config the API clients
// are built from; run starts the rotation, whose failure ends berth
// through errc.
func nodeCredentials(ctx context.Context, opts Options, obs *observability, run func(func()), errc chan<- error) (*rest.Config, error) {
	co := certificate.ClientOptions{
		Kubeconfig:          opts.Kubeconfig,
		BootstrapKubeconfig: opts.BootstrapKubeconfig,
		CertDir:             opts.CertDir,
		NodeName:            opts.NodeName,
		Rotate:              opts.RotateCertificates,
	}
	// Upstream's certificate manager metrics exist only with rotation.
	if opts.RotateCertificates {
		co.RenewErrors = metrics.CertificateRenewErrors(obs.berth, false)
	}
	creds, err := certificate.NewClient(ctx, co)
	if err != nil {
		return nil, fmt.Errorf("node credentials: %w", err)
	}
	if opts.RotateCertificates {
		if err := metrics.RegisterCertificateTTL(obs.berth, false, creds.Current); err != nil {
			return nil, err
		}
	}
	run(func() {
		if err := creds.Run(ctx); err != nil {
			errc <- fmt.Errorf("client certificate rotation: %w", err)
		}
	})
	return creds.Config(), nil
}

// servingCertificate is the kubelet API's certificate from the
// certificates API (serverTLSBootstrap), for the Node's published
// addresses; nil when not configured.
func servingCertificate(ctx context.Context, o Options, api *apiComponents, obs *observability, run func(func())) (*certificate.Serving, error) {
	if !o.ServerTLSBootstrap || api == nil {
		return nil, nil
	}
	s, err := certificate.NewServing(ctx, certificate.ServingOptions{
		Client:    api.client,
		NodeName:  o.NodeName,
		CertDir:   o.CertDir,
		CertFile:  o.TLSCertFile,
		KeyFile:   o.TLSPrivateKeyFile,
		Addresses: publishedAddresses(api.published),

		RenewErrors: metrics.CertificateRenewErrors(obs.berth, true),
		RotationAge: metrics.ServingCertificateRotationAge(obs.berth),
	})
	if err != nil {
		return nil, err
	}
	if err := metrics.RegisterCertificateTTL(obs.berth, true, s.Current); err != nil {
		return nil, err
	}
	run(func() { s.Run(ctx) })
	return s, nil
}

// publishedAddresses are the addresses of the Node berth last published.
func publishedAddresses(p *nodestatus.Published) func() []v1.NodeAddress {
	return func() []v1.NodeAddress {
		if n, ok := p.Node(); ok {
			return n.Status.Addresses
		}
		return nil
	}
}
