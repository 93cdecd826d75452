package cluster

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// These tests cover the node's certificates from the certificates API
// (issue 13 items 1, 2, 3 and 7): TLS bootstrap with a bootstrap token as
// kubeadm sets it up, client certificate rotation without a restart, and
// the kubelet API's serving certificate, approved as an operator would,
// verified by the apiserver.

// signingDuration is the controller-manager's --cluster-signing-duration
// here. Its signer backdates certificates by 5 minutes, so one lives 8
// minutes and is rotated 0.6 to 2.2 minutes after it is issued (70-90 % of
// its lifetime).
const signingDuration = 3 * time.Minute

// bootstrapGroup is the group kubeadm's bootstrap tokens authenticate in
// besides system:bootstrappers.
const bootstrapGroup = "system:bootstrappers:kubeadm:default-node-token"

func TestTLSBootstrapAndRotation(t *testing.T) {
	env := requireSuite(t)
	ca := filepath.Join(env.stateDir, "pki", "ca.crt")

	// The control plane as kubeadm runs it: bootstrap tokens, an apiserver
	// that verifies kubelets' serving certificates, and here a short
	// signing duration.
	start := time.Now()
	env.restartControlPlaneWith(t,
		"--kubelet-certificate-authority="+ca,
		"--cluster-signing-duration="+signingDuration.String())
	t.Logf("control plane restarted with --kubelet-certificate-authority and --cluster-signing-duration=%s in %s", signingDuration, since(start))
	tokenID, bootstrapKubeconfig := env.bootstrapToken(t, true)
	approved := env.approveServingCSRs(t)

	// berth as kubeadm's drop-in starts it: a bootstrap kubeconfig, a
	// kubeconfig path that does not exist yet.
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubelet.conf")
	certDir := filepath.Join(dir, "pki")
	if err := env.berth.stop(); err != nil {
		t.Fatal(err)
	}
	env.deleteNode(t)
	from := env.berth.logSize()
	start = time.Now()
	env.restartBerthWith(t, "rotateCertificates: true\nserverTLSBootstrap: true\n",
		"--kubeconfig", kubeconfig, "--bootstrap-kubeconfig", bootstrapKubeconfig, "--cert-dir", certDir)
	env.eventually(t, 90*time.Second, env.nodeReady)
	t.Logf("berth started with only a bootstrap kubeconfig; node registered and Ready in %s", since(start))

	// 1. TLS bootstrap: the client certificate comes from a CSR the
	// bootstrap token made, approved by the controller-manager.
	clientLink := filepath.Join(certDir, "kubelet-client-current.pem")
	first := readLinkedCert(t, clientLink)
	checkNodeCert(t, first.cert, ca)
	bootstrapCSR := env.findCSR(t, certificatesv1.KubeAPIServerClientKubeletSignerName, "system:bootstrap:"+tokenID, first.cert)
	t.Logf("client certificate %s from CSR %s (requested by system:bootstrap:%s, auto-approved), valid until %s",
		filepath.Base(first.target), bootstrapCSR, tokenID, first.cert.NotAfter.Format(time.TimeOnly))
	checkBootstrappedKubeconfig(t, kubeconfig, clientLink)
	if _, err := os.Stat(filepath.Join(certDir, "kubelet-client.key.tmp")); !os.IsNotExist(err) {
		t.Errorf("the pending key kubelet-client.key.tmp is still there after the certificate was issued (%v)", err)
	}

	// 3. Serving certificate: requested for the Node's addresses, served
	// once approved; the apiserver verifies it for `kubectl logs`.
	ns := env.namespace(t)
	servingLink := filepath.Join(certDir, "kubelet-server-current.pem")
	env.eventually(t, 60*time.Second, fileExists(servingLink))
	serving := readLinkedCert(t, servingLink)
	checkNodeCert(t, serving.cert, ca)
	if !hasSAN(serving.cert, nodeName, "127.0.0.1") {
		t.Errorf("serving certificate SANs %v %v, want %s and 127.0.0.1 (the Node's addresses)", serving.cert.DNSNames, serving.cert.IPAddresses, nodeName)
	}
	env.eventually(t, 30*time.Second, servedCertificate(env.kubeletPort(t), ca, serving.cert))
	env.createPod(t, ns, shellPod("before", idleLogScript("before"), onNode()))
	env.readyPod(t, ns, "before", 60*time.Second)
	env.eventually(t, 30*time.Second, env.kubectlLogs(ns, "before", "hello from before"))
	t.Logf("kubectl logs through an apiserver with --kubelet-certificate-authority works (serving certificate %s)", filepath.Base(serving.target))

	// 2. Rotation: a new client certificate, without a restart; the
	// connections are closed so that watches go on with the new one.
	starts := env.berth.startCount()
	deadline := time.Until(first.cert.NotAfter) + 30*time.Second
	env.eventually(t, deadline, func() (bool, string) {
		cur, err := os.Readlink(clientLink)
		return err == nil && filepath.Base(cur) != filepath.Base(first.target),
			fmt.Sprintf("%s -> %s (%v)", filepath.Base(clientLink), cur, err)
	})
	second := readLinkedCert(t, clientLink)
	checkNodeCert(t, second.cert, ca)
	renewal := env.findCSR(t, certificatesv1.KubeAPIServerClientKubeletSignerName, "system:node:"+nodeName, second.cert)
	t.Logf("client certificate rotated to %s (CSR %s by the node itself) %s after start; first one issued %s, expires %s",
		filepath.Base(second.target), renewal, since(start), first.cert.NotBefore.Add(5*time.Minute).Format(time.TimeOnly), first.cert.NotAfter.Format(time.TimeOnly))
	env.eventually(t, 20*time.Second, func() (bool, string) {
		log := env.berth.logTail(from, 100000)
		return strings.Contains(log, "Certificate rotation detected, shutting down client connections"), "no log of closing the connections on rotation"
	})
	if env.berth.startCount() != starts || !env.berth.running() {
		t.Fatalf("berth was restarted (%d starts, was %d) or is not running", env.berth.startCount(), starts)
	}

	// The watches go on: a pod created now runs, its logs are served, and
	// the node's heartbeat continues.
	afterRotation := time.Now()
	env.eventually(t, 60*time.Second, env.leaseRenewedAfter(afterRotation))
	env.createPod(t, ns, shellPod("after", idleLogScript("after"), onNode()))
	_, took := env.readyPod(t, ns, "after", 60*time.Second)
	env.eventually(t, 30*time.Second, env.kubectlLogs(ns, "after", "hello from after"))
	t.Logf("after the rotation: Lease renewed; a new pod ran in %s and its logs came through the apiserver", took)
	for _, name := range []string{"kubelet_certificate_manager_client_ttl_seconds", "kubelet_certificate_manager_server_ttl_seconds"} {
		ttl := env.kubeletMetric(t, ca, name)
		if ttl <= 0 || ttl > signingDuration.Seconds() {
			t.Errorf("%s = %v, want the seconds left on a fresh certificate, within %v", name, ttl, signingDuration)
		}
	}

	// The serving certificate is rotated likewise (each renewal approved
	// by the test's operator).
	env.eventually(t, time.Until(serving.cert.NotAfter)+30*time.Second, func() (bool, string) {
		cur, err := os.Readlink(servingLink)
		return err == nil && filepath.Base(cur) != filepath.Base(serving.target), fmt.Sprintf("%s -> %s (%v)", filepath.Base(servingLink), cur, err)
	})
	env.eventually(t, 30*time.Second, servedCertificate(env.kubeletPort(t), ca, readLinkedCert(t, servingLink).cert))
	env.eventually(t, 30*time.Second, env.kubectlLogs(ns, "after", "hello from after"))
	t.Logf("serving certificate rotated too; %d kubelet-serving CSRs approved; still one berth process", approved.count())
	if env.berth.startCount() != starts {
		t.Errorf("berth was restarted during the test")
	}

	// An expired client certificate: berth, restarted on it, gets a new
	// one with the bootstrap kubeconfig.
	if wait := time.Until(first.cert.NotAfter); wait > 0 {
		env.eventually(t, wait+10*time.Second, func() (bool, string) {
			return time.Now().After(first.cert.NotAfter), "the first client certificate has not expired yet"
		})
	}
	if err := env.berth.stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(clientLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(first.target, clientLink); err != nil {
		t.Fatal(err)
	}
	if err := env.berth.start(); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, 60*time.Second, func() (bool, string) {
		cur, err := os.Readlink(clientLink)
		return err == nil && cur != first.target, fmt.Sprintf("%s -> %s (%v)", filepath.Base(clientLink), cur, err)
	})
	renewed := readLinkedCert(t, clientLink)
	checkNodeCert(t, renewed.cert, ca)
	again := env.findCSR(t, certificatesv1.KubeAPIServerClientKubeletSignerName, "system:bootstrap:"+tokenID, renewed.cert)
	env.eventually(t, 60*time.Second, env.nodeReady)
	t.Logf("restarted on the expired certificate: a new one from CSR %s made with the bootstrap token; node Ready", again)

	// In place (berth's difference from upstream, which exits): every
	// renewal is denied until the certificate expires; berth then asks
	// with the bootstrap kubeconfig and goes on without a restart. It
	// waits out a whole certificate lifetime (~4 min), so it runs only
	// when asked for (BERTH_TLS_LONG=1), not in CI.
	if os.Getenv("BERTH_TLS_LONG") != "1" {
		t.Log("in-place renewal after expiry not exercised (set BERTH_TLS_LONG=1 to run it)")
		return
	}
	ctx, cancel := apiContext()
	defer cancel()
	if err := env.kube.RbacV1().ClusterRoleBindings().Delete(ctx, "kubeadm:node-autoapprove-certificate-rotation", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("stop approving renewals: %v", err)
	}
	denied := env.decideCSRs(t, false, func(csr *certificatesv1.CertificateSigningRequest) bool {
		return csr.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName && csr.Spec.Username == "system:node:"+nodeName
	})
	starts = env.berth.startCount()
	env.eventually(t, time.Until(renewed.cert.NotAfter)+2*time.Minute, func() (bool, string) {
		cur, err := os.Readlink(clientLink)
		return err == nil && cur != renewed.target, fmt.Sprintf("%s -> %s (%v); %d renewals denied", filepath.Base(clientLink), cur, err, denied.count())
	})
	recovered := readLinkedCert(t, clientLink)
	checkNodeCert(t, recovered.cert, ca)
	byBootstrap := env.findCSR(t, certificatesv1.KubeAPIServerClientKubeletSignerName, "system:bootstrap:"+tokenID, recovered.cert)
	if issued := recovered.cert.NotBefore.Add(5 * time.Minute); issued.Before(renewed.cert.NotAfter) {
		t.Errorf("new certificate issued at %s, before the old one expired at %s", issued.Format(time.TimeOnly), renewed.cert.NotAfter.Format(time.TimeOnly))
	}
	if denied.count() == 0 {
		t.Error("no renewal was denied: the fallback was not exercised")
	}
	if env.berth.startCount() != starts || !env.berth.running() {
		t.Fatal("berth was restarted")
	}
	env.eventually(t, 60*time.Second, env.nodeReady)
	env.eventually(t, 60*time.Second, env.leaseRenewedAfter(time.Now()))
	if errs := env.kubeletMetric(t, ca, "kubelet_certificate_manager_client_expiration_renew_errors"); errs < 1 {
		t.Errorf("kubelet_certificate_manager_client_expiration_renew_errors = %v after denied renewals", errs)
	}
	t.Logf("%d renewals denied; after expiry berth got a certificate from CSR %s with the bootstrap token, in place; node Ready", denied.count(), byBootstrap)
}

