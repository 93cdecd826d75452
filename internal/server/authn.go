package server

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	asn1util "k8s.io/apimachinery/pkg/apis/asn1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// Users and groups the apiserver gives a meaning to.
const (
	anonymousUser        = "system:anonymous"
	unauthenticatedGroup = "system:unauthenticated"
	authenticatedGroup   = "system:authenticated"
	// credentialIDKey is the extra key naming the credential a user
	// authenticated with (upstream's user.CredentialIDKey).
	credentialIDKey = "authentication.kubernetes.io/credential-id"
)

// User is who a request is authenticated as. Values handed out are shared
// (cached) and must not be modified.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// authMethod authenticates a request one way: ok with the user, or not ok
// with no error when the request does not carry that kind of credential,
// or an error when it carries a bad one.
type authMethod func(r *http.Request) (u *User, ok bool, err error)

// authenticator is upstream's delegating authenticator as the kubelet
// configures it: client certificates, then bearer tokens (header, then
// WebSocket subprotocol), the first that succeeds wins and adds
// system:authenticated; if none applies, anonymous when enabled. A bad
// credential fails the request even when anonymous access is enabled.
type authenticator struct {
	methods   []authMethod
	anonymous bool
}

// authenticate returns the request's user, or not ok (401) with the
// reason, if any.
func (a *authenticator) authenticate(r *http.Request) (*User, bool, error) {
	var errs []error
	for _, m := range a.methods {
		u, ok, err := m(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			return withAuthenticatedGroup(u), true, nil
		}
	}
	if len(errs) > 0 {
		return nil, false, utilerrors.NewAggregate(errs)
	}
	if a.anonymous {
		return &User{Name: anonymousUser, Groups: []string{unauthenticatedGroup}}, true, nil
	}
	return nil, false, nil
}

// withAuthenticatedGroup adds system:authenticated to u unless u is
// anonymous or already says whether it is authenticated.
func withAuthenticatedGroup(u *User) *User {
	if u.Name == anonymousUser {
		return u
	}
	for _, g := range u.Groups {
		if g == authenticatedGroup || g == unauthenticatedGroup {
			return u
		}
	}
	cp := *u
	cp.Groups = append(append(make([]string, 0, len(u.Groups)+1), u.Groups...), authenticatedGroup)
	return &cp
}

// loadCABundle makes the pool client certificates are verified against.
func loadCABundle(contents [][]byte) (*x509.CertPool, error) {
	return certutil.NewPoolFromBytes(contents[0])
}

// x509Method authenticates requests by their TLS client certificate,
// verified against the CA bundle roots returns: the user is the
// certificate's common name, its groups the organizations.
func x509Method(roots func() *x509.CertPool) authMethod {
	return func(r *http.Request) (*User, bool, error) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return nil, false, nil
		}
		certs := r.TLS.PeerCertificates
		opts := x509.VerifyOptions{
			Roots:     roots(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if len(certs) > 1 {
			opts.Intermediates = x509.NewCertPool()
			for _, c := range certs[1:] {
				opts.Intermediates.AddCert(c)
			}
		}
		leaf := certs[0]
		if _, err := leaf.Verify(opts); err != nil {
			return nil, false, fmt.Errorf("verifying certificate %s failed: %w", certificateID(leaf), err)
		}
		return certificateUser(leaf)
	}
}

// certificateUser is upstream's CommonNameUserConversion: a certificate
// without a common name names nobody (no error: other methods may apply).
func certificateUser(c *x509.Certificate) (*User, bool, error) {
	if c.Subject.CommonName == "" {
		return nil, false, nil
	}
	uid, err := certificateUID(c)
	if err != nil {
		return nil, false, err
	}
	fp := sha256.Sum256(c.Raw)
	return &User{
		Name:   c.Subject.CommonName,
		UID:    uid,
		Groups: c.Subject.Organization,
		Extra:  map[string][]string{credentialIDKey: {"X509SHA256=" + hex.EncodeToString(fp[:])}},
	}, true, nil
}

