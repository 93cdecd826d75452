package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	cliflag "k8s.io/component-base/cli/flag"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

// applyStandaloneAuthDefaults turns off what needs an API server, unless the
// user asked for it: the token webhook and Webhook authorization. What is
// left lets in only clients with a certificate from clientCAFile (or
// anonymous ones, if the user enabled them); see the package documentation.
// set holds the JSON paths the user set.
func applyStandaloneAuthDefaults(cfg *kubeletconfig.KubeletConfiguration, set []string) {
	if !slices.Contains(set, "authentication.webhook.enabled") {
		cfg.Authentication.Webhook.Enabled = ptr.To(false)
	}
	if !slices.Contains(set, "authorization.mode") {
		cfg.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeAlwaysAllow
	}
}

// validateStandaloneAuth rejects webhooks the user asked for without an API
// server to call, which upstream only finds out when starting its server.
func validateStandaloneAuth(cfg *kubeletconfig.KubeletConfiguration) []error {
	var errs []error
	if w := cfg.Authentication.Webhook.Enabled; w != nil && *w {
		errs = append(errs, errors.New("authentication.webhook.enabled (--authentication-token-webhook) needs --kubeconfig: standalone, there is no API server to review tokens"))
	}
	if cfg.Authorization.Mode == kubeletconfig.KubeletAuthorizationModeWebhook {
		errs = append(errs, errors.New("authorization.mode (--authorization-mode) Webhook needs --kubeconfig: standalone, there is no API server to review access; use AlwaysAllow"))
	}
	return errs
}

// validateServer checks the settings of the kubelet API and healthz
// servers: addresses, TLS, authentication and authorization.
func validateServer(cfg *kubeletconfig.KubeletConfiguration) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	if cfg.HealthzPort != nil && (*cfg.HealthzPort < 0 || *cfg.HealthzPort > 65535) {
		bad("healthzPort (--healthz-port) %d must be between 0 and 65535 (0 disables it)", *cfg.HealthzPort)
	}
	if net.ParseIP(cfg.HealthzBindAddress) == nil {
		bad("healthzBindAddress (--healthz-bind-address) %q is not an IP address", cfg.HealthzBindAddress)
	}

	// Upstream generates a pair only when both are missing; one without the
	// other would fail when the server starts.
	if (cfg.TLSCertFile == "") != (cfg.TLSPrivateKeyFile == "") {
		bad("tlsCertFile (--tls-cert-file) and tlsPrivateKeyFile (--tls-private-key-file) must be given together")
	}
	if _, err := cliflag.TLSVersion(cfg.TLSMinVersion); err != nil {
		bad("tlsMinVersion (--tls-min-version) %q is not a TLS version, want one of %v", cfg.TLSMinVersion, cliflag.TLSPossibleVersions())
	}
	for _, name := range cfg.TLSCipherSuites {
		if _, err := cliflag.TLSCipherSuites([]string{name}); err != nil {
			bad("tlsCipherSuites (--tls-cipher-suites) %q is not a cipher suite Go supports", name)
		}
	}

	switch cfg.Authorization.Mode {
	case kubeletconfig.KubeletAuthorizationModeAlwaysAllow, kubeletconfig.KubeletAuthorizationModeWebhook:
	default:
		bad("authorization.mode (--authorization-mode) %q is not supported, want AlwaysAllow or Webhook", cfg.Authorization.Mode)
	}
	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{"authentication.webhook.cacheTTL (--authentication-token-webhook-cache-ttl)", cfg.Authentication.Webhook.CacheTTL.Duration},
		{"authorization.webhook.cacheAuthorizedTTL (--authorization-webhook-cache-authorized-ttl)", cfg.Authorization.Webhook.CacheAuthorizedTTL.Duration},
		{"authorization.webhook.cacheUnauthorizedTTL (--authorization-webhook-cache-unauthorized-ttl)", cfg.Authorization.Webhook.CacheUnauthorizedTTL.Duration},
	} {
		if d.val < 0 {
			bad("%s must not be negative, got %v", d.name, d.val)
		}
	}
	return errs
}

// tlsWarnings reports, as upstream logs them, cipher suites that are
// insecure or that TLS 1.3 ignores. The configuration was validated.
func tlsWarnings(cfg *kubeletconfig.KubeletConfiguration) []Warning {
	if len(cfg.TLSCipherSuites) == 0 {
		return nil
	}
	var ws []Warning
	insecure := cliflag.InsecureTLSCipherNames()
	var found []string
	for _, name := range cfg.TLSCipherSuites {
		if slices.Contains(insecure, name) {
			found = append(found, name)
		}
	}
	if len(found) > 0 {
		ws = append(ws, Warning{Msg: "Warning: insecure TLS cipher suites in tlsCipherSuites", KeysAndValues: []any{"ciphers", found}})
	}
	if v, _ := cliflag.TLSVersion(cfg.TLSMinVersion); v == tls.VersionTLS13 {
		ws = append(ws, Warning{
			Msg:           "Warning: TLS 1.3 cipher suites are not configurable; tlsCipherSuites is ignored",
			KeysAndValues: []any{"tlsMinVersion", cfg.TLSMinVersion},
		})
	}
	return ws
}
