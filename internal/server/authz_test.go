package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestSARSpec(t *testing.T) {
	u := &User{Name: "alice", UID: "u1", Groups: []string{"devs", authenticatedGroup}, Extra: map[string][]string{credentialIDKey: {"X509SHA256=ab"}}}
	r := httptest.NewRequest("POST", "/exec/ns/pod/c?command=ls", nil)
	attrs := RequestAttributes("node-a", u, r)
	if len(attrs) != 1 {
		t.Fatalf("attributes %+v", attrs)
	}
	got := sarSpec(attrs[0])
	want := authzv1.SubjectAccessReviewSpec{
		User:   "alice",
		UID:    "u1",
		Groups: []string{"devs", authenticatedGroup},
		Extra:  map[string]authzv1.ExtraValue{credentialIDKey: {"X509SHA256=ab"}},
		ResourceAttributes: &authzv1.ResourceAttributes{
			Verb: "create", Version: "v1", Resource: "nodes", Subresource: "proxy", Name: "node-a",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spec\n%+v\nwant\n%+v", got, want)
	}
	if got.ResourceAttributes.Namespace != "" || got.ResourceAttributes.Group != "" || got.NonResourceAttributes != nil {
		t.Errorf("kubelet API reviews are for the core nodes resource, cluster-wide: %+v", got)
	}
}

// fakeSARs answers SubjectAccessReviews with decide; errs are returned,
// one per call, first.
type fakeSARs struct {
	mu     sync.Mutex
	decide func(authzv1.SubjectAccessReviewSpec) authzv1.SubjectAccessReviewStatus
	errs   []error
	specs  []authzv1.SubjectAccessReviewSpec
}

func (f *fakeSARs) Create(_ context.Context, sar *authzv1.SubjectAccessReview, _ metav1.CreateOptions) (*authzv1.SubjectAccessReview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, sar.Spec)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	out := sar.DeepCopy()
	out.Status = f.decide(sar.Spec)
	return out, nil
}

func (f *fakeSARs) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.specs)
}

func TestSARAuthorizerCache(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	sars := &fakeSARs{decide: func(s authzv1.SubjectAccessReviewSpec) authzv1.SubjectAccessReviewStatus {
		switch s.ResourceAttributes.Subresource {
		case "stats":
			return authzv1.SubjectAccessReviewStatus{Allowed: true}
		case "log":
			return authzv1.SubjectAccessReviewStatus{Denied: true, Reason: "no"}
		case "checkpoint":
			return authzv1.SubjectAccessReviewStatus{Allowed: true, Denied: true}
		}
		return authzv1.SubjectAccessReviewStatus{} // no opinion
	}}
	z := newSARAuthorizer(sars, 5*time.Minute, 30*time.Second, noWait, clk)
	alice := &User{Name: "alice"}
	attrs := func(u *User, path string) Attributes {
		return RequestAttributes("node-a", u, httptest.NewRequest("GET", path, nil))[0]
	}
	steps := []struct {
		name     string
		advance  time.Duration
		attrs    Attributes
		allowed  bool
		wantErr  bool
		reviewed bool
	}{
		{"allowed", 0, attrs(alice, "/stats/summary"), true, false, true},
		{"allowed cached", 4 * time.Minute, attrs(alice, "/stats/summary"), true, false, false},
		{"same subresource, other path", 0, attrs(alice, "/stats/"), true, false, false},
		{"other user", 0, attrs(&User{Name: "bob"}, "/stats/summary"), true, false, true},
		{"allowed expired", time.Minute + time.Second, attrs(alice, "/stats/summary"), true, false, true},
		{"no opinion", 0, attrs(alice, "/metrics"), false, false, true},
		{"no opinion cached", 29 * time.Second, attrs(alice, "/metrics"), false, false, false},
		{"no opinion expired", 2 * time.Second, attrs(alice, "/metrics"), false, false, true},
		{"denied", 0, attrs(alice, "/logs/x"), false, false, true},
		{"denied cached", 29 * time.Second, attrs(alice, "/logs/x"), false, false, false},
		{"allowed and denied", 0, attrs(alice, "/checkpoint/ns/p/c"), false, true, true},
		{"huge path not cached", 0, attrs(&User{Name: "carol"}, "/stats/"+strings.Repeat("x", maxCachedAttrsSize)), true, false, true},
		{"huge path again", 0, attrs(&User{Name: "carol"}, "/stats/"+strings.Repeat("x", maxCachedAttrsSize)), true, false, true},
	}
	for _, s := range steps {
		clk.Step(s.advance)
		before := sars.callCount()
		allowed, err := z.authorize(context.Background(), s.attrs)
		if allowed != s.allowed || (err != nil) != s.wantErr {
			t.Errorf("%s: got %v %v, want %v (error %v)", s.name, allowed, err, s.allowed, s.wantErr)
		}
		if reviewed := sars.callCount() > before; reviewed != s.reviewed {
			t.Errorf("%s: reviewed=%v, want %v", s.name, reviewed, s.reviewed)
		}
	}
}