// certificateUID is the subject's UID attribute (OID 1.3.6.1.4.1.57683.2),
// read as upstream's AllowParsingUserUIDFromCertAuth (on by default) does:
// at most one, not empty.
func certificateUID(c *x509.Certificate) (string, error) {
	oid := asn1util.X509UID()
	var uids []string
	for _, name := range c.Subject.Names {
		if !name.Type.Equal(oid) {
			continue
		}
		uid, ok := name.Value.(string)
		if !ok {
			return "", errors.New("unable to parse UID into a string")
		}
		uids = append(uids, uid)
	}
	switch {
	case len(uids) == 0:
		return "", nil
	case len(uids) > 1:
		return "", fmt.Errorf("expected 1 UID, but found multiple: %v", uids)
	case uids[0] == "":
		return "", errors.New("UID cannot be an empty string")
	}
	return uids[0], nil
}

// certificateID names a certificate in errors as upstream does.
func certificateID(c *x509.Certificate) string {
	return fmt.Sprintf("SN=%d, SKID=%s, AKID=%s", c.SerialNumber, colonHex(c.SubjectKeyId), colonHex(c.AuthorityKeyId))
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}

var errInvalidToken = errors.New("invalid bearer token")

// tokenCheck authenticates a bearer token: not ok with no error for a
// token that is not valid.
type tokenCheck func(r *http.Request, token string) (*User, bool, error)

// bearerMethod authenticates requests by their "Authorization: Bearer"
// header.
func bearerMethod(check tokenCheck) authMethod {
	return func(r *http.Request) (*User, bool, error) {
		auth := strings.TrimSpace(r.Header.Get("Authorization"))
		if auth == "" {
			return nil, false, nil
		}
		parts := strings.SplitN(auth, " ", 3)
		if len(parts) < 2 || !strings.EqualFold(parts[0], "bearer") || parts[1] == "" {
			return nil, false, nil
		}
		u, ok, err := check(r, parts[1])
		if !ok && err == nil {
			err = errInvalidToken
		}
		return u, ok, err
	}
}

// bearerProtocolPrefix marks a WebSocket subprotocol that carries a
// bearer token, base64url-encoded without padding: browsers cannot set
// the Authorization header on a WebSocket.
const bearerProtocolPrefix = "base64url.bearer.authorization.k8s.io."

// websocketMethod authenticates WebSocket requests by a token in the
// Sec-WebSocket-Protocol header, and removes it from the header once
// valid so that it is never echoed or passed on.
func websocketMethod(check tokenCheck) authMethod {
	return func(r *http.Request) (*User, bool, error) {
		if !wsstream.IsWebSocketRequest(r) {
			return nil, false, nil
		}
		token := ""
		sawToken := false
		var others []string
		for _, h := range r.Header.Values(wsstream.WebSocketProtocolHeader) {
			for _, p := range strings.Split(h, ",") {
				p = strings.TrimSpace(p)
				enc, found := strings.CutPrefix(p, bearerProtocolPrefix)
				if !found {
					others = append(others, p)
					continue
				}
				if sawToken {
					return nil, false, errors.New("multiple base64.bearer.authorization tokens specified")
				}
				sawToken = true
				dec, err := base64.RawURLEncoding.DecodeString(enc)
				if err != nil {
					return nil, false, errors.New("invalid base64.bearer.authorization token encoding")
				}
				if !utf8.Valid(dec) {
					return nil, false, errors.New("invalid base64.bearer.authorization token")
				}
				token = string(dec)
			}
		}
		if token == "" {
			return nil, false, nil
		}
		// Another subprotocol must remain to be negotiated.
		if len(others) == 0 {
			return nil, false, errors.New("missing additional subprotocol")
		}
		u, ok, err := check(r, token)
		if ok {
			r.Header.Set(wsstream.WebSocketProtocolHeader, strings.Join(others, ","))
		}
		if !ok && err == nil {
			err = errInvalidToken
		}
		return u, ok, err
	}
}