// TestTLSBootstrapResumesAfterRestart: without rotation, berth waits for
// its client certificate before it starts anything; killed while its CSR
// is pending, it asks again with the same key, finds the same CSR, and
// goes on once an operator approves it.
func TestTLSBootstrapResumesAfterRestart(t *testing.T) {
	env := requireSuite(t)
	ca := filepath.Join(env.stateDir, "pki", "ca.crt")
	tokenID, bootstrapKubeconfig := env.bootstrapToken(t, false) // no automatic approval
	user := "system:bootstrap:" + tokenID
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubelet.conf")
	certDir := filepath.Join(dir, "pki")
	pendingKey := filepath.Join(certDir, "kubelet-client.key.tmp")
	if err := env.berth.stop(); err != nil {
		t.Fatal(err)
	}
	env.deleteNode(t)
	from := env.berth.logSize()
	env.replaceBerth(t, (*berth).launch, "",
		"--kubeconfig", kubeconfig, "--bootstrap-kubeconfig", bootstrapKubeconfig, "--cert-dir", certDir)

	var pending *certificatesv1.CertificateSigningRequest
	env.eventually(t, 60*time.Second, func() (bool, string) {
		csrs := env.csrsBy(t, user)
		if len(csrs) == 1 {
			pending = &csrs[0]
		}
		return len(csrs) == 1, fmt.Sprintf("%d CSRs by %s", len(csrs), user)
	})
	if !strings.HasPrefix(pending.Name, "node-csr-") || pending.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName || csrDecided(pending) {
		t.Errorf("CSR %s: signer %s, conditions %v; want a pending node-csr-<digest> for %s", pending.Name, pending.Spec.SignerName, pending.Status.Conditions, certificatesv1.KubeAPIServerClientKubeletSignerName)
	}
	if want := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}; !slices.Equal(pending.Spec.Usages, want) {
		t.Errorf("CSR usages %v, want %v", pending.Spec.Usages, want)
	}
	req, err := parseCSR(pending.Spec.Request)
	if err != nil {
		t.Fatal(err)
	}
	if req.Subject.CommonName != "system:node:"+nodeName || !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("CSR subject %v", req.Subject)
	}
	key, err := os.ReadFile(pendingKey)
	if err != nil {
		t.Fatalf("pending key: %v", err)
	}
	if _, err := os.Stat(kubeconfig); !os.IsNotExist(err) {
		t.Errorf("kubeconfig written before the certificate was issued (%v)", err)
	}
	t.Logf("berth waits for CSR %s (pending, by %s)", pending.Name, user)

	// A crash while waiting, and a new start.
	if err := env.berth.kill(); err != nil {
		t.Fatal(err)
	}
	if err := env.berth.launch(); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, 60*time.Second, func() (bool, string) {
		n := strings.Count(env.berth.logTail(from, 100000), "Waiting for the client certificate to be approved and issued")
		return n >= 2, fmt.Sprintf("berth logged waiting for its certificate %d times, want once per start", n)
	})
	if again, err := os.ReadFile(pendingKey); err != nil || string(again) != string(key) {
		t.Errorf("pending key after the restart: changed or gone (%v)", err)
	}
	if csrs := env.csrsBy(t, user); len(csrs) != 1 || csrs[0].Name != pending.Name {
		t.Errorf("after the restart: %d CSRs by %s, want only %s", len(csrs), user, pending.Name)
	}

	// The operator approves; berth goes on.
	ctx, cancel := apiContext()
	defer cancel()
	pending.Status.Conditions = append(pending.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: v1.ConditionTrue, Reason: "BerthE2E", Message: "approved by the cluster e2e test",
	})
	if _, err := env.kube.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, pending.Name, pending, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("approve %s: %v", pending.Name, err)
	}
	start := time.Now()
	env.eventually(t, 90*time.Second, env.nodeReady)
	clientLink := filepath.Join(certDir, "kubelet-client-current.pem")
	issued := readLinkedCert(t, clientLink)
	checkNodeCert(t, issued.cert, ca)
	if !samePublicKey(t, issued.cert, key) {
		t.Error("the issued certificate is not for the key berth kept while it waited")
	}
	checkBootstrappedKubeconfig(t, kubeconfig, clientLink)
	if _, err := os.Stat(pendingKey); !os.IsNotExist(err) {
		t.Errorf("pending key still there after the certificate was issued (%v)", err)
	}
	t.Logf("approved: certificate %s for the same key, node Ready %s later", filepath.Base(issued.target), since(start))
}

