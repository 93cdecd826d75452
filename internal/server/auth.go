package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/clock"
)

// ErrNeedsAPIServer is returned when the configuration asks for webhook
// authentication or authorization but there is no API server to ask,
// i.e. berth runs standalone.
var ErrNeedsAPIServer = errors.New("webhook authentication or authorization needs an API server (--kubeconfig)")

// AuthOptions configures authentication and authorization of the kubelet
// API, as the KubeletConfiguration's authentication and authorization
// fields do.
type AuthOptions struct {
	// NodeName is the name authorization checks are made against
	// (resource nodes, name NodeName).
	NodeName       string
	Authentication kubeletconfig.KubeletAuthentication
	Authorization  kubeletconfig.KubeletAuthorization
	// TokenReviews and SubjectAccessReviews reach the API server; nil when
	// standalone. Typically clientset.AuthenticationV1() and
	// clientset.AuthorizationV1().
	TokenReviews         authenticationclient.AuthenticationV1Interface
	SubjectAccessReviews authorizationclient.AuthorizationV1Interface
}

// webhookRetryBackoff is upstream's DefaultAuthWebhookRetryBackoff.
func webhookRetryBackoff() wait.Backoff {
	return wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// Auth authenticates and authorizes requests to the kubelet API as
// upstream's kubelet does: x509 client certificates, bearer tokens checked
// with TokenReview, anonymous requests only when enabled; then a
// SubjectAccessReview on the node's subresource for the request path, or
// allow all.
type Auth struct {
	nodeName      string
	authenticator *authenticator
	authorizer    authorizer
	// clientCA follows authentication.x509.clientCAFile; nil without one.
	clientCA *watchedFiles[x509.CertPool]
}

// NewAuth builds the authenticator and authorizer. The client CA file, if
// any, is read now and reloaded by Run when it changes.
func NewAuth(opts AuthOptions) (*Auth, error) {
	return newAuth(opts, clock.RealClock{}, webhookRetryBackoff())
}

// newAuth is NewAuth with the clock the caches and file checks use and
// the webhooks' retry backoff.
func newAuth(opts AuthOptions, clk clock.WithTicker, backoff wait.Backoff) (*Auth, error) {
	a := &Auth{nodeName: opts.NodeName, authenticator: &authenticator{}}
	authn := opts.Authentication
	a.authenticator.anonymous = authn.Anonymous.Enabled != nil && *authn.Anonymous.Enabled
	if f := authn.X509.ClientCAFile; f != "" {
		ca, err := newWatchedFiles("client CA bundle", []string{f}, loadCABundle, clk)
		if err != nil {
			return nil, fmt.Errorf("client CA file %s: %w", f, err)
		}
		a.clientCA = ca
		a.authenticator.methods = append(a.authenticator.methods, x509Method(ca.get))
	}
	if authn.Webhook.Enabled != nil && *authn.Webhook.Enabled {
		if opts.TokenReviews == nil {
			return nil, fmt.Errorf("authentication.webhook.enabled: %w", ErrNeedsAPIServer)
		}
		tr, err := newTokenReviewer(opts.TokenReviews.TokenReviews(), authn.Webhook.CacheTTL.Duration, backoff, clk)
		if err != nil {
			return nil, fmt.Errorf("authentication: %w", err)
		}
		a.authenticator.methods = append(a.authenticator.methods, bearerMethod(tr.check), websocketMethod(tr.check))
	}
	if len(a.authenticator.methods) == 0 && !a.authenticator.anonymous {
		return nil, errors.New("authentication: no authentication method configured")
	}

	authz := opts.Authorization
	switch authz.Mode {
	case kubeletconfig.KubeletAuthorizationModeAlwaysAllow:
		a.authorizer = alwaysAllow{}
	case kubeletconfig.KubeletAuthorizationModeWebhook:
		if opts.SubjectAccessReviews == nil {
			return nil, fmt.Errorf("authorization.mode Webhook: %w", ErrNeedsAPIServer)
		}
		a.authorizer = newSARAuthorizer(opts.SubjectAccessReviews.SubjectAccessReviews(),
			authz.Webhook.CacheAuthorizedTTL.Duration, authz.Webhook.CacheUnauthorizedTTL.Duration, backoff, clk)
	case "":
		return nil, errors.New("authorization: no mode given")
	default:
		return nil, fmt.Errorf("authorization: unknown mode %q", authz.Mode)
	}
	return a, nil
}

// ClientCA returns the CA pool client certificates are verified against,
// as it is now, for the TLS handshake to advertise; nil without a client
// CA file.
func (a *Auth) ClientCA() func() *x509.CertPool {
	if a.clientCA == nil {
		return nil
	}
	return a.clientCA.get
}

// Run reloads the client CA file on change until ctx ends.
func (a *Auth) Run(ctx context.Context) {
	if a.clientCA == nil {
		<-ctx.Done()
		return
	}
	a.clientCA.run(ctx)
}

// Filter lets through to h only requests that are authenticated and
// authorized: 401 for a request without valid credentials, 403 for one its
// user may not make, 500 when authorization itself failed. The messages
// are upstream's.
func (a *Auth) Filter(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger := klog.FromContext(r.Context())
		u, ok, err := a.authenticator.authenticate(r)
		if err != nil {
			logger.Error(err, "Unable to authenticate the request due to an error")
		}
		if err != nil || !ok {
			writeText(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		// The token stays here: nothing behind the filter, the runtime's
		// streaming server least of all, needs it.
		r.Header.Del("Authorization")

		attrs := RequestAttributes(a.nodeName, u, r)
		subresources := make([]string, 0, len(attrs))
		for _, attr := range attrs {
			subresources = append(subresources, attr.Subresource)
		}
		logger.V(5).Info("Node request attributes", "user", u.Name, "verb", attrs[0].Verb, "resource", attrs[0].Resource, "subresource(s)", subresources)
		for _, attr := range attrs {
			allowed, err := a.authorizer.authorize(r.Context(), attr)
			if err != nil {
				logger.Error(err, "Authorization error", "user", u.Name, "verb", attr.Verb, "resource", attr.Resource, "subresource", attr.Subresource)
				writeText(w, http.StatusInternalServerError, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)", u.Name, attr.Verb, attr.Resource, attr.Subresource))
				return
			}
			if allowed {
				h.ServeHTTP(w, r)
				return
			}
		}
		logger.V(2).Info("Forbidden", "user", u.Name, "verb", attrs[0].Verb, "resource", attrs[0].Resource, "subresource(s)", subresources)
		writeText(w, http.StatusForbidden, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%v)\n", u.Name, attrs[0].Verb, attrs[0].Resource, subresources))
	})
}

// Request paths that map to their own node subresource (upstream's).
const (
	statsPath       = "/stats/"
	metricsPath     = "/metrics"
	logsPath        = "/logs/"
	checkpointPath  = "/checkpoint/"
	statuszPath     = "/statusz"
	flagzPath       = "/flagz"
	podsPath        = "/pods"
	allocatedPods   = "/allocatedPods"
	healthzPath     = "/healthz"
	configzPath     = "/configz"
	runningPodsPath = "/runningpods/"
)

// isSubpath reports whether subpath is path or below it.
func isSubpath(subpath, path string) bool {
	path = strings.TrimSuffix(path, "/")
	return subpath == path || (strings.HasPrefix(subpath, path) && subpath[len(path)] == '/')
}

// RequestAttributes returns what a request is authorized as, upstream's
// mapping (pkg/kubelet/server/auth.go, with the fine-grained checks that
// are GA since 1.36): resource nodes, name nodeName, the verb from the
// HTTP method, and the subresource from the path:
//
//	/stats/*                stats
//	/metrics, /metrics/*    metrics
//	/logs/*                 log
//	/checkpoint/*           checkpoint
//	/statusz                statusz
//	/flagz                  configz
//	/pods, /runningpods/    pods, then proxy
//	/healthz                healthz, then proxy
//	/configz                configz, then proxy
//	anything else           proxy (exec, attach, portForward, run, containerLogs, ...)
//
// When several are returned, the request is allowed if any is.
func RequestAttributes(nodeName string, u *User, r *http.Request) []Attributes {
	verb := ""
	switch r.Method {
	case http.MethodPost:
		verb = "create"
	case http.MethodGet:
		verb = "get"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	}
	path := r.URL.Path
	var subresources []string
	switch {
	case isSubpath(path, allocatedPods), isSubpath(path, podsPath), isSubpath(path, runningPodsPath):
		subresources = append(subresources, "pods")
	case isSubpath(path, healthzPath):
		subresources = append(subresources, "healthz")
	case isSubpath(path, configzPath):
		subresources = append(subresources, "configz")
	}
	switch {
	case isSubpath(path, statsPath):
		subresources = append(subresources, "stats")
	case isSubpath(path, metricsPath):
		subresources = append(subresources, "metrics")
	case isSubpath(path, logsPath):
		subresources = append(subresources, "log")
	case isSubpath(path, checkpointPath):
		subresources = append(subresources, "checkpoint")
	case isSubpath(path, statuszPath):
		subresources = append(subresources, "statusz")
	case isSubpath(path, flagzPath):
		subresources = append(subresources, "configz")
	default:
		subresources = append(subresources, "proxy")
	}
	attrs := make([]Attributes, 0, len(subresources))
	for _, sub := range subresources {
		attrs = append(attrs, Attributes{
			User:        u,
			Verb:        verb,
			APIVersion:  "v1",
			Resource:    "nodes",
			Subresource: sub,
			Name:        nodeName,
			Path:        path,
		})
	}
	return attrs
}

// writeText writes a plain-text response.
func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprint(w, msg)
}
