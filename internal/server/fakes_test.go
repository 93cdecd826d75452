package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/berth-dev/berth/internal/container"
)

// fakeRuntime answers from a fixed set of pod statuses; running can be
// changed while a test runs.
type fakeRuntime struct {
	mu   sync.Mutex
	pods map[types.UID]*container.PodStatus
	err  error
}

func (f *fakeRuntime) ListPods(context.Context) (map[types.UID]*container.PodStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pods, f.err
}

func (f *fakeRuntime) GetPodStatus(_ context.Context, uid types.UID, name, namespace string) (*container.PodStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if st, ok := f.pods[uid]; ok {
		// A copy, as the runtime returns fresh state on every call.
		cp := *st
		cp.Containers = nil
		for _, c := range st.Containers {
			cc := *c
			cp.Containers = append(cp.Containers, &cc)
		}
		return &cp, nil
	}
	return &container.PodStatus{UID: uid, Name: name, Namespace: namespace}, nil
}

func (f *fakeRuntime) setState(uid types.UID, id string, state container.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.pods[uid].Containers {
		if c.ID == id {
			c.State = state
		}
	}
}

// fakeCRI records streaming requests and answers with url.
type fakeCRI struct {
	mu          sync.Mutex
	url         string
	err         error
	exec        *runtimeapi.ExecRequest
	attach      *runtimeapi.AttachRequest
	portForward *runtimeapi.PortForwardRequest
	execSync    []string
	execTimeout time.Duration
}

func (f *fakeCRI) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exec = req
	return &runtimeapi.ExecResponse{Url: f.url}, f.err
}

func (f *fakeCRI) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attach = req
	return &runtimeapi.AttachResponse{Url: f.url}, f.err
}

func (f *fakeCRI) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.portForward = req
	return &runtimeapi.PortForwardResponse{Url: f.url}, f.err
}

func (f *fakeCRI) ExecSync(_ context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execSync = append([]string{id}, cmd...)
	f.execTimeout = timeout
	if f.err != nil {
		return nil, nil, f.err
	}
	return []byte("out\n"), []byte("err\n"), nil
}

type fakeStats struct{ only bool }

func (f *fakeStats) Summary(_ context.Context, only bool) (*statsapi.Summary, error) {
	f.only = only
	return &statsapi.Summary{Node: statsapi.NodeStats{NodeName: "node-a"}}, nil
}

var errUnhealthy = errors.New("runtime down")

// testCA is a CA that signs client certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// file writes the CA bundle into dir.
func (ca *testCA) file(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "client-ca.crt")
	if err := os.WriteFile(p, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// client issues a client certificate for user in groups; it returns the
// certificate and its key.
func (ca *testCA) client(t *testing.T, user string, groups ...string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: user, Organization: groups},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// podLister is a fixed list of pods (the type in readonly_test.go).
var _ PodLister = podList(nil)

// runtimeGosched lets other goroutines run in a polling test loop.
func runtimeGosched() { goruntime.Gosched() }