// idleLogScript prints one line and waits; SIGTERM ends it at once.
func idleLogScript(name string) string {
	return "echo hello from " + name + "; " + idleScript
}

// --- the control plane ---

// restartControlPlaneWith restarts the apiserver and the controller-manager
// with extra flags, and again without them when t ends.
func (env *environment) restartControlPlaneWith(t *testing.T, apiserverFlags, kcmFlags string) {
	t.Helper()
	restart := func(apiserver, kcm string) error {
		if out, err := env.clusterScript("restart-control-plane", "BERTH_APISERVER_FLAGS="+apiserver, "BERTH_KCM_FLAGS="+kcm); err != nil {
			return fmt.Errorf("hack/cluster.sh restart-control-plane: %w\n%s", err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if err := restart("", ""); err != nil {
			t.Errorf("restore the control plane: %v", err)
		}
	})
	if err := restart(apiserverFlags, kcmFlags); err != nil {
		t.Fatal(err)
	}
}

// bootstrapToken makes a bootstrap token and the RBAC bindings kubeadm
// makes for TLS bootstrap (create CSRs, their automatic approval, and
// the renewal of a node's own certificate), and writes a bootstrap
// kubeconfig with the token. All of it is removed when t ends.
func (env *environment) bootstrapToken(t *testing.T, autoApprove bool) (tokenID, kubeconfigPath string) {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	tokenID = fmt.Sprintf("b%05d", time.Now().UnixNano()%100000)
	tokenSecret := fmt.Sprintf("%016x", time.Now().UnixNano())[:16]
	secret := &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + tokenID, Namespace: metav1.NamespaceSystem},
		Type:       v1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"token-id":                       tokenID,
			"token-secret":                   tokenSecret,
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              bootstrapGroup,
			"expiration":                     time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		},
	}
	if _, err := env.kube.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create bootstrap token: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := apiContext()
		defer cancel()
		_ = env.kube.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, secret.Name, metav1.DeleteOptions{})
	})
	for name, b := range map[string]struct{ role, group string }{
		"kubeadm:kubelet-bootstrap":                     {"system:node-bootstrapper", bootstrapGroup},
		"kubeadm:node-autoapprove-bootstrap":            {"system:certificates.k8s.io:certificatesigningrequests:nodeclient", bootstrapGroup},
		"kubeadm:node-autoapprove-certificate-rotation": {"system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes"},
	} {
		if name == "kubeadm:node-autoapprove-bootstrap" && !autoApprove {
			continue
		}
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: b.group}},
		}
		_, err := env.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create ClusterRoleBinding %s: %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := apiContext()
			defer cancel()
			_ = env.kube.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		})
	}
	kc := clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{"kubernetes": {
			Server:               env.adminConfig(t).Host,
			CertificateAuthority: filepath.Join(env.stateDir, "pki", "ca.crt"),
		}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"tls-bootstrap-token-user": {Token: tokenID + "." + tokenSecret}},
		Contexts:       map[string]*clientcmdapi.Context{"tls-bootstrap-token-user@kubernetes": {Cluster: "kubernetes", AuthInfo: "tls-bootstrap-token-user"}},
		CurrentContext: "tls-bootstrap-token-user@kubernetes",
	}
	kubeconfigPath = filepath.Join(t.TempDir(), "bootstrap-kubelet.conf")
	if err := clientcmd.WriteToFile(kc, kubeconfigPath); err != nil {
		t.Fatal(err)
	}
	return tokenID, kubeconfigPath
}

