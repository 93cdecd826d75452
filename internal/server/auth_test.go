package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

func TestRequestAttributes(t *testing.T) {
	tests := []struct {
		method, path string
		verb         string
		subresources []string
	}{
		{"GET", "/stats/summary", "get", []string{"stats"}},
		{"POST", "/stats/summary", "create", []string{"stats"}},
		{"GET", "/metrics", "get", []string{"metrics"}},
		{"GET", "/metrics/cadvisor", "get", []string{"metrics"}},
		{"GET", "/metrics/resource", "get", []string{"metrics"}},
		{"GET", "/metricsfoo", "get", []string{"proxy"}},
		{"GET", "/logs/", "get", []string{"log"}},
		{"GET", "/logs/syslog", "get", []string{"log"}},
		{"GET", "/pods", "get", []string{"pods", "proxy"}},
		{"GET", "/pods/", "get", []string{"pods", "proxy"}},
		{"GET", "/runningpods/", "get", []string{"pods", "proxy"}},
		{"GET", "/healthz", "get", []string{"healthz", "proxy"}},
		{"GET", "/healthz/syncloop", "get", []string{"healthz", "proxy"}},
		{"GET", "/configz", "get", []string{"configz", "proxy"}},
		{"GET", "/containerLogs/ns/pod/c", "get", []string{"proxy"}},
		{"POST", "/exec/ns/pod/c", "create", []string{"proxy"}},
		{"GET", "/exec/ns/pod/c", "get", []string{"proxy"}},
		{"POST", "/portForward/ns/pod", "create", []string{"proxy"}},
		{"POST", "/run/ns/pod/c", "create", []string{"proxy"}},
		{"PUT", "/debug/pprof/", "update", []string{"proxy"}},
		{"DELETE", "/checkpoint/ns/pod/c", "delete", []string{"checkpoint"}},
		{"PATCH", "/statusz", "patch", []string{"statusz"}},
	}
	u := &User{Name: "alice"}
	for _, tt := range tests {
		attrs := RequestAttributes("node-a", u, httptest.NewRequest(tt.method, tt.path, nil))
		var subs []string
		for _, a := range attrs {
			subs = append(subs, a.Subresource)
			if a.Verb != tt.verb || a.Resource != "nodes" || a.Name != "node-a" || a.APIVersion != "v1" ||
				a.User != u || a.Path != tt.path {
				t.Errorf("%s %s: attributes %+v", tt.method, tt.path, a)
			}
		}
		if !slices.Equal(subs, tt.subresources) {
			t.Errorf("%s %s: subresources %v, want %v", tt.method, tt.path, subs, tt.subresources)
		}
	}
}

// fakeAPIServer answers TokenReviews (token "good" is alice) and
// SubjectAccessReviews (alice may get nodes/stats; system:anonymous may
// get nodes/healthz).
type fakeAPIServer struct {
	mu           sync.Mutex
	tokenReviews int
	sars         []authzv1.SubjectAccessReviewSpec
	fail         bool
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		f.tokenReviews++
		var tr authnv1.TokenReview
		json.NewDecoder(r.Body).Decode(&tr)
		if tr.Spec.Token == "good" {
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "alice", Groups: []string{"devs"}}}
		}
		json.NewEncoder(w).Encode(&tr)
	case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
		var sar authzv1.SubjectAccessReview
		json.NewDecoder(r.Body).Decode(&sar)
		f.sars = append(f.sars, sar.Spec)
		ra := sar.Spec.ResourceAttributes
		switch {
		case sar.Spec.User == "alice" && ra.Subresource == "stats" && ra.Verb == "get" && ra.Resource == "nodes" && ra.Name == "node-a":
			sar.Status.Allowed = true
		case sar.Spec.User == "system:anonymous" && ra.Subresource == "healthz":
			sar.Status.Allowed = true
		}
		json.NewEncoder(w).Encode(&sar)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAPIServer) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenReviews, len(f.sars)
}

func webhookAuth(t *testing.T, api *fakeAPIServer, anonymous bool) *Auth {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	a, err := NewAuth(AuthOptions{
		NodeName: "node-a",
		Authentication: kubeletconfig.KubeletAuthentication{
			Anonymous: kubeletconfig.KubeletAnonymousAuthentication{Enabled: ptr.To(anonymous)},
			Webhook:   kubeletconfig.KubeletWebhookAuthentication{Enabled: ptr.To(true), CacheTTL: metav1.Duration{Duration: time.Minute}},
		},
		Authorization: kubeletconfig.KubeletAuthorization{
			Mode: kubeletconfig.KubeletAuthorizationModeWebhook,
			Webhook: kubeletconfig.KubeletWebhookAuthorization{
				CacheAuthorizedTTL:   metav1.Duration{Duration: time.Minute},
				CacheUnauthorizedTTL: metav1.Duration{Duration: time.Minute},
			},
		},
		TokenReviews:         client.AuthenticationV1(),
		SubjectAccessReviews: client.AuthorizationV1(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// okHandler stands behind the filter; it fails the test if the token
// reaches it.
func okHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("Authorization header passed the filter")
		}
		w.Write([]byte("through"))
	})
}

