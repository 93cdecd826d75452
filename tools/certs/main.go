// Command certs writes the PKI and kubeconfigs of the development control
// plane that hack/cluster.sh runs: a CA, the apiserver's serving cert, the
// service-account key pair and one client cert per component, berth's node
// identity among them.
//
// It is idempotent: a cert is kept while it is signed by the CA, is valid for
// at least another day and has the subject and SANs wanted now; otherwise it
// is replaced (so a new -node or -service-ip replaces only what depends on
// it). Kubeconfigs are always rewritten, since they are cheap and carry the
// server URL. Keys are ECDSA P-256; the service-account key too (ES256).
//
// Usage:
//
//	certs -dir STATE_DIR -node berth-node -server https://127.0.0.1:6443 -service-ip 10.0.0.1
//
// Layout under DIR: pki/{ca,apiserver,admin,controller-manager,scheduler,
// apiserver-kubelet-client,node}.{crt,key}, pki/sa.{key,pub}, and
// {admin,controller-manager,scheduler,node}.kubeconfig.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	var (
		dir       = fs.String("dir", "", "state directory (required)")
		node      = fs.String("node", "berth-node", "node name for berth's client cert (CN=system:node:NODE)")
		server    = fs.String("server", "https://127.0.0.1:6443", "apiserver URL written into the kubeconfigs")
		serviceIP = fs.String("service-ip", "10.0.0.1", "first IP of the service CIDR, a SAN of the apiserver cert")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("-dir is required and there are no arguments")
	}
	ip := net.ParseIP(*serviceIP)
	if ip == nil {
		return fmt.Errorf("-service-ip %q is not an IP", *serviceIP)
	}
	return generate(layout{dir: *dir, node: *node, server: *server, serviceIP: ip, now: time.Now()})
}

// layout says what to write where.
type layout struct {
	dir       string
	node      string
	server    string
	serviceIP net.IP
	now       time.Time // validity is counted from here
}

// leaves lists the certs signed by the CA, by file stem under pki/.
func (l layout) leaves() []leafSpec {
	return []leafSpec{
		{
			stem:    "apiserver",
			subject: subject{CN: "kube-apiserver"},
			server:  true,
			dns: []string{
				"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local",
			},
			ips: []net.IP{net.IPv4(127, 0, 0, 1), l.serviceIP},
		},
		{stem: "admin", subject: subject{CN: "kubernetes-admin", O: []string{"system:masters"}}},
		{stem: "controller-manager", subject: subject{CN: "system:kube-controller-manager"}},
		{stem: "scheduler", subject: subject{CN: "system:kube-scheduler"}},
		{stem: "apiserver-kubelet-client", subject: subject{CN: "kube-apiserver-kubelet-client", O: []string{"system:masters"}}},
		{stem: "node", subject: subject{CN: "system:node:" + l.node, O: []string{"system:nodes"}}},
	}
}

// kubeconfigs maps each kubeconfig to the client cert it uses.
var kubeconfigs = []struct{ name, stem, user string }{
	{"admin.kubeconfig", "admin", "kubernetes-admin"},
	{"controller-manager.kubeconfig", "controller-manager", "system:kube-controller-manager"},
	{"scheduler.kubeconfig", "scheduler", "system:kube-scheduler"},
	{"node.kubeconfig", "node", "node"},
}

func generate(l layout) error {
	pki := filepath.Join(l.dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	ca, err := ensureCA(pki, l.now)
	if err != nil {
		return err
	}
	for _, spec := range l.leaves() {
		if err := ensureLeaf(pki, ca, spec, l.now); err != nil {
			return fmt.Errorf("%s cert: %w", spec.stem, err)
		}
	}
	if err := ensureKeyPair(filepath.Join(pki, "sa.key"), filepath.Join(pki, "sa.pub")); err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	for _, kc := range kubeconfigs {
		data, err := kubeconfig(l.server, pki, kc.stem, kc.user)
		if err != nil {
			return fmt.Errorf("%s: %w", kc.name, err)
		}
		if err := writeFile(filepath.Join(l.dir, kc.name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
