package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/utils/clock"
)

// Attributes are what a request is authorized as: a verb on a
// subresource of the node (the kubelet API asks nothing else).
type Attributes struct {
	User        *User
	Verb        string
	APIVersion  string
	Resource    string
	Subresource string
	Name        string
	// Path is the request path; it is not sent, but a long one keeps the
	// answer out of the cache, as upstream.
	Path string
}

// authorizer decides whether attrs are allowed; an error is neither.
type authorizer interface {
	authorize(ctx context.Context, attrs Attributes) (bool, error)
}

// alwaysAllow is authorization mode AlwaysAllow.
type alwaysAllow struct{}

func (alwaysAllow) authorize(context.Context, Attributes) (bool, error) { return true, nil }

const (
	// sarCacheSize caps the SubjectAccessReview cache (upstream's size).
	sarCacheSize = 8192
	// maxCachedAttrsSize keeps requests with huge attributes from
	// filling the cache (upstream's maxControlledAttrCacheSize).
	maxCachedAttrsSize = 10000
)

// sarAuthorizer is authorization mode Webhook: a SubjectAccessReview per
// attributes, answers cached by the review's spec for allowTTL when
// allowed and denyTTL otherwise; errors are not cached.
type sarAuthorizer struct {
	reviews           authorizationclient.SubjectAccessReviewInterface
	backoff           wait.Backoff
	allowTTL, denyTTL time.Duration
	cache             *cache.LRUExpireCache
}

func newSARAuthorizer(reviews authorizationclient.SubjectAccessReviewInterface, allowTTL, denyTTL time.Duration, backoff wait.Backoff, clk clock.PassiveClock) *sarAuthorizer {
	return &sarAuthorizer{
		reviews:  reviews,
		backoff:  backoff,
		allowTTL: allowTTL,
		denyTTL:  denyTTL,
		cache:    cache.NewLRUExpireCacheWithClock(sarCacheSize, clk),
	}
}

// sarSpec is the review upstream's webhook authorizer sends for attrs.
func sarSpec(attrs Attributes) authzv1.SubjectAccessReviewSpec {
	spec := authzv1.SubjectAccessReviewSpec{
		ResourceAttributes: &authzv1.ResourceAttributes{
			Verb:        attrs.Verb,
			Version:     attrs.APIVersion,
			Resource:    attrs.Resource,
			Subresource: attrs.Subresource,
			Name:        attrs.Name,
		},
	}
	if u := attrs.User; u != nil {
		spec.User, spec.UID, spec.Groups = u.Name, u.UID, u.Groups
		if u.Extra != nil {
			spec.Extra = make(map[string]authzv1.ExtraValue, len(u.Extra))
			for k, v := range u.Extra {
				spec.Extra[k] = v
			}
		}
	}
	return spec
}

func (s *sarAuthorizer) authorize(ctx context.Context, attrs Attributes) (bool, error) {
	review := &authzv1.SubjectAccessReview{Spec: sarSpec(attrs)}
	k, err := json.Marshal(review.Spec)
	if err != nil {
		return false, fmt.Errorf("SubjectAccessReview cache key: %w", err)
	}
	key := string(k)
	var status authzv1.SubjectAccessReviewStatus
	if cached, ok := s.cache.Get(key); ok {
		status = cached.(authzv1.SubjectAccessReviewStatus)
	} else {
		var resp *authzv1.SubjectAccessReview
		if err := withWebhookRetry(ctx, s.backoff, func() error {
			var err error
			resp, err = s.reviews.Create(ctx, review, metav1.CreateOptions{})
			return err
		}); err != nil {
			return false, fmt.Errorf("SubjectAccessReview: %w", err)
		}
		status = resp.Status
		ttl := s.denyTTL
		if status.Allowed {
			ttl = s.allowTTL
		}
		if ttl > 0 && cacheable(attrs) {
			s.cache.Add(key, status, ttl)
		}
	}
	if status.Allowed && status.Denied {
		return false, errors.New("webhook subject access review returned both allow and deny response")
	}
	// Denied or no opinion: either way not allowed.
	return status.Allowed, nil
}

// cacheable reports whether attrs are small enough to cache an answer
// for.
func cacheable(a Attributes) bool {
	n := len(a.Verb) + len(a.APIVersion) + len(a.Resource) + len(a.Subresource) + len(a.Name) + len(a.Path)
	return n < maxCachedAttrsSize
}

// withWebhookRetry calls f, retrying with backoff while it fails in a way
// that may pass (upstream's webhook.WithExponentialBackoff with
// DefaultShouldRetry). The last error of f wins over running out of
// steps or ctx ending.
func withWebhookRetry(ctx context.Context, backoff wait.Backoff, f func() error) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(context.Context) (bool, error) {
		last = f()
		switch {
		case last == nil:
			return true, nil
		case transientWebhookError(last):
			return false, nil
		default:
			return false, last
		}
	})
	switch {
	case last != nil:
		return last
	case err != nil:
		return fmt.Errorf("webhook call failed: %w", err)
	}
	return nil
}

// transientWebhookError reports whether err may pass on retry: a reset
// connection, an internal error, a timeout, too many requests, or an
// answer that asks to retry later.
func transientWebhookError(err error) bool {
	if utilnet.IsConnectionReset(err) || utilnet.IsHTTP2ConnectionLost(err) ||
		apierrors.IsInternalError(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) {
		return true
	}
	_, retry := apierrors.SuggestsClientDelay(err)
	return retry
}