func TestSARAuthorizerErrors(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	transient := apierrors.NewInternalError(errors.New("etcd hiccup"))
	sars := &fakeSARs{
		decide: func(authzv1.SubjectAccessReviewSpec) authzv1.SubjectAccessReviewStatus {
			return authzv1.SubjectAccessReviewStatus{Allowed: true}
		},
		errs: []error{transient, transient, transient, transient},
	}
	z := newSARAuthorizer(sars, time.Minute, time.Minute, noWait, clk)
	a := RequestAttributes("node-a", &User{Name: "alice"}, httptest.NewRequest("GET", "/pods", nil))[0]
	// Three attempts (noWait's steps), all failing: an error, not cached.
	if allowed, err := z.authorize(context.Background(), a); allowed || err == nil || !strings.Contains(err.Error(), "etcd hiccup") || sars.callCount() != 3 {
		t.Fatalf("got %v %v after %d calls", allowed, err, sars.callCount())
	}
	// One more transient failure, then the answer.
	if allowed, err := z.authorize(context.Background(), a); !allowed || err != nil || sars.callCount() != 5 {
		t.Fatalf("got %v %v after %d calls", allowed, err, sars.callCount())
	}
}

// decideFunc is an authorizer for Filter tests.
type decideFunc func(Attributes) (bool, error)

func (f decideFunc) authorize(_ context.Context, a Attributes) (bool, error) { return f(a) }

func TestFilter(t *testing.T) {
	bob := &User{Name: "bob", Groups: []string{"devs"}}
	authn := &authenticator{methods: []authMethod{
		func(r *http.Request) (*User, bool, error) {
			switch r.Header.Get("Authorization") {
			case "":
				return nil, false, nil
			case "Bearer bob":
				return bob, true, nil
			}
			return nil, false, errInvalidToken
		},
	}}
	// bob may use the proxy subresource, and nothing else; configz
	// fails.
	authz := decideFunc(func(a Attributes) (bool, error) {
		if a.Subresource == "configz" {
			return false, errors.New("webhook down")
		}
		if a.User.Name != "bob" || !reflect.DeepEqual(a.User.Groups, []string{"devs", authenticatedGroup}) {
			return false, nil
		}
		return a.Subresource == "proxy", nil
	})
	auth := &Auth{nodeName: "node-a", authenticator: authn, authorizer: authz}
	h := auth.Filter(okHandler(t))
	tests := []struct {
		name, method, path, token string
		code                      int
		body                      string
	}{
		{"no credentials", "GET", "/pods", "", 401, "Unauthorized"},
		{"bad credentials", "GET", "/pods", "mallory", 401, "Unauthorized"},
		{"second subresource allows", "GET", "/pods", "bob", 200, "through"},
		{"only subresource allows", "POST", "/exec/ns/p/c", "bob", 200, "through"},
		{"denied", "GET", "/stats/summary", "bob", 403, "Forbidden (user=bob, verb=get, resource=nodes, subresource(s)=[stats])\n"},
		{"authorization error", "GET", "/configz", "bob", 500, "Authorization error (user=bob, verb=get, resource=nodes, subresource=configz)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serveFiltered(h, tt.method, tt.path, tt.token)
			if rec.Code != tt.code || rec.Body.String() != tt.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.code, tt.body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
