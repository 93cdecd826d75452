package image

import (
	"fmt"
	"slices"
	"strings"

	"github.com/distribution/reference"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// VerifyPolicy decides when a pod must prove that it could pull an image
// already on the node (imagePullCredentialsVerificationPolicy and
// preloadedImagesVerificationAllowlist, upstream's KEP-2535 "ensure secret
// pulled images"). The zero value never verifies.
type VerifyPolicy struct {
	policy    kubeletconfig.ImagePullCredentialsVerificationPolicy
	exact     map[string]bool // allowlisted image names (no tag or digest)
	prefixes  []string        // allowlisted "registry/path/" prefixes (from "/*" patterns)
	verifying bool
}

// NewVerifyPolicy returns the policy for the configuration's values; an
// empty policy is upstream's default, NeverVerifyPreloadedImages.
func NewVerifyPolicy(policy kubeletconfig.ImagePullCredentialsVerificationPolicy, allowlist []string) (VerifyPolicy, error) {
	if policy == "" {
		policy = kubeletconfig.NeverVerifyPreloadedImages
	}
	switch policy {
	case kubeletconfig.NeverVerify, kubeletconfig.NeverVerifyPreloadedImages, kubeletconfig.NeverVerifyAllowlistedImages, kubeletconfig.AlwaysVerify:
	default:
		return VerifyPolicy{}, fmt.Errorf("option %q specified for imagePullCredentialsVerificationPolicy. Valid options are %q, %q, %q or %q",
			policy, kubeletconfig.NeverVerify, kubeletconfig.NeverVerifyPreloadedImages, kubeletconfig.NeverVerifyAllowlistedImages, kubeletconfig.AlwaysVerify)
	}
	if len(allowlist) > 0 && policy != kubeletconfig.NeverVerifyAllowlistedImages {
		return VerifyPolicy{}, fmt.Errorf("can't set `preloadedImagesVerificationAllowlist` if `imagePullCredentialsVerificationPolicy` is not %q", kubeletconfig.NeverVerifyAllowlistedImages)
	}
	p := VerifyPolicy{policy: policy, exact: map[string]bool{}, verifying: policy != kubeletconfig.NeverVerify}
	for _, pattern := range allowlist {
		prefix, wildcard, err := allowlistPattern(pattern)
		if err != nil {
			return VerifyPolicy{}, fmt.Errorf("invalid image pattern in `preloadedImagesVerificationAllowlist`: %w", err)
		}
		if wildcard {
			p.prefixes = append(p.prefixes, prefix)
		} else {
			p.exact[prefix] = true
		}
	}
	return p, nil
}

// Verifying reports whether the policy ever asks for verification, that
// is whether pulls must be recorded.
func (p VerifyPolicy) Verifying() bool { return p.verifying }

// requireVerification is upstream's RequireCredentialVerificationForImage:
// whether a pod must prove access to image, present on the node, that the
// kubelet pulled (pulledByKubelet) or found there (preloaded).
func (p VerifyPolicy) requireVerification(image string, pulledByKubelet bool) bool {
	switch p.policy {
	case kubeletconfig.NeverVerifyPreloadedImages:
		return pulledByKubelet
	case kubeletconfig.NeverVerifyAllowlistedImages:
		return !p.allowlisted(image)
	case kubeletconfig.AlwaysVerify:
		return true
	}
	return false
}

func (p VerifyPolicy) allowlisted(image string) bool {
	name, err := trimTagDigest(image)
	if err != nil {
		name = image // best effort, as upstream
	}
	if p.exact[name] {
		return true
	}
	for _, prefix := range p.prefixes {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// allowlistPattern validates one allowlist entry as upstream does: an
// image name without tag or digest, or a prefix ending in "/*" (returned
// without the "*").
func allowlistPattern(pattern string) (string, bool, error) {
	if pattern != strings.TrimSpace(pattern) {
		return "", false, fmt.Errorf("leading/trailing spaces are not allowed: %s", pattern)
	}
	trimmed, wildcard := strings.CutSuffix(pattern, "/*")
	if wildcard {
		trimmed += "/"
	}
	if trimmed == "" {
		return "", false, fmt.Errorf("the supplied pattern is too short: %s", pattern)
	}
	if strings.ContainsRune(trimmed, '*') {
		return "", false, fmt.Errorf("not a valid wildcard pattern, only patterns ending with '/*' are allowed: %s", pattern)
	}
	if wildcard {
		if len(trimmed) == 1 {
			return "", false, fmt.Errorf("at least registry hostname is required")
		}
		return trimmed, true, nil
	}
	name, err := trimTagDigest(trimmed)
	if err != nil {
		return "", false, fmt.Errorf("failed to parse as an image name: %w", err)
	}
	if name != trimmed {
		return "", false, fmt.Errorf("neither tag nor digest is accepted in an image reference: %s", pattern)
	}
	return trimmed, false, nil
}

// trimTagDigest is the image as the pod names it without its tag and
// digest: the key of a pulled record's credential mapping (upstream's
// trimImageTagDigest, on the unnormalised name).
func trimTagDigest(image string) (string, error) {
	ref, err := reference.Parse(image)
	if err != nil {
		return "", err
	}
	name := image
	if d, ok := ref.(reference.Digested); ok {
		var found bool
		if name, found = strings.CutSuffix(name, "@"+d.Digest().String()); !found {
			return "", fmt.Errorf("digest was not specified last, this does not appear to be a valid image spec: %q", image)
		}
	}
	if t, ok := ref.(reference.Tagged); ok {
		var found bool
		if name, found = strings.CutSuffix(name, ":"+t.Tag()); !found {
			return "", fmt.Errorf("tag %q was not specified last (or before the digest), this does not appear to be a valid image spec: %q", t.Tag(), image)
		}
	}
	return name, nil
}

// access is what a pod presents for an image: the pull secrets that
// match its registry, as recorded (coordinates and credential hash), and
// the service account a credential provider plugin took its token from.
type access struct {
	secrets        []kubeletconfig.ImagePullSecret
	serviceAccount *kubeletconfig.ImagePullServiceAccount
}

// presentedAccess is what the credentials a pod has for an image present
// (upstream's getPodCredentials): their secrets, and the first service
// account (one per pod: the audience is not told apart).
func presentedAccess(creds []Credential) access {
	var a access
	for _, c := range creds {
		switch {
		case c.Secret != nil:
			a.secrets = append(a.secrets, *c.Secret)
		case c.ServiceAccount != nil && a.serviceAccount == nil:
			a.serviceAccount = c.ServiceAccount
		}
	}
	return a
}

// verdict is the outcome of mustPull.
type verdict struct {
	pull bool
	// remember, when set, is a pod secret to add to the image's record:
	// it matched a recorded one by hash only (another copy of the same
	// credentials) or by coordinates only (the secret was updated).
	remember *kubeletconfig.ImagePullSecret
}

// writeWhileMatchingLimit bounds the secrets added to a record while
// matching (upstream's writeRecordWhileMatchingLimit), against namespace
// churn.
const writeWhileMatchingLimit = 100

// mustPull is upstream's MustAttemptImagePull: whether a pod must pull an
// image present on the node (as imageRef) instead of using it, given the
// record of the kubelet's pulls of imageRef (nil if none), whether a pull
// of image is or was in flight (an intent), and the pod's credentials.
// It is pure.
func (p VerifyPolicy) mustPull(image string, record *kubeletconfig.ImagePulledRecord, intent bool, pod access) verdict {
	if !p.requireVerification(image, record != nil || intent) {
		return verdict{}
	}
	if record == nil {
		return verdict{pull: true}
	}
	name, err := trimTagDigest(image)
	if err != nil {
		return verdict{pull: true}
	}
	creds, ok := record.CredentialMapping[name]
	if !ok {
		return verdict{pull: true}
	}
	if creds.NodePodsAccessible {
		return verdict{}
	}
	if len(creds.KubernetesSecrets) == 0 && len(creds.KubernetesServiceAccounts) == 0 {
		return verdict{pull: true}
	}
	for _, s := range pod.secrets {
		for _, cached := range creds.KubernetesSecrets {
			hashes := cached.CredentialHash != "" && s.CredentialHash == cached.CredentialHash
			coords := s.UID == cached.UID && s.Namespace == cached.Namespace && s.Name == cached.Name
			room := len(creds.KubernetesSecrets) < writeWhileMatchingLimit
			switch {
			case hashes && coords:
				return verdict{}
			case hashes && room:
				return verdict{remember: &s}
			case hashes:
				return verdict{}
			case coords && room:
				// Upstream trusts a pod whose secret was updated since.
				return verdict{remember: &s}
			}
		}
	}
	if sa := pod.serviceAccount; sa != nil && slices.Contains(creds.KubernetesServiceAccounts, *sa) {
		return verdict{}
	}
	return verdict{pull: true}
}

// pullCredentials is what a successful pull is recorded with: the secret
// whose credentials pulled it, the service account whose token a
// credential provider plugin exchanged for them, or nothing (an anonymous
// pull, or node credentials), which makes the image free for every pod on
// the node (upstream's trackedToImagePullCreds).
func pullCredentials(c *Credential) kubeletconfig.ImagePullCredentials {
	switch {
	case c == nil || (c.Secret == nil && c.ServiceAccount == nil):
		return kubeletconfig.ImagePullCredentials{NodePodsAccessible: true}
	case c.Secret != nil:
		return kubeletconfig.ImagePullCredentials{KubernetesSecrets: []kubeletconfig.ImagePullSecret{*c.Secret}}
	}
	return kubeletconfig.ImagePullCredentials{KubernetesServiceAccounts: []kubeletconfig.ImagePullServiceAccount{*c.ServiceAccount}}
}

// mergeRecord adds creds (nil: none known) for image to record, or starts
// a record of imageRef when there is none. It returns the new record and
// whether it differs, stamped now; record is not modified.
func mergeRecord(record *kubeletconfig.ImagePulledRecord, imageRef, image string, creds *kubeletconfig.ImagePullCredentials, now metav1.Time) (*kubeletconfig.ImagePulledRecord, bool, error) {
	name, err := trimTagDigest(image)
	if err != nil {
		return nil, false, fmt.Errorf("invalid image name %q: %w", image, err)
	}
	if record == nil {
		r := &kubeletconfig.ImagePulledRecord{LastUpdatedTime: now, ImageRef: imageRef, CredentialMapping: map[string]kubeletconfig.ImagePullCredentials{}}
		// A record without credentials still says that the kubelet pulled
		// the image, so that every pod must then verify.
		if creds != nil {
			r.CredentialMapping[name] = *creds
		}
		return r, true, nil
	}
	if creds == nil || (!creds.NodePodsAccessible && len(creds.KubernetesSecrets) == 0 && len(creds.KubernetesServiceAccounts) == 0) {
		return record, false, nil
	}
	old, found := record.CredentialMapping[name]
	next := *creds
	switch {
	case !found:
	case old.NodePodsAccessible:
		return record, false, nil
	case creds.NodePodsAccessible:
		next = kubeletconfig.ImagePullCredentials{NodePodsAccessible: true}
	case len(creds.KubernetesSecrets) > 0:
		merged, changed := mergeSecrets(old.KubernetesSecrets, creds.KubernetesSecrets)
		if !changed {
			return record, false, nil
		}
		next = old
		next.KubernetesSecrets = merged
	case len(creds.KubernetesServiceAccounts) > 0:
		merged, changed := mergeServiceAccounts(old.KubernetesServiceAccounts, creds.KubernetesServiceAccounts)
		if !changed {
			return record, false, nil
		}
		next = old
		next.KubernetesServiceAccounts = merged
	default:
		return record, false, nil
	}
	r := record.DeepCopy()
	if r.CredentialMapping == nil {
		r.CredentialMapping = map[string]kubeletconfig.ImagePullCredentials{}
	}
	r.CredentialMapping[name] = next
	r.LastUpdatedTime = now
	return r, true, nil
}

// mergeSecrets adds add to secrets, one per UID/namespace/name (the hash
// of add wins), sorted by namespace, name and UID as upstream keeps them.
func mergeSecrets(secrets, add []kubeletconfig.ImagePullSecret) ([]kubeletconfig.ImagePullSecret, bool) {
	out := slices.Clone(secrets)
	changed := false
	for _, s := range add {
		i := slices.IndexFunc(out, func(o kubeletconfig.ImagePullSecret) bool {
			return o.UID == s.UID && o.Namespace == s.Namespace && o.Name == s.Name
		})
		switch {
		case i < 0:
			out = append(out, s)
			changed = true
		case out[i].CredentialHash != s.CredentialHash:
			out[i].CredentialHash = s.CredentialHash
			changed = true
		}
	}
	if !changed {
		return secrets, false
	}
	slices.SortFunc(out, func(a, b kubeletconfig.ImagePullSecret) int {
		return compareCoordinates(a.Namespace, a.Name, a.UID, b.Namespace, b.Name, b.UID)
	})
	return out, true
}

// mergeServiceAccounts adds add to accounts, without duplicates, sorted by
// namespace, name and UID as upstream keeps them.
func mergeServiceAccounts(accounts, add []kubeletconfig.ImagePullServiceAccount) ([]kubeletconfig.ImagePullServiceAccount, bool) {
	out := slices.Clone(accounts)
	for _, sa := range add {
		if !slices.Contains(out, sa) {
			out = append(out, sa)
		}
	}
	if len(out) == len(accounts) {
		return accounts, false
	}
	slices.SortFunc(out, func(a, b kubeletconfig.ImagePullServiceAccount) int {
		return compareCoordinates(a.Namespace, a.Name, a.UID, b.Namespace, b.Name, b.UID)
	})
	return out, true
}

// compareCoordinates orders objects by namespace, name and UID, as
// upstream keeps the secrets and service accounts of a record.
func compareCoordinates(ns1, name1, uid1, ns2, name2, uid2 string) int {
	if c := strings.Compare(ns1, ns2); c != 0 {
		return c
	}
	if c := strings.Compare(name1, name2); c != 0 {
		return c
	}
	return strings.Compare(uid1, uid2)
}
