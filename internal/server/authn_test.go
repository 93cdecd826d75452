package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	asn1util "k8s.io/apimachinery/pkg/apis/asn1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"
)

// certSpec describes a certificate for issue.
type certSpec struct {
	cn        string
	uid       []string // one subject UID attribute per value
	org       []string
	isCA      bool
	eku       []x509.ExtKeyUsage
	notBefore time.Time
	notAfter  time.Time
}

// issue signs spec with parent (self-signed when parent is nil).
func issue(t *testing.T, spec certSpec, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subject := pkix.Name{CommonName: spec.cn, Organization: spec.org}
	for _, uid := range spec.uid {
		subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1util.X509UID(), Value: uid})
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               subject,
		NotBefore:             spec.notBefore,
		NotAfter:              spec.notAfter,
		IsCA:                  spec.isCA,
		BasicConstraintsValid: true,
		ExtKeyUsage:           spec.eku,
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	if spec.isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func TestX509Method(t *testing.T) {
	root := newTestCA(t, "root")
	other := newTestCA(t, "other")
	inter := issue(t, certSpec{cn: "intermediate", isCA: true}, root)
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	m := x509Method(func() *x509.CertPool { return roots })

	alice := issue(t, certSpec{cn: "alice", org: []string{"devs", "ops"}, eku: client}, root)
	if len(alice.cert.Subject.Organization) != 2 {
		t.Fatalf("organizations %v", alice.cert.Subject.Organization)
	}
	withUID := issue(t, certSpec{cn: "bob", uid: []string{"uid-1"}, eku: client}, root)
	viaInter := issue(t, certSpec{cn: "carol", eku: client}, inter)
	tests := []struct {
		name    string
		chain   []*x509.Certificate // nil: no TLS
		user    string
		groups  []string
		uid     string
		ok      bool
		wantErr string
	}{
		{name: "no TLS"},
		{name: "no certificate", chain: []*x509.Certificate{}},
		{name: "valid", chain: []*x509.Certificate{alice.cert}, user: "alice", groups: alice.cert.Subject.Organization, ok: true},
		{name: "uid attribute", chain: []*x509.Certificate{withUID.cert}, user: "bob", uid: "uid-1", ok: true},
		{name: "two uids", chain: []*x509.Certificate{issue(t, certSpec{cn: "x", uid: []string{"a", "b"}, eku: client}, root).cert}, wantErr: "expected 1 UID"},
		{name: "empty uid", chain: []*x509.Certificate{issue(t, certSpec{cn: "x", uid: []string{""}, eku: client}, root).cert}, wantErr: "UID cannot be an empty string"},
		{name: "intermediate presented", chain: []*x509.Certificate{viaInter.cert, inter.cert}, user: "carol", ok: true},
		{name: "intermediate missing", chain: []*x509.Certificate{viaInter.cert}, wantErr: "unknown authority"},
		{name: "other CA", chain: []*x509.Certificate{issue(t, certSpec{cn: "mallory", eku: client}, other).cert}, wantErr: "unknown authority"},
		{name: "server usage only", chain: []*x509.Certificate{issue(t, certSpec{cn: "srv", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, root).cert}, wantErr: "incompatible key usage"},
		{name: "expired", chain: []*x509.Certificate{issue(t, certSpec{cn: "old", eku: client, notBefore: time.Now().Add(-2 * time.Hour), notAfter: time.Now().Add(-time.Hour)}, root).cert}, wantErr: "expired"},
		// No common name: no user, and no error, so that other methods apply.
		{name: "no common name", chain: []*x509.Certificate{issue(t, certSpec{org: []string{"devs"}, eku: client}, root).cert}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/pods", nil)
			if tt.chain != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: tt.chain}
			}
			u, ok, err := m(r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || ok {
					t.Fatalf("got ok=%v err=%v, want error containing %q", ok, err, tt.wantErr)
				}
				return
			}
			if err != nil || ok != tt.ok {
				t.Fatalf("got ok=%v err=%v, want ok=%v", ok, err, tt.ok)
			}
			if !ok {
				return
			}
			if u.Name != tt.user || u.UID != tt.uid || !reflect.DeepEqual(u.Groups, tt.groups) {
				t.Errorf("user %+v, want %s uid %q groups %v", u, tt.user, tt.uid, tt.groups)
			}
			if id := u.Extra[credentialIDKey]; len(id) != 1 || !strings.HasPrefix(id[0], "X509SHA256=") || len(id[0]) != len("X509SHA256=")+64 {
				t.Errorf("credential id %v", id)
			}
		})
	}
}

