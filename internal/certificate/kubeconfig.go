package certificate

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/transport"
	certutil "k8s.io/client-go/util/cert"
)

// Upstream's file names in the cert dir: the certificate stores' prefixes
// (<prefix>-<timestamp>.pem, <prefix>-current.pem) and the key of a client
// certificate request that has not been issued yet.
const (
	clientPrefix   = "kubelet-client"
	servingPrefix  = "kubelet-server"
	pendingKeyFile = "kubelet-client.key.tmp"
)

// kubeconfigState is what berth found at --kubeconfig.
type kubeconfigState int

const (
	kubeconfigMissing kubeconfigState = iota
	// kubeconfigUnusable: present, but it cannot be loaded, names no
	// client certificate, or one of its certificates has expired.
	kubeconfigUnusable
	kubeconfigValid
)

func (s kubeconfigState) String() string {
	switch s {
	case kubeconfigMissing:
		return "missing"
	case kubeconfigUnusable:
		return "unusable or expired"
	default:
		return "valid"
	}
}

// needsBootstrap is upstream's rule for --bootstrap-kubeconfig: it is used
// only when the kubeconfig is not (or no longer) usable.
func needsBootstrap(state kubeconfigState, bootstrapPath string) bool {
	return bootstrapPath != "" && state != kubeconfigValid
}

// certsState says whether a kubeconfig's client certificates make it
// usable at now: at least one, none expired.
func certsState(certs []*x509.Certificate, now time.Time) kubeconfigState {
	if len(certs) == 0 {
		return kubeconfigUnusable
	}
	for _, c := range certs {
		if now.After(c.NotAfter) {
			return kubeconfigUnusable
		}
	}
	return kubeconfigValid
}

// readKubeconfigState loads the kubeconfig at path and judges its client
// certificates. A file that cannot be loaded is unusable, not an error:
// bootstrapping replaces it. Only a file that cannot even be stat'ed is.
func readKubeconfigState(path string, now time.Time) (kubeconfigState, string, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return kubeconfigMissing, "", nil
	} else if err != nil {
		return 0, "", fmt.Errorf("read kubeconfig %s: %w", path, err)
	}
	cfg, err := loadKubeconfig(path)
	if err != nil {
		return kubeconfigUnusable, err.Error(), nil
	}
	tc, err := cfg.TransportConfig()
	if err != nil {
		return kubeconfigUnusable, err.Error(), nil
	}
	// Loads the certificate files into tc.TLS.CertData.
	if _, err := transport.TLSConfigFor(tc); err != nil {
		return kubeconfigUnusable, err.Error(), nil
	}
	certs, err := certutil.ParseCertsPEM(tc.TLS.CertData)
	if err != nil {
		return kubeconfigUnusable, "no client certificate: " + err.Error(), nil
	}
	st := certsState(certs, now)
	if st != kubeconfigValid {
		return st, "client certificate expired", nil
	}
	return st, "", nil
}

// loadKubeconfig loads a kubeconfig's current context as a REST config.
func loadKubeconfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path},
		&clientcmd.ConfigOverrides{},
	).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// bootstrappedKubeconfig is the kubeconfig upstream writes after TLS
// bootstrap: the bootstrap kubeconfig's server and CA, and the client
// certificate and key both in the store's current PEM file.
func bootstrappedKubeconfig(bootstrap *rest.Config, pemPath string) clientcmdapi.Config {
	cluster := &clientcmdapi.Cluster{
		Server:                bootstrap.Host,
		InsecureSkipTLSVerify: bootstrap.Insecure,
		CertificateAuthority:  bootstrap.CAFile,
	}
	if bootstrap.CAFile == "" {
		cluster.CertificateAuthorityData = bootstrap.CAData
	}
	return clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"default-cluster": cluster},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"default-auth": {ClientCertificate: pemPath, ClientKey: pemPath}},
		Contexts:       map[string]*clientcmdapi.Context{"default-context": {Cluster: "default-cluster", AuthInfo: "default-auth", Namespace: "default"}},
		CurrentContext: "default-context",
	}
}

func writeBootstrappedKubeconfig(bootstrap *rest.Config, kubeconfigPath, pemPath string) error {
	if err := clientcmd.WriteToFile(bootstrappedKubeconfig(bootstrap, pemPath), kubeconfigPath); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", kubeconfigPath, err)
	}
	return nil
}
