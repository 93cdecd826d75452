package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/singleflight"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apimachinery/pkg/util/wait"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

const (
	// tokenCacheSize caps the token cache. Upstream's is unbounded; a
	// kubelet sees few distinct tokens (the apiserver uses a client
	// certificate), and an evicted token costs one more TokenReview.
	tokenCacheSize = 4096
	// tokenReviewTimeout bounds a TokenReview shared by concurrent
	// requests with the same token, as upstream's sharedLookupTimeout.
	tokenReviewTimeout = 30 * time.Second
)

// tokenReviewer checks bearer tokens with TokenReviews, as upstream's
// webhook token authenticator behind its token cache: an answer, valid or
// not, is cached for ttl (upstream's delegating authenticator uses
// authentication.webhook.cacheTTL for both); an error (the API server
// unreachable, or a review with status.error) is not cached. Concurrent
// requests with the same token share one review.
type tokenReviewer struct {
	reviews authenticationclient.TokenReviewInterface
	backoff wait.Backoff
	ttl     time.Duration
	// cache maps an HMAC of the token to a tokenAnswer, so that tokens
	// are not kept in memory and users cannot craft colliding keys.
	cache    *cache.LRUExpireCache
	hmacKey  []byte
	inflight singleflight.Group
}

// tokenAnswer is a cached TokenReview answer.
type tokenAnswer struct {
	user *User // nil when the token is not valid
}

func newTokenReviewer(reviews authenticationclient.TokenReviewInterface, ttl time.Duration, backoff wait.Backoff, clk clock.PassiveClock) (*tokenReviewer, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("token cache key: %w", err)
	}
	return &tokenReviewer{
		reviews: reviews,
		backoff: backoff,
		ttl:     ttl,
		cache:   cache.NewLRUExpireCacheWithClock(tokenCacheSize, clk),
		hmacKey: key,
	}, nil
}

// check is a tokenCheck: the token's user, or not ok for an invalid token.
func (t *tokenReviewer) check(r *http.Request, token string) (*User, bool, error) {
	ctx := r.Context()
	mac := hmac.New(sha256.New, t.hmacKey)
	mac.Write([]byte(token))
	key := string(mac.Sum(nil))
	if a, ok := t.cache.Get(key); ok {
		u := a.(tokenAnswer).user
		return u, u != nil, nil
	}
	ch := t.inflight.DoChan(key, func() (any, error) {
		if a, ok := t.cache.Get(key); ok { // raced with another review
			return a, nil
		}
		// Not the request's context: other requests may be waiting for
		// this answer after this one has gone.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenReviewTimeout)
		defer cancel()
		u, err := t.review(ctx, token)
		if err != nil {
			return nil, err
		}
		a := tokenAnswer{user: u}
		if t.ttl > 0 {
			t.cache.Add(key, a, t.ttl)
		}
		return a, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, false, res.Err
		}
		u := res.Val.(tokenAnswer).user
		return u, u != nil, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// review asks the API server about token: its user, nil if not valid.
func (t *tokenReviewer) review(ctx context.Context, token string) (u *User, err error) {
	defer func() {
		// This runs outside the request's goroutine, where a panic would
		// end berth; upstream turns it into a failed authentication too.
		if r := recover(); r != nil {
			klog.FromContext(ctx).Error(nil, "TokenReview panicked", "panic", r)
			u, err = nil, errors.New("authentication failed unexpectedly")
		}
	}()
	req := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
	var resp *authnv1.TokenReview
	if err := withWebhookRetry(ctx, t.backoff, func() error {
		var err error
		resp, err = t.reviews.Create(ctx, req, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("TokenReview: %w", err)
	}
	st := resp.Status
	if !st.Authenticated {
		if st.Error != "" {
			return nil, errors.New(st.Error)
		}
		return nil, nil
	}
	var extra map[string][]string
	if st.User.Extra != nil {
		extra = make(map[string][]string, len(st.User.Extra))
		for k, v := range st.User.Extra {
			extra[k] = v
		}
	}
	return &User{Name: st.User.Username, UID: st.User.UID, Groups: st.User.Groups, Extra: extra}, nil
}
