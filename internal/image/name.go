package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	v1 "k8s.io/api/core/v1"
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

const defaultTag = "latest"

// ParseReference parses and normalises an image reference as a pod spec
// writes it, with the grammar of github.com/distribution/reference, as
// upstream's parsers.ParseImageName: what fails here fails there (reason
// InvalidImageName), with the same message. An image with neither tag nor
// digest gets the tag "latest".
func ParseReference(s string) (Reference, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, fmt.Errorf("couldn't parse image name %q: %v", s, err)
	}
	ref := Reference{Domain: reference.Domain(named), Path: reference.Path(named)}
	if t, ok := named.(reference.Tagged); ok {
		ref.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		ref.Digest = d.Digest().String()
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = defaultTag
	}
	return ref, nil
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

// DefaultPullPolicy is the pull policy of a container that names none, as
// the API server's SetDefaults_Container sets it: Always for the tag
// "latest" (given, or implied by neither tag nor digest; with a digest too),
// else IfNotPresent, also for a name that does not parse.
func DefaultPullPolicy(image string) v1.PullPolicy {
	if ref, err := ParseReference(image); err == nil && ref.Tag == defaultTag {
		return v1.PullAlways
	}
	return v1.PullIfNotPresent
}
