package volume

import (
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	// defaultTokenSeconds is the API default of expirationSeconds.
	defaultTokenSeconds = int64(3600)
	// maxTokenAge: a token is replaced after a day whatever its lifetime,
	// as upstream's token manager does.
	maxTokenAge = 24 * time.Hour
	// tokenRetry is how soon a failed refresh is tried again while the
	// current token is still valid.
	tokenRetry = 30 * time.Second
)

// TokenCheckpoint keeps pods' service-account tokens across restarts
// (node autonomy, *autonomy.Manager): every token obtained is handed to
// it, and while berth runs without the API server it gives back the last
// one, to be used as it is — never refreshed, expired or not.
type TokenCheckpoint interface {
	TokenIssued(uid types.UID, volume string, source int, tr *authenticationv1.TokenRequest)
	RestoredToken(uid types.UID, volume string, source int) (*authenticationv1.TokenRequest, bool)
}

// serviceAccountToken returns the token of a projected volume's source,
// requesting a new one through the TokenRequest API when there is none yet
// or the current one has lived 80% of its lifetime. The token is bound to
// the pod (BoundObjectRef kind Pod, name and UID), so it dies with it. A
// failed refresh keeps the current token while it is valid, and a token
// restored from the checkpoint even once it has expired (a pod whose token
// expired offline keeps running).
func (m *Manager) serviceAccountToken(ctx context.Context, pod *v1.Pod, volume string, vs *volumeState, source int, src *v1.ServiceAccountTokenProjection) (*token, error) {
	now := m.clock.Now()
	cur := vs.tokens[source]
	if cur == nil && m.tokens != nil {
		if tr, ok := m.tokens.RestoredToken(pod.UID, volume, source); ok {
			cur = restoredToken(tr, now)
			if vs.tokens == nil {
				vs.tokens = make(map[int]*token)
			}
			vs.tokens[source] = cur
		}
	}
	if cur != nil && now.Before(cur.refreshAt) {
		return cur, nil
	}
	if m.client == nil {
		return nil, errors.New("cannot request a service account token: berth runs without an API server (standalone mode)")
	}
	seconds := defaultTokenSeconds
	if src.ExpirationSeconds != nil {
		seconds = *src.ExpirationSeconds
	}
	var audiences []string
	if src.Audience != "" {
		audiences = []string{src.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         audiences,
		ExpirationSeconds: &seconds,
		BoundObjectRef: &authenticationv1.BoundObjectReference{
			APIVersion: "v1",
			Kind:       "Pod",
			Name:       pod.Name,
			UID:        pod.UID,
		},
	}}
	tr, err := m.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		if cur != nil && (now.Before(cur.expires) || cur.restored) {
			m.logger(ctx, pod).Error(err, "Cannot refresh service account token; keeping the current one", "serviceAccount", sa, "expires", cur.expires)
			cur.refreshAt = now.Add(tokenRetry)
			return cur, nil
		}
		return nil, fmt.Errorf("failed to fetch token: %w", err)
	}
	if tr.Status.Token == "" {
		return nil, fmt.Errorf("failed to fetch token: the API server returned an empty token for service account %s/%s", pod.Namespace, sa)
	}
	t := &token{tr: tr}
	t.expires, t.refreshAt = tokenTimes(tr, seconds, now)
	if vs.tokens == nil {
		vs.tokens = make(map[int]*token)
	}
	vs.tokens[source] = t
	if m.tokens != nil {
		m.tokens.TokenIssued(pod.UID, volume, source, tr)
	}
	return t, nil
}

// restoredToken is a checkpointed token: due for a refresh when its time
// has come, but not before tokenRetry (the API server was unreachable a
// moment ago).
func restoredToken(tr *authenticationv1.TokenRequest, now time.Time) *token {
	var requested int64 = defaultTokenSeconds
	if tr.Spec.ExpirationSeconds != nil {
		requested = *tr.Spec.ExpirationSeconds
	}
	t := &token{tr: tr, restored: true}
	t.expires, t.refreshAt = tokenTimes(tr, requested, now)
	if retry := now.Add(tokenRetry); t.refreshAt.Before(retry) {
		t.refreshAt = retry
	}
	return t
}

// tokenTimes returns when a token expires and when to replace it: with 20%
// of its lifetime left, or a day after it was issued if that is sooner.
func tokenTimes(tr *authenticationv1.TokenRequest, requested int64, now time.Time) (expires, refreshAt time.Time) {
	ttl := time.Duration(requested) * time.Second
	if tr.Spec.ExpirationSeconds != nil {
		ttl = time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	}
	expires = tr.Status.ExpirationTimestamp.Time
	if expires.IsZero() {
		expires = now.Add(ttl)
	}
	issued := expires.Add(-ttl)
	refreshAt = expires.Add(-ttl / 5)
	if limit := issued.Add(maxTokenAge); limit.Before(refreshAt) {
		refreshAt = limit
	}
	return expires, refreshAt
}
