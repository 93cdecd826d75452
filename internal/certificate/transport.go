package certificate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/connrotation"
	"k8s.io/klog/v2"
)

const (
	// rotationCheckPeriod is how often the transport looks for a new
	// certificate, as upstream's; rotationFirstCheckPeriod until it has
	// its first one, so the node starts soon after the CSR is issued.
	rotationCheckPeriod      = 10 * time.Second
	rotationFirstCheckPeriod = time.Second
	// noCertificateLimit is upstream's exitAfter: how long berth runs
	// without a valid client certificate while the API server answers
	// before giving up, when it has no bootstrap kubeconfig to fall back
	// on, so that whoever restarts it can lay down new credentials.
	noCertificateLimit = 5 * time.Minute
)

// rotatingConfig is base without its own credentials, with a transport
// that presents current()'s certificate in every TLS handshake and dials
// through a dialer whose connections can all be closed at once.
func rotatingConfig(base *rest.Config, current func() *tls.Certificate) (*rest.Config, *connrotation.Dialer, error) {
	cfg := rest.AnonymousClientConfig(base)
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS configuration of the API client: %w", err)
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	tlsCfg.Certificates = nil
	tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if c := current(); c != nil {
			return c, nil
		}
		return &tls.Certificate{}, nil // none yet: the server sees an anonymous client
	}
	d := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	cfg.Transport = utilnet.SetTransportDefaults(&http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     tlsCfg,
		MaxIdleConnsPerHost: 25,
		DialContext:         d.DialContext,
	})
	// The transport carries the TLS settings; rest refuses both.
	cfg.TLSClientConfig = rest.TLSClientConfig{}
	return cfg, d, nil
}

// rotationWatch is what the transport knows of the certificates it has
// presented.
type rotationWatch struct {
	last          *tls.Certificate // the certificate connections were made with
	lastAvailable time.Time        // when a valid certificate was last seen
}

type rotationAction int

const (
	keepConnections  rotationAction = iota
	closeConnections                // the certificate changed: reconnect with the new one
	giveUp                          // no valid certificate for too long
)

// next decides what a look at the manager's current certificate (nil when
// there is none or it has expired) means at now.
func (w rotationWatch) next(cur *tls.Certificate, now time.Time, serverHealthy, canBootstrap bool) (rotationWatch, rotationAction) {
	if cur == nil {
		if !canBootstrap && serverHealthy && now.Sub(w.lastAvailable) > noCertificateLimit {
			return w, giveUp
		}
		return w, keepConnections
	}
	w.lastAvailable = now
	if cur == w.last {
		return w, keepConnections
	}
	w.last = cur
	return w, closeConnections
}

// Run renews the client certificate (with rotation) until ctx ends. When
// the certificate changes, every connection of the API clients is closed,
// so that requests and watches reconnect presenting the new one. It
// returns an error only when berth has had no valid certificate for
// noCertificateLimit, the API server answers, and there is no bootstrap
// kubeconfig to get a new one with.
func (c *Client) Run(ctx context.Context) error {
	if c.manager == nil {
		return nil
	}
	logger := klog.FromContext(ctx)
	c.manager.Start()
	defer c.manager.Stop()
	w := rotationWatch{last: c.manager.Current(), lastAvailable: time.Now()}
	for {
		period := rotationCheckPeriod
		if w.last == nil {
			period = rotationFirstCheckPeriod
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(period):
		}
		var act rotationAction
		w, act = w.next(c.manager.Current(), time.Now(), c.manager.ServerHealthy(), c.canBootstrap)
		switch act {
		case closeConnections:
			logger.Info("Certificate rotation detected, shutting down client connections to start using new credentials",
				"notAfter", notAfter(w.last))
			c.dialer.CloseAll()
		case giveUp:
			return errors.New("no valid client certificate and the API server is responsive: restart with new credentials or give --bootstrap-kubeconfig")
		}
	}
}

// notAfter is when a certificate expires, for logs.
func notAfter(c *tls.Certificate) any {
	if c == nil || c.Leaf == nil {
		return "unknown"
	}
	return c.Leaf.NotAfter
}
