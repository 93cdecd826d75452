package main

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func testLayout(dir string) layout {
	return layout{dir: dir, node: "n1", server: "https://127.0.0.1:6443", serviceIP: net.ParseIP("10.0.0.1"), now: t0}
}

// snapshot reads every file under dir, by path relative to dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func changed(before, after map[string]string) []string {
	var out []string
	for name, data := range after {
		if before[name] != data {
			out = append(out, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			out = append(out, name+" (removed)")
		}
	}
	slices.Sort(out)
	return out
}

func TestGenerateWritesVerifiableCerts(t *testing.T) {
	dir := t.TempDir()
	if err := generate(testLayout(dir)); err != nil {
		t.Fatal(err)
	}
	ca, err := loadCert(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	tests := []struct {
		stem  string
		usage x509.ExtKeyUsage
		cn    string
		orgs  []string
		host  string // verified as a DNS name or IP when set
	}{
		{stem: "apiserver", usage: x509.ExtKeyUsageServerAuth, cn: "kube-apiserver", host: "kubernetes.default.svc.cluster.local"},
		{stem: "apiserver", usage: x509.ExtKeyUsageServerAuth, cn: "kube-apiserver", host: "10.0.0.1"},
		{stem: "apiserver", usage: x509.ExtKeyUsageServerAuth, cn: "kube-apiserver", host: "127.0.0.1"},
		{stem: "apiserver", usage: x509.ExtKeyUsageServerAuth, cn: "kube-apiserver", host: "localhost"},
		{stem: "admin", usage: x509.ExtKeyUsageClientAuth, cn: "kubernetes-admin", orgs: []string{"system:masters"}},
		{stem: "controller-manager", usage: x509.ExtKeyUsageClientAuth, cn: "system:kube-controller-manager"},
		{stem: "scheduler", usage: x509.ExtKeyUsageClientAuth, cn: "system:kube-scheduler"},
		{stem: "apiserver-kubelet-client", usage: x509.ExtKeyUsageClientAuth, cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}},
		{stem: "node", usage: x509.ExtKeyUsageClientAuth, cn: "system:node:n1", orgs: []string{"system:nodes"}},
		{stem: "front-proxy-client", usage: x509.ExtKeyUsageClientAuth, cn: "front-proxy-client"},
	}
	for _, tt := range tests {
		t.Run(tt.stem+" "+tt.host, func(t *testing.T) {
			cert, _, err := loadPair(paths(filepath.Join(dir, "pki"), tt.stem))
			if err != nil {
				t.Fatal(err)
			}
			opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tt.usage}, DNSName: tt.host, CurrentTime: t0}
			if _, err := cert.Verify(opts); err != nil {
				t.Errorf("verify: %v", err)
			}
			if cert.Subject.CommonName != tt.cn || !slices.Equal(cert.Subject.Organization, tt.orgs) {
				t.Errorf("subject CN=%q O=%q, want CN=%q O=%q", cert.Subject.CommonName, cert.Subject.Organization, tt.cn, tt.orgs)
			}
		})
	}

	if _, err := loadPublicKey(filepath.Join(dir, "pki", "sa.pub")); err != nil {
		t.Errorf("sa.pub: %v", err)
	}
	for _, kc := range kubeconfigs {
		cfg, err := clientcmd.LoadFromFile(filepath.Join(dir, kc.name))
		if err != nil {
			t.Fatalf("%s: %v", kc.name, err)
		}
		rest, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
		if err != nil {
			t.Fatalf("%s: %v", kc.name, err)
		}
		if rest.Host != "https://127.0.0.1:6443" || len(rest.TLSClientConfig.CertData) == 0 || len(rest.TLSClientConfig.CAData) == 0 {
			t.Errorf("%s: host %q, cert %d bytes, CA %d bytes", kc.name, rest.Host, len(rest.TLSClientConfig.CertData), len(rest.TLSClientConfig.CAData))
		}
	}
}

// TestGenerateReplacesOnlyWhatChanged runs generate twice and checks which
// files the second run rewrote.
func TestGenerateReplacesOnlyWhatChanged(t *testing.T) {
	tests := []struct {
		name   string
		change func(l *layout, dir string)
		want   []string
	}{
		{
			name:   "nothing changed",
			change: func(*layout, string) {},
		},
		{
			name:   "new node name",
			change: func(l *layout, _ string) { l.node = "n2" },
			want:   []string{"node.kubeconfig", "pki/node.crt", "pki/node.key"},
		},
		{
			name:   "further nodes",
			change: func(l *layout, _ string) { l.extraNodes = []string{"n2", "n3"} },
			want: []string{
				"node-n2.kubeconfig", "node-n3.kubeconfig",
				"pki/node-n2.crt", "pki/node-n2.key", "pki/node-n3.crt", "pki/node-n3.key",
			},
		},
		{
			name:   "apiserver on another IP",
			change: func(l *layout, _ string) { l.server = "https://10.233.0.1:6443" },
			want: []string{
				"admin.kubeconfig", "controller-manager.kubeconfig", "node.kubeconfig",
				"pki/apiserver.crt", "pki/apiserver.key", "scheduler.kubeconfig",
			},
		},
		{
			name:   "new service IP",
			change: func(l *layout, _ string) { l.serviceIP = net.ParseIP("10.96.0.1") },
			want:   []string{"pki/apiserver.crt", "pki/apiserver.key"},
		},
		{
			name:   "new server URL",
			change: func(l *layout, _ string) { l.server = "https://127.0.0.1:7443" },
			want:   []string{"admin.kubeconfig", "controller-manager.kubeconfig", "node.kubeconfig", "scheduler.kubeconfig"},
		},
		{
			name:   "scheduler key lost",
			change: func(_ *layout, dir string) { os.Remove(filepath.Join(dir, "pki", "scheduler.key")) },
			want:   []string{"pki/scheduler.crt", "pki/scheduler.key", "scheduler.kubeconfig"},
		},
		{
			name:   "service-account public key lost",
			change: func(_ *layout, dir string) { os.Remove(filepath.Join(dir, "pki", "sa.pub")) },
			want:   []string{"pki/sa.key", "pki/sa.pub"},
		},
		{
			name:   "leaves about to expire",
			change: func(l *layout, _ string) { l.now = t0.Add(leafValidity - time.Hour) },
			want: []string{
				"admin.kubeconfig", "controller-manager.kubeconfig", "node.kubeconfig",
				"pki/admin.crt", "pki/admin.key", "pki/apiserver-kubelet-client.crt", "pki/apiserver-kubelet-client.key",
				"pki/apiserver.crt", "pki/apiserver.key", "pki/controller-manager.crt", "pki/controller-manager.key",
				"pki/front-proxy-client.crt", "pki/front-proxy-client.key", "pki/node.crt", "pki/node.key", "pki/scheduler.crt", "pki/scheduler.key", "scheduler.kubeconfig",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := testLayout(dir)
			if err := generate(l); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			tt.change(&l, dir)
			if err := generate(l); err != nil {
				t.Fatal(err)
			}
			if got := changed(before, snapshot(t, dir)); !slices.Equal(got, tt.want) {
				t.Errorf("rewritten %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewCAReplacesEveryLeaf(t *testing.T) {
	dir := t.TempDir()
	l := testLayout(dir)
	if err := generate(l); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	os.Remove(filepath.Join(dir, "pki", "ca.key"))
	if err := generate(l); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	for name, data := range before {
		if filepath.Ext(name) == ".crt" && after[name] == data {
			t.Errorf("%s kept after the CA was replaced", name)
		}
	}
}