func TestAuthenticatorUnion(t *testing.T) {
	alice := &User{Name: "alice", Groups: []string{"devs"}}
	bad := errors.New("bad credential")
	yes := func(u *User) authMethod {
		return func(*http.Request) (*User, bool, error) { return u, true, nil }
	}
	no := authMethod(func(*http.Request) (*User, bool, error) { return nil, false, nil })
	fail := authMethod(func(*http.Request) (*User, bool, error) { return nil, false, bad })
	anon := &User{Name: anonymousUser, Groups: []string{unauthenticatedGroup}}
	tests := []struct {
		name      string
		methods   []authMethod
		anonymous bool
		want      *User
		wantErr   bool
	}{
		{"first success wins", []authMethod{yes(alice), yes(&User{Name: "bob"})}, false, &User{Name: "alice", Groups: []string{"devs", authenticatedGroup}}, false},
		{"an error before a success", []authMethod{fail, yes(alice)}, false, &User{Name: "alice", Groups: []string{"devs", authenticatedGroup}}, false},
		{"already authenticated", []authMethod{yes(&User{Name: "x", Groups: []string{authenticatedGroup}})}, false, &User{Name: "x", Groups: []string{authenticatedGroup}}, false},
		{"says unauthenticated", []authMethod{yes(&User{Name: "x", Groups: []string{unauthenticatedGroup}})}, false, &User{Name: "x", Groups: []string{unauthenticatedGroup}}, false},
		{"anonymous-named", []authMethod{yes(&User{Name: anonymousUser})}, false, &User{Name: anonymousUser}, false},
		{"no credentials", []authMethod{no, no}, false, nil, false},
		{"no credentials, anonymous", []authMethod{no, no}, true, anon, false},
		{"bad credentials, anonymous", []authMethod{no, fail}, true, nil, true},
		{"anonymous only", nil, true, anon, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &authenticator{methods: tt.methods, anonymous: tt.anonymous}
			u, ok, err := a.authenticate(httptest.NewRequest("GET", "/", nil))
			if (err != nil) != tt.wantErr || ok != (tt.want != nil) || !reflect.DeepEqual(u, tt.want) {
				t.Errorf("got %+v %v %v, want %+v (error %v)", u, ok, err, tt.want, tt.wantErr)
			}
		})
	}
	// The group is added to a copy: cached users stay as they were.
	if len(alice.Groups) != 1 {
		t.Errorf("authenticator changed the method's user: %v", alice.Groups)
	}
}

// staticTokens is a tokenCheck: "good" is alice.
func staticTokens(_ *http.Request, token string) (*User, bool, error) {
	if token == "good" {
		return &User{Name: "alice"}, true, nil
	}
	return nil, false, nil
}

func TestBearerMethod(t *testing.T) {
	m := bearerMethod(staticTokens)
	tests := []struct {
		header  string
		ok      bool
		wantErr bool
	}{
		{"", false, false},
		{"Bearer good", true, false},
		{"bearer good", true, false},
		{"  Bearer good  ", true, false},
		{"Bearer good extra", true, false},
		{"Basic Zm9vOmJhcg==", false, false},
		{"Bearer", false, false},
		{"Bearer  good", false, false}, // a space before the token: no token
		{"Bearer bad", false, true},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		u, ok, err := m(r)
		if ok != tt.ok || (err != nil) != tt.wantErr || (ok && u.Name != "alice") {
			t.Errorf("%q: got %+v %v %v, want ok=%v error=%v", tt.header, u, ok, err, tt.ok, tt.wantErr)
		}
	}
}

func TestWebsocketMethod(t *testing.T) {
	m := websocketMethod(staticTokens)
	enc := func(s string) string { return bearerProtocolPrefix + base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name      string
		websocket bool
		protocols []string
		ok        bool
		wantErr   string
		after     string // the protocol header once authenticated
	}{
		{name: "not a websocket", protocols: []string{"v5.channel.k8s.io, " + enc("good")}},
		{name: "no token", websocket: true, protocols: []string{"v5.channel.k8s.io"}},
		{name: "token", websocket: true, protocols: []string{"v5.channel.k8s.io, " + enc("good") + ", v4.channel.k8s.io"}, ok: true, after: "v5.channel.k8s.io,v4.channel.k8s.io"},
		{name: "token in its own header", websocket: true, protocols: []string{enc("good"), "v5.channel.k8s.io"}, ok: true, after: "v5.channel.k8s.io"},
		{name: "token alone", websocket: true, protocols: []string{enc("good")}, wantErr: "missing additional subprotocol"},
		{name: "two tokens", websocket: true, protocols: []string{enc("good") + "," + enc("good") + ",v5.channel.k8s.io"}, wantErr: "multiple"},
		{name: "bad encoding", websocket: true, protocols: []string{bearerProtocolPrefix + "!!!,v5.channel.k8s.io"}, wantErr: "encoding"},
		{name: "bad token", websocket: true, protocols: []string{enc("bad") + ",v5.channel.k8s.io"}, wantErr: "invalid bearer token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/exec/ns/p/c", nil)
			if tt.websocket {
				r.Header.Set("Connection", "Upgrade")
				r.Header.Set("Upgrade", "websocket")
			}
			for _, p := range tt.protocols {
				r.Header.Add("Sec-WebSocket-Protocol", p)
			}
			u, ok, err := m(r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v %v, want error %q", ok, err, tt.wantErr)
				}
				return
			}
			if err != nil || ok != tt.ok {
				t.Fatalf("got ok=%v err=%v, want ok=%v", ok, err, tt.ok)
			}
			if ok && (u.Name != "alice" || r.Header.Get("Sec-WebSocket-Protocol") != tt.after) {
				t.Errorf("user %+v, protocols now %q, want %q", u, r.Header.Values("Sec-WebSocket-Protocol"), tt.after)
			}
		})
	}
}

