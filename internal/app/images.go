package app

import (
	"fmt"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"

	"github.com/berth-dev/berth/internal/image"
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
