package metrics

import (
	"crypto/tls"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// certificateRotationBuckets are upstream's for the age of a rotated
// serving certificate: a minute to four years.
var certificateRotationBuckets = []float64{60, 3600, 14400, 86400, 604800, 2592000, 7776000, 15552000, 31104000, 124416000}

// CertificateRenewErrors counts failed certificate requests of a
// certificate manager (the client's with rotateCertificates,
// kubelet_certificate_manager_client_expiration_renew_errors; the serving
// one's with serverTLSBootstrap, kubelet_server_expiration_renew_errors).
func CertificateRenewErrors(reg prometheus.Registerer, serving bool) prometheus.Counter {
	opts := prometheus.CounterOpts{
		Namespace: subsystem, Subsystem: "certificate_manager", Name: "client_expiration_renew_errors",
		Help: alpha("Counter of certificate renewal errors."),
	}
	if serving {
		opts = prometheus.CounterOpts{Subsystem: subsystem, Name: "server_expiration_renew_errors", Help: alpha("Counter of certificate renewal errors.")}
	}
	c := prometheus.NewCounter(opts)
	reg.MustRegister(c)
	return c
}

// ServingCertificateRotationAge is
// kubelet_certificate_manager_server_rotation_seconds: how long the
// previous serving certificate lived before it was rotated.
func ServingCertificateRotationAge(reg prometheus.Registerer) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Subsystem: subsystem, Name: "certificate_manager_server_rotation_seconds",
		Help:    alpha("Histogram of the number of seconds the previous certificate lived before being rotated."),
		Buckets: certificateRotationBuckets,
	})
	reg.MustRegister(h)
	return h
}

// RegisterCertificateTTL registers upstream's gauge of the time left on
// the current client (kubelet_certificate_manager_client_ttl_seconds) or
// serving (kubelet_certificate_manager_server_ttl_seconds) certificate,
// read from current at each scrape.
func RegisterCertificateTTL(reg prometheus.Registerer, serving bool, current func() *tls.Certificate) error {
	name, help := "certificate_manager_client_ttl_seconds",
		"Gauge of the TTL (time-to-live) of the Kubelet's client certificate. The value is in seconds until certificate expiry (negative if already expired). If client certificate is invalid or unused, the value will be +INF."
	if serving {
		name, help = "certificate_manager_server_ttl_seconds",
			"Gauge of the shortest TTL (time-to-live) of the Kubelet's serving certificate. The value is in seconds until certificate expiry (negative if already expired). If serving certificate is invalid or unused, the value will be +INF."
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Subsystem: subsystem, Name: name, Help: alpha(help)},
		func() float64 { return certificateTTL(current(), time.Now()) })
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register %s_%s: %w", subsystem, name, err)
	}
	return nil
}

// certificateTTL is whole seconds until c expires, negative once it has,
// +Inf without a certificate, as upstream reports it.
func certificateTTL(c *tls.Certificate, now time.Time) float64 {
	if c == nil || c.Leaf == nil {
		return math.Inf(1)
	}
	return math.Trunc(c.Leaf.NotAfter.Sub(now).Seconds())
}
