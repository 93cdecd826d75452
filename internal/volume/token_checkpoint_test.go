package volume

import (
	"errors"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

// fakeTokens is node autonomy's token checkpoint.
type fakeTokens struct {
	mu       sync.Mutex
	restored *authenticationv1.TokenRequest // served to every source
	issued   []string
}

func (f *fakeTokens) TokenIssued(uid types.UID, volume string, source int, tr *authenticationv1.TokenRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issued = append(f.issued, string(uid)+"/"+volume+"/"+tr.Status.Token)
}

func (f *fakeTokens) RestoredToken(types.UID, string, int) (*authenticationv1.TokenRequest, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restored, f.restored != nil
}

func TestTokensCheckpointed(t *testing.T) {
	h := newHarness(t)
	tokens := &fakeTokens{}
	h.m.tokens = tokens
	h.objects.setConfigMap("kube-root-ca.crt", map[string]string{"ca.crt": "CA"})
	pod := newPod("u1", kubeAPIAccess())
	h.mustSetUp(pod)
	if len(tokens.issued) != 1 || tokens.issued[0] != "u1/kube-api-access-abcde/token-1" {
		t.Fatalf("tokens checkpointed = %v; want the one issued", tokens.issued)
	}
}

// Offline, a pod restarted after a reboot gets the checkpointed token as
// it is, even expired: nothing can issue another, and the pod must run.
func TestRestoredTokenUsedOfflineEvenExpired(t *testing.T) {
	h := newHarness(t)
	h.client.PrependReactor("create", "serviceaccounts", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	seconds := int64(600)
	expired := &authenticationv1.TokenRequest{
		Spec:   authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
		Status: authenticationv1.TokenRequestStatus{Token: "saved-token", ExpirationTimestamp: metav1.NewTime(h.clock.Now().Add(-time.Hour))},
	}
	h.m.tokens = &fakeTokens{restored: expired}
	h.objects.setConfigMap("kube-root-ca.crt", map[string]string{"ca.crt": "CA"})
	pod := newPod("u1", kubeAPIAccess())
	h.mustSetUp(pod)
	if got := h.read(pod, "kube-api-access-abcde", "token"); got != "saved-token" {
		t.Fatalf("token offline = %q; want the checkpointed one", got)
	}
	// Without a checkpoint the same failure fails the volume, as before.
	h2 := newHarness(t)
	h2.client.PrependReactor("create", "serviceaccounts", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	h2.objects.setConfigMap("kube-root-ca.crt", map[string]string{"ca.crt": "CA"})
	if err := h2.m.SetUp(t.Context(), newPod("u2", kubeAPIAccess())); err == nil {
		t.Fatal("SetUp without a token succeeded")
	}
}