// deleteNode deletes berth's Node (berth is stopped) so that the next
// berth registers it anew.
func (env *environment) deleteNode(t *testing.T) {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	if err := env.kube.CoreV1().Nodes().Delete(ctx, nodeName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete node: %v", err)
	}
	env.eventually(t, 30*time.Second, func() (bool, string) {
		_, err := env.getNode()
		return apierrors.IsNotFound(err), fmt.Sprintf("node %s still there (%v)", nodeName, err)
	})
}

// --- certificates ---

// csrOperator approves (or denies), as an operator would, the CSRs that
// match until t ends.
type csrOperator struct {
	approve bool
	match   func(*certificatesv1.CertificateSigningRequest) bool

	mu      sync.Mutex
	decided map[string]bool
}

func (o *csrOperator) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.decided)
}

// approveServingCSRs approves the kubelet-serving CSRs of berth's node.
func (env *environment) approveServingCSRs(t *testing.T) *csrOperator {
	return env.decideCSRs(t, true, func(csr *certificatesv1.CertificateSigningRequest) bool {
		return csr.Spec.SignerName == certificatesv1.KubeletServingSignerName && csr.Spec.Username == "system:node:"+nodeName
	})
}

func (env *environment) decideCSRs(t *testing.T, approve bool, match func(*certificatesv1.CertificateSigningRequest) bool) *csrOperator {
	o := &csrOperator{approve: approve, match: match, decided: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			o.decidePending(ctx, env)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return o
}

func (o *csrOperator) decidePending(ctx context.Context, env *environment) {
	csrs := env.kube.CertificatesV1().CertificateSigningRequests()
	list, err := csrs.List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range list.Items {
		csr := &list.Items[i]
		if !o.match(csr) || csrDecided(csr) {
			continue
		}
		cond := certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: v1.ConditionTrue,
			Reason: "BerthE2E", Message: "approved by the cluster e2e test as an operator would",
		}
		if !o.approve {
			cond.Type, cond.Message = certificatesv1.CertificateDenied, "denied by the cluster e2e test"
		}
		csr.Status.Conditions = append(csr.Status.Conditions, cond)
		if _, err := csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err == nil {
			o.mu.Lock()
			o.decided[csr.Name] = true
			o.mu.Unlock()
		}
	}
}

