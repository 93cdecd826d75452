package app

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"

	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/credprovider"
)

// imageVerification opens the image pull records under the root directory
// (upstream's <root>/image_manager) and builds the credential verification
// policy, as upstream's kubelet does with KubeletEnsureSecretPulledImages
// (on by default since v1.35).
func imageVerification(opts Options) (*image.Records, image.VerifyPolicy, error) {
	verify, err := image.NewVerifyPolicy(kubeletconfig.ImagePullCredentialsVerificationPolicy(opts.ImagePullCredentialsVerificationPolicy),
		opts.PreloadedImagesVerificationAllowlist)
	if err != nil {
		return nil, verify, fmt.Errorf("invalid configuration: %w", err)
	}
	records, err := image.OpenRecords(opts.RootDir)
	if err != nil {
		return nil, verify, err
	}
	return records, verify, nil
}

// credentialProviders loads the image credential provider plugins
// (--image-credential-provider-config); nil without a config. A config
// that does not load stops berth, as upstream's kubelet.
func credentialProviders(opts Options, client kubernetes.Interface) (image.CredentialProviders, error) {
	if opts.ImageCredentialProviderConfig == "" {
		return nil, nil
	}
	copts := credprovider.Options{
		ConfigPath:           opts.ImageCredentialProviderConfig,
		BinDir:               opts.ImageCredentialProviderBinDir,
		ServiceAccountTokens: opts.ImageCredentialProviderServiceAccountTokens,
	}
	if client != nil {
		copts.ServiceAccounts = serviceAccounts{client}
	}
	p, err := credprovider.New(copts)
	if err != nil {
		return nil, fmt.Errorf("failed to register CRI auth plugins: %w", err)
	}
	return p, nil
}

// serviceAccounts reads service accounts and requests their tokens for
// the credential provider plugins in service account token mode.
type serviceAccounts struct{ client kubernetes.Interface }

func (s serviceAccounts) GetServiceAccount(ctx context.Context, namespace, name string) (*v1.ServiceAccount, error) {
	return s.client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (s serviceAccounts) CreateToken(ctx context.Context, namespace, name string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	return s.client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
}
