package certificate

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/certificate/csr"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"
)

// issueTimeout is how long a bootstrap request waits for its certificate,
// as upstream's (an hour: an operator may have to approve it).
const issueTimeout = time.Hour

// nodeSubject is the subject of every certificate the node requests.
func nodeSubject(nodeName string) pkix.Name {
	return pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}}
}

// clientUsages are the usages of a client certificate request for key:
// key encipherment only for RSA keys, as upstream's.
func clientUsages(key any) []certificatesv1.KeyUsage {
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	if _, ok := key.(*rsa.PrivateKey); ok {
		usages = append(usages, certificatesv1.UsageKeyEncipherment)
	}
	return usages
}

// bootstrapClientCert gets the node's client certificate with the
// bootstrap kubeconfig and writes the kubeconfig pointing at it, unless the
// kubeconfig is still valid (upstream's LoadClientCert). It blocks until
// the certificate is issued, ctx ends or an hour has passed.
func bootstrapClientCert(ctx context.Context, o ClientOptions) error {
	logger := klog.FromContext(ctx)
	state, why, err := readKubeconfigState(o.Kubeconfig, time.Now())
	if err != nil {
		return err
	}
	if !needsBootstrap(state, o.BootstrapKubeconfig) {
		logger.V(2).Info("Kubeconfig is valid, no TLS bootstrap needed", "kubeconfig", o.Kubeconfig)
		return nil
	}
	logger.Info("Requesting a client certificate with the bootstrap kubeconfig", "kubeconfig", o.Kubeconfig, "state", state.String(), "reason", why, "bootstrapKubeconfig", o.BootstrapKubeconfig)
	bootstrapCfg, err := loadKubeconfig(o.BootstrapKubeconfig)
	if err != nil {
		return fmt.Errorf("bootstrap kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(bootstrapCfg)
	if err != nil {
		return fmt.Errorf("build CSR client from %s: %w", o.BootstrapKubeconfig, err)
	}
	store, err := certificate.NewFileStoreWithLogger(logger, clientPrefix, o.CertDir, o.CertDir, "", "")
	if err != nil {
		return fmt.Errorf("client certificate store in %s: %w", o.CertDir, err)
	}
	keyPEM, err := bootstrapKey(store, filepath.Join(o.CertDir, pendingKeyFile))
	if err != nil {
		return err
	}
	waitForServer(ctx, bootstrapCfg, time.Minute)
	certPEM, err := requestClientCert(ctx, client, keyPEM, o.NodeName)
	if err != nil {
		return err
	}
	if _, err := store.Update(certPEM, keyPEM); err != nil {
		return fmt.Errorf("store client certificate in %s: %w", o.CertDir, err)
	}
	if err := os.Remove(filepath.Join(o.CertDir, pendingKeyFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.V(2).Info("Cannot remove the pending private key", "path", pendingKeyFile, "err", err)
	}
	logger.Info("Client certificate issued", "certificate", store.CurrentPath())
	return writeBootstrappedKubeconfig(bootstrapCfg, o.Kubeconfig, store.CurrentPath())
}

// bootstrapKey is the key to request the certificate for: the current
// (expired) certificate's, else the pending one from an earlier attempt,
// else a new one written there first, so a restart mid-bootstrap asks
// again with the same key and the same CSR name.
func bootstrapKey(store certificate.Store, pendingPath string) ([]byte, error) {
	if cert, err := store.Current(); err == nil && cert.PrivateKey != nil {
		if data, err := keyutil.MarshalPrivateKeyToPEM(cert.PrivateKey); err == nil {
			if _, err := keyutil.ParsePrivateKeyPEM(data); err == nil {
				return data, nil
			}
		}
	}
	data, _, err := keyutil.LoadOrGenerateKeyFile(pendingPath)
	if err != nil {
		return nil, fmt.Errorf("private key for the client certificate request: %w", err)
	}
	return data, nil
}

// waitForServer waits up to timeout for the API server's /healthz, so that
// the request is not made (and logged as failing) while it starts.
func waitForServer(ctx context.Context, cfg *rest.Config, timeout time.Duration) {
	logger := klog.FromContext(ctx)
	c := rest.CopyConfig(cfg)
	c.Timeout = time.Second
	client, err := kubernetes.NewForConfig(c)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		if _, err := client.Discovery().RESTClient().Get().AbsPath("/healthz").DoRaw(ctx); err != nil {
			logger.Info("Waiting for the API server", "host", cfg.Host, "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		logger.Info("API server not healthy yet; requesting the certificate anyway", "host", cfg.Host)
	}
}

// requestClientCert creates the CSR (or finds the one an earlier attempt
// created with the same key) and waits for its certificate.
func requestClientCert(ctx context.Context, client kubernetes.Interface, keyPEM []byte, nodeName string) ([]byte, error) {
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("private key for the client certificate request: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("private key for the client certificate request cannot sign")
	}
	subject := nodeSubject(nodeName)
	csrPEM, err := certutil.MakeCSR(key, &subject, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("make certificate signing request: %w", err)
	}
	usages := clientUsages(key)
	name, err := csrName(signer.Public(), subject, usages)
	if err != nil {
		return nil, err
	}
	reqName, reqUID, err := csr.RequestCertificateWithContext(ctx, client, csrPEM, name, certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate signing request %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, issueTimeout)
	defer cancel()
	klog.FromContext(ctx).Info("Waiting for the client certificate to be approved and issued", "csr", reqName)
	certPEM, err := csr.WaitForCertificate(ctx, client, reqName, reqUID)
	if err != nil {
		return nil, fmt.Errorf("certificate signing request %s: %w", reqName, err)
	}
	return certPEM, nil
}

// csrName is upstream's name for a bootstrap CSR, node-csr-<digest>: a
// digest of the public key, subject and usages, so that the same key asks
// with the same name and a restart finds its request again.
func csrName(pub crypto.PublicKey, subject pkix.Name, usages []certificatesv1.KeyUsage) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	h := sha512.New512_256()
	enc := base64.RawURLEncoding.EncodeToString
	// '|' is outside the base64url alphabet: no two inputs write the same stream.
	write := func(b []byte) {
		h.Write([]byte(enc(b)))
		h.Write([]byte{'|'})
	}
	write(der)
	write([]byte(subject.CommonName))
	for _, o := range subject.Organization {
		write([]byte(o))
	}
	for _, u := range usages {
		write([]byte(u))
	}
	return "node-csr-" + enc(h.Sum(nil)), nil
}