func csrDecided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied {
			return true
		}
	}
	return false
}

// csrsBy lists the CSRs user made.
func (env *environment) csrsBy(t *testing.T, user string) []certificatesv1.CertificateSigningRequest {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	list, err := env.kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []certificatesv1.CertificateSigningRequest
	for _, csr := range list.Items {
		if csr.Spec.Username == user {
			out = append(out, csr)
		}
	}
	return out
}

func parseCSR(pemData []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("no CERTIFICATE REQUEST PEM block")
	}
	return x509.ParseCertificateRequest(block.Bytes)
}

// samePublicKey reports whether cert is for the private key in keyPEM.
func samePublicKey(t *testing.T, cert *x509.Certificate, keyPEM []byte) bool {
	t.Helper()
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatalf("key %T cannot sign", key)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(signer.Public())
}

// findCSR returns the name of the approved CSR for signer by user whose
// certificate is cert.
func (env *environment) findCSR(t *testing.T, signer, user string, cert *x509.Certificate) string {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	list, err := env.kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, csr := range list.Items {
		seen = append(seen, fmt.Sprintf("%s (%s by %s, %d bytes issued)", csr.Name, csr.Spec.SignerName, csr.Spec.Username, len(csr.Status.Certificate)))
		if csr.Spec.SignerName != signer || csr.Spec.Username != user || !csrDecided(csr.DeepCopy()) {
			continue
		}
		issued, err := certutil.ParseCertsPEM(csr.Status.Certificate)
		if err == nil && len(issued) > 0 && issued[0].Equal(cert) {
			return csr.Name
		}
	}
	t.Fatalf("no approved CSR for %s by %s issued certificate serial %s; CSRs: %s", signer, user, cert.SerialNumber, strings.Join(seen, "; "))
	return ""
}