func serveFiltered(h http.Handler, method, path, token string, certs ...*x509.Certificate) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if len(certs) > 0 {
		r.TLS = &tls.ConnectionState{PeerCertificates: certs}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestWebhookAuth(t *testing.T) {
	api := &fakeAPIServer{}
	h := webhookAuth(t, api, false).Filter(okHandler(t))
	tests := []struct {
		name, method, path, token string
		code                      int
		body                      string
	}{
		{"no credentials", "GET", "/pods", "", 401, "Unauthorized"},
		{"bad token", "GET", "/stats/summary", "bad", 401, "Unauthorized"},
		{"allowed", "GET", "/stats/summary", "good", 200, "through"},
		{"forbidden", "GET", "/pods", "good", 403, "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[pods proxy])\n"},
		{"forbidden verb", "POST", "/exec/ns/pod/c", "good", 403, "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[proxy])\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serveFiltered(h, tt.method, tt.path, tt.token)
			if rec.Code != tt.code || rec.Body.String() != tt.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.code, tt.body)
			}
		})
	}
	// Both answers are cached: the same requests again reach no webhook.
	reviews, sars := api.counts()
	for _, tt := range tests {
		serveFiltered(h, tt.method, tt.path, tt.token)
	}
	if r2, s2 := api.counts(); r2 != reviews || s2 != sars {
		t.Errorf("webhook calls went from %d/%d to %d/%d on repeated requests", reviews, sars, r2, s2)
	}
}

func TestAnonymousAuth(t *testing.T) {
	api := &fakeAPIServer{}
	h := webhookAuth(t, api, true).Filter(okHandler(t))
	if rec := serveFiltered(h, "GET", "/healthz", ""); rec.Code != 200 {
		t.Errorf("anonymous /healthz: %d %q", rec.Code, rec.Body.String())
	}
	rec := serveFiltered(h, "GET", "/pods", "")
	if want := "Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[pods proxy])\n"; rec.Code != 403 || rec.Body.String() != want {
		t.Errorf("anonymous /pods: %d %q", rec.Code, rec.Body.String())
	}
	// A bad token is not anonymous: it fails.
	if rec := serveFiltered(h, "GET", "/healthz", "bad"); rec.Code != 401 {
		t.Errorf("bad token with anonymous on: %d", rec.Code)
	}
}

func TestWebhookAuthorizationError(t *testing.T) {
	api := &fakeAPIServer{}
	a := webhookAuth(t, api, true)
	api.fail = true
	h := a.Filter(okHandler(t))
	rec := serveFiltered(h, "GET", "/configz", "")
	if rec.Code != 500 || !strings.HasPrefix(rec.Body.String(), "Authorization error (user=system:anonymous, verb=get, resource=nodes, subresource=configz)") {
		t.Errorf("got %d %q", rec.Code, rec.Body.String())
	}
}

func TestX509Auth(t *testing.T) {
	ca := newTestCA(t, "client-ca")
	other := newTestCA(t, "other-ca")
	a, err := NewAuth(AuthOptions{
		NodeName: "node-a",
		Authentication: kubeletconfig.KubeletAuthentication{
			X509:      kubeletconfig.KubeletX509Authentication{ClientCAFile: ca.file(t, t.TempDir())},
			Anonymous: kubeletconfig.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
			Webhook:   kubeletconfig.KubeletWebhookAuthentication{Enabled: ptr.To(false)},
		},
		Authorization: kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeAlwaysAllow},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.ClientCA() == nil {
		t.Fatal("no client CA for the TLS handshake")
	}
	var seen string
	h := a.Filter(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.URL.Path }))
	good, _ := ca.client(t, "kube-apiserver-kubelet-client", "system:masters")
	bad, _ := other.client(t, "mallory")
	if rec := serveFiltered(h, "POST", "/exec/ns/p/c", "", good); rec.Code != 200 || seen != "/exec/ns/p/c" {
		t.Errorf("valid client certificate: %d %q", rec.Code, rec.Body.String())
	}
	if rec := serveFiltered(h, "GET", "/pods", "", bad); rec.Code != 401 {
		t.Errorf("certificate of another CA: %d", rec.Code)
	}
	if rec := serveFiltered(h, "GET", "/pods", ""); rec.Code != 401 {
		t.Errorf("no certificate: %d", rec.Code)
	}
}

func TestNewAuthErrors(t *testing.T) {
	on, off := ptr.To(true), ptr.To(false)
	tests := []struct {
		name    string
		opts    AuthOptions
		needAPI bool
	}{
		{"webhook authn standalone", AuthOptions{
			Authentication: kubeletconfig.KubeletAuthentication{Webhook: kubeletconfig.KubeletWebhookAuthentication{Enabled: on}},
			Authorization:  kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeAlwaysAllow},
		}, true},
		{"webhook authz standalone", AuthOptions{
			Authentication: kubeletconfig.KubeletAuthentication{Anonymous: kubeletconfig.KubeletAnonymousAuthentication{Enabled: on}, Webhook: kubeletconfig.KubeletWebhookAuthentication{Enabled: off}},
			Authorization:  kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeWebhook},
		}, true},
		{"no authentication at all", AuthOptions{
			Authentication: kubeletconfig.KubeletAuthentication{Webhook: kubeletconfig.KubeletWebhookAuthentication{Enabled: off}},
			Authorization:  kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeAlwaysAllow},
		}, false},
		{"unknown mode", AuthOptions{
			Authentication: kubeletconfig.KubeletAuthentication{Anonymous: kubeletconfig.KubeletAnonymousAuthentication{Enabled: on}},
			Authorization:  kubeletconfig.KubeletAuthorization{Mode: "RBAC"},
		}, false},
		{"missing client CA file", AuthOptions{
			Authentication: kubeletconfig.KubeletAuthentication{X509: kubeletconfig.KubeletX509Authentication{ClientCAFile: "/nonexistent/ca.crt"}},
			Authorization:  kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeAlwaysAllow},
		}, false},
	}
	for _, tt := range tests {
		_, err := NewAuth(tt.opts)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if errors.Is(err, ErrNeedsAPIServer) != tt.needAPI {
			t.Errorf("%s: %v (ErrNeedsAPIServer: %v)", tt.name, err, tt.needAPI)
		}
	}
}
