package image

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Reference is a parsed image reference, normalised the way the Docker
// tooling (and therefore the upstream kubelet) does it: "busybox" is
// docker.io/library/busybox:latest.
type Reference struct {
	Domain string // e.g. "docker.io", "registry.k8s.io", "localhost:5000"
	Path   string // e.g. "library/busybox"
	Tag    string // empty when only a digest was given
	Digest string // e.g. "sha256:0123..."; may be empty
}

// Repository is the fully qualified repository name, e.g.
// "docker.io/library/busybox". Credentials are looked up by it.
func (r Reference) Repository() string { return r.Domain + "/" + r.Path }

// String is the fully qualified reference.
func (r Reference) String() string {
	s := r.Repository()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

const (
	defaultDomain = "docker.io"
	legacyDomain  = "index.docker.io"
	officialRepo  = "library"
	defaultTag    = "latest"
	maxNameLength = 255
)

// The grammar of github.com/distribution/reference, which k8s.io does not
// offer in a light package.
var (
	domainRE = regexp.MustCompile(`^(?:` +
		`(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*` +
		`|\[(?:[a-fA-F0-9:]+)\]` +
		`)(?::[0-9]+)?$`)
	pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	tagRE           = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestRE        = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$`)
	identifierRE    = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// ParseReference parses and normalises an image reference as a pod spec
// writes it. It rejects what the upstream kubelet rejects (reason
// InvalidImageName).
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, errors.New("empty image name")
	}
	if identifierRE.MatchString(s) {
		return Reference{}, fmt.Errorf("invalid repository name %q: cannot specify 64-byte hexadecimal strings", s)
	}
	var ref Reference
	name := s
	if i := strings.Index(name, "@"); i >= 0 {
		ref.Digest = name[i+1:]
		name = name[:i]
		if !digestRE.MatchString(ref.Digest) {
			return Reference{}, fmt.Errorf("invalid digest in image name %q", s)
		}
	}
	// A tag follows the last colon, unless that colon belongs to a
	// registry port (then a slash follows it).
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name[i+1:], "/") {
		ref.Tag = name[i+1:]
		name = name[:i]
		if !tagRE.MatchString(ref.Tag) {
			return Reference{}, fmt.Errorf("invalid tag in image name %q", s)
		}
	}
	if len(name) > maxNameLength {
		return Reference{}, fmt.Errorf("repository name in %q must not be longer than %d characters", s, maxNameLength)
	}
	ref.Domain, ref.Path = splitDomain(name)
	if ref.Domain != defaultDomain && !domainRE.MatchString(ref.Domain) {
		return Reference{}, fmt.Errorf("invalid registry in image name %q", s)
	}
	for _, c := range strings.Split(ref.Path, "/") {
		if !pathComponentRE.MatchString(c) {
			if pathComponentRE.MatchString(strings.ToLower(c)) {
				return Reference{}, fmt.Errorf("invalid image name %q: repository name must be lowercase", s)
			}
			return Reference{}, fmt.Errorf("invalid image name %q", s)
		}
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = defaultTag
	}
	return ref, nil
}

// splitDomain separates the registry from the repository path: the first
// component is a registry only if it looks like a host (has a dot or a
// port, or is localhost, or has upper case letters, which paths cannot).
func splitDomain(name string) (domain, path string) {
	i := strings.Index(name, "/")
	if i == -1 || (!strings.ContainsAny(name[:i], ".:") && name[:i] != "localhost" && strings.ToLower(name[:i]) == name[:i]) {
		domain, path = defaultDomain, name
	} else {
		domain, path = name[:i], name[i+1:]
	}
	if domain == legacyDomain {
		domain = defaultDomain
	}
	if domain == defaultDomain && !strings.Contains(path, "/") {
		path = officialRepo + "/" + path
	}
	return domain, path
}

// WithDefaultTag validates image and appends ":latest" when it names
// neither a tag nor a digest. Like the upstream kubelet it does not qualify
// short names ("busybox" stays "busybox:latest"): the runtime resolves them.
func WithDefaultTag(image string) (string, error) {
	ref, err := ParseReference(image)
	if err != nil {
		return "", err
	}
	if ref.Digest == "" && !strings.HasSuffix(image, ":"+ref.Tag) {
		return image + ":" + ref.Tag, nil
	}
	return image, nil
}