// linkedCert is a certificate store's current link, its target and the
// certificate in it.
type linkedCert struct {
	target string
	cert   *x509.Certificate
}

func readLinkedCert(t *testing.T, link string) linkedCert {
	t.Helper()
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatalf("%s is not a link: %v", link, err)
	}
	if !strings.HasPrefix(filepath.Base(target), strings.TrimSuffix(filepath.Base(link), "current.pem")) || !strings.HasSuffix(target, ".pem") {
		t.Errorf("%s -> %s, want <prefix>-<timestamp>.pem", link, target)
	}
	data, err := os.ReadFile(link)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := certutil.ParseCertsPEM(data)
	if err != nil || len(certs) == 0 {
		t.Fatalf("%s: no certificate: %v", link, err)
	}
	return linkedCert{target: target, cert: certs[0]}
}

// checkNodeCert checks a certificate is the node's, signed by the CA.
func checkNodeCert(t *testing.T, cert *x509.Certificate, caFile string) {
	t.Helper()
	if cert.Subject.CommonName != "system:node:"+nodeName || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "system:nodes" {
		t.Errorf("certificate subject %v, want CN system:node:%s, O system:nodes", cert.Subject, nodeName)
	}
	roots, err := certutil.NewPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("certificate %v not signed by the cluster CA: %v", cert.Subject, err)
	}
}

