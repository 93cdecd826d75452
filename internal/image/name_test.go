package image

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestParseReference(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in      string
		want    string // normalised; empty when an error is expected
		repo    string
		wantErr bool
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest", repo: "docker.io/library/busybox"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{in: "library/busybox", want: "docker.io/library/busybox:latest"},
		{in: "someone/app:v1", want: "docker.io/someone/app:v1", repo: "docker.io/someone/app"},
		{in: "docker.io/busybox", want: "docker.io/library/busybox:latest"},
		{in: "index.docker.io/busybox", want: "docker.io/library/busybox:latest"},
		{in: "registry.k8s.io/pause:3.10", want: "registry.k8s.io/pause:3.10", repo: "registry.k8s.io/pause"},
		{in: "berth.local/busybox:1.0", want: "berth.local/busybox:1.0"},
		{in: "localhost/app", want: "localhost/app:latest"},
		{in: "localhost:5000/a/b/c:tag", want: "localhost:5000/a/b/c:tag", repo: "localhost:5000/a/b/c"},
		{in: "127.0.0.1:5000/app", want: "127.0.0.1:5000/app:latest"},
		{in: "[::1]:5000/app", want: "[::1]:5000/app:latest"},
		{in: "busybox@" + digest, want: "docker.io/library/busybox@" + digest},
		{in: "busybox:1.0@" + digest, want: "docker.io/library/busybox:1.0@" + digest},
		{in: "my_app/x-y__z.w", want: "docker.io/my_app/x-y__z.w:latest"},
		{in: "Registry.Example:5000/app", want: "Registry.Example:5000/app:latest", repo: "Registry.Example:5000/app"},
		{in: "docker.io/library/busybox:latest", want: "docker.io/library/busybox:latest"},
		{in: "busybox:latest@" + digest, want: "docker.io/library/busybox:latest@" + digest},
		{in: "example.com/" + strings.Repeat("a", 255), want: "example.com/" + strings.Repeat("a", 255) + ":latest"},
		{in: "", wantErr: true},
		{in: "BusyBox", wantErr: true},
		{in: "busybox:", wantErr: true},
		{in: "busybox:-x", wantErr: true},
		{in: "busybox@sha256:abc", wantErr: true},
		{in: "a//b", wantErr: true},
		{in: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", wantErr: true},
		{in: "-bad.example/app", wantErr: true},
		{in: "busybox:" + strings.Repeat("x", 129), wantErr: true},
		// The limit of 255 is on the path, without the registry.
		{in: "example.com/" + strings.Repeat("a", 256), wantErr: true},
		{in: "busybox@sha256:" + strings.Repeat("g", 64), wantErr: true},
		{in: "https://example.com/app", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ref, err := ParseReference(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseReference(%q) = %v, want an error", tt.in, ref)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tt.in, err)
			}
			if got := ref.String(); got != tt.want {
				t.Errorf("ParseReference(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.repo != "" && ref.Repository() != tt.repo {
				t.Errorf("Repository() = %q, want %q", ref.Repository(), tt.repo)
			}
		})
	}
}

func TestWithDefaultTag(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct{ in, want string }{
		{"busybox", "busybox:latest"},
		{"busybox:1.0", "busybox:1.0"},
		{"localhost:5000/app", "localhost:5000/app:latest"},
		{"busybox@" + digest, "busybox@" + digest},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"},
	}
	for _, tt := range tests {
		got, err := WithDefaultTag(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("WithDefaultTag(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := WithDefaultTag("Bad"); err == nil {
		t.Error("WithDefaultTag(\"Bad\") succeeded, want an error")
	}
}

func TestPullPolicy(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		image  string
		policy v1.PullPolicy // as given
		want   v1.PullPolicy
	}{
		{image: "busybox", want: v1.PullAlways},
		{image: "busybox:latest", want: v1.PullAlways},
		{image: "docker.io/library/nginx", want: v1.PullAlways},
		{image: "localhost:5000/nginx", want: v1.PullAlways},
		{image: "localhost:5000/nginx:latest", want: v1.PullAlways},
		{image: "localhost:5000/nginx:1.25", want: v1.PullIfNotPresent},
		{image: "busybox:1.36", want: v1.PullIfNotPresent},
		{image: "busybox@" + digest, want: v1.PullIfNotPresent},
		{image: "busybox:1.36@" + digest, want: v1.PullIfNotPresent},
		// The API server defaults by the tag alone (SetDefaults_Container).
		{image: "busybox:latest@" + digest, want: v1.PullAlways},
		// A name that does not parse has no tag.
		{image: "Bad Name", want: v1.PullIfNotPresent},
		{image: "Busy_Box", want: v1.PullIfNotPresent},
		{image: "busybox", policy: v1.PullNever, want: v1.PullNever},
	}
	for _, tt := range tests {
		if got := pullPolicy(tt.policy, tt.image); got != tt.want {
			t.Errorf("pullPolicy(%q, %q) = %s, want %s", tt.image, tt.policy, got, tt.want)
		}
	}
}
