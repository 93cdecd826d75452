package metrics

import (
	"crypto/tls"
	"crypto/x509"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCertificateTTL(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := func(d time.Duration) *tls.Certificate {
		return &tls.Certificate{Leaf: &x509.Certificate{NotAfter: now.Add(d)}}
	}
	for _, tc := range []struct {
		name string
		c    *tls.Certificate
		want float64
	}{
		{"none", nil, math.Inf(1)},
		{"not parsed", &tls.Certificate{}, math.Inf(1)},
		{"an hour left", leaf(time.Hour + 500*time.Millisecond), 3600},
		{"expired", leaf(-90 * time.Second), -90},
	} {
		if got := certificateTTL(tc.c, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCertificateMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	CertificateRenewErrors(reg, false).Inc()
	CertificateRenewErrors(reg, true)
	ServingCertificateRotationAge(reg).Observe(120)
	for _, serving := range []bool{false, true} {
		if err := RegisterCertificateTTL(reg, serving, func() *tls.Certificate { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP kubelet_certificate_manager_client_expiration_renew_errors [ALPHA] Counter of certificate renewal errors.
# TYPE kubelet_certificate_manager_client_expiration_renew_errors counter
kubelet_certificate_manager_client_expiration_renew_errors 1
# HELP kubelet_certificate_manager_client_ttl_seconds [ALPHA] Gauge of the TTL (time-to-live) of the Kubelet's client certificate. The value is in seconds until certificate expiry (negative if already expired). If client certificate is invalid or unused, the value will be +INF.
# TYPE kubelet_certificate_manager_client_ttl_seconds gauge
kubelet_certificate_manager_client_ttl_seconds +Inf
# HELP kubelet_server_expiration_renew_errors [ALPHA] Counter of certificate renewal errors.
# TYPE kubelet_server_expiration_renew_errors counter
kubelet_server_expiration_renew_errors 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"kubelet_certificate_manager_client_expiration_renew_errors", "kubelet_certificate_manager_client_ttl_seconds", "kubelet_server_expiration_renew_errors"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "kubelet_certificate_manager_server_rotation_seconds", "kubelet_certificate_manager_server_ttl_seconds"); err != nil || n != 2 {
		t.Errorf("serving rotation and TTL metrics: %d series (%v), want 2", n, err)
	}
}