// fakeTokenReviews answers TokenReviews from answers (token → status); a
// token not in it fails with err, if set, or is not authenticated.
type fakeTokenReviews struct {
	mu      sync.Mutex
	answers map[string]authnv1.TokenReviewStatus
	errs    []error // returned, one per call, before answering
	calls   int
}

func (f *fakeTokenReviews) Create(_ context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	out := tr.DeepCopy()
	out.Status = f.answers[tr.Spec.Token]
	return out, nil
}

func (f *fakeTokenReviews) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// noWait retries at once, so that retry tests need no sleeps.
var noWait = wait.Backoff{Duration: 0, Factor: 1, Steps: 3}

func TestTokenReviewerCache(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	reviews := &fakeTokenReviews{answers: map[string]authnv1.TokenReviewStatus{
		"good":  {Authenticated: true, User: authnv1.UserInfo{Username: "alice", UID: "u1", Groups: []string{"devs"}, Extra: map[string]authnv1.ExtraValue{"k": {"v"}}}},
		"error": {Error: "token expired"},
	}}
	tr, err := newTokenReviewer(reviews, 2*time.Minute, noWait, clk)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	check := func(token string) (*User, bool, error) { return tr.check(req, token) }

	// Each step: advance the clock, check a token, expect the answer and
	// whether a TokenReview was made.
	steps := []struct {
		name     string
		advance  time.Duration
		token    string
		ok       bool
		wantErr  string
		reviewed bool
	}{
		{"first good", 0, "good", true, "", true},
		{"good cached", time.Minute, "good", true, "", false},
		{"good still cached", time.Minute - time.Second, "good", true, "", false},
		{"good expired", 2 * time.Second, "good", true, "", true},
		// Invalid tokens are cached for the same TTL: upstream's
		// delegating authenticator passes cacheTTL as both TTLs.
		{"first bad", 0, "bad", false, "", true},
		{"bad cached", time.Minute, "bad", false, "", false},
		{"bad expired", time.Minute + time.Second, "bad", false, "", true},
		// A review with status.error is an error, never cached.
		{"status error", 0, "error", false, "token expired", true},
		{"status error again", 0, "error", false, "token expired", true},
	}
	for _, s := range steps {
		clk.Step(s.advance)
		before := reviews.callCount()
		u, ok, err := check(s.token)
		if ok != s.ok || (s.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), s.wantErr)) {
			t.Errorf("%s: got %+v %v %v, want ok=%v error %q", s.name, u, ok, err, s.ok, s.wantErr)
		}
		if reviewed := reviews.callCount() > before; reviewed != s.reviewed {
			t.Errorf("%s: reviewed=%v, want %v", s.name, reviewed, s.reviewed)
		}
		if ok {
			want := &User{Name: "alice", UID: "u1", Groups: []string{"devs"}, Extra: map[string][]string{"k": {"v"}}}
			if !reflect.DeepEqual(u, want) {
				t.Errorf("%s: user %+v, want %+v", s.name, u, want)
			}
		}
	}
}

func TestTokenReviewerRetry(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	transient := apierrors.NewInternalError(errors.New("etcd hiccup"))
	tests := []struct {
		name    string
		errs    []error
		ok      bool
		calls   int
		wantErr string
	}{
		{"transient then answer", []error{transient, apierrors.NewTooManyRequests("slow down", 0)}, true, 3, ""},
		{"transient throughout", []error{transient, transient, transient}, false, 3, "etcd hiccup"},
		{"permanent", []error{apierrors.NewForbidden(authnv1.Resource("tokenreviews"), "", errors.New("no"))}, false, 1, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reviews := &fakeTokenReviews{
				answers: map[string]authnv1.TokenReviewStatus{"good": {Authenticated: true, User: authnv1.UserInfo{Username: "alice"}}},
				errs:    tt.errs,
			}
			tr, err := newTokenReviewer(reviews, time.Minute, noWait, clk)
			if err != nil {
				t.Fatal(err)
			}
			_, ok, err := tr.check(httptest.NewRequest("GET", "/", nil), "good")
			if ok != tt.ok || reviews.callCount() != tt.calls || (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("got ok=%v err=%v after %d calls; want ok=%v error %q after %d", ok, err, reviews.callCount(), tt.ok, tt.wantErr, tt.calls)
			}
			// An error is not cached: the next request asks again.
			if err != nil {
				if _, ok, err := tr.check(httptest.NewRequest("GET", "/", nil), "good"); !ok || err != nil {
					t.Errorf("after the error: %v %v", ok, err)
				}
			}
		})
	}
}
