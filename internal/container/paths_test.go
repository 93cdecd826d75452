package container

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestPodDir(t *testing.T) {
	for uid, want := range map[types.UID]string{
		"7c0d5d3e-1111-2222-3333-444455556666": "/var/lib/kubelet/pods/7c0d5d3e-1111-2222-3333-444455556666",
		"abc.def_1":                            "/var/lib/kubelet/pods/abc.def_1",
		"":                                     "",
		".":                                    "",
		"..":                                   "",
		"../..":                                "",
		"a/b":                                  "",
		"a\x00b":                               "",
	} {
		got, err := PodDir("/var/lib/kubelet", uid)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("PodDir(%q) = %q, %v; want %q", uid, got, err, want)
		}
	}
}