// checkBootstrappedKubeconfig checks the kubeconfig berth wrote points at
// the current client certificate.
func checkBootstrappedKubeconfig(t *testing.T, path, pem string) {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("kubeconfig berth wrote: %v", err)
	}
	ctx := kc.Contexts[kc.CurrentContext]
	if ctx == nil || kc.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("kubeconfig %s has no current context with a user", path)
	}
	auth := kc.AuthInfos[ctx.AuthInfo]
	if auth.ClientCertificate != pem || auth.ClientKey != pem || auth.Token != "" {
		t.Errorf("kubeconfig user %+v, want certificate and key in %s", auth, pem)
	}
}

func hasSAN(cert *x509.Certificate, dnsName, ip string) bool {
	okName, okIP := false, false
	for _, n := range cert.DNSNames {
		okName = okName || n == dnsName
	}
	for _, a := range cert.IPAddresses {
		okIP = okIP || a.String() == ip
	}
	return okName && okIP
}

// servedCertificate is a condition: berth's kubelet API presents want, and
// it verifies against the CA for the node's name, as the apiserver checks.
func servedCertificate(port int32, caFile string, want *x509.Certificate) func() (bool, string) {
	return func() (bool, string) {
		roots, err := certutil.NewPool(caFile)
		if err != nil {
			return false, err.Error()
		}
		d := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), &tls.Config{RootCAs: roots, ServerName: nodeName})
		if err != nil {
			return false, fmt.Sprintf("TLS to the kubelet API verified for %s: %v", nodeName, err)
		}
		defer conn.Close()
		got := conn.ConnectionState().PeerCertificates[0]
		return got.Equal(want), fmt.Sprintf("served certificate serial %s, want %s", got.SerialNumber, want.SerialNumber)
	}
}

// kubeletMetric reads a metric without labels from berth's /metrics as the
// admin, verifying berth's serving certificate against the cluster CA.
func (env *environment) kubeletMetric(t *testing.T, caFile, name string) float64 {
	t.Helper()
	roots, err := certutil.NewPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	adminCert, adminKey := env.pkiPair("admin")
	pair, err := tls.LoadX509KeyPair(adminCert, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: nodeName, Certificates: []tls.Certificate{pair}},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/metrics", env.kubeletPort(t)))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	families, err := parseMetrics(body)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := sample(families, name, nil)
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
	return v
}

func fileExists(path string) func() (bool, string) {
	return func() (bool, string) {
		_, err := os.Stat(path)
		return err == nil, fmt.Sprintf("%s: %v", path, err)
	}
}

// kubectlLogs is a condition: `kubectl logs` of the pod shows want.
func (env *environment) kubectlLogs(ns, pod, want string) func() (bool, string) {
	return func() (bool, string) {
		out, stderr, code, err := env.kubectl("", 20*time.Second, "-n", ns, "logs", pod)
		return err == nil && code == 0 && strings.Contains(out, want), fmt.Sprintf("kubectl logs %s: exit %d %v: %q %s", pod, code, err, out, stderr)
	}
}
