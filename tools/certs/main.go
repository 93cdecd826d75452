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
//	certs -dir STATE_DIR -node berth-node -server https://127.0.0.1:6443 -service-ip 10.0.0.1 [-nodes n1,n2]
//
// Layout under DIR: pki/{ca,apiserver,admin,controller-manager,scheduler,
// apiserver-kubelet-client,front-proxy-client,node}.{crt,key},
// pki/sa.{key,pub}, and {admin,controller-manager,scheduler,node}.kubeconfig;
// for each of -nodes (a cluster of several nodes, hack/multinode.sh),
// pki/node-NAME.{crt,key} and node-NAME.kubeconfig. The apiserver's cert
// names the -server URL's IP too, for a cluster whose apiserver is not on
// loopback.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
		nodes     = fs.String("nodes", "", "comma-separated names of further nodes, each with a client cert and kubeconfig of its own")
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
	var extra []string
	for n := range strings.SplitSeq(*nodes, ",") {
		if n = strings.TrimSpace(n); n != "" {
			extra = append(extra, n)
		}
	}
	return generate(layout{dir: *dir, node: *node, server: *server, serviceIP: ip, extraNodes: extra, now: time.Now()})
}

// layout says what to write where.
type layout struct {
	dir       string
	node      string
	server    string
	serviceIP net.IP
	// extraNodes get a client cert and kubeconfig each (node-NAME).
	extraNodes []string
	now        time.Time // validity is counted from here
}

// apiserverIPs are the apiserver cert's IP SANs: loopback, the kubernetes
// Service's IP and the server URL's host when it is another IP.
func (l layout) apiserverIPs() []net.IP {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), l.serviceIP}
	if u, err := url.Parse(l.server); err == nil {
		if ip := net.ParseIP(u.Hostname()); ip != nil && !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	return ips
}

// leaves lists the certs signed by the CA, by file stem under pki/.
func (l layout) leaves() []leafSpec {
	leaves := []leafSpec{
		{
			stem:    "apiserver",
			subject: subject{CN: "kube-apiserver"},
			server:  true,
			dns: []string{
				"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local",
			},
			ips: l.apiserverIPs(),
		},
		{stem: "admin", subject: subject{CN: "kubernetes-admin", O: []string{"system:masters"}}},
		{stem: "controller-manager", subject: subject{CN: "system:kube-controller-manager"}},
		{stem: "scheduler", subject: subject{CN: "system:kube-scheduler"}},
		{stem: "apiserver-kubelet-client", subject: subject{CN: "kube-apiserver-kubelet-client", O: []string{"system:masters"}}},
		{stem: "node", subject: subject{CN: "system:node:" + l.node, O: []string{"system:nodes"}}},
		// The apiserver's client identity towards aggregated APIs
		// (metrics-server), trusted through --requestheader-client-ca-file
		// with this CN alone allowed.
		{stem: "front-proxy-client", subject: subject{CN: "front-proxy-client"}},
	}
	for _, n := range l.extraNodes {
		leaves = append(leaves, leafSpec{stem: "node-" + n, subject: subject{CN: "system:node:" + n, O: []string{"system:nodes"}}})
	}
	return leaves
}

type kubeconfigSpec struct{ name, stem, user string }

// kubeconfigs maps each kubeconfig to the client cert it uses.
var kubeconfigs = []kubeconfigSpec{
	{"admin.kubeconfig", "admin", "kubernetes-admin"},
	{"controller-manager.kubeconfig", "controller-manager", "system:kube-controller-manager"},
	{"scheduler.kubeconfig", "scheduler", "system:kube-scheduler"},
	{"node.kubeconfig", "node", "node"},
}

// allKubeconfigs adds the further nodes' to kubeconfigs.
func (l layout) allKubeconfigs() []kubeconfigSpec {
	all := slices.Clone(kubeconfigs)
	for _, n := range l.extraNodes {
		all = append(all, kubeconfigSpec{"node-" + n + ".kubeconfig", "node-" + n, "node"})
	}
	return all
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
	for _, kc := range l.allKubeconfigs() {
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
