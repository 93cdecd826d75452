package certificate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/connrotation"
	"k8s.io/klog/v2"
)

// ClientOptions configure the node's API credentials.
type ClientOptions struct {
	Kubeconfig          string // --kubeconfig: read, and written after TLS bootstrap
	BootstrapKubeconfig string // --bootstrap-kubeconfig; empty: no TLS bootstrap
	CertDir             string // --cert-dir: kubelet-client-*.pem
	NodeName            string
	// Rotate is rotateCertificates: the client certificate is renewed
	// through the certificates API, and bootstrap happens in the
	// background instead of before anything starts.
	Rotate bool
	// RenewErrors, if set, counts failed certificate requests (with Rotate).
	RenewErrors Counter
}

// Counter and Histogram are the metrics the certificate managers record.
type Counter interface{ Inc() }
type Histogram interface{ Observe(float64) }

// Client holds the node's API credentials: the REST config every API
// client is built from and, with rotation, the certificate manager behind
// it.
type Client struct {
	config *rest.Config
	// With rotation only:
	manager certificate.Manager
	dialer  *connrotation.Dialer
	// canBootstrap: a bootstrap kubeconfig can replace an expired certificate.
	canBootstrap bool
}

// NewClient sets up the node's credentials as upstream's kubelet does.
// Without rotation, a TLS bootstrap that is needed happens here and blocks
// until the certificate is issued (or ctx ends). With rotation, the
// certificate is requested once Run starts; until it is issued the API
// clients present none.
func NewClient(ctx context.Context, o ClientOptions) (*Client, error) {
	if !o.Rotate {
		if o.BootstrapKubeconfig != "" {
			if err := bootstrapClientCert(ctx, o); err != nil {
				return nil, fmt.Errorf("TLS bootstrap: %w", err)
			}
		}
		cfg, err := loadKubeconfig(o.Kubeconfig)
		if err != nil {
			return nil, err
		}
		return &Client{config: cfg}, nil
	}
	return newRotatingClient(ctx, o)
}

// Config is the REST config for API clients; callers may change their copy.
func (c *Client) Config() *rest.Config { return rest.CopyConfig(c.config) }

// Current is the client certificate presented now; nil without rotation
// (the kubeconfig's is used), before the first one is issued, or when it
// has expired.
func (c *Client) Current() *tls.Certificate {
	if c.manager == nil {
		return nil
	}
	return c.manager.Current()
}

// newRotatingClient is upstream's rotation set-up (LoadClientConfig,
// buildClientCertificateManager, UpdateTransport): a certificate manager
// over the cert dir's kubelet-client store, and a transport that presents
// its current certificate.
func newRotatingClient(ctx context.Context, o ClientOptions) (*Client, error) {
	logger := klog.FromContext(ctx)
	state, why, err := readKubeconfigState(o.Kubeconfig, time.Now())
	if err != nil {
		return nil, err
	}
	pemPath := currentPath(o.CertDir, clientPrefix)
	var (
		startCfg *rest.Config // requests certificates while there is no valid one
		userCfg  *rest.Config // the kubeconfig's, once it points at a certificate
	)
	if needsBootstrap(state, o.BootstrapKubeconfig) {
		logger.Info("Client certificate rotation is on; requesting a certificate with the bootstrap kubeconfig in the background",
			"kubeconfig", o.Kubeconfig, "state", state.String(), "reason", why, "bootstrapKubeconfig", o.BootstrapKubeconfig)
		if startCfg, err = loadKubeconfig(o.BootstrapKubeconfig); err != nil {
			return nil, fmt.Errorf("bootstrap kubeconfig: %w", err)
		}
		// The kubeconfig is written now, pointing at the store's current
		// file, which the manager fills once the certificate is issued.
		userCfg = rest.AnonymousClientConfig(startCfg)
		userCfg.CertFile, userCfg.KeyFile = pemPath, pemPath
		if err := writeBootstrappedKubeconfig(startCfg, o.Kubeconfig, pemPath); err != nil {
			return nil, err
		}
	} else {
		if userCfg, err = loadKubeconfig(o.Kubeconfig); err != nil {
			return nil, err
		}
		startCfg = userCfg
	}
	// The kubeconfig's own certificate files are the store's fallback, and
	// certificate data inline in it (kubeadm's kubelet.conf on a control
	// plane node) seeds the store and is rotated out at once.
	store, err := certificate.NewFileStoreWithLogger(logger, clientPrefix, o.CertDir, o.CertDir, userCfg.CertFile, userCfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate store in %s: %w", o.CertDir, err)
	}
	cfg := &certificate.Config{
		Ctx: &ctx,
		ClientsetFn: func(current *tls.Certificate) (kubernetes.Interface, error) {
			cfg := startCfg
			switch credentialsFor(current != nil, o.BootstrapKubeconfig != "") {
			case useCurrent:
				cfg = userCfg
			case useBootstrap:
				// Read again: it may have been renewed since berth started.
				if cfg, err = loadKubeconfig(o.BootstrapKubeconfig); err != nil {
					return nil, fmt.Errorf("bootstrap kubeconfig: %w", err)
				}
			}
			return kubernetes.NewForConfig(cfg)
		},
		Template:                &x509.CertificateRequest{Subject: nodeSubject(o.NodeName)},
		SignerName:              certificatesv1.KubeAPIServerClientKubeletSignerName,
		GetUsages:               certificate.DefaultKubeletClientGetUsages,
		BootstrapCertificatePEM: userCfg.CertData,
		BootstrapKeyPEM:         userCfg.KeyData,
		CertificateStore:        store,
		Name:                    clientPrefix,
	}
	if o.RenewErrors != nil {
		cfg.CertificateRenewFailure = o.RenewErrors
	}
	manager, err := certificate.NewManager(cfg)
	if err != nil {
		return nil, fmt.Errorf("client certificate manager: %w", err)
	}
	restCfg, dialer, err := rotatingConfig(userCfg, manager.Current)
	if err != nil {
		return nil, err
	}
	return &Client{config: restCfg, manager: manager, dialer: dialer, canBootstrap: o.BootstrapKubeconfig != ""}, nil
}

// credentials are what a certificate request is made with.
type credentials int

const (
	useCurrent   credentials = iota // the current client certificate
	useBootstrap                    // the bootstrap kubeconfig
	useStartup                      // what berth started with
)

// credentialsFor chooses the credentials of a certificate request: the
// current certificate while it is valid; without one (it expired), the
// bootstrap kubeconfig when there is one, else what berth started with.
// Upstream goes back to the bootstrap kubeconfig only after it exits and
// is restarted; berth does so in place.
func credentialsFor(haveCert, haveBootstrap bool) credentials {
	switch {
	case haveCert:
		return useCurrent
	case haveBootstrap:
		return useBootstrap
	default:
		return useStartup
	}
}

// currentPath is the store's link to its current pair, as client-go's
// FileStore names it.
func currentPath(certDir, prefix string) string {
	return filepath.Join(certDir, prefix+"-current.pem")
}
