package kubeadm

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// clusterConfig is the configuration the cluster side of kubeadm is run
// with. The KubeletConfiguration goes into the kubelet-config ConfigMap that
// every joining node's kubelet runs with: cgroupfs, since containerd 1.6
// cannot tell its cgroup driver over CRI; failCgroupV1: false, as kubeadm's
// preflight asks of a kubelet on a cgroup v1 host like this one (a no-op on
// v2); serving certificates from the certificates API.
const clusterConfig = `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
controlPlaneEndpoint: 127.0.0.1:6443
networking:
  serviceSubnet: 10.0.0.0/24
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
serverTLSBootstrap: true
`

// joinPreflightIgnored are the preflight checks that cannot pass on this
// machine, with why:
//   - SystemVerification: the host has cgroup v1 (hybrid), which kubeadm
//     v1.37 reports as an error for kubelets from v1.35 on.
var joinPreflightIgnored = []string{"SystemVerification"}

// TestKubeadmJoin joins the node to the control plane with a bootstrap
// token, as an operator does with `kubeadm token create
// --print-join-command`, while kubeletunit runs berth exactly as kubeadm's
// drop-in starts a kubelet. It checks that the node's client certificate is
// the one an approved CSR issued, that the node is Ready, that its serving
// certificate comes from a CSR approved here as an operator would, that
// the API server (verifying the kubelet's certificate) reaches it for logs,
// and that a scheduled pod runs.
func TestKubeadmJoin(t *testing.T) {
	env := requireSuite(t)
	ctx := ctxFor(t, 10*time.Minute)

	// The cluster side, as `kubeadm init` would have left it.
	cfgPath := filepath.Join(env.base, "kubeadm-cluster.yaml")
	if err := os.WriteFile(cfgPath, []byte(clusterConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := "--kubeconfig=" + env.adminKubeconfig()
	for _, phase := range [][]string{{"upload-config", "all"}, {"bootstrap-token"}} {
		args := append(append([]string{"init", "phase"}, phase...), "--config="+cfgPath, admin)
		if _, err := env.kubeadm(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.kube.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{}); err != nil {
		t.Fatalf("cluster-info ConfigMap: %v", err)
	}
	out, err := env.kubeadm(ctx, "token", "create", "--print-join-command", admin)
	if err != nil {
		t.Fatal(err)
	}
	join := strings.Fields(lastLine(out))
	if len(join) < 3 || join[0] != "kubeadm" || join[1] != "join" {
		t.Fatalf("kubeadm token create --print-join-command printed %q", out)
	}
	token := flagValue(join, "--token")
	if token == "" || flagValue(join, "--discovery-token-ca-cert-hash") == "" {
		t.Fatalf("join command %q lacks --token or --discovery-token-ca-cert-hash", join)
	}
	tokenID, _, _ := strings.Cut(token, ".")

	// The node side.
	start := time.Now()
	args := append(join[1:], "--cri-socket="+env.criSocket(), "--ignore-preflight-errors="+strings.Join(joinPreflightIgnored, ","))
	out, err = env.kubeadm(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "This node has joined the cluster") {
		t.Fatalf("kubeadm join succeeded without saying the node joined:\n%s", out)
	}
	t.Logf("kubeadm join done in %s", since(start))

	// The client certificate: issued for an approved CSR that the
	// bootstrap token's user made, and the one the kubeconfig names.
	var clientCSR *certv1.CertificateSigningRequest
	csrs, err := env.kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range csrs.Items {
		if c.Spec.SignerName == certv1.KubeAPIServerClientKubeletSignerName && c.Spec.Username == "system:bootstrap:"+tokenID {
			clientCSR = &csrs.Items[i]
		}
	}
	if clientCSR == nil {
		t.Fatalf("no %s CSR by system:bootstrap:%s among %d", certv1.KubeAPIServerClientKubeletSignerName, tokenID, len(csrs.Items))
	}
	if !hasCondition(clientCSR, certv1.CertificateApproved) || len(clientCSR.Status.Certificate) == 0 {
		t.Fatalf("CSR %s: conditions %v, %d bytes of certificate", clientCSR.Name, clientCSR.Status.Conditions, len(clientCSR.Status.Certificate))
	}
	current, err := env.node.run(ctx, nil, "cat", "/var/lib/kubelet/pki/kubelet-client-current.pem")
	if err != nil {
		t.Fatal(err)
	}
	nodeCert := firstCert(t, []byte(current))
	if !bytes.Equal(nodeCert.Raw, firstCert(t, clientCSR.Status.Certificate).Raw) {
		t.Errorf("the node's kubelet-client-current.pem is not the certificate CSR %s issued", clientCSR.Name)
	}
	if nodeCert.Subject.CommonName != "system:node:"+nodeName || !slices.Equal(nodeCert.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("client certificate subject %s, want CN system:node:%s, O system:nodes", nodeCert.Subject, nodeName)
	}
	kubeconfig, err := os.ReadFile(filepath.Join(env.base, "etc-kubernetes", "kubelet.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kubeconfig), "client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem") {
		t.Errorf("/etc/kubernetes/kubelet.conf does not use kubelet-client-current.pem:\n%s", kubeconfig)
	}

	d := eventually(t, 60*time.Second, func() (bool, string) { return env.nodeReady(ctx, nodeName) })
	t.Logf("node %s Ready %s after kubeadm join", nodeName, d.Round(time.Millisecond))

	// The serving certificate's CSR, approved below as an operator does.
	var servingCSR *certv1.CertificateSigningRequest
	eventually(t, 60*time.Second, func() (bool, string) {
		csrs, err := env.kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for i, c := range csrs.Items {
			if c.Spec.SignerName == certv1.KubeletServingSignerName && c.Spec.Username == "system:node:"+nodeName {
				servingCSR = &csrs.Items[i]
				return true, ""
			}
		}
		return false, fmt.Sprintf("no %s CSR by system:node:%s among %d", certv1.KubeletServingSignerName, nodeName, len(csrs.Items))
	})
	req := servingCSRRequest(t, servingCSR)
	if !slices.Contains(req.DNSNames, nodeName) || !slices.ContainsFunc(req.IPAddresses, func(ip net.IP) bool { return ip.String() == nodeIP }) {
		t.Errorf("serving CSR SANs: DNS %v, IPs %v; want %s and %s among them", req.DNSNames, req.IPAddresses, nodeName, nodeIP)
	}
	// A pod the scheduler places on the node; its log read through the
	// API server, which verifies the kubelet's serving certificate: it
	// works once the serving CSR is approved.
	ns := env.namespace(t, "kubeadm-join")
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{
				Name: "hello", Image: "berth.local/busybox:1.0", ImagePullPolicy: v1.PullIfNotPresent,
				Command: []string{"sh", "-c", "echo hello from $(hostname); exec sleep 3600"},
			}},
			TerminationGracePeriodSeconds: new(int64),
		},
	}
	if _, err := env.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.podRunning(t, ns, "hello", nodeName)
	// Until the CSR is approved berth has no serving certificate that the
	// API server accepts (upstream serves none at all).
	if body, err := env.kube.CoreV1().Pods(ns).GetLogs("hello", &v1.PodLogOptions{}).DoRaw(ctx); err == nil {
		t.Errorf("logs before the serving certificate was approved: %q; want the API server to refuse the kubelet's certificate", body)
	} else {
		t.Logf("logs before the serving certificate was approved: %v", err)
	}
	servingCSR.Status.Conditions = append(servingCSR.Status.Conditions, certv1.CertificateSigningRequestCondition{
		Type: certv1.CertificateApproved, Status: v1.ConditionTrue, Reason: "KubeadmE2EApprove", Message: "approved by the kubeadm e2e test",
	})
	if _, err := env.kube.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, servingCSR.Name, servingCSR, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("approve %s: %v", servingCSR.Name, err)
	}

	eventually(t, 60*time.Second, func() (bool, string) {
		body, err := env.kube.CoreV1().Pods(ns).GetLogs("hello", &v1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(string(body), "hello from hello"), fmt.Sprintf("log %q", body)
	})
}

func hasCondition(csr *certv1.CertificateSigningRequest, typ certv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == typ && c.Status == v1.ConditionTrue {
			return true
		}
	}
	return false
}

func firstCert(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	for {
		var block *pem.Block
		block, pemData = pem.Decode(pemData)
		if block == nil {
			t.Fatal("no CERTIFICATE block in PEM data")
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return cert
		}
	}
}

func servingCSRRequest(t *testing.T, csr *certv1.CertificateSigningRequest) *x509.CertificateRequest {
	t.Helper()
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		t.Fatalf("CSR %s: no PEM request", csr.Name)
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// flagValue finds --name value or --name=value in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
